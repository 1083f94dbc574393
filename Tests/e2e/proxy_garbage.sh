#!/usr/bin/env bash
# proxy_garbage.sh BIN
# The pull-through proxy against an upstream that answers garbage (garbage_upstream.py):
# a manifest whose digest header lies, a manifest that never ends, a redirect loop, a
# layer body that never ends, a layer shorter than announced and one whose Content-Length
# lies. Each pull gets a clean OCI error (manifests: 502/403 with an errors body) or, once a
# blob's bytes have started, a response cut before its end; nothing becomes visible in the
# store; satellite-lite keeps serving (a correct image through the same upstream pulls fine).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

e2e_binary "${1:-}"
need_tools jq python3 curl sha256sum
T=$E2E_TMP

python3 "$E2E_DIR/garbage_upstream.py" --port-file "$T/gport" > "$T/garbage.log" 2>&1 &
on_exit "kill_wait $!"
wait_until 10 "garbage_upstream.py" "[[ -s '$T/gport' ]]" "$T/garbage.log"
UP=127.0.0.1:$(cat "$T/gport")
# A short-stall profile: a transfer that keeps failing gives up within seconds.
jq '.name = "generic-amd64-e2e-stall" | .sync.stallTimeout = "3s" | .sync.connectTimeout = "3s"' \
    "$E2E_DIR/../../hw-profiles/generic-amd64.json" > "$T/profile.json"
SAT=127.0.0.1:$(free_port)
jq -n --arg s "$T/store" --arg l "$SAT" --arg u "http://$UP" --arg p "$T/profile.json" \
    '{profile:$p, storage:{path:$s}, registry:{listen:$l}, upstream:{url:$u}, proxy:{enabled:true}}' > "$T/config.json"
"$BIN" serve --config "$T/config.json" > "$T/sat.log" 2>&1 &
SAT_PID=$!
on_exit "kill_wait $SAT_PID"
WAIT_HTTP_PID=$SAT_PID WAIT_HTTP_LOG="$T/sat.log" wait_http "http://$SAT/v2/" 20

MT='Accept: application/vnd.oci.image.manifest.v1+json'
manifest_error() { # CASE STATUS CODE
    local got
    got=$(curl -s -o "$T/$1.json" -w '%{http_code}' --max-time 30 -H "$MT" "http://$SAT/v2/g/$1/manifests/v1") || true
    [[ "$got" == "$2" ]] || fail "manifest of g/$1 answered ${got:-nothing}, expected $2: $(head -c 300 "$T/$1.json")"
    jq -e --arg c "$3" '.errors[0].code == $c' "$T/$1.json" >/dev/null \
        || fail "manifest of g/$1: no OCI error $3: $(head -c 300 "$T/$1.json")"
    [[ -z "$(ls "$T/store/repositories/g/$1/_manifests/tags" 2>/dev/null)" ]] || fail "g/$1: a tag was stored"
    log "g/$1 manifest: $2 $3 ($(jq -r '.errors[0].message' "$T/$1.json" | cut -c1-100))"
}
manifest_error baddigest 502 UNKNOWN
manifest_error hugemanifest 502 UNKNOWN
manifest_error redirect 403 DENIED

layer_of() { curl -s -H "$MT" "http://$SAT/v2/g/$1/manifests/v1" | jq -r '.layers[0].digest'; }
blob_cut() { # CASE: the manifest proxies fine; the layer's response is cut, nothing visible
    local layer
    layer=$(layer_of "$1")
    [[ "$layer" == sha256:* ]] || fail "manifest of g/$1 did not proxy (layer '$layer')"
    if curl -sf --max-time 60 -o "$T/$1.blob" "http://$SAT/v2/g/$1/blobs/$layer" 2> "$T/$1.err"; then
        # Only bytes that verified may ever complete.
        [[ "$1" == wronglen && "$(sha256_file "$T/$1.blob")" == "$layer" ]] \
            || fail "the layer of g/$1 was served with a valid completion"
        log "g/$1: the bytes sent before the lying length ended verified: served whole"
        return 0
    fi
    (( $(stat -c %s "$T/$1.blob" 2>/dev/null || echo 0) < 100000 )) || fail "g/$1: the client got every byte of a bad transfer"
    [[ ! -e "$T/store/blobs/sha256/${layer:7:2}/${layer#sha256:}" ]] || fail "g/$1: a blob of a garbage transfer became visible"
}
for c in endless shortlen wronglen; do blob_cut "$c" & pids+=($!); done
for p in "${pids[@]}"; do wait "$p" || exit 1; done
log "endless, short and lying-length layers: responses cut, nothing unverified visible"

# The same upstream's correct image still pulls, verified.
code=$(curl -s -o /dev/null -w '%{http_code}' -H "$MT" "http://$SAT/v2/g/good/manifests/v1")
[[ "$code" == 200 ]] || fail "the good manifest answered $code"
LAYER=$(layer_of good)
curl -sf -o "$T/good.blob" "http://$SAT/v2/g/good/blobs/$LAYER" || fail "the good layer failed"
[[ "$(sha256_file "$T/good.blob")" == "$LAYER" ]] || fail "the good layer does not verify"
kill -0 "$SAT_PID" || fail "satellite-lite died"
echo "PASS proxy_garbage"
