#!/usr/bin/env bash
# bench/serve.sh [--runs N] [--push-runs N] [--size MiB] [--blobs K] [--bin PATH] [--profile NAME]
#                [--baseline] [--check]
#
# Serving benchmark: satellite-lite against Debian's docker-registry
# (distribution 2.8) on the same machine, in the same run.
#   1. K (default 4) random blobs of --size MiB (default 256) are pushed into
#      both registries (repo bench/blobs, POST + monolithic PUT streamed by curl,
#      all K concurrently); the push wall time per server is measured over
#      --push-runs (default 3) alternating runs, each into a fresh repository.
#   2. --runs (default 5) alternating pull runs: all K blobs pulled concurrently
#      (K `curl -s -o /dev/null` processes) from one server, then from the
#      other (the order flips every run). Every GET must be 200 with exactly
#      the blob's size.
#   3. Each blob is pulled once more from each server through sha256sum.
# Reports per-run times, the medians, the ratio A/B (A = satellite-lite, B =
# docker-registry) and each server's peak RSS (VmHWM of /proc/PID/status,
# reset with clear_refs after the push so push and pull peaks are separate).
# --baseline: A is a second docker-registry (sanity check: ratio ~1.0).
# --check: exit 1 unless the issue's goals hold (pull ratio <= 0.80, A's
# peak RSS <= 24 MiB). Without it the script only reports (exit 0).
# Nothing is kept: stores and blobs live in a temp dir removed on exit.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/../Tests/e2e/lib.sh"

RUNS=5 PUSH_RUNS=3 SIZE=256 BLOBS=4 BIN="" PROFILE=generic-amd64 BASELINE=0 CHECK=0
GOAL_RATIO=0.80 GOAL_RSS_MIB=24
usage() { echo "usage: $0 [--runs N] [--push-runs N] [--size MiB] [--blobs K] [--bin PATH] [--profile NAME] [--baseline] [--check]" >&2; exit 64; }
while (( $# )); do
    case $1 in
        --runs) RUNS=${2:-}; shift 2 ;;
        --size) SIZE=${2:-}; shift 2 ;;
        --push-runs) PUSH_RUNS=${2:-}; shift 2 ;;
        --blobs) BLOBS=${2:-}; shift 2 ;;
        --bin) BIN=${2:-}; shift 2 ;;
        --profile) PROFILE=${2:-}; shift 2 ;;
        --baseline) BASELINE=1; shift ;;
        --check) CHECK=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
        *) usage ;;
    esac
done
[[ "$RUNS" =~ ^[1-9][0-9]*$ && "$PUSH_RUNS" =~ ^[1-9][0-9]*$ && "$SIZE" =~ ^[1-9][0-9]*$ && "$BLOBS" =~ ^[1-9][0-9]*$ ]] || usage
if (( ! BASELINE )); then
    if [[ -z "$BIN" ]]; then
        for c in "$HERE/../.build-bench/release/satellite-lite" "$HERE/../.build/release/satellite-lite"; do
            [[ -x "$c" ]] && { BIN=$c; break; }
        done
    fi
    [[ -n "$BIN" && -x "$BIN" ]] || fail "satellite-lite binary not found (build it, or pass --bin PATH)"
fi
for t in curl python3 sha256sum; do command -v "$t" >/dev/null || fail "$t is not installed"; done
T=$E2E_TMP
BYTES=$(( SIZE * 1024 * 1024 ))
need_kib=$(( (BLOBS * SIZE * (1 + 2 * PUSH_RUNS) + 256) * 1024 ))
avail_kib=$(df -Pk "$T" | awk 'NR==2{print $4}')
(( avail_kib > need_kib )) || fail "need ~$(( need_kib / 1024 )) MiB free in $T, have $(( avail_kib / 1024 )) MiB"
CURL_MAX=${BENCH_CURL_TIMEOUT:-600}

# ------------------------------------------------------------------ servers
start_satellite() {  # DIR -> SAT_ADDR SAT_PID
    local dir=$1 port
    mkdir -p "$dir"
    port=$(free_port)
    printf '{"storage":{"path":"%s/store"},"registry":{"listen":"127.0.0.1:%s"},"profile":"%s"}\n' \
        "$dir" "$port" "$PROFILE" > "$dir/config.json"
    "$BIN" serve --config "$dir/config.json" > "$dir/server.log" 2>&1 &
    SAT_PID=$!
    on_exit "kill_wait $SAT_PID"
    SAT_ADDR="127.0.0.1:$port"
    WAIT_HTTP_PID=$SAT_PID WAIT_HTTP_LOG="$dir/server.log" wait_http "http://$SAT_ADDR/v2/" 30
}

start_docker_registry "$T/docker"
B_ADDR=$DOCKER_REGISTRY_ADDR B_PID=$DOCKER_REGISTRY_PID B_NAME=docker-registry
DR_VERSION=$(docker-registry --version 2>/dev/null | awk '{print $3}' || true)
if (( BASELINE )); then
    start_docker_registry "$T/docker2"
    A_ADDR=$DOCKER_REGISTRY_ADDR A_PID=$DOCKER_REGISTRY_PID A_NAME=docker-registry#2
else
    start_satellite "$T/sat"
    A_ADDR=$SAT_ADDR A_PID=$SAT_PID A_NAME=satellite-lite
fi
log "A = $A_NAME on $A_ADDR (pid $A_PID), B = $B_NAME ${DR_VERSION} on $B_ADDR (pid $B_PID)"

hwm_kib() { awk '/^VmHWM:/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
rss_kib() { awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# rss_split PID: "VmRSS/RssAnon/RssFile" in MiB (file = mapped binary and libraries)
rss_split() { awk '/^(VmRSS|RssAnon|RssFile):/{v[$1]=$2/1024} END{printf "%.1f/%.1f/%.1f", v["VmRSS:"], v["RssAnon:"], v["RssFile:"]}' "/proc/$1/status" 2>/dev/null || echo "?"; }
IDLE_A=$(rss_split "$A_PID") IDLE_B=$(rss_split "$B_PID")
reset_hwm() { echo 5 > "/proc/$1/clear_refs" 2>/dev/null || true; }
alive() { kill -0 "$1" 2>/dev/null || fail "$2 (pid $1) died: $(tail -n 3 "$3" 2>/dev/null | tr '\n' ' ')"; }
now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", b-a}'; }
check_alive() {
    alive "$A_PID" "$A_NAME" "$( ((BASELINE)) && echo "$T/docker2/registry.log" || echo "$T/sat/server.log")"
    alive "$B_PID" "$B_NAME" "$T/docker/registry.log"
}

# ------------------------------------------------------------------ blobs
log "generating $BLOBS x $SIZE MiB random blobs"
declare -a DIGESTS=()
for (( i=0; i<BLOBS; i++ )); do
    head -c "$BYTES" /dev/urandom > "$T/blob$i"
    DIGESTS[i]="sha256:$(sha256sum "$T/blob$i" | cut -d' ' -f1)"
done

# push_one ADDR REPO FILE DIGEST OUT: POST a session, PUT the whole file with ?digest=.
push_one() {
    local addr=$1 repo=$2 file=$3 digest=$4 out=$5 loc code sep
    loc=$(curl -s -o /dev/null -D - --max-time 30 -X POST "http://$addr/v2/$repo/blobs/uploads/" \
        | tr -d '\r' | awk 'tolower($1)=="location:"{print $2}')
    [[ -n "$loc" ]] || { echo "POST gave no Location" > "$out"; return 1; }
    [[ "$loc" == http* ]] || loc="http://$addr$loc"
    sep='?'; [[ "$loc" == *\?* ]] && sep='&'
    # -H 'Expect:': no "Expect: 100-continue" (Go clients do not send it; curl
    # would wait 1 s for a "100 Continue" that satellite-lite does not send)
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time "$CURL_MAX" -H 'Expect:' -H 'Content-Type: application/octet-stream' \
        -T "$file" "$loc${sep}digest=$digest") || true
    echo "$code" > "$out"
    [[ "$code" == 201 ]]
}

# push_all NAME ADDR REPO -> prints seconds
push_all() {
    local name=$1 addr=$2 repo=$3 i t0 t1 rc=0
    local -a pids=()
    sync
    t0=$(now)
    for (( i=0; i<BLOBS; i++ )); do
        push_one "$addr" "$repo" "$T/blob$i" "${DIGESTS[i]}" "$T/push-$name-$i" & pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || rc=1; done
    t1=$(now)
    (( rc == 0 )) || fail "push to $name ($addr) failed: statuses $(cat "$T"/push-"$name"-* | tr '\n' ' ')(want 201)"
    for (( i=0; i<BLOBS; i++ )); do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -I "http://$addr/v2/$repo/blobs/${DIGESTS[i]}")
        [[ "$code" == 200 ]] || fail "HEAD of pushed blob ${DIGESTS[i]} on $name returned $code, expected 200"
    done
    elapsed "$t0" "$t1"
}

# pull_all NAME ADDR -> prints seconds; every GET must be 200 with $BYTES bytes
pull_all() {
    local name=$1 addr=$2 i t0 t1 line
    local -a pids=()
    t0=$(now)
    for (( i=0; i<BLOBS; i++ )); do
        curl -s -o /dev/null -w '%{http_code} %{size_download}\n' --max-time "$CURL_MAX" \
            "http://$addr/v2/bench/blobs/blobs/${DIGESTS[i]}" > "$T/pull-$i" 2>&1 & pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || true; done
    t1=$(now)
    for (( i=0; i<BLOBS; i++ )); do
        line=$(cat "$T/pull-$i")
        [[ "$line" == "200 $BYTES" ]] \
            || fail "pull of ${DIGESTS[i]} from $name answered '$line', expected '200 $BYTES' (status bytes)"
    done
    elapsed "$t0" "$t1"
}

# ------------------------------------------------------------------ push phase
cat "$T"/blob* > /dev/null   # source files in the page cache for both pushes
reset_hwm "$A_PID"; reset_hwm "$B_PID"
# PUSH_RUNS alternating push runs, each into a fresh repository (bench/blobs,
# bench/push2, ...) so every run uploads all bytes again.
declare -a PA=() PB=()
for (( r=1; r<=PUSH_RUNS; r++ )); do
    repo=bench/blobs; (( r > 1 )) && repo=bench/push$r
    if (( r % 2 )); then
        a=$(push_all A "$A_ADDR" "$repo"); b=$(push_all B "$B_ADDR" "$repo")
    else
        b=$(push_all B "$B_ADDR" "$repo"); a=$(push_all A "$A_ADDR" "$repo")
    fi
    PA+=("$a"); PB+=("$b")
    log "push run $r: A ${a}s, B ${b}s"
done
check_alive
PUSH_HWM_A=$(hwm_kib "$A_PID") PUSH_HWM_B=$(hwm_kib "$B_PID")
rm -f "$T"/blob*   # only the stores remain; keeps the page cache for them
sync

# ------------------------------------------------------------------ pull runs
reset_hwm "$A_PID"; reset_hwm "$B_PID"
pull_all A "$A_ADDR" > /dev/null; pull_all B "$B_ADDR" > /dev/null   # warm-up (page cache), not counted
declare -a TA=() TB=()
printf '\n%-4s %-6s %12s %12s %8s\n' run order "A s" "B s" "A/B"
for (( r=1; r<=RUNS; r++ )); do
    if (( r % 2 )); then
        a=$(pull_all A "$A_ADDR"); b=$(pull_all B "$B_ADDR"); order=A,B
    else
        b=$(pull_all B "$B_ADDR"); a=$(pull_all A "$A_ADDR"); order=B,A
    fi
    check_alive
    TA+=("$a"); TB+=("$b")
    printf '%-4s %-6s %12s %12s %8s\n' "$r" "$order" "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.3f", a/b}')"
done
PULL_HWM_A=$(hwm_kib "$A_PID") PULL_HWM_B=$(hwm_kib "$B_PID")
RSS_A=$(rss_split "$A_PID") RSS_B=$(rss_split "$B_PID")

# ------------------------------------------------------------------ verification
verified=0
for (( i=0; i<BLOBS; i++ )); do
    for addr in "$A_ADDR" "$B_ADDR"; do
        got=$(curl -sf --max-time "$CURL_MAX" "http://$addr/v2/bench/blobs/blobs/${DIGESTS[i]}" | sha256sum | cut -d' ' -f1)
        [[ "sha256:$got" == "${DIGESTS[i]}" ]] || fail "blob ${DIGESTS[i]} pulled from $addr hashes to sha256:$got"
        verified=$((verified + 1))
    done
done
check_alive

# ------------------------------------------------------------------ summary
python3 - "$A_NAME" "$B_NAME" "${PA[*]}" "${PB[*]}" "$PUSH_HWM_A" "$PUSH_HWM_B" "$PULL_HWM_A" "$PULL_HWM_B" \
    "$RSS_A" "$RSS_B" "$IDLE_A" "$IDLE_B" "$BLOBS" "$SIZE" "$RUNS" "$verified" "$GOAL_RATIO" "$GOAL_RSS_MIB" "$BASELINE" "$CHECK" \
    "${TA[*]}" "${TB[*]}" <<'PY'
import statistics, sys
(an, bn, pa, pb, pha, phb, lha, lhb, ra, rb, ia, ib, blobs, size, runs, verified,
 goal_ratio, goal_rss, baseline, check, ta, tb) = sys.argv[1:]
ta = [float(x) for x in ta.split()]; tb = [float(x) for x in tb.split()]
ma, mb = statistics.median(ta), statistics.median(tb)
mib = lambda k: int(k) / 1024
total = int(blobs) * int(size)
ratio = ma / mb
pa = [float(x) for x in pa.split()]; pb = [float(x) for x in pb.split()]
push_ratio = statistics.median(pa) / statistics.median(pb)
peak_a = max(mib(pha), mib(lha)); peak_b = max(mib(phb), mib(lhb))
print()
print(f"summary: {blobs} x {size} MiB, {runs} alternating runs, A = {an}, B = {bn}")
print(f"  pull median      A {ma:8.3f} s ({total / ma:7.0f} MiB/s)   B {mb:8.3f} s ({total / mb:7.0f} MiB/s)")
print(f"  pull ratio A/B   {ratio:.3f}  (min {min(ta) / min(tb):.3f}; runs A {min(ta):.3f}-{max(ta):.3f}, B {min(tb):.3f}-{max(tb):.3f})")
print(f"  push median      A {statistics.median(pa):8.3f} s   B {statistics.median(pb):8.3f} s   ratio A/B {push_ratio:.3f}"
      f"  ({len(pa)} runs; A {' '.join(f'{x:.2f}' for x in pa)}; B {' '.join(f'{x:.2f}' for x in pb)})")
print(f"  peak RSS push    A {mib(pha):6.1f} MiB   B {mib(phb):6.1f} MiB")
print(f"  peak RSS pull    A {mib(lha):6.1f} MiB   B {mib(lhb):6.1f} MiB")
print(f"  RSS total/anon/file MiB: idle A {ia}, B {ib}; after runs A {ra}, B {rb}")
print(f"  verified         {verified} pulls hashed to their sha256 digests; every GET 200 with {size} MiB")
ok_ratio = ratio <= float(goal_ratio)
ok_rss = peak_a <= float(goal_rss)
if baseline == "1":
    print(f"  baseline sanity  ratio {ratio:.3f} (expect ~1.0)")
    sys.exit(0)
print(f"  goal pull ratio <= {goal_ratio}: {'met' if ok_ratio else 'NOT met'} ({ratio:.3f})")
print(f"  goal peak RSS <= {goal_rss} MiB: {'met' if ok_rss else 'NOT met'} ({peak_a:.1f} MiB; {bn} {peak_b:.1f} MiB)")
if check == "1" and not (ok_ratio and ok_rss):
    print(f"FAIL [serve]: goals not met (ratio {ratio:.3f}, peak RSS {peak_a:.1f} MiB)", file=sys.stderr)
    sys.exit(1)
PY
