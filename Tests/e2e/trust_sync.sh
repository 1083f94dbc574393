#!/usr/bin/env bash
# trust_sync.sh BIN
# trust.policies (action require) over a real sync. Upstream: Debian's docker-registry (the
# legacy sha256-<hex>.sig format) and a second satellite-lite (OCI 1.1 referrers with
# sigstore bundles, which docker-registry 2.8 cannot serve). Keys made with openssl;
# signatures laid out as cosign writes them (Tests/e2e/cosign_sign.py).
#   1. an image signed by the trusted key syncs; its .sig tag is served by the satellite.
#   2. the upstream tag then moves to an unsigned image, to one signed by another key, and
#      to one carrying a replayed signature (a valid signature naming the first image's
#      digest): each sync exits 1, the satellite's tag keeps the signed image, and the
#      trust-rejected hook fires with the refused digest; status shows the reason.
#   3. bundles: a referrer-signed image syncs from the satellite upstream; a bundle naming
#      another digest is refused.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

e2e_binary "${1:-}"
need_tools docker-registry skopeo jq python3 curl openssl
T=$E2E_TMP
SIGN="$(dirname "$0")/cosign_sign.py"
export E2E_CMD_TIMEOUT=${E2E_CMD_TIMEOUT:-60}

openssl ecparam -name prime256v1 -genkey -noout -out "$T/trusted.key" 2>/dev/null
openssl ec -in "$T/trusted.key" -pubout -out "$T/trusted.pub" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$T/other.key" 2>/dev/null

start_docker_registry "$T/up"
UP=$DOCKER_REGISTRY_ADDR
push_up() { # OCI-LAYOUT-NAME SIZE -> digest of upstream factory/sensor:v1
    python3 "$MKIMAGE" single "oci:$T/$1:v1" --layers 1 --size "$2" >/dev/null
    e2e_skopeo copy -q --dest-tls-verify=false --preserve-digests --digestfile "$T/$1.digest" \
        "oci:$T/$1:v1" "docker://$UP/factory/sensor:v1" >/dev/null 2>&1 || fail "push $1 upstream failed"
    cat "$T/$1.digest"
}

PORT=$(free_port)
LOCAL=127.0.0.1:$PORT
hook='printf "%s|%s|%s|%s\n" "$SATELLITE_EVENT" "$SATELLITE_IMAGE" "$SATELLITE_DIGEST" "$SATELLITE_PREVIOUS_DIGEST" >> '"$T/hooks.log"
config() { # UPSTREAM-URL IMAGE
    jq -n --arg store "$T/store" --arg listen "$LOCAL" --arg up "$1" --arg img "$2" --arg key "$T/trusted.pub" --arg hook "$hook" \
        '{storage:{path:$store}, registry:{listen:$listen}, upstream:{url:$up}, state:{images:[$img], interval:"1h"},
          sync:{timeout:"30s"}, trust:{policies:[{match:"factory/**", keys:[$key], action:"require"}]},
          hooks:[{on:"trust-rejected", run:$hook}, {on:"image-updated", run:$hook}]}' > "$T/config.json"
}
SYNC_RC=0
do_sync() { set +e; timeout 120 "$BIN" sync --config "$T/config.json" > "$T/sync.out" 2>&1; SYNC_RC=$?; set -e; }
local_digest() { # REPO TAG
    "$BIN" status --config "$T/config.json" --json >/dev/null 2>&1 || true
    curl -s -o /dev/null -D - -I -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$LOCAL/v2/$1/manifests/$2" \
        | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}'
}
serve() { "$BIN" serve --config "$T/config.json" > "$T/serve.log" 2>&1 & SAT=$!; on_exit "kill_wait $SAT 2>/dev/null || true"
          WAIT_HTTP_PID=$SAT WAIT_HTTP_LOG="$T/serve.log" wait_http "http://$LOCAL/healthz" 20; }

# ---------------------------------------------------------------- 1. signed
config "http://$UP" factory/sensor:v1
A=$(push_up a 3000)
python3 "$SIGN" legacy "http://$UP" factory/sensor "$A" "$T/trusted.key" >/dev/null || fail "signing A failed"
do_sync
(( SYNC_RC == 0 )) || fail "signed image: sync exit $SYNC_RC: $(tail -n 3 "$T/sync.out" | tr '\n' ' ')"
serve
[[ $(local_digest factory/sensor v1) == "$A" ]] || fail "signed image: factory/sensor:v1 is not $A"
[[ -n $(local_digest factory/sensor "sha256-${A#sha256:}.sig") ]] || fail "signed image: the .sig tag is not served by the satellite"
kill_wait "$SAT"
log "signed image $A synced with its signature"

# ---------------------------------------------------------------- 2. refusals
refused() { # WHAT DIGEST
    do_sync
    (( SYNC_RC != 0 )) || fail "$1: sync exited 0, expected a refusal"
    grep -qi "signature" "$T/sync.out" || fail "$1: the sync output does not say why: $(tail -n 2 "$T/sync.out" | tr '\n' ' ')"
    serve
    [[ $(local_digest factory/sensor v1) == "$A" ]] || fail "$1: factory/sensor:v1 moved to $(local_digest factory/sensor v1), expected $A kept"
    kill_wait "$SAT"
    grep -q "^trust-rejected|factory/sensor:v1|$2|$A$" "$T/hooks.log" || fail "$1: no trust-rejected hook for $2 (hooks: $(tail -n 3 "$T/hooks.log" | tr '\n' ' '))"
    log "$1: refused, tag kept at $A, hook fired"
}
B=$(push_up b 3100)
refused "unsigned image" "$B"
"$BIN" status --config "$T/config.json" > "$T/status.out" 2>&1 || true
grep -qi "signature" "$T/status.out" || fail "status does not show the refusal: $(head -c 300 "$T/status.out")"
C=$(push_up c 3200)
python3 "$SIGN" legacy "http://$UP" factory/sensor "$C" "$T/other.key" >/dev/null || fail "signing C failed"
refused "image signed by another key" "$C"
D=$(push_up d 3300)
python3 "$SIGN" legacy "http://$UP" factory/sensor "$D" "$T/trusted.key" --names "$A" >/dev/null || fail "signing D failed"
refused "replayed signature (names $A)" "$D"

# ---------------------------------------------------------------- 3. bundles from an OCI 1.1 upstream
UPORT=$(free_port)
mkdir -p "$T/up2"
jq -n --arg s "$T/up2/store" --arg l "127.0.0.1:$UPORT" '{storage:{path:$s}, registry:{listen:$l, push:"anyone"}}' > "$T/up2/config.json"
"$BIN" serve --config "$T/up2/config.json" > "$T/up2/serve.log" 2>&1 &
UP2=$!; on_exit "kill_wait $UP2 2>/dev/null || true"
WAIT_HTTP_PID=$UP2 WAIT_HTTP_LOG="$T/up2/serve.log" wait_http "http://127.0.0.1:$UPORT/healthz" 20
UP=127.0.0.1:$UPORT
E=$(push_up e 3400)
python3 "$SIGN" bundle "http://$UP" factory/sensor "$E" "$T/trusted.key" >/dev/null || fail "bundle-signing E failed"
config "http://$UP" factory/sensor:v1
do_sync
(( SYNC_RC == 0 )) || fail "bundle-signed image: sync exit $SYNC_RC: $(tail -n 3 "$T/sync.out" | tr '\n' ' ')"
serve
[[ $(local_digest factory/sensor v1) == "$E" ]] || fail "bundle-signed image: factory/sensor:v1 is not $E"
curl -s "http://$LOCAL/v2/factory/sensor/referrers/$E" | jq -e '.manifests | length == 1' >/dev/null \
    || fail "bundle-signed image: the satellite does not serve the bundle referrer"
kill_wait "$SAT"
A=$E
F=$(push_up f 3500)
python3 "$SIGN" bundle "http://$UP" factory/sensor "$F" "$T/trusted.key" --names "$E" >/dev/null || fail "bundle-signing F failed"
refused "bundle naming another digest" "$F"
log "OK"
