#!/usr/bin/env bash
# hostile.sh HOST:PORT STORE_DIR [SERVER_PID]
# hostile.sh --bin PATH/TO/satellite-lite      (starts its own server, store in a temp dir)
#
# Hostile input against a running satellite-lite whose storage.path is
# STORE_DIR: traversal attempts in names, tags, upload ids and digests (plain,
# percent-encoded, double-encoded, backslash, NUL, overlong UTF-8), invalid
# digests, digest mismatches (blob and manifest, sha256 and sha512), oversized
# manifests (> 4 MiB: 413, with Content-Length, chunked, and headers only),
# malformed JSON, manifests referencing missing or foreign blobs, bad ranges
# and Content-Ranges, bad Content-Lengths, and raw malformed HTTP (python3
# socket: garbage request lines, negative/huge/duplicate Content-Length,
# Content-Length with chunked, bad chunk sizes, header bombs, 1 MiB URLs), and
# (with --bin) push authorisation: malformed Authorization headers, a 200 KB one, and the
# timing of wrong-password answers (known vs unknown user, growing per-client delay).
# Every case must get a 4xx (never 5xx, never a dropped connection where an
# HTTP answer is possible); when the request reached the registry API the body
# must be OCI error JSON {"errors":[{"code":...}]}; GET /v2/ must answer 200
# after every case and at the end.
# Nothing may appear outside STORE_DIR: everything beside it (its parent
# directory, including a canary directory this script creates there) is
# compared before/after (new, removed or modified paths), and no file named
# with this run's nonce (used in the traversal payloads) may exist under
# /tmp, the parent directory or the server's working directory.
# Connection flows: a second PATCH/DELETE on a session in use (409), clients
# vanishing mid-body (session keeps what arrived; a short manifest is not
# stored), 600 idle connections (200 or 429, then recovery).
# Finally a 1 GiB blob is streamed through one chunked PATCH (and finished with
# a wrong digest: 400, data discarded); the server's VmHWM (reset with
# clear_refs first; SERVER_PID, else the process listening on PORT) must stay
# <= HOSTILE_RSS_LIMIT_MIB (default 40).
# With --bin, a plain listener of its own with registry.idleTimeout 2s and maxConnections 8
# (idle_slots.py): kept-alive idle clients filling every slot are closed and the slots come
# back, trickling headers and a stalled body are cut; a SIGHUP raising idleTimeout applies
# to new connections. Then tls_hostile.sh runs the TLS cases against a TLS listener of its
# own (slow/idle handshakes, idle after the handshake, vanishing clients, bad records,
# concurrency, memory).
# Prints one line per failed case and exits 1 if any failed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

if [[ "${1:-}" == --bin ]]; then
    BIN=${2:-}
    [[ -x "$BIN" ]] || fail "--bin needs the satellite-lite binary, got '${BIN}'"
    mkdir -p "$E2E_TMP/X"
    port=$(free_port)
    printf '{"storage":{"path":"%s/X/store"},"registry":{"listen":"127.0.0.1:%s"},"profile":"generic-amd64"}\n' \
        "$E2E_TMP" "$port" > "$E2E_TMP/config.json"
    "$BIN" serve --config "$E2E_TMP/config.json" > "$E2E_TMP/server.log" 2>&1 &
    OWN_PID=$!
    on_exit "kill_wait $OWN_PID"
    WAIT_HTTP_PID=$OWN_PID WAIT_HTTP_LOG="$E2E_TMP/server.log" wait_http "http://127.0.0.1:$port/v2/" 30
    set -- "127.0.0.1:$port" "$E2E_TMP/X/store" "$OWN_PID"
fi
REG=${1:-}
STORE=${2:-}
check_registry "$REG"
[[ -n "$STORE" && -d "$STORE" ]] || fail "second argument must be the server's storage.path (a directory), got '${STORE}'"
STORE=$(cd "$STORE" && pwd -P)
PARENT=$(dirname "$STORE")
[[ "$PARENT" != / ]] || fail "STORE_DIR must not be a top-level directory (its parent is compared before/after)"
HOST=${REG%:*} PORT=${REG##*:}
PID=${3:-}
if [[ -z "$PID" ]]; then
    PID=$(ss -Hltnp "sport = :$PORT" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2 || true)
fi
[[ -n "$PID" && -r "/proc/$PID/status" ]] || fail "cannot find the server process listening on port $PORT; pass its PID as the third argument"
[[ -d "$STORE/blobs" ]] || fail "$STORE has no blobs/: is it really the store of $REG?"
U="http://$REG"
T=$E2E_TMP
NONCE="hx$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
RLIMIT_MIB=${HOSTILE_RSS_LIMIT_MIB:-40}

# ------------------------------------------------------------------ outside-the-store snapshot
CANARY="$PARENT/canary-$NONCE"
mkdir -p "$CANARY/sub"; echo canary > "$CANARY/sub/file"
on_exit "rm -rf '$CANARY'"
SRV_CWD=$(readlink "/proc/$PID/cwd" 2>/dev/null || echo "")
# snapshot: every path beside the store (not below it) with type, size and
# mtime; files the server holds open (its log) are listed by name only.
snapshot() {
    local open_files
    open_files=$(for f in /proc/"$PID"/fd/*; do readlink "$f"; done 2>/dev/null | sort -u)
    find "$PARENT" -path "$STORE" -prune -o -printf '%p\t%y\t%s\t%T@\n' \
        | awk -F'\t' -v open="$open_files" 'BEGIN{n=split(open,a,"\n"); for(i=1;i<=n;i++) o[a[i]]=1}
              { if ($1 in o) print $1 "\t" $2; else print }' | sort
}
snapshot > "$T/before.txt"

# ------------------------------------------------------------------ helpers
FAILS=0 CASES=0
FAILED=()
ok_line() { [[ -n "${E2E_VERBOSE:-}" ]] && printf '  ok   %-58s %s\n' "$1" "$2" >&2; return 0; }
bad() { FAILS=$((FAILS + 1)); FAILED+=("$1"); printf 'FAIL case %-52s %s\n' "$1" "$2" >&2; }

# is_oci_error FILE: {"errors":[{"code":"..."}...]}
is_oci_error() {
    jq -e '(.errors | type == "array" and length > 0) and all(.errors[]; (.code | type == "string") and (.code | length > 0))' "$1" >/dev/null 2>&1
}
alive_check() {  # CASE
    local code
    if ! kill -0 "$PID" 2>/dev/null; then
        bad "$1" "server process $PID died"
        fail "server died during case '$1'; $FAILS failures so far"
    fi
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$U/v2/" || true)
    [[ "$code" == 200 ]] || bad "$1" "GET /v2/ afterwards answered '$code', expected 200"
}
# judge CASE STATUS BODYFILE EXPECT(regex) JSON(req|opt|none) [DETAIL]
# JSON applies to 4xx answers: req = must be OCI error JSON, opt = an empty
# body is allowed (HTTP parser errors answered before the API), none = no check.
judge() {
    local name=$1 status=$2 body=$3 expect=$4 json=$5 detail=${6:-}
    CASES=$((CASES + 1))
    if [[ "$status" == 000 ]]; then
        bad "$name" "no HTTP answer (connection dropped)${detail:+: $detail}"
    elif [[ ! "$status" =~ ^($expect)$ ]]; then
        bad "$name" "status $status, expected $expect${detail:+ ($detail)}: $(head -c 200 "$body" 2>/dev/null | tr '\n' ' ')"
    elif [[ "$json" == req && "$status" == 4* ]] && ! is_oci_error "$body"; then
        bad "$name" "status $status but the body is not OCI error JSON: '$(head -c 120 "$body" | tr '\n' ' ')'"
    elif [[ "$json" == opt && "$status" == 4* && -s "$body" ]] && ! is_oci_error "$body"; then
        bad "$name" "status $status with a body that is not OCI error JSON: '$(head -c 120 "$body" | tr '\n' ' ')'"
    else
        ok_line "$name" "$status"
    fi
    alive_check "$name"
}
# c CASE EXPECT JSON CURL-ARGS...: one curl request (always --path-as-is)
c() {
    local name=$1 expect=$2 json=$3 status; shift 3
    status=$(curl -s --path-as-is --max-time 30 -o "$T/body" -w '%{http_code}' "$@" 2>/dev/null) || true
    judge "$name" "${status:-000}" "$T/body" "$expect" "$json"
}
X4='4[0-9][0-9]'
hdr() { tr -d '\r' < "$1" | awk -v h="$(tr 'A-Z' 'a-z' <<<"$2"):" 'tolower($1)==h{print $2}' | tail -n 1; }
sha() { printf 'sha256:%s' "$(sha256sum "$1" | cut -d' ' -f1)"; }
new_session() {  # REPO -> prints the upload path
    curl -s -o /dev/null -D "$T/sh" --max-time 10 -X POST "$U/v2/$1/blobs/uploads/"
    hdr "$T/sh" Location | sed "s#^$U##"
}

# ------------------------------------------------------------------ fixtures
R=hostile/ok
head -c 100000 /dev/urandom > "$T/blob"; BD=$(sha "$T/blob")
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' > "$T/config"; CD=$(sha "$T/config")
for f in blob config; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Expect:' --data-binary "@$T/$f" \
        "$U/v2/$R/blobs/uploads/?digest=$(sha "$T/$f")")
    [[ $code == 201 ]] || fail "fixture: monolithic push of $f to $R returned $code, expected 201"
done
manifest() {  # CONFIG_DIGEST LAYER_DIGEST -> OCI image manifest
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}' \
        "$1" "$(stat -c %s "$T/config")" "$2" "$(stat -c %s "$T/blob")"
}
manifest "$CD" "$BD" > "$T/good.json"; MD=$(sha "$T/good.json")
MT='Content-Type: application/vnd.oci.image.manifest.v1+json'
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "$MT" --data-binary "@$T/good.json" "$U/v2/$R/manifests/v1")
[[ $code == 201 ]] || fail "fixture: manifest PUT to $R:v1 returned $code, expected 201"
ZERO64=$(printf '0%.0s' {1..64}); FAKE="sha256:$ZERO64"

# ------------------------------------------------------------------ 1 GiB chunked PATCH: bounded memory (first: a clean peak)
log "streaming 1 GiB through one chunked PATCH (RSS limit ${RLIMIT_MIB} MiB)"
echo 5 > "/proc/$PID/clear_refs" 2>/dev/null || log "cannot reset VmHWM of $PID (not root?): the check includes earlier peaks"
hwm() { awk '/^VmHWM:/{print $2}' "/proc/$PID/status"; }
HWM0=$(hwm)
S=$(new_session $R)
[[ -n "$S" ]] || fail "POST uploads gave no Location for the 1 GiB upload"
t0=$SECONDS
status=$(head -c $(( 1024 * 1024 * 1024 )) /dev/zero \
    | curl -s -o "$T/body" -D "$T/h" -w '%{http_code}' --max-time 300 -X PATCH -H 'Expect:' \
        -H 'Content-Type: application/octet-stream' -T - "$U$S") || true   # -T -: chunked encoding
secs=$(( SECONDS - t0 ))
CASES=$((CASES + 1))
range=$(hdr "$T/h" Range)
if [[ "$status" != 202 || "$range" != "0-1073741823" ]]; then
    bad "1 GiB chunked PATCH" "status '$status' Range '$range', expected 202 and 0-1073741823"
fi
HWM1=$(hwm)
# finish with a wrong digest: 400, and the 1 GiB must not stay on disk
judge "PUT 1 GiB upload with a wrong digest" \
    "$(curl -s -o "$T/body" -w '%{http_code}' --max-time 120 -X PUT "$U$S?digest=$FAKE" || echo 000)" "$T/body" "$X4" req
[[ ! -e "$STORE/uploads/${S##*/}" ]] || bad "1 GiB upload discarded after the mismatch" \
    "$STORE/uploads/${S##*/} still exists ($(du -sh "$STORE/uploads/${S##*/}" | cut -f1))"
CASES=$((CASES + 1))
if (( HWM1 > RLIMIT_MIB * 1024 )); then
    bad "1 GiB chunked PATCH memory" "VmHWM $((HWM1 / 1024)) MiB > ${RLIMIT_MIB} MiB (before: $((HWM0 / 1024)) MiB)"
fi
log "1 GiB PATCH: ${secs}s, VmHWM $((HWM0 / 1024)) -> $((HWM1 / 1024)) MiB"

# ------------------------------------------------------------------ traversal in names
log "traversal"
c "GET /v2/../../etc/passwd"                         "$X4" opt "$U/v2/../../etc/passwd"
c "GET /v2/../../../etc/manifests/latest"            "$X4" req "$U/v2/../../../etc/manifests/latest"
c "GET name a/../../b manifests"                     "$X4" req "$U/v2/a/../../b/manifests/latest"
c "GET name %2e%2e/%2e%2e"                           "$X4" req "$U/v2/%2e%2e/%2e%2e/canary-$NONCE/manifests/latest"
c "GET name %2E%2E upper-case escapes"               "$X4" req "$U/v2/%2E%2E/canary-$NONCE/tags/list"
c "GET name with %2f ..%2f..%2f"                     "$X4" req "$U/v2/a%2f..%2f..%2fcanary-$NONCE/tags/list"
c "GET name double-encoded %252e%252e"               "$X4" req "$U/v2/%252e%252e/%252e%252e/etc/tags/list"
c "GET name backslash ..\\..\\"                      "$X4" req "$U/v2/..%5c..%5ccanary-$NONCE/tags/list"
c "GET name NUL byte %00"                            "$X4" req "$U/v2/a%00b/tags/list"
c "GET name overlong UTF-8 %c0%ae%c0%ae"             "$X4" req "$U/v2/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/tags/list"
c "GET name empty component //"                      "$X4" req "$U/v2//etc/passwd/manifests/latest"
c "GET name leading _ (reserved)"                    "$X4" req "$U/v2/_layers/x/tags/list"
c "GET name upper case"                              "$X4" req "$U/v2/Hostile/UP/tags/list"
c "GET name 300 chars"                               "$X4" req "$U/v2/$(printf 'a%.0s' {1..300})/tags/list"
c "PUT manifest name ../canary"                      "$X4" req -X PUT -H "$MT" --data-binary "@$T/good.json" "$U/v2/../canary-$NONCE/manifests/v1"
c "PUT manifest name %2e%2e%2fcanary"                "$X4" req -X PUT -H "$MT" --data-binary "@$T/good.json" "$U/v2/$R/%2e%2e%2f%2e%2e%2f%2e%2e%2fcanary-$NONCE/manifests/v1"
c "PUT manifest tag ..%2f..%2fpwned"                 "$X4" req -X PUT -H "$MT" --data-binary "@$T/good.json" "$U/v2/$R/manifests/..%2f..%2f$NONCE"
c "PUT manifest tag %2e%2e"                          "$X4" req -X PUT -H "$MT" --data-binary "@$T/good.json" "$U/v2/$R/manifests/%2e%2e"
c "PUT manifest tag .hidden"                         "$X4" req -X PUT -H "$MT" --data-binary "@$T/good.json" "$U/v2/$R/manifests/.$NONCE"
c "PUT manifest ?tag=../../pwned"                    "$X4" req -X PUT -H "$MT" --data-binary "@$T/good.json" "$U/v2/$R/manifests/$MD?tag=../../$NONCE"
c "POST upload name ..%2fcanary"                     "$X4" req -X POST "$U/v2/..%2fcanary-$NONCE/blobs/uploads/"
c "POST mount from=../../etc"                        "$X4" req -X POST "$U/v2/$R/blobs/uploads/?mount=$BD&from=../../etc"
c "POST mount=../../etc/passwd"                      "$X4" req -X POST "$U/v2/$R/blobs/uploads/?mount=../../etc/passwd&from=$R"
c "PATCH upload id ../../../canary"                  "$X4" req -X PATCH -H 'Expect:' --data-binary x "$U/v2/$R/blobs/uploads/../../../../canary-$NONCE"
c "PATCH upload id ..%2f..%2fcanary"                 "$X4" req -X PATCH -H 'Expect:' --data-binary x "$U/v2/$R/blobs/uploads/..%2f..%2f..%2f..%2fcanary-$NONCE"
c "PUT upload id %2e%2e"                             "$X4" req -X PUT "$U/v2/$R/blobs/uploads/%2e%2e?digest=$BD"
c "GET upload id of 32 non-hex chars"                "$X4" req "$U/v2/$R/blobs/uploads/$(printf 'z%.0s' {1..32})"
c "GET blob sha256:../../etc/passwd"                 "$X4" req "$U/v2/$R/blobs/sha256:../../../etc/passwd"
c "GET blob sha256%3a..%2f..%2fetc"                  "$X4" req "$U/v2/$R/blobs/sha256%3a..%2f..%2f..%2fetc%2fpasswd"
c "GET referrers ../.."                              "$X4" req "$U/v2/$R/referrers/..%2f..%2fetc"
c "GET tags/list?last=../../"                        "200|$X4" none "$U/v2/$R/tags/list?last=../../../etc"

# ------------------------------------------------------------------ invalid digests
log "invalid digests"
c "GET blob sha256:abc (short)"                      "$X4" req "$U/v2/$R/blobs/sha256:abc"
c "GET blob md5:..."                                 "$X4" req "$U/v2/$R/blobs/md5:d41d8cd98f00b204e9800998ecf8427e"
c "GET blob upper-case hex"                          "$X4" req "$U/v2/$R/blobs/sha256:$(printf 'A%.0s' {1..64})"
c "GET blob no algorithm"                            "$X4" req "$U/v2/$R/blobs/$ZERO64"
c "GET blob sha256: 65 hex"                          "$X4" req "$U/v2/$R/blobs/${FAKE}0"
c "HEAD blob invalid digest"                         "$X4" none -I "$U/v2/$R/blobs/sha256:xyz"
c "GET manifest sha256:zz"                           "$X4" req "$U/v2/$R/manifests/sha256:zz"
c "DELETE blob invalid digest"                       "$X4" req -X DELETE "$U/v2/$R/blobs/sha256:nothex"
c "POST ?digest=garbage (monolithic)"                "$X4" req -X POST -H 'Expect:' --data-binary x "$U/v2/$R/blobs/uploads/?digest=garbage"
c "POST ?mount=garbage"                              "$X4" req -X POST "$U/v2/$R/blobs/uploads/?mount=sha256:nothex&from=$R"
S=$(new_session $R)
c "PUT upload without ?digest"                       "$X4" req -X PUT "$U$S"
c "PUT upload ?digest=sha256:short"                  "$X4" req -X PUT "$U$S?digest=sha256:1234"
c "PUT upload ?digest=sha1:..."                      "$X4" req -X PUT "$U$S?digest=sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709"
c "PUT manifest layer digest sha256:zz"              "$X4" req -X PUT -H "$MT" --data-binary "$(manifest "$CD" sha256:zz)" "$U/v2/$R/manifests/bad1"
c "GET referrers invalid digest"                     "$X4" req "$U/v2/$R/referrers/sha256:nothex"

# ------------------------------------------------------------------ digest mismatch
log "digest mismatch"
head -c 5000 /dev/urandom > "$T/other"; OD=$(sha "$T/other")
c "POST monolithic, body != digest"                  "$X4" req -X POST -H 'Expect:' --data-binary "@$T/other" "$U/v2/$R/blobs/uploads/?digest=$FAKE"
c "  mismatched blob not visible (HEAD 404)"         404 none -I "$U/v2/$R/blobs/$FAKE"
c "  actual content not visible either"              404 none -I "$U/v2/$R/blobs/$OD"
S=$(new_session $R)
curl -s -o /dev/null -X PATCH -H 'Expect:' -H 'Content-Range: 0-4999' --data-binary "@$T/other" "$U$S"
c "PATCH + PUT ?digest of other content"             "$X4" req -X PUT "$U$S?digest=$BD"
S=$(new_session $R)
c "PUT monolithic to a session, wrong digest"        "$X4" req -X PUT -H 'Expect:' --data-binary "@$T/other" "$U$S?digest=$FAKE"
S=$(new_session $R)
c "PUT body with a sha512 digest that mismatches"    "$X4" req -X PUT -H 'Expect:' --data-binary "@$T/other" "$U$S?digest=sha512:$(printf '0%.0s' {1..128})"
c "PUT manifest by digest, body hashes differently"  "$X4" req -X PUT -H "$MT" --data-binary "@$T/good.json" "$U/v2/$R/manifests/$FAKE"
c "PUT manifest by sha512 digest, mismatch"          "$X4" req -X PUT -H "$MT" --data-binary "@$T/good.json" "$U/v2/$R/manifests/sha512:$(printf 'a%.0s' {1..128})"
c "  no blob/uploads leftover for the mismatch"      404 none -I "$U/v2/$R/blobs/$OD"

# ------------------------------------------------------------------ oversized manifests
log "oversized manifests"
python3 - "$T/big.json" $(( 4 * 1024 * 1024 + 1 )) <<'PY'
import sys
path, size = sys.argv[1], int(sys.argv[2])
head = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","annotations":{"pad":"'
tail = b'"}}'
open(path, "wb").write(head + b"a" * (size - len(head) - len(tail)) + tail)
PY
head -c $(( 6 * 1024 * 1024 )) /dev/zero | tr '\0' ' ' > "$T/big6.json"; printf '{}' >> "$T/big6.json"
c "PUT manifest 4 MiB + 1 (Content-Length)"          413 req -X PUT -H "$MT" -H 'Expect:' --data-binary "@$T/big.json" "$U/v2/$R/manifests/big"
c "PUT manifest 6 MiB (Content-Length)"              413 req -X PUT -H "$MT" -H 'Expect:' --data-binary "@$T/big6.json" "$U/v2/$R/manifests/big"
c "PUT manifest 4 MiB + 1 (chunked)"                 413 req -X PUT -H "$MT" -H 'Expect:' -H 'Transfer-Encoding: chunked' --data-binary "@$T/big.json" "$U/v2/$R/manifests/big"
c "PUT manifest 6 MiB with Expect: 100-continue"     413 req -X PUT -H "$MT" --data-binary "@$T/big6.json" "$U/v2/$R/manifests/big"
c "  oversized manifest not stored (tag big)"        404 req "$U/v2/$R/manifests/big"

# ------------------------------------------------------------------ malformed JSON
log "malformed manifests"
pm() { c "PUT manifest: $1" "$X4" req -X PUT -H "$MT" --data-binary "$2" "$U/v2/$R/manifests/bad"; }
pm "truncated {"                      '{'
pm "empty body"                       ''
pm "JSON array"                       '[]'
pm "JSON null"                        'null'
pm "JSON string"                      '"manifest"'
pm "schemaVersion 1"                  '{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}'
pm "schemaVersion string"             '{"schemaVersion":"2","layers":[]}'
pm "layers not an array"              '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"a/b","digest":"'"$CD"'","size":1},"layers":"x"}'
pm "descriptor size -1"               "$(manifest "$CD" "$BD" | sed 's/"size":100000/"size":-1/')"
pm "descriptor size 1e400"            "$(manifest "$CD" "$BD" | sed 's/"size":100000/"size":1e400/')"
pm "descriptor without digest"        '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"a/b","size":1},"layers":[]}'
pm "trailing garbage"                 "$(cat "$T/good.json")xyz"
pm "Content-Type != mediaType"        "$(sed 's/image.manifest.v1+json"/image.index.v1+json"/' "$T/good.json")"
printf '{"schemaVersion":2,"annotations":{"a":"\xff\xfe"}}' > "$T/badutf8.json"
c "PUT manifest: invalid UTF-8"                      "$X4" req -X PUT -H "$MT" --data-binary "@$T/badutf8.json" "$U/v2/$R/manifests/bad"
python3 -c 'import sys; sys.stdout.write("[" * 200000 + "]" * 200000)' > "$T/deep.json"
c "PUT manifest: 200000 nested arrays"               "$X4" req -X PUT -H "$MT" -H 'Expect:' --data-binary "@$T/deep.json" "$U/v2/$R/manifests/bad"
python3 -c 'import sys; sys.stdout.write("{\"schemaVersion\":2,\"a\":" + "{\"a\":" * 100000 + "1" + "}" * 100001)' > "$T/deepobj.json"
c "PUT manifest: 100000 nested objects"              "$X4" req -X PUT -H "$MT" -H 'Expect:' --data-binary "@$T/deepobj.json" "$U/v2/$R/manifests/bad"
c "  nothing tagged bad"                             404 req "$U/v2/$R/manifests/bad"

# ------------------------------------------------------------------ missing blobs
log "manifests referencing missing blobs"
pm "layer not in the store"           "$(manifest "$CD" "$FAKE")"
pm "config not in the store"          "$(manifest "$FAKE" "$BD")"
c "PUT manifest: blobs only in another repository"   "$X4" req -X PUT -H "$MT" --data-binary "@$T/good.json" "$U/v2/hostile/other/manifests/v1"
c "  manifest of the other repo not stored"          404 req "$U/v2/hostile/other/manifests/$MD"
c "GET blob of another repository"                   404 req "$U/v2/hostile/other/blobs/$BD"
c "GET unknown manifest digest"                      404 req "$U/v2/$R/manifests/$FAKE"
c "GET unknown repository tags"                      404 req "$U/v2/hostile/nope/tags/list"

# ------------------------------------------------------------------ ranges
log "ranges"
c "GET blob Range beyond the end"                    416 req -H 'Range: bytes=100000-100010' "$U/v2/$R/blobs/$BD"
c "GET blob Range start > end"                       "416|200" opt -H 'Range: bytes=500-100' "$U/v2/$R/blobs/$BD"
c "GET blob Range bytes=abc"                         "416|200" opt -H 'Range: bytes=abc' "$U/v2/$R/blobs/$BD"
c "GET blob Range bytes=-0"                          "416|200" opt -H 'Range: bytes=-0' "$U/v2/$R/blobs/$BD"
c "GET blob Range 99999999999999999999-"             "416|200" opt -H 'Range: bytes=99999999999999999999-' "$U/v2/$R/blobs/$BD"
c "GET blob Range items=0-1"                         "416|200" opt -H 'Range: items=0-1' "$U/v2/$R/blobs/$BD"
c "GET blob Range bytes=-5-10"                       "416|200" opt -H 'Range: bytes=-5-10' "$U/v2/$R/blobs/$BD"
S=$(new_session $R)
c "PATCH Content-Range not at offset 0 (5-9)"        416 req -X PATCH -H 'Expect:' -H 'Content-Range: 5-9' --data-binary 12345 "$U$S"
c "PATCH Content-Range garbage"                      416 req -X PATCH -H 'Expect:' -H 'Content-Range: abc' --data-binary 12345 "$U$S"
c "PATCH Content-Range end < start"                  416 req -X PATCH -H 'Expect:' -H 'Content-Range: 4-0' --data-binary 12345 "$U$S"
c "PATCH Content-Range negative"                     416 req -X PATCH -H 'Expect:' -H 'Content-Range: -5-0' --data-binary 12345 "$U$S"
c "PATCH Content-Range 0-99999999999999999999"       416 req -X PATCH -H 'Expect:' -H 'Content-Range: 0-99999999999999999999' --data-binary 12345 "$U$S"
c "PATCH Content-Range length != Content-Length"     416 req -X PATCH -H 'Expect:' -H 'Content-Range: 0-99' --data-binary 12345 "$U$S"
curl -s -o /dev/null -X PATCH -H 'Expect:' -H 'Content-Range: 0-4' --data-binary 12345 "$U$S"
c "PATCH overlapping an accepted chunk (0-4 again)"  416 req -X PATCH -H 'Expect:' -H 'Content-Range: 0-4' --data-binary 12345 "$U$S"
c "PATCH leaving a gap (10-14)"                      416 req -X PATCH -H 'Expect:' -H 'Content-Range: 10-14' --data-binary 12345 "$U$S"
c "PATCH upload of another repository"               404 req -X PATCH -H 'Expect:' --data-binary 12345 "$U/v2/hostile/other/blobs/uploads/${S##*/}"
c "PATCH unknown upload id"                          404 req -X PATCH -H 'Expect:' --data-binary 12345 "$U/v2/$R/blobs/uploads/$(printf 'a%.0s' {1..32})"
c "DELETE upload"                                    204 none -X DELETE "$U$S"
c "DELETE upload again"                              404 req -X DELETE "$U$S"
c "PUT finished/deleted upload"                      404 req -X PUT "$U$S?digest=$BD"
c "GET catalog n=-1"                                 "$X4" req "$U/v2/_catalog?n=-1"
c "GET catalog n=99999999999999999999"               "$X4|200" opt "$U/v2/_catalog?n=99999999999999999999"
c "GET tags n=abc"                                   "$X4" req "$U/v2/$R/tags/list?n=abc"

# ------------------------------------------------------------------ raw malformed HTTP
log "raw HTTP"
cat > "$T/raw.py" <<'PY'
import json, os, socket, sys, time
host, port, outdir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
repo, upload = sys.argv[4], sys.argv[5]
H = f"Host: {host}:{port}\r\n".encode()
def req(line, headers=b"", body=b""):
    return line.encode() + b"\r\n" + H + headers + b"\r\n" + body
M = b"Content-Type: application/vnd.oci.image.manifest.v1+json\r\n"
cases = [
    # name, expect regex, json (req|opt), payload, mode
    ("raw: request line garbage", "4..", "opt", b"GARBAGE\r\n\r\n"),
    ("raw: binary junk", "4..", "opt", os.urandom(64).replace(b"\n", b"x") + b"\r\n\r\n"),
    ("raw: unknown method FOO", "4..", "opt", req("FOO /v2/ HTTP/1.1")),
    ("raw: HTTP/9.9", "4..", "opt", req("GET /v2/ HTTP/9.9")),
    ("raw: no path", "4..", "opt", req("GET  HTTP/1.1")),
    ("raw: absolute-form ../ target", "4..", "opt", req(f"GET http://{host}:{port}/v2/../../etc/passwd HTTP/1.1")),
    ("raw: path without leading /", "4..", "opt", req("GET v2/../../etc/passwd HTTP/1.1")),
    ("raw: space in path", "4..", "opt", req("GET /v2/a b/tags/list HTTP/1.1")),
    ("raw: Content-Length -1", "4..", "opt", req(f"PUT /v2/{repo}/manifests/raw HTTP/1.1", M + b"Content-Length: -1\r\n", b"{}")),
    ("raw: Content-Length 2^64+", "4..", "opt", req(f"PUT /v2/{repo}/manifests/raw HTTP/1.1", M + b"Content-Length: 99999999999999999999999\r\n", b"{}")),
    ("raw: Content-Length abc", "4..", "opt", req(f"PUT /v2/{repo}/manifests/raw HTTP/1.1", M + b"Content-Length: abc\r\n", b"{}")),
    ("raw: two different Content-Lengths", "4..", "opt", req(f"PUT /v2/{repo}/manifests/raw HTTP/1.1", M + b"Content-Length: 2\r\nContent-Length: 5\r\n", b"{}xyz")),
    ("raw: Content-Length + chunked", "4..", "opt", req(f"PATCH /v2/{repo}/blobs/uploads/{upload} HTTP/1.1", b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n", b"3\r\nabc\r\n0\r\n\r\n")),
    ("raw: Transfer-Encoding gzip only", "4..", "opt", req(f"PUT /v2/{repo}/manifests/raw HTTP/1.1", M + b"Transfer-Encoding: gzip\r\n", b"{}")),
    ("raw: bad chunk size", "4..", "opt", req(f"PUT /v2/{repo}/manifests/raw HTTP/1.1", M + b"Transfer-Encoding: chunked\r\n", b"zz\r\nabc\r\n0\r\n\r\n")),
    ("raw: chunk size overflow", "4..", "opt", req(f"PUT /v2/{repo}/manifests/raw HTTP/1.1", M + b"Transfer-Encoding: chunked\r\n", b"ffffffffffffffffffff\r\nabc\r\n0\r\n\r\n")),
    ("raw: header without colon", "4..", "opt", req("GET /v2/ HTTP/1.1", b"NoColonHere\r\n")),
    ("raw: NUL in header value", "4..", "opt", req("GET /v2/ HTTP/1.1", b"X-A: a\x00b\r\n")),
    ("raw: header bomb, one 1 MiB header", "4..", "opt", req("GET /v2/ HTTP/1.1", b"X-Bomb: " + b"a" * (1 << 20) + b"\r\n")),
    ("raw: header bomb, 100000 headers", "4..", "opt", req("GET /v2/ HTTP/1.1", b"".join(b"X-%d: a\r\n" % i for i in range(100000)))),
    ("raw: 200 KB Authorization header on a push", "4..", "opt", req("POST /v2/hostile/ok/blobs/uploads/ HTTP/1.1", b"Authorization: Basic " + b"QUFB" * 50000 + b"\r\n")),
    ("raw: 1 MiB URL", "4..", "opt", req("GET /v2/" + "a/" * (1 << 19) + "tags/list HTTP/1.1")),
    ("raw: manifest Content-Length 5 MiB, no body sent", "413", "req", req(f"PUT /v2/{repo}/manifests/raw HTTP/1.1", M + b"Content-Length: 5242880\r\n")),
    ("raw: manifest Content-Length 2^62, no body sent", "413", "req", req(f"PUT /v2/{repo}/manifests/raw HTTP/1.1", M + b"Content-Length: 4611686018427387904\r\n")),
]
def read_response(s, deadline):
    data = b""
    while b"\r\n\r\n" not in data:
        s.settimeout(max(0.05, deadline - time.time()))
        try:
            chunk = s.recv(65536)
        except (socket.timeout, ConnectionResetError, BrokenPipeError):
            break
        if not chunk:
            break
        data += chunk
    if b"\r\n\r\n" not in data:
        return None, b"", data
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    status = parts[1].decode(errors="replace") if len(parts) > 1 else "???"
    length = 0
    for l in lines[1:]:
        k, _, v = l.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip() or 0)
    while len(body) < length and time.time() < deadline:
        s.settimeout(max(0.05, deadline - time.time()))
        try:
            chunk = s.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not chunk:
            break
        body += chunk
    return status, body[:length], data
results = []
for i, (name, expect, js, payload) in enumerate(cases):
    s = socket.create_connection((host, port), timeout=5)
    deadline = time.time() + 8
    try:
        s.sendall(payload)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may answer and close before reading everything
    status, body, raw = read_response(s, deadline)
    s.close()
    bf = os.path.join(outdir, f"raw{i}.body")
    open(bf, "wb").write(body)
    results.append({"name": name, "expect": expect, "json": js, "status": status or "000", "body": bf,
                    "detail": "" if status else f"{len(raw)} bytes before close/timeout: {raw[:60]!r}"})
print(json.dumps(results))
PY
S=$(new_session $R)
python3 "$T/raw.py" "$HOST" "$PORT" "$T" "$R" "${S##*/}" > "$T/raw.json" || fail "raw.py crashed"
n=$(jq length "$T/raw.json")
for (( i=0; i<n; i++ )); do
    IFS=$'\t' read -r name expect json status body detail < <(jq -r ".[$i] | [.name,.expect,.json,.status,.body,.detail] | @tsv" "$T/raw.json")
    judge "$name" "$status" "$body" "$expect" "$json" "$detail"
done
c "  raw manifest not stored (tag raw)"              404 req "$U/v2/$R/manifests/raw"

# connection-level flows: a busy session, bodies cut short, too many connections
cat > "$T/flows.py" <<'PY'
import json, socket, sys, time, http.client
host, port, outdir, repo, upload, upload2 = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
H = f"Host: {host}:{port}\r\n"
res = []
def request(method, path, body=b"", headers=None):
    c = http.client.HTTPConnection(host, port, timeout=10)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return str(r.status), dict((k.lower(), v) for k, v in r.getheaders()), r.read()
    except (OSError, http.client.HTTPException) as e:
        return "000", {}, repr(e).encode()
    finally:
        c.close()
def add(name, expect, js, status, body, detail=""):
    bf = f"{outdir}/flow{len(res)}.body"
    open(bf, "wb").write(body)
    res.append({"name": name, "expect": expect, "json": js, "status": status, "body": bf, "detail": detail})
up = f"/v2/{repo}/blobs/uploads/{upload}"
# 1. a PATCH holds the session (headers + 10 of 1000 bytes), a second PATCH arrives
s1 = socket.create_connection((host, port))
s1.sendall(f"PATCH {up} HTTP/1.1\r\n{H}Content-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n".encode() + b"0123456789")
time.sleep(0.5)
st, h, b = request("PATCH", up, b"abcde", {"Content-Type": "application/octet-stream"})
add("PATCH on a session another PATCH is using", "409|4..", "req", st, b)
st, h, b = request("DELETE", up)
add("DELETE of a session another PATCH is using", "409|4..", "req", st, b)
s1.close()   # client vanishes mid-body
time.sleep(0.5)
st, h, b = request("GET", up)
rng = h.get("range", "")
add("upload status after the client vanished mid-PATCH", "204", "none", st if rng == "0-9" else st + "/range=" + rng, b,
    f"Range {rng!r}, expected '0-9' (the 10 bytes that arrived)")
# 2. chunked PATCH cut inside a chunk
up2 = f"/v2/{repo}/blobs/uploads/{upload2}"
s2 = socket.create_connection((host, port))
s2.sendall(f"PATCH {up2} HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\n100\r\n".encode() + b"x" * 50)
time.sleep(0.3); s2.close(); time.sleep(0.3)
st, h, b = request("GET", up2)
add("upload status after a chunked PATCH cut mid-chunk", "204", "none", st, b, f"Range {h.get('range')!r}")
# 3. manifest PUT whose body stops short of its Content-Length
s3 = socket.create_connection((host, port))
s3.sendall(f"PUT /v2/{repo}/manifests/short HTTP/1.1\r\n{H}Content-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 100\r\n\r\n{{\"schema".encode())
time.sleep(0.3); s3.close(); time.sleep(0.2)
st, h, b = request("GET", f"/v2/{repo}/manifests/short")
add("manifest PUT cut short is not stored", "404", "req", st, b)
# 4. more idle connections than the profile allows, then one more request
socks = []
try:
    for _ in range(600):
        socks.append(socket.create_connection((host, port), timeout=5))
except OSError as e:
    pass
st, h, b = request("GET", "/v2/")
add(f"GET /v2/ with {len(socks)} idle connections open", "200|429", "req", st, b)
for x in socks: x.close()
time.sleep(1.0)
print(json.dumps(res))
PY
S1=$(new_session $R); S2=$(new_session $R)
python3 "$T/flows.py" "$HOST" "$PORT" "$T" "$R" "${S1##*/}" "${S2##*/}" > "$T/flows.json" || fail "flows.py crashed"
n=$(jq length "$T/flows.json")
for (( i=0; i<n; i++ )); do
    IFS=$'\t' read -r name expect json status body detail < <(jq -r ".[$i] | [.name,.expect,.json,.status,.body,.detail] | @tsv" "$T/flows.json")
    judge "$name" "$status" "$body" "$expect" "$json" "$detail"
done
c "PUT manifest tag of 129 chars"                    "$X4" req -X PUT -H "$MT" --data-binary "@$T/good.json" "$U/v2/$R/manifests/$(printf 't%.0s' {1..129})"
c "PUT manifest subject with an invalid digest"      "$X4" req -X PUT -H "$MT" --data-binary "$(manifest "$CD" "$BD" | sed 's/}$/,"subject":{"mediaType":"a\/b","digest":"sha256:..\/..\/x","size":1}}/')" "$U/v2/$R/manifests/subj"
c "OPTIONS /v2/"                                     "$X4" req -X OPTIONS "$U/v2/"
c "TRACE blob"                                       "$X4" req -X TRACE "$U/v2/$R/blobs/$BD"
c "POST to a manifest"                               "$X4" req -X POST -H 'Expect:' --data-binary x "$U/v2/$R/manifests/v1"

# ------------------------------------------------------------------ push authorisation (--bin only)
# A second server with registry.push "authenticated" (its store outside STORE's parent):
# malformed Authorization headers get 401 OCI errors with a Basic challenge, a huge header
# (raw HTTP above: a 200 KB Authorization header) gets a 4xx, and a wrong password is answered only after the failure delay, as slowly for
# an unknown user as for a known one (no user enumeration by timing), the delay doubling
# with consecutive failures and reset by a success.
if [[ -n "${BIN:-}" ]]; then
    A=$E2E_TMP/auth
    mkdir -p "$A"
    htpasswd -c -b -B "$A/htpasswd" edge right-pw 2>/dev/null || fail "htpasswd failed"
    aport=$(free_port)
    printf '{"storage":{"path":"%s/store"},"registry":{"listen":"127.0.0.1:%s","push":"authenticated","users":"%s/htpasswd"},"profile":"generic-amd64"}\n' \
        "$A" "$aport" "$A" > "$A/config.json"
    "$BIN" serve --config "$A/config.json" > "$A/server.log" 2>&1 &
    APID=$!
    on_exit "kill_wait $APID"
    WAIT_HTTP_PID=$APID WAIT_HTTP_LOG="$A/server.log" wait_http "http://127.0.0.1:$aport/healthz" 30
    AU="http://127.0.0.1:$aport/v2/$R/blobs/uploads/"
    # ac CASE AUTHORIZATION-HEADER: POST with that header must get 401 + OCI error + challenge.
    ac() {
        local status
        status=$(curl -s --max-time 30 -D "$T/ah" -o "$T/body" -w '%{http_code}' -X POST -H "$2" "$AU" 2>/dev/null) || true
        judge "auth: $1" "${status:-000}" "$T/body" 401 req
        grep -qi '^www-authenticate: Basic realm=' "$T/ah" || bad "auth: $1" "401 without a WWW-Authenticate: Basic challenge"
        kill -0 "$APID" 2>/dev/null || fail "the authenticated server died during 'auth: $1'"
    }
    ok_login() { curl -s -o /dev/null -w '%{http_code}' -u edge:right-pw -X POST "$AU"; }
    ac "no credentials"                   "X-Nothing: 1"
    ac "scheme only"                      "Authorization: Basic"
    ac "Bearer instead of Basic"          "Authorization: Bearer abc.def.ghi"
    ac "base64 garbage"                   "Authorization: Basic !!!!"
    ac "no colon in credentials"          "Authorization: Basic $(printf edge | base64)"
    ac "three words"                      "Authorization: Basic ZWRnZTp4 extra"
    ac "invalid UTF-8 user name"          "Authorization: Basic $(printf '\xff\xfe:x' | base64)"
    ac "NUL inside the password"          "Authorization: Basic $(printf 'edge:right-pw\0x' | base64 -w0)"
    ac "8 KiB of base64"                  "Authorization: Basic $(head -c 6144 /dev/zero | base64 -w0)"
    status=$(curl -s --max-time 30 -o "$T/body" -w '%{http_code}' -X POST -H "Authorization: Basic $(printf edge:right-pw | base64)" \
        -H "Authorization: Basic $(printf edge:other | base64)" "$AU" 2>/dev/null) || true
    judge "auth: two Authorization headers" "${status:-000}" "$T/body" 401 req
    [[ $(ok_login) == 202 ]] || bad "auth: right password" "POST with the right credentials did not get 202"
    # Timing: one failure after a success (delay 0.5 s) for a known and an unknown user.
    CASES=$((CASES + 1))
    t_known=$(curl -s -o /dev/null -w '%{time_total}' -u edge:wrong-pw -X POST "$AU")
    [[ $(ok_login) == 202 ]] || bad "auth: right password after a failure" "not 202"
    t_unknown=$(curl -s -o /dev/null -w '%{time_total}' -u nosuchuser:wrong-pw -X POST "$AU")
    [[ $(ok_login) == 202 ]] || bad "auth: right password after a failure" "not 202"
    t_right=$(curl -s -o /dev/null -w '%{time_total}' -u edge:right-pw -X POST "$AU")
    python3 - "$t_known" "$t_unknown" "$t_right" <<'PY' || bad "auth: timing of wrong-password answers" "known $t_known s, unknown user $t_unknown s, right $t_right s"
import sys
known, unknown, right = map(float, sys.argv[1:])
ok = known >= 0.45 and unknown >= 0.45 and abs(known - unknown) < 0.25 and right < 0.4
sys.exit(0 if ok else 1)
PY
    # Consecutive failures: 0.5, 1, 2 s.
    CASES=$((CASES + 1))
    for i in 1 2; do curl -s -o /dev/null -u edge:wrong-pw -X POST "$AU"; done
    t_third=$(curl -s -o /dev/null -w '%{time_total}' -u edge:wrong-pw -X POST "$AU")
    python3 -c "import sys; sys.exit(0 if float('$t_third') >= 1.8 else 1)" \
        || bad "auth: the delay grows with consecutive failures" "third failure answered after $t_third s, expected >= 2 s"
    log "auth: wrong password $t_known s, unknown user $t_unknown s, right $t_right s, third consecutive failure $t_third s"
fi

# ------------------------------------------------------------------ nothing outside the store
CASES=$((CASES + 1))
snapshot > "$T/after.txt"
if ! diff -q "$T/before.txt" "$T/after.txt" >/dev/null; then
    bad "nothing written outside STORE_DIR" "changed beside $STORE: $(diff "$T/before.txt" "$T/after.txt" | grep '^[<>]' | head -n 3 | tr '\n' ' ')"
fi
[[ "$(cat "$CANARY/sub/file" 2>/dev/null)" == canary ]] || bad "canary intact" "$CANARY/sub/file changed or vanished"
hits=$( { find "$PARENT" -name "*$NONCE*" -not -path "$CANARY"
          find /tmp -xdev -maxdepth 4 -name "*$NONCE*" -not -path "$CANARY"
          [[ -n "$SRV_CWD" ]] && find "$SRV_CWD" -xdev -maxdepth 3 -name "*$NONCE*" -not -path "$CANARY"; } 2>/dev/null | sort -u | head -n 3)
[[ -z "$hits" ]] || bad "no file named with the nonce" "found: $(tr '\n' ' ' <<<"$hits")"
check_registry "$REG"
kill -0 "$PID" 2>/dev/null || fail "server process $PID is gone at the end"

# ------------------------------------------------------------------ idle connections (with --bin)
# A plain listener with 8 slots and 2 s idle and header timeouts: clients holding slots
# without using them lose them (idle_slots.py cut); after a SIGHUP that raises idleTimeout to
# 1h, a new kept-alive client stays connected 6 s (idle_slots.py survive). Cost: ~20 s.
if [[ -n "${BIN:-}" ]]; then
    I=$E2E_TMP/idle
    mkdir -p "$I"
    iport=$(free_port)
    idle_config() {
        printf '{"storage":{"path":"%s/store"},"registry":{"listen":"127.0.0.1:%s","maxConnections":8,"idleTimeout":"%s","headerTimeout":"2s"},"profile":"generic-amd64"}\n' \
            "$I" "$iport" "$1" > "$I/config.json"
    }
    idle_config 2s
    "$BIN" serve --config "$I/config.json" > "$I/server.log" 2>&1 &
    IPID=$!
    on_exit "kill_wait $IPID"
    WAIT_HTTP_PID=$IPID WAIT_HTTP_LOG="$I/server.log" wait_http "http://127.0.0.1:$iport/healthz" 30
    CASES=$((CASES + 1))
    python3 "$E2E_DIR/idle_slots.py" 127.0.0.1 "$iport" "$IPID" 2 8 cut || bad "idle connections (idle_slots.py cut)" "see its FAIL lines above"
    closes=$(curl -s "http://127.0.0.1:$iport/metrics" | awk '$1=="satellite_http_timeout_closes_total"{print $2}')
    (( ${closes:-0} >= 10 )) || bad "idle connections counted" "satellite_http_timeout_closes_total is '${closes:-}', expected >= 10"
    idle_config 1h
    kill -HUP "$IPID"
    wait_until 20 "the reloaded idle timeout" 'grep -q "connection timeouts reloaded" "$I/server.log"' "$I/server.log"
    CASES=$((CASES + 1))
    python3 "$E2E_DIR/idle_slots.py" 127.0.0.1 "$iport" "$IPID" 6 0 survive || bad "idle timeout reloaded by SIGHUP (idle_slots.py survive)" "see its FAIL lines above"
    kill_wait "$IPID"
fi

# ------------------------------------------------------------------ TLS listener (with --bin)
if [[ -n "${BIN:-}" ]]; then
    CASES=$((CASES + 1))
    "$E2E_DIR/tls_hostile.sh" "$BIN" || bad "TLS listener (tls_hostile.sh)" "see its FAIL lines above"
fi

if (( FAILS )); then
    fail "$FAILS of $CASES hostile cases failed (first: ${FAILED[0]})"
fi
echo "PASS hostile: $CASES cases, every one a 4xx (or the expected status), server alive, nothing outside $STORE; 1 GiB chunked PATCH peak RSS $((HWM1 / 1024)) MiB"
