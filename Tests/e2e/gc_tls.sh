#!/usr/bin/env bash
# gc_tls.sh GC_BIN [SATELLITE_BIN]
# ground-control serving HTTPS (tls.certFile / tls.keyFile; Hummingbird's TLS over
# swift-nio-ssl) with a certificate from a private CA made here with openssl:
#   1. curl with the CA: /ping, /openapi.json and a login over HTTPS; without the CA the
#      handshake is refused (certificate verify), plain HTTP on the port gets no answer;
#   2. satellite-lite (when given) onboards by ZTR and heartbeats over HTTPS with
#      groundControl.caFile;
#   3. a config with a key but no certificate, or an unreadable certificate, stops `serve`
#      with exit 64 and an error line naming the key (then the usage hint).
# Cost: ~10 s.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

BIN=${1:-}
SAT=${2:-}
[[ -n "$BIN" && -x "$BIN" ]] || fail "usage: $0 /path/to/ground-control [/path/to/satellite-lite] (got '${BIN:-}')"
need_tools openssl curl jq
T=$E2E_TMP

log "a private CA and a server certificate for 127.0.0.1"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=gc-test-ca" \
    -keyout "$T/ca.key" -out "$T/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$T/server.key" -out "$T/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$T/ext.cnf"
openssl x509 -req -in "$T/server.csr" -CA "$T/ca.crt" -CAkey "$T/ca.key" -CAcreateserial -days 2 \
    -extfile "$T/ext.cnf" -out "$T/server.crt" 2>/dev/null

PORT=$(free_port)
GC=https://127.0.0.1:$PORT
export GC_ADMIN_PASSWORD=e2e-admin-password
cat >"$T/config.json" <<JSON
{ "listen": "127.0.0.1:$PORT", "database": "sqlite://$T/gc.sqlite", "dataDirectory": "$T",
  "registry": { "url": "http://127.0.0.1:9", "kind": "distribution" },
  "tls": { "certFile": "$T/server.crt", "keyFile": "$T/server.key" } }
JSON
"$BIN" serve --config "$T/config.json" >"$T/gc.log" 2>&1 &
GC_PID=$!
on_exit "kill_wait $GC_PID"
deadline=$((SECONDS + 30))
until curl -s -o /dev/null --cacert "$T/ca.crt" "$GC/ping"; do
    kill -0 "$GC_PID" 2>/dev/null || fail "ground-control exited: $(tail -n 3 "$T/gc.log")"
    ((SECONDS < deadline)) || fail "no HTTPS answer within 30 s: $(tail -n 3 "$T/gc.log")"
    sleep 0.2
done

log "1. curl over HTTPS with the CA; refused without it; no plain HTTP"
[[ $(curl -sf --cacert "$T/ca.crt" "$GC/ping") == pong ]] || fail "/ping over HTTPS"
curl -sf --cacert "$T/ca.crt" "$GC/openapi.json" | jq -e '.openapi' >/dev/null || fail "/openapi.json over HTTPS"
SESSION=$(curl -sf --cacert "$T/ca.crt" -X POST -d "{\"username\":\"admin\",\"password\":\"$GC_ADMIN_PASSWORD\"}" "$GC/login" | jq -r .token)
[[ ${#SESSION} -ge 32 ]] || fail "login over HTTPS"
proto=$(curl -s -o /dev/null -w '%{scheme} %{http_version}' --cacert "$T/ca.crt" "$GC/ping")
[[ $proto == "HTTPS 1.1" ]] || fail "answered as '$proto'"
if curl -s -o /dev/null --max-time 5 "$GC/ping" 2>"$T/noca.txt"; then fail "a client without the CA was not refused"; fi
if curl -s -o /dev/null --max-time 5 --tls-max 1.1 --cacert "$T/ca.crt" "$GC/ping" 2>/dev/null; then
    fail "TLS 1.1 was accepted"
fi
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$PORT/ping" || true)
[[ $code != 200 ]] || fail "plain HTTP answered 200 on the HTTPS port"

if [[ -n "$SAT" ]]; then
    [[ -x "$SAT" ]] || fail "$SAT is not executable"
    log "2. satellite-lite onboards and heartbeats over HTTPS (groundControl.caFile)"
    AUTH=(--cacert "$T/ca.crt" -H "Authorization: Bearer $SESSION" -H "Content-Type: application/json")
    curl -sf "${AUTH[@]}" -X POST -d '{"group":"ships","artifacts":[]}' "$GC/api/groups/sync" >/dev/null || fail "group sync"
    curl -sf "${AUTH[@]}" -X POST -d '{"name":"edge-01","groups":["ships"]}' "$GC/api/satellites" | jq -r .token >"$T/join.token"
    SAT_ADDR=127.0.0.1:$(free_port)
    jq -n --arg store "$T/store" --arg listen "$SAT_ADDR" --arg gc "$GC" --arg tok "$T/join.token" --arg ca "$T/ca.crt" \
        '{storage:{path:$store}, registry:{listen:$listen},
          groundControl:{url:$gc, tokenFile:$tok, caFile:$ca, heartbeat:"1s"}}' >"$T/sat.json"
    "$SAT" run --config "$T/sat.json" >"$T/sat.log" 2>&1 &
    SAT_PID=$!
    on_exit "kill_wait $SAT_PID"
    deadline=$((SECONDS + 30))
    until curl -sf "${AUTH[@]}" "$GC/api/satellites/edge-01" | jq -e '.last_seen' >/dev/null; do
        kill -0 "$SAT_PID" 2>/dev/null || fail "satellite-lite exited: $(tail -n 5 "$T/sat.log")"
        ((SECONDS < deadline)) || fail "no heartbeat over HTTPS within 30 s: $(tail -n 5 "$T/sat.log")"
        sleep 0.5
    done
    [[ -s "$T/store/fleet/link.json" ]] || fail "satellite-lite stored no link after ZTR over HTTPS"
    kill_wait "$SAT_PID"
fi
kill_wait "$GC_PID"

log "3. half a TLS config, or a bad certificate, stops serve with a clear error"
jq '.tls = {keyFile: .tls.keyFile}' "$T/config.json" >"$T/half.json"
set +e; "$BIN" serve --config "$T/half.json" >"$T/half.out" 2>&1; rc=$?; set -e
[[ $rc == 64 ]] && grep -q "certFile and keyFile" "$T/half.out" || fail "half a tls config: exit $rc: $(cat "$T/half.out")"
printf 'not a certificate\n' >"$T/bad.crt"
jq --arg c "$T/bad.crt" '.tls.certFile = $c' "$T/config.json" >"$T/bad.json"
set +e; "$BIN" serve --config "$T/bad.json" >"$T/bad.out" 2>&1; rc=$?; set -e
[[ $rc == 64 ]] && grep -q "tls.certFile" "$T/bad.out" || fail "a bad certificate: exit $rc: $(cat "$T/bad.out")"
log "PASS: ground-control serves HTTPS with its configured certificate"
