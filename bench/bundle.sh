#!/usr/bin/env bash
# bench/bundle.sh [--runs N] [--size MiB] [--layers K] [--diff-layer MiB] [--bin PATH] [--profile NAME] [--check]
#
# Air-gap bundle benchmark (issue 15), on this machine, in one run:
#   1. a --size MiB (default 2048) image in --layers (default 8) is pushed to Debian's
#      docker-registry; `satellite-lite bundle create --sign` writes a full bundle of it;
#   2. per run, on fresh stores: A = `satellite-lite bundle import` of that bundle file (same
#      disk); B = `skopeo copy oci-archive:BUNDLE:bench/big:v1 docker://SATELLITE/...` of the
#      same content into a `satellite-lite serve` (the way in before bundles). Reported: wall
#      time of each, A/B, A's peak RSS, bytes written to disk (A: the importer's write_bytes;
#      B: skopeo's, which unpacks the archive to a temp dir, plus the receiving satellite's);
#   3. a differential bundle: a 5-layer image of --diff-layer MiB (default 32) layers is
#      bundled in full, then one layer is replaced and the tag moved; `bundle create --base`
#      must carry only that layer: its size against the layer's.
# Goals (issue 15): A's disk writes <= 1.02 x the bundle, A's peak RSS <= 24 MiB, the
# differential bundle <= the changed layer + 1 MiB. --check exits 1 unless they hold.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/../Tests/e2e/lib.sh"

RUNS=3 SIZE=2048 LAYERS=8 DIFF=32 BIN="" PROFILE=generic-amd64 CHECK=0
usage() { echo "usage: $0 [--runs N] [--size MiB] [--layers K] [--diff-layer MiB] [--bin PATH] [--profile NAME] [--check]" >&2; exit 64; }
while (( $# )); do
    case $1 in
        --runs) RUNS=${2:-}; shift 2 ;;
        --size) SIZE=${2:-}; shift 2 ;;
        --layers) LAYERS=${2:-}; shift 2 ;;
        --diff-layer) DIFF=${2:-}; shift 2 ;;
        --bin) BIN=${2:-}; shift 2 ;;
        --profile) PROFILE=${2:-}; shift 2 ;;
        --check) CHECK=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
        *) usage ;;
    esac
done
[[ "$RUNS" =~ ^[1-9][0-9]*$ && "$SIZE" =~ ^[1-9][0-9]*$ && "$LAYERS" =~ ^[1-9][0-9]*$ && "$DIFF" =~ ^[1-9][0-9]*$ ]] || usage
if [[ -z "$BIN" ]]; then
    for c in "$HERE/../.build-static/satellite-lite" "$HERE/../.build-bench/release/satellite-lite" "$HERE/../.build/release/satellite-lite"; do
        [[ -x "$c" ]] && { BIN=$c; break; }
    done
fi
[[ -n "$BIN" && -x "$BIN" ]] || fail "satellite-lite release binary not found (scripts/build-static, or pass --bin PATH)"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
for t in docker-registry skopeo jq python3 curl openssl; do command -v "$t" >/dev/null || fail "$t is not installed"; done
T=$E2E_TMP
need_mib=$(( SIZE * 5 + 1024 ))   # layout + upstream + bundle + one store + skopeo's unpacked copy
avail_mib=$(( $(df -Pk "$T" | awk 'NR==2{print $4}') / 1024 ))
(( avail_mib > need_mib )) || fail "need ~$need_mib MiB free in $T, have $avail_mib MiB"
export E2E_CMD_TIMEOUT=${BENCH_CMD_TIMEOUT:-1800}
RUN_TIMEOUT=${BENCH_RUN_TIMEOUT:-1800}

# measure.py OUT TIMEOUT CMD...: rc, wall, peak RSS, disk writes of CMD (see bench/measure.py).
MEASURE=$HERE/measure.py
proc_write_bytes() { awk '/^write_bytes:/{print $2}' "/proc/$1/io" 2>/dev/null || echo 0; }

openssl ecparam -name prime256v1 -genkey -noout -out "$T/bundle.key" 2>/dev/null
openssl ec -in "$T/bundle.key" -pubout -out "$T/bundle.pub" 2>/dev/null

# ------------------------------------------------------------------ image, upstream, bundle
LAYER_BYTES=$(( SIZE * 1024 * 1024 / LAYERS - 4096 ))
(( LAYER_BYTES > 0 && LAYER_BYTES < 268435456 )) || fail "--size/--layers gives $LAYER_BYTES B per layer: use more --layers (at most 256 MiB each)"
log "building a $SIZE MiB image ($LAYERS layers)"
DIGEST=$(python3 "$MKIMAGE" single --platform linux/amd64 --layers "$LAYERS" --size "$LAYER_BYTES" --seed bench-bundle "oci:$T/img:v1") \
    || fail "mkimage.py failed"
start_docker_registry "$T/upstream"; UP=$DOCKER_REGISTRY_ADDR
run_or_fail "push to the upstream" e2e_skopeo copy -q --preserve-digests --dest-tls-verify=false "oci:$T/img:v1" "docker://$UP/bench/big:v1"
rm -rf "$T/img"
jq -n --arg s "$T/connected" --arg up "http://$UP" --arg p "$PROFILE" \
    '{profile:$p, storage:{path:$s}, upstream:{url:$up}, state:{images:["bench/big:v1"]}, sync:{platform:"linux/amd64", timeout:"30m"}}' \
    > "$T/connected.json"
log "bundle create"
run_or_fail "bundle create" "$BIN" bundle create --config "$T/connected.json" --sign "$T/bundle.key" --output "$T/big.bundle"
BUNDLE_BYTES=$(stat -c %s "$T/big.bundle")
rm -rf "$T/connected"
sync

# ------------------------------------------------------------------ runs
run_import() { # RUN -> RES="wall rss_kib write_bytes anon_kib file_kib"
    local dir=$T/run$1/import rc wall rss wb an fb
    mkdir -p "$dir"
    jq -n --arg s "$dir/store" --arg listen "127.0.0.1:$(free_port)" --arg key "$T/bundle.pub" --arg p "$PROFILE" \
        '{profile:$p, storage:{path:$s}, registry:{listen:$listen}, bundles:{keys:[$key]}}' > "$dir/config.json"
    sync
    python3 "$MEASURE" "$dir/m" "$RUN_TIMEOUT" "$BIN" bundle import --config "$dir/config.json" "$T/big.bundle"
    read -r rc wall rss wb _ an fb < "$dir/m"
    (( rc == 0 )) || fail "run $1: bundle import exited $rc: $(tail -n 3 "$dir/m.log" | tr '\n' ' ')"
    [[ "$(tr -d ' \n' < "$dir/store/repositories/bench/big/_manifests/tags/v1" 2>/dev/null)" == "$DIGEST" ]] \
        || fail "run $1: the imported store has no bench/big:v1 -> $DIGEST"
    rm -rf "$dir"
    RES="$wall $rss $wb $an $fb"
}
run_skopeo() { # RUN -> RES="wall write_bytes(skopeo+satellite)"
    local dir=$T/run$1/skopeo rc wall rss wb sat_wb got port pid before
    mkdir -p "$dir/tmp"
    port=$(free_port)
    jq -n --arg s "$dir/store" --arg listen "127.0.0.1:$port" --arg p "$PROFILE" \
        '{profile:$p, storage:{path:$s}, registry:{listen:$listen}}' > "$dir/config.json"
    "$BIN" serve --config "$dir/config.json" > "$dir/serve.log" 2>&1 & pid=$!
    wait_http "http://127.0.0.1:$port/v2/" 30 || fail "run $1: satellite-lite serve did not start"
    sync
    before=$(proc_write_bytes "$pid")
    python3 "$MEASURE" "$dir/m" "$RUN_TIMEOUT" skopeo --policy "$E2E_CONF/policy.json" --registries.d "$E2E_CONF/registries.d" \
        --tmpdir "$dir/tmp" copy -q --preserve-digests --dest-tls-verify=false \
        "oci-archive:$T/big.bundle:bench/big:v1" "docker://127.0.0.1:$port/bench/big:v1"
    read -r rc wall rss wb _ < "$dir/m"
    (( rc == 0 )) || fail "run $1: skopeo copy exited $rc: $(tail -n 3 "$dir/m.log" | tr '\n' ' ')"
    sat_wb=$(( $(proc_write_bytes "$pid") - before ))
    got=$(curl -s -o /dev/null -D - --max-time 10 -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        "http://127.0.0.1:$port/v2/bench/big/manifests/v1" | tr -d '\r' | awk 'tolower($1)=="docker-content-digest:"{print $2}')
    [[ "$got" == "$DIGEST" ]] || fail "run $1: satellite has bench/big:v1 -> '$got', expected $DIGEST"
    kill_wait "$pid"
    rm -rf "$dir"
    RES="$wall $(( wb + sat_wb ))"
}

declare -a ROWS=()
for (( r=1; r<=RUNS; r++ )); do
    if (( r % 2 )); then run_import "$r"; a=$RES; run_skopeo "$r"; b=$RES
    else run_skopeo "$r"; b=$RES; run_import "$r"; a=$RES; fi
    read -r aw ar awb aan afi <<<"$a"
    read -r bw bwb <<<"$b"
    ROWS+=("$aw $bw $ar $awb $bwb $aan $afi")
    log "run $r: import ${aw}s, skopeo ${bw}s, import peak RSS $(( ar / 1024 )) MiB, import writes $awb B, skopeo+satellite writes $bwb B"
done

# ------------------------------------------------------------------ differential bundle
log "differential: 5 layers of $DIFF MiB, one replaced"
python3 "$MKIMAGE" single --platform linux/amd64 --layers 5 --size $(( DIFF * 1024 * 1024 )) --seed bench-diff "oci:$T/small:v1" >/dev/null \
    || fail "mkimage.py failed"
run_or_fail "push small v1" e2e_skopeo copy -q --preserve-digests --dest-tls-verify=false "oci:$T/small:v1" "docker://$UP/bench/small:v1"
jq -n --arg s "$T/conn2" --arg up "http://$UP" \
    '{storage:{path:$s}, upstream:{url:$up}, state:{images:["bench/small:v1"]}, sync:{platform:"linux/amd64", timeout:"30m"}}' > "$T/conn2.json"
run_or_fail "bundle create small full" "$BIN" bundle create --config "$T/conn2.json" --sign "$T/bundle.key" --output "$T/small-full.bundle"
# Replace the last layer by a new one of the same size (new data), keeping the image consistent
# (config diff_ids, manifest), and move the tag.
export DIFF_BYTES=$(( DIFF * 1024 * 1024 ))
CHANGED=$(python3 - "$T/small" "$MKIMAGE" <<'PY'
import gzip, hashlib, json, os, random, sys, importlib.util
layout, mk = sys.argv[1], sys.argv[2]
spec = importlib.util.spec_from_file_location("mkimage", mk); m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
def blob(d): return os.path.join(layout, "blobs", "sha256", d.split(":", 1)[1])
def put(data):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    open(blob(d), "wb").write(data); return d
index = json.load(open(os.path.join(layout, "index.json")))
mdesc = index["manifests"][0]
manifest = json.load(open(blob(mdesc["digest"])))
config = json.load(open(blob(manifest["config"]["digest"])))
old = manifest["layers"][-1]
gz, diff_id = m.make_layer(random.Random("bench-diff-changed"), len(manifest["layers"]) - 1, int(os.environ["DIFF_BYTES"]), "linux/amd64")
manifest["layers"][-1] = {"mediaType": old["mediaType"], "digest": put(gz), "size": len(gz)}
config["rootfs"]["diff_ids"][-1] = diff_id
cb = json.dumps(config).encode(); manifest["config"]["digest"] = put(cb); manifest["config"]["size"] = len(cb)
mb = json.dumps(manifest).encode(); mdesc["digest"] = put(mb); mdesc["size"] = len(mb)
json.dump(index, open(os.path.join(layout, "index.json"), "w"))
print(len(gz))
PY
) || fail "changing a layer failed"
run_or_fail "push small v1 (changed)" e2e_skopeo copy -q --preserve-digests --dest-tls-verify=false "oci:$T/small:v1" "docker://$UP/bench/small:v1"
run_or_fail "bundle create small diff" "$BIN" bundle create --config "$T/conn2.json" --sign "$T/bundle.key" \
    --base "$T/small-full.bundle" --output "$T/small-diff.bundle"
DIFF_BUNDLE=$(stat -c %s "$T/small-diff.bundle")
SMALL_FULL=$(stat -c %s "$T/small-full.bundle")

python3 - "$BUNDLE_BYTES" "$SIZE" "$LAYERS" "$RUNS" "$PROFILE" "$CHECK" "$CHANGED" "$DIFF_BUNDLE" "$SMALL_FULL" "${ROWS[@]}" <<'PY'
import statistics, sys
bundle, size, layers, runs, profile, check, changed, diff_bundle, small_full = sys.argv[1:10]
bundle, changed, diff_bundle, small_full = int(bundle), int(changed), int(diff_bundle), int(small_full)
rows = [list(map(float, r.split())) for r in sys.argv[10:]]
med = lambda i: statistics.median(r[i] for r in rows)
aw, bw = med(0), med(1)
rss = max(r[2] for r in rows) / 1024
awb, bwb = med(3), med(4)
print()
print(f"summary: {size} MiB image in {layers} layers, bundle {bundle} B, {runs} alternating runs, profile {profile}")
print(f"  A bundle import                      median {aw:8.2f} s")
print(f"  B skopeo copy oci-archive -> serve   median {bw:8.2f} s")
print(f"  wall ratio A/B (medians)             {aw / bw:.3f}   per run: {' '.join('%.3f' % (r[0] / r[1]) for r in rows)}")
print(f"  A peak RSS                           {rss:.1f} MiB (sampled peaks: anon {max(r[5] for r in rows) / 1024:.1f} MiB, file-backed {max(r[6] for r in rows) / 1024:.1f} MiB)")
print(f"  disk writes / bundle                 A {awb / bundle:.4f}   B (skopeo + satellite) {bwb / bundle:.4f}")
print(f"  differential bundle                  {diff_bundle} B for a changed layer of {changed} B (+{(diff_bundle - changed) / 1024:.1f} KiB); full bundle {small_full} B")
ok_w, ok_rss, ok_diff = awb / bundle <= 1.02, rss <= 24, diff_bundle <= changed + 1048576
print(f"  goal writes <= 1.02 x bundle: {'met' if ok_w else 'NOT met'}; peak RSS <= 24 MiB: {'met' if ok_rss else 'NOT met'};"
      f" differential <= layer + 1 MiB: {'met' if ok_diff else 'NOT met'}")
if check == "1" and not (ok_w and ok_rss and ok_diff):
    print("FAIL [bundle bench]: goals not met", file=sys.stderr); sys.exit(1)
PY
