#!/usr/bin/env bash
# static_tls.sh STATIC_BIN
# The fully static binary of scripts/build-static against an https upstream:
#   0. `ldd` says "not a dynamic executable"; the binary's libcurl is the static mbedTLS one.
#   1. a private CA and a server certificate (SAN IP:127.0.0.1, DNS:localhost: the address
#      only as an iPAddress SAN, which mbedTLS 2.28 itself does not check) made with
#      openssl; Debian's docker-registry serves TLS with it on 127.0.0.1 (http.tls);
#      skopeo pushes a small image, verifying the server against the CA (--dest-cert-dir).
#   2. `sync` with upstream.url https://127.0.0.1:PORT and caFile = the CA: exit 0, tag present
#      (the iPAddress SAN matched by Sources/CTLSVerify).
#   3. `sync` with upstream.url https://localhost:PORT, and https://NAME:PORT for a NAME that
#      /etc/hosts maps to 127.0.0.1 (getaddrinfo inside a static glibc binary), with caFile:
#      exit 0 (host name verified against the dNSName SANs).
#   4. no caFile (the built-in bundle, /etc/ssl/certs/ca-certificates.crt, does not know
#      the CA): exit 1 with a clear one-line TLS/certificate error.
#   5. caFile of an unrelated CA: exit 1 with a TLS/certificate error.
#   5b. a certificate whose iPAddress SAN is another address: BADCERT_CN_MISMATCH by IP,
#      verified by its DNS name.
#   6. `insecure: true` without caFile: exit 0.
#   7. a hook run by the static binary gets no descriptor the binary inherited.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

BIN=${1:-}
[[ -n "$BIN" && -x "$BIN" ]] || fail "usage: $0 /path/to/static/satellite-lite (got '${BIN:-}')"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
for t in docker-registry skopeo jq python3 curl openssl ldd; do
    command -v "$t" >/dev/null || fail "$t is not installed"
done
T=$E2E_TMP
SYNC_TIMEOUT=${SYNC_TIMEOUT:-60}
export E2E_CMD_TIMEOUT=${E2E_CMD_TIMEOUT:-60}

# ---- 0. static
ldd_out=$(ldd "$BIN" 2>&1 || true)
grep -q "not a dynamic executable" <<<"$ldd_out" || fail "ldd $BIN: '$ldd_out' (expected: not a dynamic executable)"
grep -qa "mbedTLS: Handshake complete" "$BIN" || fail "$BIN does not contain libcurl's mbedTLS backend"
log "ldd: $(tr -s ' \t\n' ' ' <<<"$ldd_out")"

# ---- 1. CA, server certificate, TLS upstream, image
mkdir -p "$T/pki" "$T/certdir" "$T/up/storage"
ossl() { timeout 60 openssl "$@" >>"$T/pki/openssl.log" 2>&1 || fail "openssl $1 failed: $(tail -n 3 "$T/pki/openssl.log" | tr '\n' ' ')"; }
ossl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days 2 -subj "/CN=satellite-lite e2e CA" \
    -keyout "$T/pki/ca.key" -out "$T/pki/ca.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
ossl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days 2 -subj "/CN=unrelated CA" \
    -keyout "$T/pki/other.key" -out "$T/pki/other.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
ossl req -new -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$T/pki/server.key" -out "$T/pki/server.csr"
# The address is an iPAddress SAN only: mbedTLS 2.28 (Debian 12) does not compare those
# itself, satellite-lite's verify callback does (Sources/CTLSVerify).
# A name that glibc's resolver (NSS "files") maps to 127.0.0.1 through /etc/hosts, e.g. the
# host name: libcurl answers "localhost" itself, so only such a name exercises getaddrinfo
# in the static binary.
NSS_NAME=$(awk '$1 == "127.0.0.1" { for (i = 2; i <= NF; i++) if ($i !~ /^localhost/) { print $i; exit } }' /etc/hosts 2>/dev/null || true)
san="IP:127.0.0.1,DNS:localhost${NSS_NAME:+,DNS:$NSS_NAME}"
printf '%s\n' "subjectAltName=$san" "basicConstraints=CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" > "$T/pki/server.ext"
ossl x509 -req -in "$T/pki/server.csr" -CA "$T/pki/ca.pem" -CAkey "$T/pki/ca.key" -CAcreateserial \
    -days 2 -sha256 -extfile "$T/pki/server.ext" -out "$T/pki/server.pem"
cp "$T/pki/ca.pem" "$T/certdir/ca.crt"

port=$(free_port)
cat > "$T/up/config.yml" <<YAML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $T/up/storage
http:
  addr: 127.0.0.1:$port
  tls:
    certificate: $T/pki/server.pem
    key: $T/pki/server.key
YAML
# serve_tls CONFIG URL: docker-registry with CONFIG (stopped at exit); waits until URL
# answers, verified with the CA.
serve_tls() {
    local config=$1 url=$2 pid deadline
    local -a unset_env=()
    local v
    for v in $(compgen -e | grep '^REGISTRY_' || true); do unset_env+=(-u "$v"); done
    env "${unset_env[@]}" docker-registry serve "$config" >"$config.log" 2>&1 &
    pid=$!
    on_exit "kill_wait $pid"
    deadline=$((SECONDS + 20))
    until curl -s -o /dev/null --max-time 2 --cacert "$T/pki/ca.pem" "$url"; do
        kill -0 "$pid" 2>/dev/null || fail "docker-registry exited: $(tail -n 3 "$config.log" | tr '\n' ' ')"
        ((SECONDS < deadline)) || fail "$url did not answer with the CA within 20s"
        sleep 0.2
    done
}
serve_tls "$T/up/config.yml" "https://127.0.0.1:$port/v2/"
UP=127.0.0.1:$port
log "TLS upstream on https://$UP (private CA)"

digest=$(python3 "$MKIMAGE" single --platform linux/amd64 --layers 2 --size 20000 "oci:$T/src:v1") \
    || fail "mkimage failed"
out=$(e2e_skopeo copy -q --preserve-digests --dest-cert-dir "$T/certdir" "oci:$T/src:v1" "docker://$UP/edge/tls:v1" 2>&1) \
    || fail "skopeo push over TLS (verifying with the CA) failed: $(tail -n 2 <<<"$out" | tr '\n' ' ')"

# write_config FILE STORE UPSTREAM_JSON
write_config() {
    jq -n --arg store "$2" --arg listen "127.0.0.1:$(free_port)" --argjson up "$3" \
        '{storage:{path:$store}, registry:{listen:$listen}, upstream:$up,
          state:{images:["edge/tls:v1"], interval:"1h"}, sync:{concurrency:2}}' > "$1"
}
# run_sync NAME UPSTREAM_JSON: fresh store; sets RC, OUT (file), STORE.
run_sync() {
    local name=$1
    STORE=$T/$name/store
    OUT=$T/$name/sync.out
    mkdir -p "$T/$name"
    write_config "$T/$name/config.json" "$STORE" "$2"
    set +e
    timeout --kill-after=5 "$SYNC_TIMEOUT" "$BIN" sync --config "$T/$name/config.json" >"$OUT" 2>&1
    RC=$?
    set -e
    ((RC != 124 && RC != 137)) || fail "$name: sync did not finish within ${SYNC_TIMEOUT}s: $(tail -n 3 "$OUT" | tr '\n' ' ')"
}
expect_synced() {
    ((RC == 0)) || fail "$1: sync exited $RC, expected 0: $(grep -v '^\s*$' "$OUT" | tail -n 4 | tr '\n' ' ')"
    local tag
    tag=$(tr -d ' \n' < "$STORE/repositories/edge/tls/_manifests/tags/v1" 2>/dev/null || true)
    [[ $tag == "$digest" ]] || fail "$1: tag edge/tls:v1 is '$tag' in the store, expected $digest"
    log "ok: $1"
}
expect_tls_error() {
    ((RC == 1)) || fail "$1: sync exited $RC, expected 1: $(grep -v '^\s*$' "$OUT" | tail -n 4 | tr '\n' ' ')"
    grep -qiE 'certificate|SSL|TLS|x509|verif' "$OUT" \
        || fail "$1: no TLS/certificate error in the output: $(grep -v '^\s*$' "$OUT" | tail -n 4 | tr '\n' ' ')"
    [[ ! -e "$STORE/repositories/edge/tls/_manifests/tags/v1" ]] || fail "$1: the tag was stored although TLS failed"
    log "ok: $1: $(grep -iE 'certificate|SSL|TLS|x509|verif' "$OUT" | head -n 1 | cut -c1-220)"
}

# ---- 2. caFile, by IP
run_sync ca-ip "$(jq -n --arg u "https://$UP" --arg ca "$T/pki/ca.pem" '{url:$u, caFile:$ca}')"
expect_synced "caFile, https://$UP"

# ---- 3. caFile, by name: "localhost" (libcurl resolves it itself) and a name from
#         /etc/hosts (static glibc getaddrinfo: nsswitch.conf, /etc/hosts, no NSS modules)
run_sync ca-localhost "$(jq -n --arg u "https://localhost:$port" --arg ca "$T/pki/ca.pem" '{url:$u, caFile:$ca}')"
expect_synced "caFile, https://localhost:$port"
if [[ -n $NSS_NAME ]]; then
    run_sync ca-hosts-name "$(jq -n --arg u "https://$NSS_NAME:$port" --arg ca "$T/pki/ca.pem" '{url:$u, caFile:$ca}')"
    expect_synced "caFile, https://$NSS_NAME:$port (getaddrinfo through /etc/hosts)"
else
    log "skip: no name other than localhost maps to 127.0.0.1 in /etc/hosts"
fi

# ---- 4. no caFile: the default bundle does not trust the private CA
run_sync no-ca "$(jq -n --arg u "https://$UP" '{url:$u}')"
expect_tls_error "no caFile"

# ---- 5. the wrong CA
run_sync wrong-ca "$(jq -n --arg u "https://$UP" --arg ca "$T/pki/other.pem" '{url:$u, caFile:$ca}')"
expect_tls_error "caFile of an unrelated CA"

# ---- 5b. a certificate for another address (IP:127.0.0.9) reached as 127.0.0.1: refused as
# a name mismatch, while the same certificate by its DNS name (localhost) verifies
ossl req -new -newkey rsa:2048 -nodes -subj "/CN=elsewhere" -keyout "$T/pki/other-ip.key" -out "$T/pki/other-ip.csr"
printf '%s\n' "subjectAltName=IP:127.0.0.9,DNS:localhost" "basicConstraints=CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" > "$T/pki/other-ip.ext"
ossl x509 -req -in "$T/pki/other-ip.csr" -CA "$T/pki/ca.pem" -CAkey "$T/pki/ca.key" -CAcreateserial \
    -days 2 -sha256 -extfile "$T/pki/other-ip.ext" -out "$T/pki/other-ip.pem"
port2=$(free_port)
sed -e "s|127.0.0.1:$port|127.0.0.1:$port2|" -e "s|$T/pki/server.pem|$T/pki/other-ip.pem|" -e "s|$T/pki/server.key|$T/pki/other-ip.key|" \
    "$T/up/config.yml" > "$T/up/config2.yml"
serve_tls "$T/up/config2.yml" "https://localhost:$port2/v2/"
run_sync other-ip "$(jq -n --arg u "https://127.0.0.1:$port2" --arg ca "$T/pki/ca.pem" '{url:$u, caFile:$ca}')"
((RC == 1)) || fail "certificate for IP 127.0.0.9 accepted for 127.0.0.1: sync exited $RC"
grep -q "BADCERT_CN_MISMATCH" "$OUT" || fail "other address: no BADCERT_CN_MISMATCH: $(grep -v '^\s*$' "$OUT" | tail -n 3 | tr '\n' ' ')"
log "ok: a certificate for another IP address is refused (BADCERT_CN_MISMATCH)"
run_sync other-ip-by-name "$(jq -n --arg u "https://localhost:$port2" --arg ca "$T/pki/ca.pem" '{url:$u, caFile:$ca}')"
expect_synced "the same certificate by its DNS name"

# ---- 6. insecure
run_sync insecure "$(jq -n --arg u "https://$UP" '{url:$u, insecure:true}')"
expect_synced "insecure: true"

# ---- 7. hooks from the static binary: an inherited descriptor (no close-on-exec) stays
# out of the hook, and the hook runs in / (posix_spawn's addclosefrom and addchdir are
# linked statically, not looked up at run time)
jq -n --arg s "$T/hookstore" '{storage:{path:$s}, hooks:[{on:"sync-completed",
    run:"if [ -e /proc/$$/fd/7 ]; then echo fd7-leaked; else echo fd7-closed; fi; echo cwd=$(pwd)"}]}' >"$T/hooks.json"
out=$(exec 7</dev/null; "$BIN" hooks run --config "$T/hooks.json" --event sync-completed 2>&1) \
    || fail "hooks run with the static binary: $out"
grep -q "| fd7-closed" <<<"$out" || fail "a descriptor of the agent reached the hook: $out"
grep -q "| cwd=/$" <<<"$out" || fail "the hook did not run in /: $out"
log "ok: hooks from the static binary get no inherited descriptors"

echo "PASS [static_tls]: static binary ($(stat -c %s "$BIN") bytes) synced over TLS with caFile (by IP, localhost${NSS_NAME:+, $NSS_NAME}) and insecure; refused unknown CAs"
