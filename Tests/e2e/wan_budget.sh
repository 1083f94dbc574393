#!/usr/bin/env bash
# wan_budget.sh BIN
# sync.budget.perDay "50MB" (50,000,000 bytes) on a 120 MB image (3 layers of 40 MB),
# docker-registry behind faultproxy.py counting every byte the upstream sends, the
# agent's clock moved through SATELLITE_LITE_CLOCK_OFFSET_FILE (TZ=UTC, noon each day):
#   sync    day 1: `sync` stops AT the budget (exit 75, "daily WAN budget ... spent");
#           the proxy sent <= 50,000,000 body bytes (+ response heads); status --json
#           shows 50,000,000 used and 0 left; a second `sync` that day moves 0 bytes;
#           day 2 the same again; day 3 completes, the image verifies, and the WAN total
#           stays <= the image + heads (every byte fetched once)
#   kill    `run` (16MB/s) on a fresh store is killed -9 past 20 MB; `run` again the same
#           day stops at the budget: both runs together <= 50,000,000 body bytes (the
#           ledger survived the kill); then two more days complete the image
set -euo pipefail
. "$(dirname "$0")/lib.sh"

e2e_binary "${1:-}"
need_tools docker-registry skopeo jq python3 curl sha256sum
T=$E2E_TMP
BUDGET=50000000
# Response heads the proxy counts on top of body bytes (a few hundred bytes per request).
HEADS=65536
export TZ=UTC
export SATELLITE_LITE_CLOCK_OFFSET_FILE=$T/clock-offset

set_clock() { # DAY: the agent's clock reads noon (UTC) of today + DAY
    local now target
    now=$(date +%s)
    target=$(( now - now % 86400 + $1 * 86400 + 12 * 3600 ))
    echo "$(( target - now ))" > "$T/clock-offset.tmp"
    mv "$T/clock-offset.tmp" "$SATELLITE_LITE_CLOCK_OFFSET_FILE"
}

start_docker_registry "$T/up"
UP=$DOCKER_REGISTRY_ADDR
IMG=$(python3 "$E2E_DIR/mkimage.py" single --platform linux/arm64/v8 --layers 3 --size 40000000 "oci:$T/img:v1") || fail "mkimage failed"
e2e_skopeo copy -q --all --preserve-digests --dest-tls-verify=false "oci:$T/img:v1" "docker://$UP/edge/big:v1" >/dev/null 2>&1 \
    || fail "push of the test image failed"
M=$T/img/blobs/sha256/${IMG#sha256:}
IMAGE_BYTES=$(( $(stat -c %s "$M") + $(jq '[.config.size] + [.layers[].size] | add' "$M") ))
log "image $IMG: $IMAGE_BYTES bytes"

PX_PORT=$(free_port)
python3 "$E2E_DIR/faultproxy.py" --listen "$PX_PORT" --upstream "$UP" --count-file "$T/count" --log "$T/proxy.log" >"$T/proxy.out" 2>&1 &
PX_PID=$!
on_exit "kill_wait $PX_PID"
wait_until 10 "faultproxy.py" '[[ -s $T/count ]]' "$T/proxy.out"
# The proxy rewrites its count every 0.2 s.
count() { sleep 0.5; cat "$T/count"; }

config() { # FILE STORE [EXTRA_SYNC_JSON]
    jq -n --arg store "$2" --arg listen "127.0.0.1:$(free_port)" --arg url "http://127.0.0.1:$PX_PORT" --argjson extra "${3:-{\}}" \
        '{profile:"rpi4-arm64", storage:{path:$store}, registry:{listen:$listen}, upstream:{url:$url},
          state:{images:["edge/big:v1"], interval:"1h"},
          sync:({concurrency:2, timeout:"60s", budget:{perDay:"50MB"}} + $extra)}' > "$1"
}
verify() { # STORE
    local got d h
    got=$(tr -d ' \n' < "$1/repositories/edge/big/_manifests/tags/v1" 2>/dev/null || true)
    [[ "$got" == "$IMG" ]] || fail "edge/big:v1 is '${got:-absent}' in $1, expected $IMG"
    for d in $(jq -r '.config.digest, .layers[].digest' "$M"); do
        h=${d#sha256:}
        [[ "$(sha256sum "$1/blobs/sha256/${h:0:2}/$h" 2>/dev/null | cut -d' ' -f1)" == "$h" ]] || fail "blob $d in $1 is missing or does not hash to its name"
    done
}
sync_rc() { # CONFIG OUT: sets RC
    set +e
    timeout 90 "$BIN" sync --config "$1" >"$2" 2>&1
    RC=$?
    set -e
}
used() { "$BIN" status --config "$1" --json | jq -r '"\(.wan.dayBytes) \(.wan.dayLeft)"'; }

# ---------------------------------------------------------------- sync, day by day
config "$T/a.json" "$T/store-a"
base=$(count)
for day in 0 1; do
    set_clock "$day"
    before=$(count)
    sync_rc "$T/a.json" "$T/a$day.out"
    moved=$(( $(count) - before ))
    (( RC == 75 )) || fail "day $day: sync exited $RC, expected 75 (budget spent): $(tail -n 3 "$T/a$day.out" | tr '\n' ' ')"
    grep -q "daily WAN budget of .* is spent until 00:00" "$T/a$day.out" || fail "day $day: no 'daily WAN budget ... spent' in: $(tail -n 2 "$T/a$day.out" | tr '\n' ' ')"
    (( moved <= BUDGET + HEADS )) || fail "day $day: $moved bytes crossed the WAN, budget $BUDGET"
    (( moved >= BUDGET - 1000000 )) || fail "day $day: only $moved bytes moved, the budget allowed $BUDGET"
    [[ "$(used "$T/a.json")" == "$BUDGET 0" ]] || fail "day $day: status --json shows '$(used "$T/a.json")' used/left, expected '$BUDGET 0'"
    before=$(count)
    sync_rc "$T/a.json" "$T/a$day-again.out"
    (( RC == 75 )) || fail "day $day: the second sync exited $RC, expected 75"
    (( $(count) == before )) || fail "day $day: a sync with the budget spent moved $(( $(count) - before )) bytes"
    log "day $day: stopped at the budget: $moved WAN bytes (proxy, heads included), status $BUDGET used, 0 left; again: 0 bytes"
done
set_clock 2
sync_rc "$T/a.json" "$T/a2.out"
(( RC == 0 )) || fail "day 2: sync exited $RC, expected 0: $(tail -n 3 "$T/a2.out" | tr '\n' ' ')"
verify "$T/store-a"
total=$(( $(count) - base ))
(( total <= IMAGE_BYTES + HEADS )) || fail "sync: $total WAN bytes over three days for a $IMAGE_BYTES-byte image"
"$BIN" status --config "$T/a.json" | grep -q "WAN budget: today .* of 47.7 MiB" || fail "status lacks the WAN budget line: $("$BIN" status --config "$T/a.json" | grep WAN | tr '\n' ' ')"
log "day 2: complete; $total WAN bytes in all for $IMAGE_BYTES image bytes"

# ---------------------------------------------------------------- kill -9, then run again
config "$T/b.json" "$T/store-b" '{"bandwidth":"16MB/s"}'
MPORT=$(jq -r '.registry.listen' "$T/b.json" | cut -d: -f2)
set_clock 0
base=$(count)
"$BIN" run --config "$T/b.json" >"$T/run1.out" 2>&1 &
RUN_PID=$!
on_exit "kill -9 $RUN_PID"
wait_until 30 "the first run to move 20 MB" '(( $(cat $T/count) - base >= 20000000 ))' "$T/run1.out"
kill -9 "$RUN_PID"
wait "$RUN_PID" 2>/dev/null || true
first=$(( $(count) - base ))
(( first < BUDGET )) || fail "kill: the first run had already moved $first bytes: kill came too late"
"$BIN" run --config "$T/b.json" >"$T/run2.out" 2>&1 &
RUN_PID=$!
on_exit "kill_wait $RUN_PID"
wait_until 30 "the second run to stop at the budget" 'grep -q "daily WAN budget" "$T/run2.out"' "$T/run2.out"
sleep 2
both=$(( $(count) - base ))
(( both <= BUDGET + HEADS )) || fail "kill: the two runs moved $both bytes in one day, budget $BUDGET (the ledger lost the first run's bytes?)"
curl -fsS "http://127.0.0.1:$MPORT/metrics" > "$T/metrics" || fail "GET /metrics failed"
grep -q '^satellite_wan_budget_day_left_bytes 0$' "$T/metrics" || fail "/metrics: $(grep budget_day "$T/metrics" | tr '\n' ' ')"
log "kill: first run $first bytes, killed -9; second run stopped at the budget: $both WAN bytes in the day"
set_clock 1
sleep 4
set_clock 2
wait_until 40 "run to complete the image after the budget renewed" '[[ -f $T/store-b/repositories/edge/big/_manifests/tags/v1 ]]' "$T/run2.out"
kill_wait "$RUN_PID"
verify "$T/store-b"
total=$(( $(count) - base ))
log "kill: complete on day 2, $total WAN bytes in all for $IMAGE_BYTES image bytes"
log "PASS"
