#!/usr/bin/env bash
# bench/proxy.sh [--runs N] [--size MiB] [--clients K] [--image MiB] [--wan RATE] [--bin PATH] [--profile NAME] [--check]
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
#      layer byte (median over the layers) and the total.
# Every GET must answer 200 with exactly the blob's size. Reports each run and the medians.
# --check: exit 1 unless the issue's goals hold (upstream bytes <= 1.02x, T20/T1 <= 1.2,
# peak RSS <= 24 MiB). Nothing is kept: everything lives in a temp dir removed on exit.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/../Tests/e2e/lib.sh"

RUNS=3 SIZE=256 CLIENTS=20 IMAGE=1024 WAN=100MB/s BIN="" PROFILE=generic-amd64 CHECK=0
usage() { echo "usage: $0 [--runs N] [--size MiB] [--clients K] [--image MiB] [--wan RATE] [--bin PATH] [--profile NAME] [--check]" >&2; exit 64; }
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
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
        *) usage ;;
    esac
done
[[ "$RUNS" =~ ^[1-9][0-9]*$ && "$SIZE" =~ ^[1-9][0-9]*$ && "$CLIENTS" =~ ^[1-9][0-9]*$ && "$IMAGE" =~ ^[1-9][0-9]*$ ]] || usage
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

start_satellite() { # NAME [RATE] -> SAT, SAT_PID
    local dir=$T/$1 rate=${2:-0}
    rm -rf "$dir"; mkdir -p "$dir"
    SAT=127.0.0.1:$(free_port)
    jq -n --arg s "$dir/store" --arg l "$SAT" --arg u "http://$UP" --arg p "$PROFILE" --arg r "$rate" \
        '{profile:$p, storage:{path:$s}, registry:{listen:$l}, upstream:{url:$u}, sync:{bandwidth:$r}, proxy:{enabled:true}}' > "$dir/config.json"
    "$BIN" serve --config "$dir/config.json" > "$dir/log" 2>&1 &
    SAT_PID=$!
    on_exit "kill_wait $SAT_PID"
    WAIT_HTTP_PID=$SAT_PID WAIT_HTTP_LOG="$dir/log" wait_http "http://$SAT/v2/" 30
}
stop_satellite() { kill_wait "$SAT_PID"; rm -rf "$T/$1"; }
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

# image_pull ADDR -> "ttfb_median total": manifest, then config and 4 layers at once
image_pull() {
    local addr=$1 t0 t1 i code
    local -a pids=()
    t0=$(now)
    code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        "http://$addr/v2/bench/image/manifests/v1")
    [[ "$code" == 200 ]] || fail "manifest GET from $addr answered $code"
    curl -s -o /dev/null "http://$addr/v2/bench/image/blobs/$CONFIG" || fail "config GET from $addr failed"
    for (( i=0; i<4; i++ )); do
        curl -s -o /dev/null -w '%{http_code} %{size_download} %{time_starttransfer}\n' --max-time "$CURL_MAX" \
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

declare -a R_T1=() R_T20=() R_BYTES=() R_RSS=() R_DP_BYTES=() R_DP_T20=() R_TTFB=() R_TOTAL=()
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

    R_T1+=("$t1") R_T20+=("$t20") R_RSS+=("$rss") R_DP_T20+=("$dp_t20")
    R_BYTES+=("$(awk -v b="$bytes" -v s="$BYTES" 'BEGIN{printf "%.3f", b/s}')")
    R_DP_BYTES+=("$(awk -v b="$dp_bytes" -v s="$BYTES" 'BEGIN{printf "%.2f", b/s}')")
    R_TTFB+=("$(awk -v a="$p_ttfb" -v b="$d_ttfb" 'BEGIN{printf "%.2f", a/b}')")
    R_TOTAL+=("$(awk -v a="$p_total" -v b="$d_total" 'BEGIN{printf "%.2f", a/b}')")
    log "run $run: satellite-lite 1 client ${t1}s, $CLIENTS clients ${t20}s, upstream ${R_BYTES[-1]}x, peak RSS $(( rss / 1024 )) MiB (after: RSS/anon/file $split MiB);" \
        "docker-registry proxy: upstream ${R_DP_BYTES[-1]}x, ${dp_t20}s; image TTFB proxy ${p_ttfb}s vs direct ${d_ttfb}s, total ${p_total}s vs ${d_total}s"
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
if (( CHECK )); then
    awk -v u="$UPX" -v r="$RATIO" -v m="$RSS_MIB" 'BEGIN{exit !(u <= 1.02 && r <= 1.2 && m <= 24)}' \
        || fail "goals not met: upstream ${UPX}x, time ${RATIO}x, RSS ${RSS_MIB} MiB"
fi
