#!/usr/bin/env bash
# fleet_reload.sh SATELLITE_BIN GROUND_CONTROL_BIN
# SIGHUP on `satellite-lite run` reloads the groundControl keys, against the real
# ground-control (SQLite) behind a TLS front (Python's ssl, a certificate of a test CA):
#  1. groundControl.caFile names an unrelated CA: onboarding fails the TLS check and retries;
#  2. caFile fixed in the file + SIGHUP: onboarding completes without a restart, the first
#     heartbeat arrives; with heartbeat: 1h no second one comes;
#  3. heartbeat: 1s + SIGHUP: heartbeats arrive every second at once (no wait for the hour);
#  4. a url change + SIGHUP is refused for an onboarded satellite (logged), heartbeats go on;
#  5. a broken config file + SIGHUP is refused, the running config stays.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

SAT=${1:-}
GC=${2:-}
[[ -n "$SAT" && -x "$SAT" ]] || fail "usage: $0 /path/to/satellite-lite /path/to/ground-control (got '${SAT:-}')"
[[ -n "$GC" && -x "$GC" ]] || fail "usage: $0 /path/to/satellite-lite /path/to/ground-control (got '${GC:-}')"
need_tools jq python3 curl openssl
T=$E2E_TMP
ADMIN_PW="admin-$RANDOM-$RANDOM-pw"

# ---------------------------------------------------------------- PKI
mkdir -p "$T/pki" "$T/gc"
ossl() { timeout 60 openssl "$@" >>"$T/pki/openssl.log" 2>&1 || fail "openssl $1 failed: $(tail -n 3 "$T/pki/openssl.log" | tr '\n' ' ')"; }
for ca in ca other; do
    ossl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days 2 -subj "/CN=e2e $ca" \
        -keyout "$T/pki/$ca.key" -out "$T/pki/$ca.pem" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
done
ossl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" -keyout "$T/pki/server.key" -out "$T/pki/server.csr"
printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=CA:FALSE" \
    "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" > "$T/pki/server.ext"
ossl x509 -req -in "$T/pki/server.csr" -CA "$T/pki/ca.pem" -CAkey "$T/pki/ca.key" -CAcreateserial \
    -days 2 -sha256 -extfile "$T/pki/server.ext" -out "$T/pki/server.pem"

# ---------------------------------------------------------------- ground-control + TLS front
GC_PORT=$(free_port)
GC_URL="http://127.0.0.1:$GC_PORT"
jq -n --arg listen "127.0.0.1:$GC_PORT" --arg db "sqlite://$T/gc/gc.sqlite" --arg data "$T/gc" \
    '{listen:$listen, database:$db, dataDirectory:$data, registry:{url:"http://127.0.0.1:9", kind:"distribution"}}' > "$T/gc/config.json"
GC_ADMIN_PASSWORD=$ADMIN_PW "$GC" serve --config "$T/gc/config.json" >>"$T/gc/gc.log" 2>&1 &
GC_PID=$!
on_exit 'kill_wait $GC_PID'
WAIT_HTTP_PID=$GC_PID WAIT_HTTP_LOG="$T/gc/gc.log" wait_http "$GC_URL/ping" 60

TLS_PORT=$(free_port)
cat > "$T/front.py" <<'PY'
import asyncio, ssl, sys
cert, key, port, backend = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)
async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()
async def handle(reader, writer):
    try:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", backend)
    except OSError:
        writer.close()
        return
    await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", port, ssl=context)
    async with server:
        await server.serve_forever()
asyncio.run(main())
PY
python3 "$T/front.py" "$T/pki/server.pem" "$T/pki/server.key" "$TLS_PORT" "$GC_PORT" 2>"$T/front.log" &
FRONT_PID=$!
on_exit 'kill_wait $FRONT_PID'
wait_until 20 "the TLS front" "curl -sf --cacert '$T/pki/ca.pem' https://127.0.0.1:$TLS_PORT/ping" "$T/front.log"

SESSION=$(curl -sf -X POST -H 'Content-Type: application/json' \
    --data "$(jq -cn --arg p "$ADMIN_PW" '{username:"admin", password:$p}')" "$GC_URL/login" | jq -r .token)
[[ -n "$SESSION" && "$SESSION" != null ]] || fail "admin login failed"
api() { curl -sf -H "Authorization: Bearer $SESSION" -H 'Content-Type: application/json' -X "$1" ${3:+--data "$3"} "$GC_URL$2"; }
TOKEN=$(api POST /api/satellites '{"name":"edge-01","groups":[]}' | jq -r '.token // empty')
[[ -n "$TOKEN" ]] || fail "POST /api/satellites returned no token"
printf '%s\n' "$TOKEN" > "$T/join.token"
# Heartbeats Ground Control stored (its database; the API lists the newest 20 only).
beats() { python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1], timeout=10).execute("SELECT count(*) FROM gc_heartbeats WHERE satellite_name = ?", ("edge-01",)).fetchone()[0])' "$T/gc/gc.sqlite"; }

# ---------------------------------------------------------------- the satellite
SAT_ADDR="127.0.0.1:$(free_port)"
write_config() { # CA_FILE HEARTBEAT [URL]
    jq -n --arg store "$T/store" --arg listen "$SAT_ADDR" --arg gc "${3:-https://127.0.0.1:$TLS_PORT}" \
        --arg tok "$T/join.token" --arg ca "$1" --arg hb "$2" \
        '{storage:{path:$store}, registry:{listen:$listen}, state:{interval:"1h"},
          groundControl:{url:$gc, tokenFile:$tok, caFile:$ca, heartbeat:$hb}}' > "$T/sat.json.new"
    mv "$T/sat.json.new" "$T/sat.json"
}
write_config "$T/pki/other.pem" 1h
"$SAT" run --config "$T/sat.json" >>"$T/sat.log" 2>&1 &
SAT_PID=$!
on_exit 'kill_wait $SAT_PID'
WAIT_HTTP_PID=$SAT_PID WAIT_HTTP_LOG="$T/sat.log" wait_http "http://$SAT_ADDR/v2/" 20

# 1. The wrong CA: onboarding fails the TLS check, keeps retrying.
wait_until 30 "a failed onboarding attempt (unrelated CA)" "grep -q 'onboarding: Ground Control not reachable' '$T/sat.log'" "$T/sat.log"
[[ ! -e "$T/store/fleet/link.json" ]] || fail "onboarded through a certificate its caFile does not vouch for"
[[ "$(beats)" == 0 ]] || fail "a heartbeat arrived before onboarding"
log "1. unrelated CA: onboarding refused by the TLS check, retrying"

# 2. caFile fixed + SIGHUP: onboarded without a restart; heartbeat 1h: one heartbeat only.
write_config "$T/pki/ca.pem" 1h
kill -HUP "$SAT_PID"
wait_until 40 "onboarding after SIGHUP with the right caFile" "[[ \$(beats) -ge 1 ]]" "$T/sat.log"
kill -0 "$SAT_PID" || fail "satellite-lite exited"
grep -q 'groundControl reloaded' "$T/sat.log" || fail "no reload logged"
sleep 4
[[ "$(beats)" == 1 ]] || fail "heartbeat 1h, yet $(beats) heartbeats in 4 s"
log "2. caFile reloaded: onboarded and heartbeating with the same process (pid $SAT_PID)"

# 3. heartbeat 1s + SIGHUP: no wait for the hour to pass.
write_config "$T/pki/ca.pem" 1s
kill -HUP "$SAT_PID"
wait_until 15 "heartbeats every second after SIGHUP" "[[ \$(beats) -ge 5 ]]" "$T/sat.log"
log "3. heartbeat interval reloaded: $(beats) heartbeats"

# 4. A new url for an onboarded satellite: refused (logged); it keeps heartbeating where it was.
write_config "$T/pki/ca.pem" 1s "https://127.0.0.1:9"
kill -HUP "$SAT_PID"
wait_until 10 "the refused url change in the log" "grep -q 'not applied: groundControl.url' '$T/sat.log'" "$T/sat.log"
n=$(beats)
wait_until 10 "heartbeats to go on after a refused url change" "[[ \$(beats) -gt $n ]]" "$T/sat.log"
log "4. url change of an onboarded satellite refused, heartbeats go on"

# 5. A broken file: refused, the running config stays.
echo '{"groundControl": ' > "$T/sat.json"
kill -HUP "$SAT_PID"
wait_until 10 "the refused reload in the log" "grep -q 'configuration reload failed' '$T/sat.log'" "$T/sat.log"
n=$(beats)
wait_until 10 "heartbeats to go on after a refused reload" "[[ \$(beats) -gt $n ]]" "$T/sat.log"
kill -0 "$SAT_PID" || fail "satellite-lite exited after a broken config"
! grep -qF "$TOKEN" "$T/sat.log" || fail "the join token appears in the log"
log "5. broken config refused, the running one stays"
log "PASS"
