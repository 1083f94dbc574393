#!/usr/bin/env bash
# bench/proxy.sh [--runs N] [--size MiB] [--clients K] [--image MiB] [--wan RATE] [--bin PATH] [--profile NAME] [--check]
#                [--store-blobs N] [--misses M] [--ttfb-only] [--before PATH]
#
# Pull-through proxy benchmark: satellite-lite's proxy against Debian's docker-registry
# (distribution 2.8) as the upstream, and against docker-registry's own pull-through
# (`proxy.remoteurl`), on the same machine, in the same run. Each run, on fresh stores:
# The upstream is on loopback; its WAN link is emulated by satellite-lite's own bandwidth cap
# (`sync.bandwidth`, which the proxy shares with the sync) at --wan (default 100MB/s) for
# steps 1-2, so "20 clients vs one" compares what a WAN-bound site sees. Steps 3-4 run
# uncapped (docker-registry's proxy has no cap; the image comparison is loopback vs loopback).
#   1. one client alone GETs an uncached --size MiB (default 256) blob through satellite-lite:
#      the wall time T1;
#   2. --clients (default 20) clients GET the same uncached blob at once through
#      satellite-lite: the wall time to the last client T20, the bytes the upstream sent
#      (from its access log) and satellite-lite's peak RSS (VmHWM);
#   3. the same 20 clients through docker-registry's proxy.remoteurl: upstream bytes, T20;
#   4. a cold --image MiB (default 1024) image (manifest, config, 4 layers pulled at once, as
#      a runtime does) through satellite-lite and directly from the upstream: time to the first
#      layer byte (median over the layers) and the total;
#   5. the same cold image with the WAN emulated at --wan for both: satellite-lite's shared cap,
#      and for the direct pull curl's --limit-rate at a quarter of it per layer (what a site
#      behind that link sees, where the proxy's hashing and disk writes overlap the link).
#   6. time to first byte of a miss (M, default 12, distinct uncached 64 KiB blobs, one after
#      the other) through a satellite whose store already holds --store-blobs (default 2000)
#      blobs, against the same with an empty store: what the quota check of a miss costs as
#      the store grows (--store-blobs 0 skips it). --before PATH measures another binary the
#      same way in the same run (e.g. one built from main), for a before/after.
# --ttfb-only: step 6 alone.
# Every GET must answer 200 with exactly the blob's size. Reports each run and the medians.
# --check: exit 1 unless the issue's goals hold (upstream bytes <= 1.02x, T20/T1 <= 1.2,
# peak RSS <= 24 MiB). Nothing is kept: everything lives in a temp dir removed on exit.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/../Tests/e2e/lib.sh"

RUNS=3 SIZE=256 CLIENTS=20 IMAGE=1024 WAN=100MB/s BIN="" PROFILE=generic-amd64 CHECK=0 STORE_BLOBS=2000 MISSES=12 TTFB_ONLY=0 BEFORE=""
usage() { echo "usage: $0 [--runs N] [--size MiB] [--clients K] [--image MiB] [--wan RATE] [--bin PATH] [--profile NAME] [--check] [--store-blobs N] [--misses M] [--ttfb-only] [--before PATH]" >&2; exit 64; }
while (( $# )); do
    case $1 in
        --runs) RUNS=${2:-}; shift 2 ;;
        --size) SIZE=${2:-}; shift 2 ;;
        --clients) CLIENTS=${2:-}; shift 2 ;;
        --image) IMAGE=${2:-}; shift 2 ;;
        --wan) WAN=${2:-}; shift 2 ;;
        --bin) BIN=${2:-}; shift 2 ;;
        --profile) PROFILE=${2:-}; shift 2 ;;
        --check) CHECK=1; shift ;;
        --store-blobs) STORE_BLOBS=${2:-}; shift 2 ;;
        --misses) MISSES=${2:-}; shift 2 ;;
        --ttfb-only) TTFB_ONLY=1; shift ;;
        --before) BEFORE=${2:-}; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
        *) usage ;;
    esac
done
[[ "$RUNS" =~ ^[1-9][0-9]*$ && "$SIZE" =~ ^[1-9][0-9]*$ && "$CLIENTS" =~ ^[1-9][0-9]*$ && "$IMAGE" =~ ^[1-9][0-9]*$ ]] || usage
[[ "$STORE_BLOBS" =~ ^[0-9]+$ && "$MISSES" =~ ^[1-9][0-9]*$ ]] || usage
[[ -z "$BEFORE" || -x "$BEFORE" ]] || fail "--before $BEFORE is not an executable"
if [[ -z "$BIN" ]]; then
    for c in "$HERE/../.build-bench/release/satellite-lite" "$HERE/../.build/release/satellite-lite"; do
        [[ -x "$c" ]] && { BIN=$c; break; }
    done
fi
[[ -n "$BIN" && -x "$BIN" ]] || fail "satellite-lite binary not found (swift build -c release, or pass --bin PATH)"
for t in curl python3 sha256sum jq docker-registry; do command -v "$t" >/dev/null || fail "$t is not installed"; done
T=$E2E_TMP
BYTES=$(( SIZE * 1024 * 1024 ))
LAYER=$(( IMAGE * 1024 * 1024 / 4 ))
CURL_MAX=${BENCH_CURL_TIMEOUT:-600}
now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", b-a}'; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END{print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
hwm_kib() { awk '/^VmHWM:/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# rss_split PID: "VmRSS/RssAnon/RssFile" in MiB (file = the mapped binary and libraries)
rss_split() { awk '/^(VmRSS|RssAnon|RssFile):/{v[$1]=$2/1024} END{printf "%.1f/%.1f/%.1f", v["VmRSS:"], v["RssAnon:"], v["RssFile:"]}' "/proc/$1/status" 2>/dev/null || echo "?"; }

DOCKER_REGISTRY_ACCESSLOG=1 start_docker_registry "$T/up"
UP=$DOCKER_REGISTRY_ADDR
# upstream_bytes: body bytes the upstream has answered to blob GETs so far (its access log).
upstream_bytes() {
    grep -E '"GET /v2/[^"]*/blobs/sha256:[0-9a-f]+ HTTP/1.1" (200|206) [0-9]+' "$T/up/registry.log" 2>/dev/null \
        | sed -E 's/.*HTTP\/1.1" (200|206) ([0-9]+).*/\2/' | awk '{s+=$1} END{printf "%.0f\n", s}'
}

# push_blob REPO FILE DIGEST: POST a session, PUT the whole file with ?digest=.
push_blob() {
    local repo=$1 file=$2 digest=$3 loc sep code
    loc=$(curl -s -o /dev/null -D - --max-time 30 -X POST "http://$UP/v2/$repo/blobs/uploads/" \
        | tr -d '\r' | awk 'tolower($1)=="location:"{print $2}')
    [[ -n "$loc" ]] || fail "POST to the upstream gave no Location"
    [[ "$loc" == http* ]] || loc="http://$UP$loc"
    sep='?'; [[ "$loc" == *\?* ]] && sep='&'
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time "$CURL_MAX" -H 'Expect:' -H 'Content-Type: application/octet-stream' \
        -T "$file" "$loc${sep}digest=$digest") || true
    [[ "$code" == 201 ]] || fail "push of $digest to the upstream answered ${code:-nothing}"
}
# make_blob FILE BYTES -> digest
make_blob() { head -c "$2" /dev/urandom > "$1"; echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }

start_satellite() { # NAME [RATE] [STORE_TO_COPY] [BINARY] -> SAT, SAT_PID
    local dir=$T/$1 rate=${2:-0} seed=${3:-} bin=${4:-$BIN}
    rm -rf "$dir"; mkdir -p "$dir"
    [[ -z "$seed" ]] || cp -a "$seed" "$dir/store"
    SAT=127.0.0.1:$(free_port)
    jq -n --arg s "$dir/store" --arg l "$SAT" --arg u "http://$UP" --arg p "$PROFILE" --arg r "$rate" \
        '{profile:$p, storage:{path:$s}, registry:{listen:$l}, upstream:{url:$u}, sync:{bandwidth:$r}, proxy:{enabled:true}}' > "$dir/config.json"
    "$bin" serve --config "$dir/config.json" > "$dir/log" 2>&1 &
    SAT_PID=$!
    on_exit "kill_wait $SAT_PID"
    WAIT_HTTP_PID=$SAT_PID WAIT_HTTP_LOG="$dir/log" wait_http "http://$SAT/v2/" 30
}
stop_satellite() { kill_wait "$SAT_PID"; rm -rf "$T/$1"; }

# Step 6: the TTFB of misses against a store of STORE_BLOBS blobs vs an empty one.
if (( STORE_BLOBS > 0 )); then
    log "step 6: $MISSES uncached 64 KiB blobs upstream; a store of $STORE_BLOBS blobs"
    MISS=()
    for (( i=0; i<MISSES; i++ )); do
        d=$(make_blob "$T/miss" 65536); push_blob bench/miss "$T/miss" "$d"; MISS+=("$d")
    done
    rm -f "$T/miss"
    # A store of STORE_BLOBS real blobs (4 KiB, content-addressed) as a sync would leave it.
    python3 - "$T/seed/blobs/sha256" "$STORE_BLOBS" <<'PY'
import hashlib, os, sys
base, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    data = os.urandom(4096)
    h = hashlib.sha256(data).hexdigest()
    os.makedirs(f"{base}/{h[:2]}", exist_ok=True)
    with open(f"{base}/{h[:2]}/{h}", "wb") as f:
        f.write(data)
PY
    # miss_ttfb NAME SEED BINARY -> median seconds to the first byte of the MISSES misses
    miss_ttfb() {
        local name=$1 seed=$2 bin=$3 code size first
        local -a firsts=()
        start_satellite "$name" 0 "$seed" "$bin"
        # One warm-up miss of a blob outside the set: connections and the first walk are
        # paid here, as in a satellite that has served before.
        curl -s -o /dev/null "http://$SAT/v2/bench/miss/blobs/${MISS[0]}" || fail "warm-up miss from $SAT failed"
        for (( i=1; i<MISSES; i++ )); do
            read -r code size first < <(curl -s -o /dev/null -w '%{http_code} %{size_download} %{time_starttransfer}\n' --max-time 60 \
                "http://$SAT/v2/bench/miss/blobs/${MISS[i]}")
            [[ "$code $size" == "200 65536" ]] || fail "miss $i from $name: '$code $size', want '200 65536'"
            firsts+=("$first")
        done
        stop_satellite "$name"
        median "${firsts[@]}"
    }
    mkdir -p "$T/empty/blobs/sha256"
    declare -a M_EMPTY=() M_FULL=() B_EMPTY=() B_FULL=()
    for (( run=1; run<=RUNS; run++ )); do
        M_EMPTY+=("$(miss_ttfb ttfb-empty "$T/empty" "$BIN")")
        M_FULL+=("$(miss_ttfb ttfb-full "$T/seed" "$BIN")")
        if [[ -n "$BEFORE" ]]; then
            B_EMPTY+=("$(miss_ttfb ttfb-empty "$T/empty" "$BEFORE")")
            B_FULL+=("$(miss_ttfb ttfb-full "$T/seed" "$BEFORE")")
        fi
        log "step 6 run $run: miss TTFB empty store ${M_EMPTY[-1]}s, $STORE_BLOBS blobs ${M_FULL[-1]}s${BEFORE:+; before: ${B_EMPTY[-1]}s, ${B_FULL[-1]}s}"
    done
    ms() { awk -v s="$1" 'BEGIN{printf "%.1f ms", s*1000}'; }
    TTFB_SUMMARY="miss time to first byte (64 KiB blobs, median of $(( MISSES - 1 )) misses x $RUNS runs): empty store $(ms "$(median "${M_EMPTY[@]}")"), $STORE_BLOBS-blob store $(ms "$(median "${M_FULL[@]}")")"
    [[ -z "$BEFORE" ]] || TTFB_SUMMARY+=$'\n'"  --before $BEFORE: empty store $(ms "$(median "${B_EMPTY[@]}")"), $STORE_BLOBS-blob store $(ms "$(median "${B_FULL[@]}")")"
    rm -rf "$T/seed" "$T/empty"
    if (( TTFB_ONLY )); then echo "$TTFB_SUMMARY"; exit 0; fi
fi

log "upstream docker-registry on $UP; generating blobs"
BLOB=$(make_blob "$T/blob" "$BYTES")
push_blob bench/blob "$T/blob" "$BLOB"
rm -f "$T/blob"
# The image: a config and 4 layers of IMAGE/4 MiB each.
LAYERS=()
for i in 0 1 2 3; do
    d=$(make_blob "$T/layer$i" "$LAYER"); push_blob bench/image "$T/layer$i" "$d"; rm -f "$T/layer$i"; LAYERS+=("$d")
done
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' > "$T/config"
CONFIG=$(sha256_file "$T/config"); push_blob bench/image "$T/config" "$CONFIG"
jq -n --arg c "$CONFIG" --argjson cs "$(stat -c %s "$T/config")" --argjson ls "$LAYER" --args \
    '{schemaVersion:2, mediaType:"application/vnd.oci.image.manifest.v1+json",
      config:{mediaType:"application/vnd.oci.image.config.v1+json", digest:$c, size:$cs},
      layers:[$ARGS.positional[] | {mediaType:"application/vnd.oci.image.layer.v1.tar", digest:., size:$ls}]}' \
    "${LAYERS[@]}" > "$T/manifest"
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary @"$T/manifest" "http://$UP/v2/bench/image/manifests/v1")
[[ "$code" == 201 ]] || fail "manifest PUT to the upstream answered $code"

start_distribution_proxy() { # -> DP
    rm -rf "$T/dp"
    DOCKER_REGISTRY_ACCESSLOG=0 start_docker_registry "$T/dp" "proxy:
  remoteurl: http://$UP"
    DP=$DOCKER_REGISTRY_ADDR DP_PID=$DOCKER_REGISTRY_PID
}

# clients ADDR REPO DIGEST K -> seconds to the last client; every answer 200 with SIZE bytes
clients() {
    local addr=$1 repo=$2 digest=$3 k=$4 i t0 t1 rc=0
    local -a pids=()
    t0=$(now)
    for (( i=0; i<k; i++ )); do
        curl -s -o /dev/null -w '%{http_code} %{size_download}\n' --max-time "$CURL_MAX" \
            "http://$addr/v2/$repo/blobs/$digest" > "$T/client$i" & pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || rc=1; done
    t1=$(now)
    for (( i=0; i<k; i++ )); do
        [[ "$(cat "$T/client$i")" == "200 $BYTES" ]] || fail "client $i of $k from $addr got '$(cat "$T/client$i")', want '200 $BYTES'"
    done
    (( rc == 0 )) || fail "a client of $addr failed"
    elapsed "$t0" "$t1"
}

# image_pull ADDR [CURL_ARGS...] -> "ttfb_median total": manifest, then config and 4 layers at once
image_pull() {
    local addr=$1 t0 t1 i code
    shift
    local -a extra=("$@")
    local -a pids=()
    t0=$(now)
    code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        "http://$addr/v2/bench/image/manifests/v1")
    [[ "$code" == 200 ]] || fail "manifest GET from $addr answered $code"
    curl -s -o /dev/null "http://$addr/v2/bench/image/blobs/$CONFIG" || fail "config GET from $addr failed"
    for (( i=0; i<4; i++ )); do
        curl -s -o /dev/null -w '%{http_code} %{size_download} %{time_starttransfer}\n' --max-time "$CURL_MAX" ${extra[@]+"${extra[@]}"} \
            "http://$addr/v2/bench/image/blobs/${LAYERS[i]}" > "$T/layer$i.out" & pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || fail "a layer GET from $addr failed"; done
    t1=$(now)
    local -a ttfb=()
    for (( i=0; i<4; i++ )); do
        read -r code size first < "$T/layer$i.out"
        [[ "$code $size" == "200 $LAYER" ]] || fail "layer $i from $addr: '$code $size', want '200 $LAYER'"
        ttfb+=("$first")
    done
    echo "$(median "${ttfb[@]}") $(elapsed "$t0" "$t1")"
}

# The --wan rate in bytes per second (for curl's --limit-rate on the direct pull).
WAN_BPS=$(awk -v r="$WAN" 'BEGIN{
    if (match(r, /^[0-9.]+/) == 0) exit 1
    n = substr(r, 1, RLENGTH); u = substr(r, RLENGTH + 1); sub(/\/s$/, "", u)
    m = (u == "" || u == "B") ? 1 : (u == "kB" || u == "KB") ? 1e3 : (u == "MB") ? 1e6 : (u == "GB") ? 1e9 : (u == "KiB") ? 1024 : (u == "MiB") ? 1048576 : (u == "GiB") ? 1073741824 : 0
    if (m == 0) exit 1
    printf "%.0f\n", n * m }') || fail "--wan $WAN: expected a rate like 100MB/s"
declare -a R_T1=() R_T20=() R_BYTES=() R_RSS=() R_DP_BYTES=() R_DP_T20=() R_TTFB=() R_TOTAL=() R_WAN_TTFB=() R_WAN_TOTAL=()
for (( run=1; run<=RUNS; run++ )); do
    start_satellite sat1 "$WAN"
    t1=$(clients "$SAT" bench/blob "$BLOB" 1)
    stop_satellite sat1

    start_satellite sat20 "$WAN"
    before=$(upstream_bytes)
    t20=$(clients "$SAT" bench/blob "$BLOB" "$CLIENTS")
    sleep 0.5
    bytes=$(( $(upstream_bytes) - before ))
    rss=$(hwm_kib "$SAT_PID") split=$(rss_split "$SAT_PID")
    stop_satellite sat20

    start_distribution_proxy
    before=$(upstream_bytes)
    dp_t20=$(clients "$DP" bench/blob "$BLOB" "$CLIENTS")
    sleep 1
    dp_bytes=$(( $(upstream_bytes) - before ))
    kill_wait "$DP_PID"; rm -rf "$T/dp"

    start_satellite img
    read -r p_ttfb p_total < <(image_pull "$SAT")
    stop_satellite img
    read -r d_ttfb d_total < <(image_pull "$UP")

    start_satellite imgwan "$WAN"
    read -r pw_ttfb pw_total < <(image_pull "$SAT")
    stop_satellite imgwan
    read -r dw_ttfb dw_total < <(image_pull "$UP" --limit-rate "$(( WAN_BPS / 4 ))")

    R_T1+=("$t1") R_T20+=("$t20") R_RSS+=("$rss") R_DP_T20+=("$dp_t20")
    R_BYTES+=("$(awk -v b="$bytes" -v s="$BYTES" 'BEGIN{printf "%.3f", b/s}')")
    R_DP_BYTES+=("$(awk -v b="$dp_bytes" -v s="$BYTES" 'BEGIN{printf "%.2f", b/s}')")
    R_TTFB+=("$(awk -v a="$p_ttfb" -v b="$d_ttfb" 'BEGIN{printf "%.2f", a/b}')")
    R_TOTAL+=("$(awk -v a="$p_total" -v b="$d_total" 'BEGIN{printf "%.2f", a/b}')")
    R_WAN_TTFB+=("$(awk -v a="$pw_ttfb" -v b="$dw_ttfb" 'BEGIN{printf "%.2f", a/b}')")
    R_WAN_TOTAL+=("$(awk -v a="$pw_total" -v b="$dw_total" 'BEGIN{printf "%.2f", a/b}')")
    log "run $run: satellite-lite 1 client ${t1}s, $CLIENTS clients ${t20}s, upstream ${R_BYTES[-1]}x, peak RSS $(( rss / 1024 )) MiB (after: RSS/anon/file $split MiB);" \
        "docker-registry proxy: upstream ${R_DP_BYTES[-1]}x, ${dp_t20}s; image TTFB proxy ${p_ttfb}s vs direct ${d_ttfb}s, total ${p_total}s vs ${d_total}s;" \
        "at $WAN: TTFB ${pw_ttfb}s vs ${dw_ttfb}s, total ${pw_total}s vs ${dw_total}s"
done

T1=$(median "${R_T1[@]}") T20=$(median "${R_T20[@]}")
RATIO=$(awk -v a="$T20" -v b="$T1" 'BEGIN{printf "%.2f", a/b}')
UPX=$(median "${R_BYTES[@]}") RSS_MIB=$(( $(median "${R_RSS[@]}") / 1024 ))
echo "satellite-lite proxy, $CLIENTS clients x one uncached $SIZE MiB blob, upstream link capped at $WAN (median of $RUNS runs):"
echo "  upstream bytes: ${UPX}x the blob (goal <= 1.02)"
echo "  wall time to the last client: ${T20}s vs one client alone ${T1}s = ${RATIO}x (goal <= 1.2)"
echo "  peak RSS: ${RSS_MIB} MiB (goal <= 24)"
echo "docker-registry $(docker-registry --version 2>/dev/null | awk '{print $3}') proxy.remoteurl, same $CLIENTS clients:"
echo "  upstream bytes: $(median "${R_DP_BYTES[@]}")x the blob; wall time $(median "${R_DP_T20[@]}")s"
echo "cold $IMAGE MiB image (4 layers at once) through the proxy vs directly from the upstream:"
echo "  time to first layer byte ratio: $(median "${R_TTFB[@]}"); total time ratio: $(median "${R_TOTAL[@]}")"
echo "the same image with the WAN at $WAN for both (proxy: shared cap; direct: curl --limit-rate per layer):"
echo "  time to first layer byte ratio: $(median "${R_WAN_TTFB[@]}"); total time ratio: $(median "${R_WAN_TOTAL[@]}")"
if (( CHECK )); then
    awk -v u="$UPX" -v r="$RATIO" -v m="$RSS_MIB" 'BEGIN{exit !(u <= 1.02 && r <= 1.2 && m <= 24)}' \
        || fail "goals not met: upstream ${UPX}x, time ${RATIO}x, RSS ${RSS_MIB} MiB"
fi
[[ -z "${TTFB_SUMMARY:-}" ]] || echo "$TTFB_SUMMARY"
