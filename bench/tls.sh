#!/usr/bin/env bash
# bench/tls.sh [--bin PATH] [--runs N] [--size MiB] [--before PATH]
#
# The mbedTLS listener against plain HTTP, same binary, same run:
#   1. size of the binary (and of --before, e.g. main's .build-static/satellite-lite, with
#      the difference);
#   2. RSS: per run, two fresh `serve` processes of the binary, one with registry.tls
#      (self-signed P-256 certificate), one plain, same profile; VmRSS idle (nothing served
#      yet), with 1 and with 50 idle connections (TLS: handshake + one GET /v2/ each, then
#      idle; plain: one GET each, then idle); medians over --runs and the TLS/plain ratio;
#   3. throughput: one --size MiB (default 256) random blob pushed into both, then --runs
#      (default 5) alternating pulls by curl to /dev/null (HTTPS with --cacert vs HTTP);
#      medians of the seconds, MiB/s and the ratio. curl (OpenSSL) runs on the same 2 cores;
#   4. the ciphers alone: bench/tls-cipher-speed.c against Debian's libmbedcrypto.a.
# Nothing is kept (temp dir). Default binary: .build-static/satellite-lite, else
# .build/release/satellite-lite.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/../Tests/e2e/lib.sh"

BIN="" RUNS=5 SIZE=256 BEFORE=""
while (($#)); do
    case $1 in
        --bin) BIN=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --size) SIZE=$2; shift 2 ;;
        --before) BEFORE=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
        *) fail "unknown option $1" ;;
    esac
done
if [[ -z $BIN ]]; then
    for b in "$HERE/../.build-static/satellite-lite" "$HERE/../.build/release/satellite-lite"; do
        [[ -x $b ]] && { BIN=$b; break; }
    done
fi
[[ -n $BIN && -x $BIN ]] || fail "no binary: build one (scripts/build-static) or pass --bin"
for t in openssl jq curl python3 sha256sum ss; do command -v "$t" >/dev/null || fail "$t is not installed"; done
T=$E2E_TMP

echo "binary: $BIN ($(stat -c %s "$BIN") bytes)"
if [[ -n $BEFORE ]]; then
    echo "before: $BEFORE ($(stat -c %s "$BEFORE") bytes); difference $(( $(stat -c %s "$BIN") - $(stat -c %s "$BEFORE") )) bytes"
fi

tls_self_signed "$T"
# start_pair: a TLS and a plain `serve` of the binary, fresh stores, waits for both.
start_pair() {
    TLS_PORT=$(free_port) PLAIN_PORT=$(free_port)
    rm -rf "$T/tls-store" "$T/plain-store"
    jq -n --arg s "$T/tls-store" --arg l "127.0.0.1:$TLS_PORT" --arg c "$T/cert.pem" --arg k "$T/key.pem" \
        '{profile:"generic-amd64", storage:{path:$s}, registry:{listen:$l, tls:{certFile:$c, keyFile:$k}}}' > "$T/tls.json"
    jq -n --arg s "$T/plain-store" --arg l "127.0.0.1:$PLAIN_PORT" \
        '{profile:"generic-amd64", storage:{path:$s}, registry:{listen:$l}}' > "$T/plain.json"
    "$BIN" serve --config "$T/tls.json" > "$T/tls.log" 2>&1 &
    TLS_PID=$!
    "$BIN" serve --config "$T/plain.json" > "$T/plain.log" 2>&1 &
    PLAIN_PID=$!
    # Readiness by the listening socket, not by a request: the idle figure is of a process
    # that has served nothing yet.
    wait_until 30 "the TLS server" 'ss -Hltn "sport = :$TLS_PORT" | grep -q LISTEN' "$T/tls.log"
    wait_until 30 "the plain server" 'ss -Hltn "sport = :$PLAIN_PORT" | grep -q LISTEN' "$T/plain.log"
}
stop_pair() { kill_wait "$TLS_PID"; kill_wait "$PLAIN_PID"; }
on_exit 'stop_pair'

# ---------------------------------------------------------------- RSS with idle connections
echo
echo "RSS (VmRSS KiB) of fresh processes: idle, with 1 and with 50 idle connections (each did one GET /v2/); medians of $RUNS runs"
: > "$T/rss"
for ((i = 1; i <= RUNS; i++)); do
    start_pair
    python3 - "$TLS_PID" "$TLS_PORT" "$PLAIN_PID" "$PLAIN_PORT" "$T/cert.pem" >> "$T/rss" <<'PY'
import socket, ssl, sys, time
tls_pid, tls_port, plain_pid, plain_port, ca = sys.argv[1:6]
ctx = ssl.create_default_context(cafile=ca)

def rss(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

def connect(port, tls):
    s = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
    if tls:
        s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
    s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(4096)
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
    while len(rest) < length:
        rest += s.recv(4096)
    return s

row = []
for pid, port, tls in ((tls_pid, tls_port, True), (plain_pid, plain_port, False)):
    time.sleep(0.3)
    idle = rss(pid)
    held = [connect(port, tls)]
    time.sleep(0.2)
    one = rss(pid)
    held += [connect(port, tls) for _ in range(49)]
    time.sleep(0.3)
    fifty = rss(pid)
    for s in held:
        s.close()
    row += [idle, one, fifty]
print(*row)
PY
    stop_pair
done
python3 - "$T/rss" <<'PY'
import statistics, sys
rows = [list(map(int, l.split())) for l in open(sys.argv[1])]
m = [statistics.median(r[i] for r in rows) for i in range(6)]
for name, (idle, one, fifty) in (("tls", m[0:3]), ("plain", m[3:6])):
    print(f"  {name:5}  idle {idle:7.0f}  1 conn {one:7.0f}  50 conns {fifty:7.0f}"
          f"   (+{one - idle:.0f} KiB for the first connection, +{(fifty - one) / 49:.1f} KiB per further one)")
print(f"  ratio tls/plain: idle {m[0] / m[3]:.2f}, 1 conn {m[1] / m[4]:.2f}, 50 conns {m[2] / m[5]:.2f}")
PY

# ---------------------------------------------------------------- throughput
echo
echo "pull of one $SIZE MiB blob, $RUNS alternating runs (curl to /dev/null)"
start_pair
head -c $((SIZE << 20)) /dev/urandom > "$T/blob"
DIGEST=sha256:$(sha256sum "$T/blob" | cut -d' ' -f1)
push() { # BASE CURL_ARGS...
    local base=$1 loc; shift
    loc=$(curl -s "$@" -D - -o /dev/null -X POST "$base/v2/bench/tls/blobs/uploads/" | tr -d '\r' | awk 'tolower($1)=="location:"{print $2}')
    [[ $loc == http* ]] || loc="$base$loc"
    [[ $loc == *\?* ]] && loc="$loc&digest=$DIGEST" || loc="$loc?digest=$DIGEST"
    [[ $(curl -s "$@" -o /dev/null -w '%{http_code}' -X PUT -T "$T/blob" "$loc") == 201 ]] || fail "push to $base failed"
}
TLS_BASE=https://127.0.0.1:$TLS_PORT PLAIN_BASE=http://127.0.0.1:$PLAIN_PORT
push "$TLS_BASE" --cacert "$T/cert.pem"
push "$PLAIN_BASE"
pull() { # BASE CURL_ARGS... -> seconds
    local base=$1 out; shift
    out=$(curl -s "$@" -o /dev/null -w '%{http_code} %{size_download} %{time_total}' "$base/v2/bench/tls/blobs/$DIGEST")
    read -r code size secs <<<"$out"
    [[ $code == 200 && $size == $((SIZE << 20)) ]] || fail "pull from $base: $out"
    echo "$secs"
}
pull "$TLS_BASE" --cacert "$T/cert.pem" >/dev/null; pull "$PLAIN_BASE" >/dev/null   # warm-up (page cache)
: > "$T/times"
for ((i = 1; i <= RUNS; i++)); do
    if ((i % 2)); then
        a=$(pull "$TLS_BASE" --cacert "$T/cert.pem"); b=$(pull "$PLAIN_BASE")
    else
        b=$(pull "$PLAIN_BASE"); a=$(pull "$TLS_BASE" --cacert "$T/cert.pem")
    fi
    echo "$a $b" >> "$T/times"
    printf '  run %d: tls %6.3f s  plain %6.3f s  ratio %.2f\n' "$i" "$a" "$b" "$(python3 -c "print($a / $b)")"
done
python3 - "$T/times" "$SIZE" <<'PY'
import statistics, sys
rows = [tuple(map(float, l.split())) for l in open(sys.argv[1])]
size = int(sys.argv[2])
a = statistics.median(r[0] for r in rows)
b = statistics.median(r[1] for r in rows)
ratios = statistics.median(r[0] / r[1] for r in rows)
print(f"  median: tls {a:.3f} s ({size / a:.0f} MiB/s), plain {b:.3f} s ({size / b:.0f} MiB/s); median ratio tls/plain {ratios:.2f}")
PY
got=$(curl -s --cacert "$T/cert.pem" "$TLS_BASE/v2/bench/tls/blobs/$DIGEST" | sha256sum | cut -d' ' -f1)
[[ sha256:$got == "$DIGEST" ]] || fail "the blob pulled over TLS does not verify"
echo "  verified: the blob pulled over TLS matches its digest"

# ---------------------------------------------------------------- the cipher itself
echo
echo "mbedTLS cipher speed (Debian's static libmbedcrypto.a, 16 KiB records, median of 5 x 256 MiB)"
if gcc -O2 "$HERE/tls-cipher-speed.c" -o "$T/cipher-speed" -l:libmbedcrypto.a 2>"$T/gcc.err"; then
    "$T/cipher-speed"
else
    echo "  not measured: gcc/libmbedtls-dev missing ($(head -n 1 "$T/gcc.err"))"
fi
