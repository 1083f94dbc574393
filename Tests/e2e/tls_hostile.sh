#!/usr/bin/env bash
# tls_hostile.sh BIN: hostile TLS clients against `satellite-lite serve` with registry.tls
# (handshakeTimeout 2s, maxConnections 16); hostile.sh --bin runs it as its TLS cases.
# tls_hostile.py: idle connections filling every slot are closed at the handshake timeout
# and the slots come back (no descriptor leak); a ClientHello sent a byte per 0.5 s is closed
# at the timeout too; 60 clients vanishing mid-handshake (FIN and RST); truncated,
# oversized, garbage, bad-MAC and unknown-type records before and after the handshake are
# closed; 100 concurrent handshakes + GETs over 16 slots (200 or 429); idle handshaken connections cost
# bounded memory (< 160 KiB each); handshaken connections filling every slot (one kept alive
# after a request) are closed at registry.idleTimeout (2s) and the slots come back.
# After every case a good client gets 200.
# Cost: ~25 s.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

BIN=${1:-}
[[ -n "$BIN" && -x "$BIN" ]] || fail "usage: $0 /path/to/satellite-lite (got '${BIN:-}')"
need_tools openssl jq python3
T=$E2E_TMP
PORT=$(free_port)
tls_self_signed "$T"
jq -n --arg s "$T/store" --arg l "127.0.0.1:$PORT" --arg c "$T/cert.pem" --arg k "$T/key.pem" \
    '{profile:"generic-amd64", storage:{path:$s},
      registry:{listen:$l, maxConnections:16, idleTimeout:"2s", headerTimeout:"2s",
                tls:{certFile:$c, keyFile:$k, handshakeTimeout:"2s"}}}' > "$T/config.json"
"$BIN" serve --config "$T/config.json" > "$T/serve.log" 2>&1 &
SAT_PID=$!
on_exit "kill_wait $SAT_PID"
wait_until 30 "serve over HTTPS" 'curl -s --max-time 2 --cacert "$T/cert.pem" -o /dev/null "https://127.0.0.1:$PORT/v2/"' "$T/serve.log"
python3 "$E2E_DIR/tls_hostile.py" 127.0.0.1 "$PORT" "$T/cert.pem" "$SAT_PID" 2 16 2 \
    || fail "hostile TLS cases failed (server log: $(grep -ciE 'fatal|crash' "$T/serve.log") fatal lines)"
kill -0 "$SAT_PID" 2>/dev/null || fail "serve died: $(tail -n 3 "$T/serve.log" | tr '\n' ' ')"
echo "ok tls_hostile"
