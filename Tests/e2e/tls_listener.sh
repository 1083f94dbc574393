#!/usr/bin/env bash
# tls_listener.sh BIN: `satellite-lite serve` with registry.tls (mbedTLS listener).
#   - skopeo pushes and pulls over HTTPS with the CA (--cert-dir), digests round-trip;
#   - curl with the CA gets /v2/ 200; curl without the CA fails verification;
#   - plain HTTP to the TLS port gets an answer and a closed connection (no hang, no crash),
#     and the server still serves HTTPS afterwards;
#   - SIGHUP picks up a renewed certificate; a bad key is refused with a log line, old pair kept.
# Cost: ~5 s.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

BIN=${1:-}
[[ -n "$BIN" && -x "$BIN" ]] || fail "usage: $0 /path/to/satellite-lite (got '${BIN:-}')"
for t in skopeo openssl jq curl python3; do
    command -v "$t" >/dev/null || fail "$t is not installed"
done
T=$E2E_TMP
export E2E_CMD_TIMEOUT=${E2E_CMD_TIMEOUT:-60}
PORT=$(free_port)
ADDR=127.0.0.1:$PORT

tls_self_signed "$T"
mkdir -p "$T/certs.d" && cp "$T/cert.pem" "$T/certs.d/ca.crt"
python3 "$MKIMAGE" single "oci:$T/src:v1" --layers 2 --size 300000 >/dev/null || fail "mkimage failed"

jq -n --arg s "$T/store" --arg l "$ADDR" --arg c "$T/cert.pem" --arg k "$T/key.pem" \
    '{storage:{path:$s}, registry:{listen:$l, tls:{certFile:$c, keyFile:$k}}}' > "$T/config.json"
"$BIN" serve --config "$T/config.json" >"$T/serve.log" 2>&1 &
SAT_PID=$!
on_exit "kill_wait $SAT_PID 2>/dev/null || true"
for _ in $(seq 50); do
    curl -s --cacert "$T/cert.pem" -o /dev/null "https://$ADDR/healthz" && break
    kill -0 "$SAT_PID" 2>/dev/null || fail "serve exited: $(tail -n 3 "$T/serve.log" | tr '\n' ' ')"
    sleep 0.2
done
grep -q "registry serving HTTPS" "$T/serve.log" || fail "no 'registry serving HTTPS' log line"

code=$(curl -s --max-time 10 --cacert "$T/cert.pem" -o /dev/null -w '%{http_code}' "https://$ADDR/v2/")
[[ $code == 200 ]] || fail "curl --cacert https /v2/ gave $code"
if curl -s --max-time 10 -o /dev/null "https://$ADDR/v2/"; then
    fail "curl without the CA trusted the self-signed certificate"
fi

run_or_fail "skopeo push over TLS" e2e_skopeo copy -q --dest-cert-dir "$T/certs.d" "oci:$T/src:v1" "docker://$ADDR/e2e/img:v1"
run_or_fail "skopeo pull over TLS" e2e_skopeo copy -q --src-cert-dir "$T/certs.d" "docker://$ADDR/e2e/img:v1" "oci:$T/back:v1"
want=$(e2e_skopeo inspect --raw "oci:$T/src:v1" | sha256sum | cut -d' ' -f1)
got=$(e2e_skopeo inspect --raw "oci:$T/back:v1" | sha256sum | cut -d' ' -f1)
[[ $want == "$got" ]] || fail "manifest changed over TLS: $want vs $got"
if e2e_skopeo inspect --raw "docker://$ADDR/e2e/img:v1" >"$T/noca.out" 2>&1; then
    fail "skopeo without the CA pulled over TLS"
fi

# Plain HTTP on the TLS port: answered and closed within the timeout, never a hang.
start=$(date +%s)
body=$(curl -s --max-time 10 "http://$ADDR/v2/" || true)
(( $(date +%s) - start < 9 )) || fail "plain HTTP on the TLS port hung"
[[ $body == *"HTTPS only"* || -z $body ]] || fail "plain HTTP on the TLS port got an unexpected answer: $body"
# Garbage bytes too.
head -c 2000 /dev/urandom | timeout 10 python3 -c '
import socket,sys
s=socket.create_connection(("127.0.0.1",int(sys.argv[1])),timeout=8)
s.sendall(sys.stdin.buffer.read())
try:
    while s.recv(4096): pass
except socket.timeout:
    sys.exit("garbage: the connection was not closed")
' "$PORT" || fail "garbage on the TLS port: connection not closed"
kill -0 "$SAT_PID" 2>/dev/null || fail "serve died after plain HTTP/garbage: $(tail -n 3 "$T/serve.log" | tr '\n' ' ')"
code=$(curl -s --max-time 10 --cacert "$T/cert.pem" -o /dev/null -w '%{http_code}' "https://$ADDR/v2/e2e/img/manifests/v1" -H 'Accept: application/vnd.oci.image.manifest.v1+json')
[[ $code == 200 ]] || fail "HTTPS after plain HTTP/garbage gave $code"
# SIGHUP: a renewed pair is picked up; a bad key is refused and the pair in use kept.
cp "$T/cert.pem" "$T/old.pem"
tls_self_signed "$T"
kill -HUP "$SAT_PID"; sleep 1
code=$(curl -s --max-time 10 --cacert "$T/cert.pem" -o /dev/null -w '%{http_code}' "https://$ADDR/v2/")
[[ $code == 200 ]] || fail "after SIGHUP the new certificate is not served ($code)"
if curl -s --max-time 10 --cacert "$T/old.pem" -o /dev/null "https://$ADDR/v2/"; then fail "after SIGHUP the old certificate is still served"; fi
echo garbage > "$T/key.pem"; kill -HUP "$SAT_PID"; sleep 1
grep -q "TLS certificate not reloaded" "$T/serve.log" || fail "a bad key on SIGHUP was not logged"
code=$(curl -s --max-time 10 --cacert "$T/cert.pem" -o /dev/null -w '%{http_code}' "https://$ADDR/v2/")
[[ $code == 200 ]] || fail "after a bad SIGHUP the pair in use was dropped ($code)"
echo "ok tls_listener"
