#!/usr/bin/env bash
# proxy_faults.sh BIN
# The pull-through proxy (`proxy`) under load and faults, against Debian's docker-registry
# behind faultproxy.py (which counts the bytes the upstream sends):
#   1. 20 clients GET one uncached 48 MB blob at once: all get identical bytes that hash to
#      the digest; the upstream sent the blob once (<= 1.02x its size); /metrics counts the
#      coalesced waiters; a Range request is answered from the stored blob.
#   2. the client receives bytes before the blob is complete; kill -9 of satellite-lite mid-transfer (bandwidth capped so it is mid-way), restart,
#      pull again: the blob arrives whole and verified, the upstream answered a Range request
#      (206) from the partial file's offset, and sent less than 1.5x the blob in total.
#   3. a corrupting upstream (faultproxy --corrupt-digest, as a proxy mirror): the client's
#      response is cut (curl fails, never a clean end), no blob with that digest becomes
#      visible and nothing is left in ingest/.
#   4. a repository outside proxy.allow: 404 and no request reaches the upstream.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

e2e_binary "${1:-}"
need_tools docker-registry skopeo jq python3 curl
T=$E2E_TMP
export E2E_CMD_TIMEOUT=${E2E_CMD_TIMEOUT:-60}
SIZE=${PROXY_BLOB_SIZE:-48000000}

start_docker_registry "$T/up"
UP=$DOCKER_REGISTRY_ADDR
push() { # NAME SEED -> prints the manifest digest; image in $T/img-NAME
    local d
    d=$(python3 "$MKIMAGE" single --layers 1 --size "$SIZE" --seed "$2" "oci:$T/img-$1:v1") || fail "mkimage.py failed"
    run_or_fail "push of $1" e2e_skopeo copy -q --preserve-digests --dest-tls-verify=false "oci:$T/img-$1:v1" "docker://$UP/library/$1:v1"
    echo "$d"
}
layer_of() { jq -r '.layers[0].digest' "$T/img-$1/blobs/sha256/$(jq -r '.manifests[0].digest' "$T/img-$1/index.json" | cut -d: -f2)"; }
push big 11 >/dev/null
push resume 12 >/dev/null
push bad 13 >/dev/null
run_or_fail "push of secret/x" e2e_skopeo copy -q --dest-tls-verify=false "oci:$T/img-bad:v1" "docker://$UP/secret/x:v1"
BIG=$(layer_of big) RES=$(layer_of resume) BAD=$(layer_of bad)
BIG_SIZE=$(stat -c %s "$T/img-big/blobs/sha256/${BIG#sha256:}")
RES_SIZE=$(stat -c %s "$T/img-resume/blobs/sha256/${RES#sha256:}")

# px NAME ARGS...: faultproxy.py in front of the upstream; sets PX_PORT; dir $T/px-NAME
px() {
    local name=$1 i; shift
    mkdir -p "$T/px-$name"
    PX_PORT=$(free_port)
    python3 "$E2E_DIR/faultproxy.py" --listen "$PX_PORT" --upstream "$UP" --count-file "$T/px-$name/count" \
        --log "$T/px-$name/log" "$@" > "$T/px-$name/out" 2>&1 &
    on_exit "kill_wait $!"
    for (( i=0; i<100; i++ )); do [[ -s "$T/px-$name/count" ]] && return 0; sleep 0.1; done
    fail "faultproxy.py $name did not start"
}
px main; MAIN=$PX_PORT
px bad --corrupt-digest "$BAD"; BADPX=$PX_PORT
count() { cat "$T/px-$1/count"; }

SAT=127.0.0.1:$(free_port)
CFG=$T/config.json
jq -n --arg s "$T/store" --arg l "$SAT" --arg u "http://127.0.0.1:$MAIN" --arg b "http://127.0.0.1:$BADPX" \
    '{profile:"generic-amd64", storage:{path:$s}, registry:{listen:$l}, upstream:{url:$u}, sync:{bandwidth:"40MB/s"},
      proxy:{enabled:true, allow:["library/**","corrupt.example.com/**"], tagRecheck:"5m",
             mirrors:[{registry:"corrupt.example.com", url:$b}]}}' > "$CFG"
start_sat() {
    "$BIN" serve --config "$CFG" >> "$T/sat.log" 2>&1 &
    SAT_PID=$!
    on_exit "kill -9 $SAT_PID"
    WAIT_HTTP_PID=$SAT_PID WAIT_HTTP_LOG="$T/sat.log" wait_http "http://$SAT/v2/" 20
}
start_sat

# 1. 20 concurrent clients, one upstream transfer.
before=$(count main)
t0=$(date +%s.%N)
for i in $(seq 1 20); do
    curl -sf -o "$T/c$i" "http://$SAT/v2/library/big/blobs/$BIG" &
    pids[i]=$!
done
for i in $(seq 1 20); do wait "${pids[i]}" || fail "client $i of 20 failed to GET $BIG through the proxy"; done
t1=$(date +%s.%N)
for i in $(seq 1 20); do
    [[ "$(sha256_file "$T/c$i")" == "$BIG" ]] || fail "client $i got bytes that do not hash to $BIG"
done
sleep 0.5
fetched=$(( $(count main) - before ))
python3 -c "import sys; b,s=$fetched,$BIG_SIZE; sys.exit(0 if b <= 1.02*s else 1)" \
    || fail "upstream sent $fetched bytes for 20 clients of one $BIG_SIZE-byte blob (goal <= 1.02x)"
coalesced=$(curl -s "http://$SAT/metrics" | awk '$1=="satellite_proxy_coalesced_waiters_total"{print $2}')
(( coalesced >= 1 )) || fail "metrics count no coalesced waiter (${coalesced:-none})"
[[ -f "$T/store/blobs/sha256/${BIG:7:2}/${BIG#sha256:}" ]] || fail "the proxied blob is not in the store"
got=$(curl -sf -r 1000-1999 "http://$SAT/v2/library/big/blobs/$BIG" | sha256sum | cut -d' ' -f1)
want=$(dd if="$T/c1" bs=1000 skip=1 count=1 2>/dev/null | sha256sum | cut -d" " -f1)
[[ "$got" == "$want" ]] || fail "a Range request returned other bytes than the blob's"
log "20 clients: identical verified bytes, upstream sent $fetched for a $BIG_SIZE-byte blob, $coalesced coalesced, $(python3 -c "print(round($t1-$t0,2))") s"

# 2. kill -9 mid-transfer, then resume from the partial file.
curl -s -o "$T/early" "http://$SAT/v2/library/resume/blobs/$RES" &
CPID=$!
PART=$T/store/ingest/sha256-${RES#sha256:}
wait_until 20 "a partial download of $RES" "[[ \$(stat -c %s '$PART' 2>/dev/null || echo 0) -gt $(( RES_SIZE / 4 )) ]]" "$T/sat.log"
kill -9 "$SAT_PID"; wait "$SAT_PID" 2>/dev/null || true; wait "$CPID" 2>/dev/null || true
part=$(stat -c %s "$PART")
early=$(stat -c %s "$T/early" 2>/dev/null || echo 0)
(( early > 0 )) || fail "the client received nothing before the blob was complete (no streaming)"
(( part < RES_SIZE )) || fail "the transfer finished before the kill ($part bytes): nothing to resume"
[[ ! -e "$T/store/blobs/sha256/${RES:7:2}/${RES#sha256:}" ]] || fail "a partial blob is visible after kill -9"
before=$(count main)
start_sat
curl -sf -o "$T/res" "http://$SAT/v2/library/resume/blobs/$RES" || fail "the pull after the restart failed"
[[ "$(sha256_file "$T/res")" == "$RES" ]] || fail "the resumed blob does not hash to $RES"
sleep 0.5
after=$(( $(count main) - before ))
grep -qE "GET /v2/library/resume/blobs/$RES 206" "$T/px-main/log" \
    || fail "the upstream got no Range request for $RES after the restart (no resume): $(grep -F "$RES" "$T/px-main/log" | tail -n 2 | tr '\n' ' ')"
(( after < RES_SIZE - part / 2 )) || fail "after the restart the upstream sent $after bytes of a $RES_SIZE-byte blob with $part on disk: not resumed"
log "kill -9 at $part of $RES_SIZE bytes (the client already had $early); the restart fetched $after bytes with a Range request"

# 3. A corrupting upstream: the client is cut and nothing is kept.
if curl -sf -o "$T/bad" "http://$SAT/v2/corrupt.example.com/library/bad/blobs/$BAD" 2> "$T/bad.err"; then
    fail "a corrupted blob was served with a valid completion"
fi
[[ ! -e "$T/store/blobs/sha256/${BAD:7:2}/${BAD#sha256:}" ]] || fail "a corrupted blob became visible"
[[ ! -e "$T/store/ingest/sha256-${BAD#sha256:}" ]] || fail "the corrupted download was left in ingest/"
grep -q corrupted "$T/px-bad/log" || fail "faultproxy did not corrupt anything: $(tail -n 2 "$T/px-bad/log" | tr '\n' ' ')"
code=$(curl -s -o /dev/null -w "%{http_code}" "http://$SAT/v2/corrupt.example.com/library/bad/blobs/$BAD" || true)
log "corrupted upstream: client cut, nothing stored (a second pull answers $code)"

# 4. Outside proxy.allow: 404, upstream never asked.
code=$(curl -s -o "$T/deny.json" -w '%{http_code}' "http://$SAT/v2/secret/x/manifests/v1")
[[ "$code" == 404 ]] || fail "GET of secret/x outside proxy.allow answered $code, expected 404"
jq -e '.errors[0].code == "MANIFEST_UNKNOWN"' "$T/deny.json" >/dev/null || fail "no OCI error for secret/x: $(cat "$T/deny.json")"
! grep -q "/v2/secret/" "$T/px-main/log" || fail "a request for secret/x reached the upstream"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://$SAT/v2/library/..%2F..%2Fetc/manifests/v1")
[[ "$code" == 400 ]] || fail "a traversal name answered $code, expected 400"
! grep -q "etc/manifests" "$T/px-main/log" || fail "a hostile name reached the upstream"
echo "PASS proxy_faults"
