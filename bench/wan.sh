#!/usr/bin/env bash
# bench/wan.sh [--runs N] [--size MiB] [--rate TC_RATE] [--bin PATH] [--check]
#
# LAN peers benchmark (issue 16), in network namespaces (Tests/e2e/lib_netns.sh): a site
# LAN bridge with three satellites, the upstream docker-registry behind a WAN link limited
# by tc tbf (--rate, default 4mbps = 4 MB/s) whose bytes tc counts. An image of --size MiB
# (default 200) in 8 layers is pushed once; then per run (--runs, default 3), each from
# fresh stores:
#   alone  one satellite syncs it, no peers: time T1, WAN bytes W1
#   three  three satellites (peers.urls of each other) sync it at the same moment: time
#          until all three hold it verified (T3), WAN bytes W3
#   kill   the same, and satellite 1 (its sync and its peer endpoint) is killed with
#          SIGKILL once half the image crossed the WAN: time until 2 and 3 hold it (Tk),
#          WAN bytes Wk
# Reported per run and as medians: W3/image and Wk/image (wire bytes, so ~4.5 % of
# Ethernet/IP/TCP headers included), the same over W1 (the header overhead cancels),
# T3/T1 and Tk/T1. Goals: W3 <= 1.05 x image (payload), T3 <= 1.3 x T1, Wk <= 1.10 x.
# --check: exit 1 unless the medians meet them. Needs root (ip netns, tc).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/../Tests/e2e/lib.sh"
. "$HERE/../Tests/e2e/lib_netns.sh"

RUNS=3 SIZE=200 RATE=4mbps BIN="" CHECK=0
usage() { echo "usage: $0 [--runs N] [--size MiB] [--rate TC_RATE] [--bin PATH] [--check]" >&2; exit 64; }
while (( $# )); do
    case $1 in
        --runs) RUNS=${2:-}; shift 2 ;;
        --size) SIZE=${2:-}; shift 2 ;;
        --rate) RATE=${2:-}; shift 2 ;;
        --bin) BIN=${2:-}; shift 2 ;;
        --check) CHECK=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
        *) usage ;;
    esac
done
[[ "$RUNS" =~ ^[1-9][0-9]*$ && "$SIZE" =~ ^[1-9][0-9]*$ ]] || usage
if [[ -z "$BIN" ]]; then
    for c in "$HERE/../.build/release/satellite-lite" "$HERE/../.build/debug/satellite-lite"; do
        [[ -x "$c" ]] && { BIN=$c; break; }
    done
fi
[[ -n "$BIN" && -x "$BIN" ]] || fail "satellite-lite binary not found (swift build -c release, or pass --bin PATH)"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
for t in docker-registry skopeo python3 curl ip tc; do command -v "$t" >/dev/null || fail "$t is not installed"; done
D=$E2E_TMP/site
mkdir -p "$D"
head -c 32 /dev/urandom | base64 > "$D/site.secret"
site_up "$RATE"
for n in 1 2 3; do site_satellite "$n"; done
start_upstream "$D/upstream"
push_image "$SIZE" 8 v1
log "image: $IMAGE_BYTES bytes in 8 layers; WAN $RATE; binary $BIN; $RUNS run(s)"

now() { date +%s.%N; }
fresh() {  # fresh N PEERS_JSON: stop, wipe, reconfigure and serve satellite N
    local n=$1
    [[ -n "${SERVE_PIDS[$n]:-}" ]] && kill_wait "${SERVE_PIDS[$n]}" 2>/dev/null || true
    rm -rf "$D/s$n/store"
    sat_config "$n" "$D" v1 "$2"
    start_serve "$n" "$D"
}
waitsync() { wait "${SYNC_PIDS[$1]}" || fail "sync of s$1 failed: $(tail -n 5 "$D/s$1/sync.log" | tr '\n' ' ' | cut -c1-600)"; }

declare -a R_W3 R_WK R_T3 R_TK R_W3W1 R_WKW1
for (( run=1; run<=RUNS; run++ )); do
    # alone
    fresh 1 '{}'
    before=$(wan_bytes); t0=$(now)
    start_sync 1 "$D"; waitsync 1
    t1=$(since $t0); w1=$(( $(wan_bytes) - before ))
    store_verified "$D" 1 v1 || fail "alone: s1 does not hold the image verified"
    # three at once
    for n in 1 2 3; do fresh "$n" "$(peers_json "$n" "$D/site.secret")"; done
    before=$(wan_bytes); t0=$(now)
    for n in 1 2 3; do start_sync "$n" "$D"; done
    for n in 1 2 3; do waitsync "$n"; done
    t3=$(since $t0); w3=$(( $(wan_bytes) - before ))
    for n in 1 2 3; do store_verified "$D" "$n" v1 || fail "three: s$n does not hold the image verified"; done
    # three at once, satellite 1 killed in the middle
    for n in 1 2 3; do fresh "$n" "$(peers_json "$n" "$D/site.secret")"; done
    before=$(wan_bytes); t0=$(now)
    for n in 1 2 3; do start_sync "$n" "$D"; done
    wait_until 600 "half the image on the WAN" "(( \$(wan_bytes) - before > IMAGE_BYTES / 2 ))"
    kill -KILL "${SYNC_PIDS[1]}" "${SERVE_PIDS[1]}" 2>/dev/null || true
    wait "${SYNC_PIDS[1]}" 2>/dev/null || true
    for n in 2 3; do waitsync "$n"; done
    tk=$(since $t0); wk=$(( $(wan_bytes) - before ))
    for n in 2 3; do store_verified "$D" "$n" v1 || fail "kill: s$n does not hold the image verified"; done
    SERVE_PIDS[1]=""
    R_W3+=("$(ratio $w3 $IMAGE_BYTES)"); R_WK+=("$(ratio $wk $IMAGE_BYTES)")
    R_W3W1+=("$(ratio $w3 $w1)"); R_WKW1+=("$(ratio $wk $w1)")
    R_T3+=("$(ratio $t3 $t1)"); R_TK+=("$(ratio $tk $t1)")
    printf 'run %d: alone %.1fs W1 %.3fx | three %.1fs (T3/T1 %s) W3 %sx image (%sx W1) | kill %.1fs (Tk/T1 %s) Wk %sx image (%sx W1)\n' \
        "$run" "$t1" "$(ratio $w1 $IMAGE_BYTES)" "$t3" "${R_T3[-1]}" "${R_W3[-1]}" "${R_W3W1[-1]}" \
        "$tk" "${R_TK[-1]}" "${R_WK[-1]}" "${R_WKW1[-1]}"
done
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
m_w3=$(median "${R_W3[@]}"); m_wk=$(median "${R_WK[@]}"); m_t3=$(median "${R_T3[@]}"); m_tk=$(median "${R_TK[@]}")
m_w3w1=$(median "${R_W3W1[@]}"); m_wkw1=$(median "${R_WKW1[@]}")
echo "median of $RUNS run(s), $SIZE MiB image, WAN $RATE:"
echo "  WAN bytes, three at once:   $m_w3 x image on the wire, $m_w3w1 x one satellite alone (goal <= 1.05)"
echo "  time until all three hold it: $m_t3 x one satellite alone (goal <= 1.3)"
echo "  peer killed in the middle:  WAN $m_wk x image on the wire, $m_wkw1 x alone (goal <= 1.10); time $m_tk x alone"
if (( CHECK )); then
    ok=1
    awk -v v="$m_w3w1" 'BEGIN { exit !(v <= 1.05) }' || ok=0
    awk -v v="$m_t3" 'BEGIN { exit !(v <= 1.3) }' || ok=0
    awk -v v="$m_wkw1" 'BEGIN { exit !(v <= 1.10) }' || ok=0
    (( ok )) || fail "a goal was missed"
fi
