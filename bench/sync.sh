#!/usr/bin/env bash
# bench/sync.sh [--runs N] [--size MiB] [--layers K] [--bin PATH] [--profile NAME] [--check]
#
# Sync benchmark: an image of --size MiB (default 1024) in --layers (default 4)
# random gzip'ed layers (Tests/e2e/mkimage.py) is pushed once to an upstream
# docker-registry (Debian's distribution 2.8), then copied from it --runs
# (default 3) times by each of, alternating which goes first:
#   A  `satellite-lite sync` (release build) into a fresh store
#   B  `skopeo copy --preserve-digests` into a fresh second docker-registry
# Reported per run and as medians: wall time of each copy, the ratio A/B, A's
# peak RSS (ru_maxrss), and the bytes each side wrote to disk (write_bytes of
# /proc/PID/io, read at exit before the process is reaped; for B: skopeo plus
# the receiving docker-registry) relative to the image size.
# Goals (from the issue): median wall ratio A/B <= 0.5, A's peak RSS <= 24 MiB,
# A's bytes written <= 1.02 x image size. --check: exit 1 unless all hold;
# without it the script only reports (exit 0). Everything lives in a temp dir
# removed at exit; each run's store / registry is deleted after the run.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/../Tests/e2e/lib.sh"

RUNS=3 SIZE=1024 LAYERS=4 BIN="" PROFILE=generic-amd64 CHECK=0
GOAL_RATIO=0.5 GOAL_RSS_MIB=24 GOAL_WRITE=1.02
usage() { echo "usage: $0 [--runs N] [--size MiB] [--layers K] [--bin PATH] [--profile NAME] [--check]" >&2; exit 64; }
while (( $# )); do
    case $1 in
        --runs) RUNS=${2:-}; shift 2 ;;
        --size) SIZE=${2:-}; shift 2 ;;
        --layers) LAYERS=${2:-}; shift 2 ;;
        --bin) BIN=${2:-}; shift 2 ;;
        --profile) PROFILE=${2:-}; shift 2 ;;
        --check) CHECK=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
        *) usage ;;
    esac
done
[[ "$RUNS" =~ ^[1-9][0-9]*$ && "$SIZE" =~ ^[1-9][0-9]*$ && "$LAYERS" =~ ^[1-9][0-9]*$ ]] || usage
if [[ -z "$BIN" ]]; then
    for c in "$HERE/../.build-bench/release/satellite-lite" "$HERE/../.build/release/satellite-lite" \
             "$HERE/../.build-synctest/release/satellite-lite"; do
        [[ -x "$c" ]] && { BIN=$c; break; }
    done
fi
[[ -n "$BIN" && -x "$BIN" ]] || fail "satellite-lite release binary not found (build with -c release, or pass --bin PATH)"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
for t in docker-registry skopeo jq python3 curl; do command -v "$t" >/dev/null || fail "$t is not installed"; done
T=$E2E_TMP
need_mib=$(( SIZE * 5 + 512 ))   # layout + upstream + (one run's store or registry) + slack
avail_mib=$(( $(df -Pk "$T" | awk 'NR==2{print $4}') / 1024 ))
(( avail_mib > need_mib )) || fail "need ~$need_mib MiB free in $T, have $avail_mib MiB"
export E2E_CMD_TIMEOUT=${BENCH_CMD_TIMEOUT:-1800}
RUN_TIMEOUT=${BENCH_RUN_TIMEOUT:-1800}

# measure.py OUT TIMEOUT CMD...: rc, wall, peak RSS, disk writes of CMD (see bench/measure.py).
MEASURE=$HERE/measure.py
proc_write_bytes() { awk '/^write_bytes:/{print $2}' "/proc/$1/io" 2>/dev/null || echo 0; }

# registry DIR: a docker-registry with its storage under DIR (sets REG_ADDR REG_PID)
registry() {
    start_docker_registry "$1"
    REG_PID=$DOCKER_REGISTRY_PID
    REG_ADDR=$DOCKER_REGISTRY_ADDR
}

# ------------------------------------------------------------------ image + upstream
PLATFORM=$(jq -r '.platform | if type=="object" then [.os,.architecture,.variant] | map(select(.)) | join("/") else "linux/amd64" end' \
    "$HERE/../hw-profiles/$PROFILE.json" 2>/dev/null || echo linux/amd64)
[[ "$PLATFORM" == */* ]] || PLATFORM=linux/amd64
log "building a $SIZE MiB image ($LAYERS layers, $PLATFORM)"
# data bytes per layer; minus 4 KiB of tar headers so the image is --size MiB. (mkimage.py's
# random.randbytes() takes at most 2^28 - 1 bytes per layer.)
LAYER_BYTES=$(( SIZE * 1024 * 1024 / LAYERS - 4096 ))
(( LAYER_BYTES > 0 && LAYER_BYTES < 268435456 )) || fail "--size/--layers gives $LAYER_BYTES B per layer: use more --layers (at most 256 MiB each)"
DIGEST=$(python3 "$MKIMAGE" single --platform "$PLATFORM" --layers "$LAYERS" --size "$LAYER_BYTES" "oci:$T/img:v1") \
    || fail "mkimage.py failed"
M=$T/img/blobs/sha256/${DIGEST#sha256:}
IMAGE_BYTES=$(( $(stat -c %s "$M") + $(jq '[.config.size] + [.layers[].size] | add' "$M") ))
registry "$T/upstream"; UP=$REG_ADDR
log "pushing it to the upstream docker-registry $UP"
run_or_fail "push to the upstream" e2e_skopeo copy -q --preserve-digests --dest-tls-verify=false "oci:$T/img:v1" "docker://$UP/bench/big:v1"
rm -rf "$T/img"
sync

# ------------------------------------------------------------------ runs
run_sat() { # RUN -> RES="wall rss_kib write_bytes anon_kib file_kib"
    local dir=$T/run$1/sat rc wall rss wb an fb
    mkdir -p "$dir"
    jq -n --arg store "$dir/store" --arg listen "127.0.0.1:$(free_port)" --arg url "http://$UP" --arg profile "$PROFILE" \
        '{profile:$profile, storage:{path:$store}, registry:{listen:$listen}, upstream:{url:$url},
          state:{images:["bench/big:v1"], interval:"1h"}, sync:{timeout:"30m"}}' > "$dir/config.json"
    sync
    python3 "$MEASURE" "$dir/m" "$RUN_TIMEOUT" "$BIN" sync --config "$dir/config.json"
    read -r rc wall rss wb _ an fb < "$dir/m"
    (( rc == 0 )) || fail "run $1: satellite-lite sync exited $rc: $(tail -n 3 "$dir/m.log" | tr '\n' ' ')"
    [[ "$(tr -d ' \n' < "$dir/store/repositories/bench/big/_manifests/tags/v1" 2>/dev/null)" == "$DIGEST" ]] \
        || fail "run $1: satellite-lite store has no bench/big:v1 -> $DIGEST after sync"
    rm -rf "$dir"
    RES="$wall $rss $wb $an $fb"
}
run_skopeo() { # RUN -> RES="wall rss_kib write_bytes(skopeo+registry)"
    local dir=$T/run$1/skopeo rc wall rss wb reg_wb got
    registry "$dir/reg"
    sync
    local before
    before=$(proc_write_bytes "$REG_PID")
    python3 "$MEASURE" "$dir/m" "$RUN_TIMEOUT" skopeo --policy "$E2E_CONF/policy.json" --registries.d "$E2E_CONF/registries.d" \
        --tmpdir "$dir" copy -q --preserve-digests --src-tls-verify=false --dest-tls-verify=false \
        "docker://$UP/bench/big:v1" "docker://$REG_ADDR/bench/big:v1"
    read -r rc wall rss wb _ < "$dir/m"
    (( rc == 0 )) || fail "run $1: skopeo copy exited $rc: $(tail -n 3 "$dir/m.log" | tr '\n' ' ')"
    reg_wb=$(( $(proc_write_bytes "$REG_PID") - before ))
    got=$(curl -s -o /dev/null -D - --max-time 10 -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        "http://$REG_ADDR/v2/bench/big/manifests/v1" | tr -d '\r' | awk 'tolower($1)=="docker-content-digest:"{print $2}')
    [[ "$got" == "$DIGEST" ]] || fail "run $1: second registry has bench/big:v1 -> '$got', expected $DIGEST"
    kill_wait "$REG_PID"
    rm -rf "$dir"
    RES="$wall $rss $(( wb + reg_wb ))"
}

declare -a ROWS=()
printf '\n%-4s %-5s %10s %10s %8s %10s %12s %12s\n' run first "A s" "B s" "A/B" "A RSS MiB" "A write/img" "B write/img"
for (( r=1; r<=RUNS; r++ )); do
    if (( r % 2 )); then
        run_sat "$r"; a=$RES; run_skopeo "$r"; b=$RES; first=A
    else
        run_skopeo "$r"; b=$RES; run_sat "$r"; a=$RES; first=B
    fi
    read -r aw ar awb aan afi <<<"$a"
    read -r bw br bwb <<<"$b"
    ROWS+=("$aw $bw $ar $awb $bwb $br $aan $afi")
    python3 -c "
import sys
aw, bw, ar, awb, bwb, img = map(float, sys.argv[1:7])
print('%-4s %-5s %10.2f %10.2f %8.3f %10.1f %12.4f %12.4f' % (sys.argv[7], sys.argv[8], aw, bw, aw / bw, ar / 1024, awb / img, bwb / img))
" "$aw" "$bw" "$ar" "$awb" "$bwb" "$IMAGE_BYTES" "$r" "$first"
done

python3 - "$IMAGE_BYTES" "$SIZE" "$LAYERS" "$RUNS" "$PROFILE" "$GOAL_RATIO" "$GOAL_RSS_MIB" "$GOAL_WRITE" "$CHECK" "${ROWS[@]}" <<'PY'
import statistics, sys
img, size, layers, runs, profile, g_ratio, g_rss, g_write, check = sys.argv[1:10]
rows = [list(map(float, r.split())) for r in sys.argv[10:]]
img = int(img)
med = lambda i: statistics.median(r[i] for r in rows)
aw, bw = med(0), med(1)
ratio = aw / bw
rss = max(r[2] for r in rows) / 1024
aw_b, bw_b = med(3), med(4)
mib = img / 1048576
print()
print(f"summary: {size} MiB image ({layers} layers, {img} B), {runs} alternating runs, profile {profile}")
print(f"  A satellite-lite sync      median {aw:8.2f} s  ({mib / aw:6.1f} MiB/s)")
print(f"  B skopeo copy -> registry  median {bw:8.2f} s  ({mib / bw:6.1f} MiB/s)  skopeo peak RSS {max(r[5] for r in rows) / 1024:.1f} MiB")
print(f"  wall ratio A/B (medians)   {ratio:.3f}   per run: {' '.join('%.3f' % (r[0] / r[1]) for r in rows)}")
print(f"  A peak RSS                 {rss:.1f} MiB (max over runs; sampled peaks: anon {max(r[6] for r in rows) / 1024:.1f} MiB,"
      f" file-backed {max(r[7] for r in rows) / 1024:.1f} MiB)")
print(f"  disk writes / image size   A {aw_b / img:.4f} (median {aw_b / 1048576:.1f} MiB)   B (skopeo + registry) {bw_b / img:.4f}")
ok_ratio, ok_rss, ok_write = ratio <= float(g_ratio), rss <= float(g_rss), aw_b / img <= float(g_write)
print(f"  goal wall ratio <= {g_ratio}: {'met' if ok_ratio else 'NOT met'} ({ratio:.3f})")
print(f"  goal peak RSS <= {g_rss} MiB: {'met' if ok_rss else 'NOT met'} ({rss:.1f} MiB)")
print(f"  goal disk writes <= {g_write} x image: {'met' if ok_write else 'NOT met'} ({aw_b / img:.4f})")
if check == "1" and not (ok_ratio and ok_rss and ok_write):
    print("FAIL [sync bench]: goals not met", file=sys.stderr)
    sys.exit(1)
PY
