#!/usr/bin/env bash
# tls_run.sh BIN: `satellite-lite run` (sync + pull-through proxy + authenticated pushes)
# with registry.tls, a certificate issued by a test CA (leaf + CA, not self-signed):
#   1. the sync pass stores library/app:v1 from Debian's docker-registry; skopeo pulls it
#      over HTTPS with the CA; a tag NOT in the state comes through the pull-through proxy
#      over HTTPS; no-CA clients are refused;
#   2. pushes: skopeo --dest-creds over HTTPS works, no credentials get 401;
#   3. an 80 MiB blob (> 64 MiB) round-trips over HTTPS (bounded reads, never sendfile):
#      digest of the GET matches, a Range across the 64 MiB mark matches the same bytes of
#      the file; the server's peak RSS (VmHWM, reset first) stays bounded while it streams;
#   4. SIGHUP re-reads registry.users: a changed password works at once, the old one gets
#      401; a broken htpasswd file is logged and the users in use are kept.
# Cost: ~25 s.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

BIN=${1:-}
[[ -n "$BIN" && -x "$BIN" ]] || fail "usage: $0 /path/to/satellite-lite (got '${BIN:-}')"
for t in docker-registry skopeo openssl htpasswd jq curl python3 sha256sum; do
    command -v "$t" >/dev/null || fail "$t is not installed"
done
T=$E2E_TMP
export E2E_CMD_TIMEOUT=${E2E_CMD_TIMEOUT:-90}
PORT=$(free_port)
SAT=127.0.0.1:$PORT
RSS_LIMIT_MIB=${TLS_RSS_LIMIT_MIB:-64}

# A CA and a leaf it signed (what a site with its own CA has).
tls_ca_and_leaf "$T"
mkdir -p "$T/certs.d" && cp "$T/ca.pem" "$T/certs.d/ca.crt"

start_docker_registry "$T/up"
UP=$DOCKER_REGISTRY_ADDR
APP=$(python3 "$MKIMAGE" single --platform linux/amd64 --layers 2 --size 300000 "oci:$T/app:v1") || fail "mkimage.py failed"
TOOL=$(python3 "$MKIMAGE" single --platform linux/amd64 --layers 1 --size 200000 "oci:$T/tool:v1") || fail "mkimage.py failed"
python3 "$MKIMAGE" single --platform linux/amd64 --layers 1 --size 100000 "oci:$T/mine:v1" >/dev/null || fail "mkimage.py failed"
run_or_fail "push library/app:v1 upstream" e2e_skopeo copy -q --preserve-digests --dest-tls-verify=false "oci:$T/app:v1" "docker://$UP/library/app:v1"
run_or_fail "push library/tool:v1 upstream" e2e_skopeo copy -q --preserve-digests --dest-tls-verify=false "oci:$T/tool:v1" "docker://$UP/library/tool:v1"

: > "$T/htpasswd"
htpasswd -b -B "$T/htpasswd" alice pw-one 2>/dev/null || fail "htpasswd failed"
jq -n --arg s "$T/store" --arg l "$SAT" --arg c "$T/cert.pem" --arg k "$T/key.pem" --arg u "http://$UP" --arg h "$T/htpasswd" \
    '{profile:"generic-amd64", storage:{path:$s},
      registry:{listen:$l, tls:{certFile:$c, keyFile:$k}, push:"authenticated", users:$h},
      upstream:{url:$u}, state:{images:["library/app:v1"], interval:"1h"},
      proxy:{enabled:true, allow:["library/**"]}}' > "$T/config.json"
"$BIN" run --config "$T/config.json" > "$T/run.log" 2>&1 &
SAT_PID=$!
on_exit "kill_wait $SAT_PID"
https() { curl -s --max-time 30 --cacert "$T/ca.pem" "$@"; }
wait_until 30 "run over HTTPS answering /v2/ (401 challenge)" \
    '[[ $(curl -s --max-time 2 --cacert "$T/ca.pem" -o /dev/null -w "%{http_code}" "https://$SAT/v2/") == 401 ]]' "$T/run.log"
grep -q "registry serving HTTPS" "$T/run.log" || fail "run: no 'registry serving HTTPS' log line"

# ---------------------------------------------------------------- 1. sync + proxy over TLS
wait_until 40 "the sync pass storing library/app:v1" 'grep -q "sync pass finished" "$T/run.log"' "$T/run.log"
run_or_fail "skopeo pull of the synced library/app:v1 over TLS" \
    e2e_skopeo copy -q --src-cert-dir "$T/certs.d" "docker://$SAT/library/app:v1" "oci:$T/back:v1"
got=$(jq -r '.manifests[0].digest' "$T/back/index.json")
[[ $got == "$APP" ]] || fail "synced library/app:v1 over TLS is $got, expected $APP"
run_or_fail "skopeo pull of library/tool:v1 through the proxy over TLS" \
    e2e_skopeo copy -q --src-cert-dir "$T/certs.d" "docker://$SAT/library/tool:v1" "oci:$T/tool-back:v1"
got=$(jq -r '.manifests[0].digest' "$T/tool-back/index.json")
[[ $got == "$TOOL" ]] || fail "proxied library/tool:v1 over TLS is $got, expected $TOOL"
for f in "$T/tool-back/blobs/sha256/"*; do
    [[ "$(sha256_file "$f")" == "sha256:$(basename "$f")" ]] || fail "proxied blob $(basename "$f") does not verify"
done
if e2e_skopeo inspect --raw "docker://$SAT/library/app:v1" > "$T/noca.out" 2>&1; then
    fail "skopeo without the CA pulled over TLS"
fi
grep -qi "certificate" "$T/noca.out" || fail "skopeo without the CA failed for another reason: $(tail -n 2 "$T/noca.out" | tr '\n' ' ')"
log "run over TLS: synced and proxied images pulled with the CA; without it refused"

# ---------------------------------------------------------------- 2. pushes with htpasswd credentials
run_or_fail "skopeo push with --dest-creds over TLS" \
    e2e_skopeo copy -q --dest-cert-dir "$T/certs.d" --dest-creds alice:pw-one "oci:$T/mine:v1" "docker://$SAT/team/mine:v1"
code=$(https -o "$T/body" -w '%{http_code}' -X POST "https://$SAT/v2/team/mine/blobs/uploads/")
[[ $code == 401 ]] && grep -q UNAUTHORIZED "$T/body" || fail "push without credentials over TLS got $code $(head -c 200 "$T/body")"
if e2e_skopeo copy -q --dest-cert-dir "$T/certs.d" "oci:$T/mine:v1" "docker://$SAT/team/mine:v2" > "$T/nocreds.out" 2>&1; then
    fail "skopeo push without credentials succeeded"
fi
log "pushes over TLS: with htpasswd credentials accepted, without 401"

# ---------------------------------------------------------------- 3. a blob > 64 MiB, and a Range
head -c $((80 << 20)) /dev/urandom > "$T/big"
BIG=sha256:$(sha256sum "$T/big" | cut -d' ' -f1)
loc=$(https -u alice:pw-one -D - -o /dev/null -X POST "https://$SAT/v2/team/big/blobs/uploads/" | tr -d '\r' | awk 'tolower($1)=="location:"{print $2}')
[[ -n $loc ]] || fail "no upload location for the big blob"
[[ $loc == http* ]] || loc="https://$SAT$loc"
sep='?'; [[ $loc == *\?* ]] && sep='&'
code=$(https -u alice:pw-one -o "$T/body" -w '%{http_code}' -X PUT -H 'Content-Type: application/octet-stream' \
    --data-binary @"$T/big" "$loc${sep}digest=$BIG")
[[ $code == 201 ]] || fail "PUT of the 80 MiB blob over TLS got $code $(head -c 200 "$T/body")"
echo 5 > "/proc/$SAT_PID/clear_refs" 2>/dev/null || true
got=$(https "https://$SAT/v2/team/big/blobs/$BIG" | sha256sum | cut -d' ' -f1)
[[ sha256:$got == "$BIG" ]] || fail "GET of the 80 MiB blob over TLS gave sha256:$got"
hwm=$(awk '/VmHWM/{print int($2/1024)}' "/proc/$SAT_PID/status")
(( hwm <= RSS_LIMIT_MIB )) || fail "serving the 80 MiB blob over TLS raised VmHWM to $hwm MiB (limit $RSS_LIMIT_MIB)"
start=$(( (64 << 20) - 1000 )) end=$(( (64 << 20) + 99999 ))
code=$(https -o "$T/range" -w '%{http_code}' -H "Range: bytes=$start-$end" "https://$SAT/v2/team/big/blobs/$BIG")
[[ $code == 206 ]] || fail "Range GET over TLS got $code"
cmp -s "$T/range" <(tail -c +$((start + 1)) "$T/big" | head -c $((end - start + 1))) \
    || fail "Range bytes=$start-$end over TLS does not match the file ($(stat -c %s "$T/range") bytes)"
log "80 MiB blob over TLS: digest matches, VmHWM $hwm MiB; Range across 64 MiB matches"

# ---------------------------------------------------------------- 4. SIGHUP re-reads registry.users
authcode() { https -u "$1" -o /dev/null -w '%{http_code}' -X POST "https://$SAT/v2/team/mine/blobs/uploads/"; }
[[ $(authcode alice:pw-one) == 202 ]] || fail "alice:pw-one is not accepted before the change"
htpasswd -b -B "$T/htpasswd" alice pw-two 2>/dev/null
kill -HUP "$SAT_PID"
wait_until 10 "htpasswd users reloaded" 'grep -q "htpasswd users reloaded" "$T/run.log"' "$T/run.log"
[[ $(authcode alice:pw-two) == 202 ]] || fail "after SIGHUP the new password is refused"
code=$(authcode alice:pw-one)
[[ $code == 401 ]] || fail "after SIGHUP the old password still gets $code"
cp "$T/htpasswd" "$T/htpasswd.good"
printf 'this is not an htpasswd file\n' > "$T/htpasswd"
kill -HUP "$SAT_PID"
wait_until 10 "the broken htpasswd file logged" 'grep -q "htpasswd users not reloaded" "$T/run.log"' "$T/run.log"
[[ $(authcode alice:pw-two) == 202 ]] || fail "a broken htpasswd file on SIGHUP dropped the users in use"
kill -0 "$SAT_PID" || fail "run exited"
log "SIGHUP: a changed password works at once, the old one gets 401; a broken file keeps the users in use"
echo "ok tls_run"
