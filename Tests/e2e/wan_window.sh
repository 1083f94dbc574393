#!/usr/bin/env bash
# wan_window.sh BIN
# sync.windows against a docker-registry behind faultproxy.py (which counts every
# byte the upstream sends), with the agent's clock moved through a hidden offset file
# (SATELLITE_LITE_CLOCK_OFFSET_FILE) instead of waiting; TZ=UTC, window 02:00-03:00.
#   outside   `sync` at 01:00 moves no WAN byte (no request reaches the proxy), exits 75
#             with "outside the sync window until 02:00"; status shows the window closed
#   next      clock at 02:00: the same `sync` completes (exit 0), the image verifies
#   pause     `run` (bandwidth 4MB/s) starts at 01:30 and waits (0 bytes); at 02:00 it
#             starts; when the partial file holds >= 4 MiB the clock jumps to 03:00:
#             the transfer stops (proxy count stays put), the partial file and its
#             .offset sidecar stay, /metrics says the window is closed; at 02:00 the
#             next day it resumes with a range from the paused offset (206) and
#             completes, the WAN total staying <= the image + 12 MiB (the bytes in
#             flight at the window's end, 4-9 MB of socket buffers here, are dropped and
#             fetched again); a proxied miss while closed is a 503 UNAVAILABLE with
#             Retry-After, and the stored image is still served outside the window
set -euo pipefail
. "$(dirname "$0")/lib.sh"

e2e_binary "${1:-}"
need_tools docker-registry skopeo jq python3 curl sha256sum
T=$E2E_TMP
MIB=1048576
export TZ=UTC
export SATELLITE_LITE_CLOCK_OFFSET_FILE=$T/clock-offset

# set_clock SECONDS_AFTER_TODAYS_UTC_MIDNIGHT [DAYS]: the agent's clock reads that time.
set_clock() {
    local now target
    now=$(date +%s)
    target=$(( now - now % 86400 + ${2:-0} * 86400 + $1 ))
    echo "$(( target - now ))" > "$T/clock-offset.tmp"
    mv "$T/clock-offset.tmp" "$SATELLITE_LITE_CLOCK_OFFSET_FILE"
}

start_docker_registry "$T/up"
UP=$DOCKER_REGISTRY_ADDR
IMG=$(python3 "$E2E_DIR/mkimage.py" single --platform linux/arm64/v8 --layers 1 --size $((24 * MIB)) "oci:$T/img:v1") || fail "mkimage failed"
e2e_skopeo copy -q --all --preserve-digests --dest-tls-verify=false "oci:$T/img:v1" "docker://$UP/edge/app:v1" >/dev/null 2>&1 \
    || fail "push of the test image failed"
M=$T/img/blobs/sha256/${IMG#sha256:}
IMAGE_BYTES=$(( $(stat -c %s "$M") + $(jq '[.config.size] + [.layers[].size] | add' "$M") ))
LAYER=$(jq -r '.layers[0].digest' "$M")

PX_PORT=$(free_port)
python3 "$E2E_DIR/faultproxy.py" --listen "$PX_PORT" --upstream "$UP" --count-file "$T/count" --log "$T/proxy.log" >"$T/proxy.out" 2>&1 &
PX_PID=$!
on_exit "kill_wait $PX_PID"
wait_until 10 "faultproxy.py" '[[ -s $T/count ]]' "$T/proxy.out"
count() { cat "$T/count"; }

config() { # FILE STORE [EXTRA_SYNC_JSON]
    jq -n --arg store "$2" --arg listen "127.0.0.1:$(free_port)" --arg url "http://127.0.0.1:$PX_PORT" --argjson extra "${3:-{\}}" \
        '{profile:"rpi4-arm64", storage:{path:$store}, registry:{listen:$listen}, upstream:{url:$url}, proxy:{enabled:true, tagRecheck:"1s"},
          state:{images:["edge/app:v1"], interval:"1h"},
          sync:({concurrency:1, timeout:"60s", windows:["02:00-03:00"]} + $extra)}' > "$1"
}
verify() { # STORE
    local got h
    got=$(tr -d ' \n' < "$1/repositories/edge/app/_manifests/tags/v1" 2>/dev/null || true)
    [[ "$got" == "$IMG" ]] || fail "edge/app:v1 is '${got:-absent}' in $1, expected $IMG"
    h=${LAYER#sha256:}
    [[ "$(sha256sum "$1/blobs/sha256/${h:0:2}/$h" | cut -d' ' -f1)" == "$h" ]] || fail "the layer in $1 does not hash to its name"
}

# ---------------------------------------------------------------- outside, then next window
config "$T/a.json" "$T/store-a"
set_clock $(( 1 * 3600 ))
before=$(count)
set +e
timeout 60 "$BIN" sync --config "$T/a.json" >"$T/a1.out" 2>&1
rc=$?
set -e
sleep 0.5
after=$(count)
(( rc == 75 )) || fail "outside: sync exited $rc, expected 75: $(tail -n 3 "$T/a1.out" | tr '\n' ' ')"
grep -q "outside the sync window until 02:00" "$T/a1.out" || fail "outside: no 'outside the sync window until 02:00' in: $(tail -n 3 "$T/a1.out" | tr '\n' ' ')"
(( after == before )) || fail "outside: $(( after - before )) bytes crossed the WAN outside the window"
"$BIN" status --config "$T/a.json" > "$T/a-status.out" 2>&1 || fail "status failed: $(cat "$T/a-status.out")"
grep -q "WAN window: closed, opens at 02:00" "$T/a-status.out" || fail "status does not show the closed window: $(grep WAN "$T/a-status.out" | tr '\n' ' ')"
"$BIN" status --config "$T/a.json" --json | jq -e '.wan.windowOpen == false and .wan.windows == ["02:00-03:00"]' >/dev/null \
    || fail "status --json lacks wan.windowOpen=false"
log "outside: exit 75, 0 WAN bytes, status shows the window closed"

set_clock $(( 2 * 3600 + 30 ))
timeout 60 "$BIN" sync --config "$T/a.json" >"$T/a2.out" 2>&1 || fail "next window: sync failed: $(tail -n 3 "$T/a2.out" | tr '\n' ' ')"
verify "$T/store-a"
log "next window: sync complete, $(( $(count) - after )) WAN bytes for a $IMAGE_BYTES-byte image"

# ---------------------------------------------------------------- run: wait, start, pause, resume
config "$T/b.json" "$T/store-b" '{"bandwidth":"4MB/s"}'
MPORT=$(jq -r '.registry.listen' "$T/b.json" | cut -d: -f2)
set_clock $(( 1 * 3600 + 1800 ))
base=$(count)
SATELLITE_LOG_LEVEL=info "$BIN" run --config "$T/b.json" >"$T/run.out" 2>&1 &
RUN_PID=$!
on_exit "kill_wait $RUN_PID"
WAIT_HTTP_PID=$RUN_PID WAIT_HTTP_LOG=$T/run.out wait_http "http://127.0.0.1:$MPORT/v2/" 20
wait_until 10 "run to notice the closed window" 'grep -q "WAN closed" "$T/run.out"' "$T/run.out"
sleep 2
(( $(count) == base )) || fail "pause: run moved $(( $(count) - base )) WAN bytes before its window"
metrics() { curl -fsS "http://127.0.0.1:$MPORT/metrics" > "$T/metrics" || fail "GET /metrics failed"; }
metrics
grep -q '^satellite_wan_window_open 0' "$T/metrics" || fail "/metrics does not say the window is closed"

set_clock $(( 2 * 3600 ))
partial() { find "$T/store-b/ingest" -type f -name "*${LAYER#sha256:}*" ! -name '*.offset' -printf '%s\n' 2>/dev/null | head -n1; }
wait_until 30 "the layer transfer to pass 4 MiB" '(( $(partial || echo 0) >= 4 * MIB ))' "$T/run.out"
set_clock $(( 3 * 3600 + 5 ))
# The clock file is read at most once a second, the transfer checks at every chunk.
sleep 3
stopped=$(count)
size=$(partial || echo 0)
sleep 3
(( $(count) == stopped )) || fail "pause: $(( $(count) - stopped )) WAN bytes after the window closed"
(( size > 0 && size < IMAGE_BYTES )) || fail "pause: no partial file in STORE/ingest (size '${size}')"
ls "$T/store-b/ingest" | grep -q '\.offset$' || fail "pause: no .offset sidecar next to the partial file"
[[ "$(partial)" == "$size" ]] || fail "pause: the partial file changed after the window closed"
metrics
grep -q '^satellite_wan_window_open 0' "$T/metrics" || fail "/metrics does not say the window closed"
"$BIN" status --config "$T/b.json" | grep -q "edge/app:v1: deferred" || fail "status does not show the image deferred: $("$BIN" status --config "$T/b.json" | head -n 3 | tr '\n' ' ')"
log "pause: stopped at $size bytes (partial file and sidecar kept, 0 WAN bytes in 3 s)"
# The pull-through proxy answers a miss at once: 503 UNAVAILABLE with Retry-After.
code=$(curl -s -o "$T/miss.json" -D "$T/miss.head" -w '%{http_code}' --max-time 10 "http://127.0.0.1:$MPORT/v2/edge/other/manifests/v1")
[[ "$code" == 503 ]] || fail "proxy miss outside the window: HTTP $code, expected 503: $(cat "$T/miss.json")"
jq -e '.errors[0].code == "UNAVAILABLE" and (.errors[0].message | contains("outside the sync window"))' "$T/miss.json" >/dev/null \
    || fail "proxy miss: unexpected body $(cat "$T/miss.json")"
grep -qi '^Retry-After: [0-9]' "$T/miss.head" || fail "proxy miss: no Retry-After header"
(( $(count) == stopped )) || fail "proxy miss: WAN bytes moved outside the window"

set_clock $(( 2 * 3600 )) 1
wait_until 40 "run to complete the image in the next day's window" '[[ -f $T/store-b/repositories/edge/app/_manifests/tags/v1 ]]' "$T/run.out"
metrics
wan=$(awk '/^satellite_wan_bytes_total /{print $2}' "$T/metrics")
# Outside the window again: the cached image is still served (the tag check is deferred).
set_clock $(( 4 * 3600 )) 1
sleep 2
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://127.0.0.1:$MPORT/v2/edge/app/manifests/v1")
[[ "$code" == 200 ]] || fail "outside the window the stored image is not served: HTTP $code"
kill_wait "$RUN_PID"
verify "$T/store-b"
grep -q "GET /v2/edge/app/blobs/$LAYER 206 .* range=bytes=$size-" "$T/proxy.log" \
    || fail "resume: no 206 answer to a range from the paused offset $size: $(grep "$LAYER" "$T/proxy.log" | tail -n 2 | tr '\n' ' ')"
total=$(( $(count) - base ))
# What was in flight when the window closed (socket buffers: a few MB here, where the
# bandwidth cap, not the link, is the bottleneck) is dropped and fetched again; a restart
# from zero would cost the 8 MiB already held on top.
(( total <= IMAGE_BYTES + 12 * MIB )) || fail "resume: $total WAN bytes for a $IMAGE_BYTES-byte image (not resumed?)"
[[ -n "$wan" ]] && (( wan > 0 && wan <= total )) || fail "/metrics satellite_wan_bytes_total is '${wan:-absent}' (proxy counted $total)"
log "resume: complete in the next window, $total WAN bytes for $IMAGE_BYTES image bytes ($(( total - IMAGE_BYTES )) in flight at the window's end, fetched twice)"
log "PASS"
