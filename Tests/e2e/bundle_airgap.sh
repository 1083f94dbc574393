#!/usr/bin/env bash
# bundle_airgap.sh BIN
# Signed, differential air-gap bundles (issue 15), against Debian's docker-registry as the
# connected side's upstream and containerd / skopeo as the readers:
#   1. a full bundle created from the upstream is imported on a satellite with no upstream;
#      containerd pulls every image from it; skopeo copy oci-archive:BUNDLE:REF reads it.
#   2. a differential bundle (--base) after the upstream changed: one with a flipped byte,
#      one re-signed by another key, one with a ../ entry, one with a symlink, a truncated one
#      are each refused with the previous state still served and no image-updated hook; the
#      differential on a site without its base is refused naming both sequences; on its
#      base it applies (image-updated and bundle-imported hooks fire).
#   3. --have with the site's status --json: only what the site lacks travels.
#   4. (after 1) a site whose quota cannot hold the state refuses the bundle up front.
#   5. kill -9 at random points during an import, then import again: completes, and the
#      blobs already committed are not written again.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

e2e_binary "${1:-}"
need_tools docker-registry skopeo jq python3 curl openssl containerd ctr
T=$E2E_TMP
TAMPER="$(dirname "$0")/bundle_tamper.py"
export E2E_CMD_TIMEOUT=${E2E_CMD_TIMEOUT:-60}

openssl ecparam -name prime256v1 -genkey -noout -out "$T/bundle.key" 2>/dev/null
openssl ec -in "$T/bundle.key" -pubout -out "$T/bundle.pub" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$T/other.key" 2>/dev/null

# ---------------------------------------------------------------- connected side
start_docker_registry "$T/up"
UP=$DOCKER_REGISTRY_ADDR
push_up() { # NAME REPO:TAG MKIMAGE-ARGS... -> digest
    local name=$1 ref=$2; shift 2
    python3 "$MKIMAGE" "$@" "oci:$T/$name:v1" >/dev/null || fail "mkimage $name failed"
    e2e_skopeo copy -q --all --dest-tls-verify=false --preserve-digests --digestfile "$T/$name.digest" \
        "oci:$T/$name:v1" "docker://$UP/$ref" >/dev/null 2>&1 || fail "push $name to the upstream failed"
    cat "$T/$name.digest"
}
A1=$(push_up a1 factory/sensor:v1 single --layers 2 --size 200000 --seed 11)
B1=$(push_up b1 factory/gateway:v2 index --layers 2 --size 150000)
jq -n --arg s "$T/connected" --arg up "http://$UP" \
    '{storage:{path:$s}, upstream:{url:$up}, state:{images:["factory/sensor:v1","factory/gateway:v2"]}, sync:{platform:"linux/amd64", timeout:"30s"}}' \
    > "$T/connected.json"
create() { run_or_fail "bundle create $*" "$BIN" bundle create --config "$T/connected.json" --sign "$T/bundle.key" "$@"; }
create --output "$T/full.tar"
[[ ! -e "$T/full.tar.partial" ]] || fail "create left its .partial file"
FULL_SEQ=$("$BIN" bundle inspect --json "$T/full.tar" | jq -r .sequence)
log "full bundle $FULL_SEQ: $(stat -c %s "$T/full.tar") bytes"

# ---------------------------------------------------------------- air-gapped site
PORT=$(free_port)
SITE=127.0.0.1:$PORT
hook='printf "%s|%s|%s|%s\n" "$SATELLITE_EVENT" "$SATELLITE_IMAGE" "$SATELLITE_DIGEST" "$SATELLITE_MESSAGE" >> '"$T/hooks.log"
site_config() { # STORE FILE
    jq -n --arg s "$1" --arg listen "$SITE" --arg key "$T/bundle.pub" --arg hook "$hook" \
        '{storage:{path:$s}, registry:{listen:$listen}, bundles:{keys:[$key]},
          hooks:[{on:"image-updated", run:$hook}, {on:"bundle-imported", run:$hook}]}' > "$2"
}
site_config "$T/site" "$T/site.json"
import() { # CONFIG FILE -> sets IMPORT_RC, output in $T/import.out
    set +e; timeout 60 "$BIN" bundle import --config "$1" "$2" > "$T/import.out" 2>&1; IMPORT_RC=$?; set -e
}
import "$T/site.json" "$T/full.tar"
(( IMPORT_RC == 0 )) || fail "full import exit $IMPORT_RC: $(tail -n 3 "$T/import.out" | tr '\n' ' ')"
grep -q "^bundle-imported|" "$T/hooks.log" || fail "no bundle-imported hook: $(cat "$T/hooks.log")"
grep -q "^image-updated|factory/sensor:v1|$A1|" "$T/hooks.log" || fail "no image-updated hook for factory/sensor:v1"

# Quota: a site whose quota cannot hold the state refuses the bundle up front, with sizes, and
# shows nothing of it.
jq --arg s "$T/tight" '.storage = {path: $s, quota: "100KB"}' "$T/site.json" > "$T/tight.json"
import "$T/tight.json" "$T/full.tar"
(( IMPORT_RC != 0 )) || fail "a bundle larger than the quota was imported"
grep -qi "quota" "$T/import.out" || fail "the quota refusal does not say why: $(tail -n 2 "$T/import.out" | tr '\n' ' ')"
grep -q "factory/sensor:v1 (" "$T/import.out" || fail "the quota refusal does not list the images with sizes: $(tail -n 2 "$T/import.out" | tr '\n' ' ')"
[[ ! -e "$T/tight/repositories/factory/sensor/_manifests/tags/v1" ]] || fail "a refused bundle left a visible tag"
(( $(find "$T/tight/blobs" -type f 2>/dev/null | wc -l) == 0 )) || fail "a refused bundle left blobs: $(find "$T/tight/blobs" -type f | head -3)"
log "a bundle over the quota is refused up front: $(grep -i quota "$T/import.out" | head -1 | cut -c1-160)"

"$BIN" serve --config "$T/site.json" > "$T/serve.log" 2>&1 & SAT=$!
on_exit "kill_wait $SAT 2>/dev/null || true"
WAIT_HTTP_PID=$SAT WAIT_HTTP_LOG="$T/serve.log" wait_http "http://$SITE/healthz" 20
served() { # REPO TAG -> digest the site serves
    curl -s -o /dev/null -D - -I -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json' \
        "http://$SITE/v2/$1/manifests/$2" | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}'
}
[[ $(served factory/sensor v1) == "$A1" ]] || fail "the site does not serve factory/sensor:v1 as $A1"
[[ $(served factory/gateway v2) == "$B1" ]] || fail "the site does not serve factory/gateway:v2 as $B1"

start_private_containerd "$T/ctrd" "$T/ctrd/certs.d"
for ref in factory/sensor:v1 factory/gateway:v2; do
    e2e_ctr images pull --plain-http --platform linux/amd64 "$SITE/$ref" > "$T/ctr.out" 2>&1 \
        || fail "ctr pull $SITE/$ref failed: $(tail -n 2 "$T/ctr.out" | tr '\n' ' ')"
done
log "containerd pulled both images from the air-gapped site"

run_or_fail "skopeo copy oci-archive:full.tar:factory/sensor:v1" \
    e2e_skopeo copy -q "oci-archive:$T/full.tar:factory/sensor:v1" "oci:$T/readback:sensor"
[[ "sha256:$(sha256sum < "$T/readback/blobs/sha256/${A1#sha256:}" | cut -d' ' -f1)" == "$A1" ]] \
    || fail "skopeo read back another manifest than $A1"
run_or_fail "skopeo copy oci-archive:full.tar:factory/gateway:v2" \
    e2e_skopeo copy -q "oci-archive:$T/full.tar:factory/gateway:v2" "oci:$T/readback:gateway"
log "skopeo reads the bundle as an oci-archive"

# ---------------------------------------------------------------- differential + refusals
A2=$(push_up a2 factory/sensor:v1 single --layers 2 --size 200000 --seed 12)
create --output "$T/diff.tar" --base "$T/full.tar"
DIFF_JSON=$("$BIN" bundle inspect --json --config "$T/site.json" "$T/diff.tar")
[[ $(jq -r .base <<<"$DIFF_JSON") == "$FULL_SEQ" ]] || fail "the differential's base is not $FULL_SEQ: $DIFF_JSON"
[[ $(jq -r .signature <<<"$DIFF_JSON") == verified ]] || fail "inspect does not verify the signature: $DIFF_JSON"
GATEWAY_BLOB=$(jq -r '.layers[0].digest' "$T/readback/blobs/sha256/$(jq -r '.manifests[0].digest' "$T/readback/index.json" | cut -c8-)")
tar tf "$T/diff.tar" | grep -q "${GATEWAY_BLOB#sha256:}" && fail "the differential carries a blob its base already had"
log "differential bundle: $(stat -c %s "$T/diff.tar") bytes vs full $(stat -c %s "$T/full.tar")"

python3 "$TAMPER" flip "$T/diff.tar" "$T/flipped.tar"
python3 "$TAMPER" resign "$T/diff.tar" "$T/badsig.tar" "$T/other.key"
python3 "$TAMPER" inject "$T/diff.tar" "$T/dotdot.tar" "../escape"
python3 "$TAMPER" link "$T/diff.tar" "$T/link.tar"
head -c $(( $(stat -c %s "$T/diff.tar") - 3000 )) "$T/diff.tar" > "$T/truncated.tar"
for bad in flipped:damaged badsig:signature dotdot:climbs link:symbolic truncated:truncated; do
    name=${bad%%:*} why=${bad#*:}
    import "$T/site.json" "$T/$name.tar"
    (( IMPORT_RC == 1 )) || fail "$name bundle: import exit $IMPORT_RC, expected 1"
    (( $(wc -l < "$T/import.out") == 1 )) || fail "$name bundle: not one line: $(cat "$T/import.out")"
    grep -qi "$why" "$T/import.out" || fail "$name bundle: the error does not say '$why': $(cat "$T/import.out")"
    [[ $(served factory/sensor v1) == "$A1" ]] || fail "$name bundle: factory/sensor:v1 moved to $(served factory/sensor v1)"
    log "$name bundle refused: $(cat "$T/import.out")"
done
[[ ! -e "$T/escape" && ! -e "$T/site/escape" ]] || fail "the ../ entry was written"
grep -q "|$A2|" "$T/hooks.log" && fail "a refused bundle fired image-updated for $A2"

site_config "$T/fresh" "$T/fresh.json"
import "$T/fresh.json" "$T/diff.tar"
(( IMPORT_RC == 1 )) || fail "differential on a site without its base: exit $IMPORT_RC"
DIFF_SEQ=$(jq -r .sequence <<<"$DIFF_JSON")
grep -q "bundle $DIFF_SEQ is differential on bundle $FULL_SEQ, but the last bundle applied here is none" "$T/import.out" \
    || fail "the refusal does not name both sequences: $(cat "$T/import.out")"

import "$T/site.json" "$T/diff.tar"
(( IMPORT_RC == 0 )) || fail "differential on its base: exit $IMPORT_RC: $(cat "$T/import.out")"
[[ $(served factory/sensor v1) == "$A2" ]] || fail "after the differential, factory/sensor:v1 is not $A2"
[[ $(served factory/gateway v2) == "$B1" ]] || fail "after the differential, factory/gateway:v2 is not $B1"
grep -q "^image-updated|factory/sensor:v1|$A2|" "$T/hooks.log" || fail "no image-updated hook for $A2"
import "$T/site.json" "$T/full.tar"
(( IMPORT_RC == 1 )) && grep -q "older than" "$T/import.out" || fail "an older bundle was not refused: $(cat "$T/import.out")"
log "differential applied on its base, refused elsewhere; the older full bundle refused"

# ---------------------------------------------------------------- --have
"$BIN" status --json --config "$T/site.json" > "$T/have.json"
create --output "$T/have.tar" --have "$T/have.json"
[[ $("$BIN" bundle inspect --json --config "$T/site.json" "$T/have.tar" | jq -r .newBytes) == 0 ]] \
    || fail "the --have bundle carries bytes the site holds"
import "$T/site.json" "$T/have.tar"
(( IMPORT_RC == 0 )) || fail "--have bundle: exit $IMPORT_RC: $(cat "$T/import.out")"
log "--have bundle: $(stat -c %s "$T/have.tar") bytes, applied"

# ---------------------------------------------------------------- kill -9 during import
C1=$(push_up c1 factory/big:v1 single --layers 5 --size 30000000 --seed 21)
jq '.state.images += ["factory/big:v1"]' "$T/connected.json" > "$T/c.json" && mv "$T/c.json" "$T/connected.json"
create --output "$T/big.tar"
site_config "$T/killed" "$T/killed.json"; jq "del(.hooks)" "$T/killed.json" > "$T/k.json" && mv "$T/k.json" "$T/killed.json"
interrupted=0   # kills that left the bundle unapplied
for round in 1 2 3 4 5 6; do
    "$BIN" bundle import --config "$T/killed.json" "$T/big.tar" > "$T/round.out" 2>&1 & P=$!
    # A random moment, later each round: the import gets further before each kill.
    sleep "$(printf '0.%02d' $(( round * 6 + RANDOM % 6 )))"
    kill -KILL "$P" 2>/dev/null || true
    wait "$P" 2>/dev/null || true
    if [[ -e "$T/killed/bundles/applied.json" ]]; then cp "$T/round.out" "$T/completing.out"; break; fi
    interrupted=$((interrupted + 1))
done
(( interrupted > 0 )) || fail "no import was interrupted by kill -9"
if [[ ! -e "$T/completing.out" ]]; then
    import "$T/killed.json" "$T/big.tar"
    (( IMPORT_RC == 0 )) || fail "import after kill -9: exit $IMPORT_RC: $(cat "$T/import.out")"
    cp "$T/import.out" "$T/completing.out"
fi
summary=$(grep "blob(s) written" "$T/completing.out" || true)
log "after $interrupted interrupted import(s): ${summary:-the completing import was killed after it applied}"
if [[ -n $summary ]]; then
    written=$(sed -n 's/.* \([0-9]*\) blob(s) written.*/\1/p' <<<"$summary")
    resumed=$(sed -n 's/.* \([0-9]*\) resumed.*/\1/p' <<<"$summary")
    carried=$("$BIN" bundle inspect --json "$T/big.tar" | jq -r .carriedBlobs)
    (( written < carried || resumed > 0 )) || fail "the import after kill -9 wrote all $carried blobs again: $summary"
fi
import "$T/killed.json" "$T/big.tar"
grep -q "already applied" "$T/import.out" || fail "the completed bundle was not recorded: $(cat "$T/import.out")"
kill_wait "$SAT"
"$BIN" serve --config "$T/killed.json" > "$T/serve2.log" 2>&1 & SAT=$!
on_exit "kill_wait $SAT 2>/dev/null || true"
WAIT_HTTP_PID=$SAT WAIT_HTTP_LOG="$T/serve2.log" wait_http "http://$SITE/healthz" 20
[[ $(served factory/big v1) == "$C1" ]] || fail "after the killed imports the site does not serve factory/big:v1 as $C1"
"$BIN" verify --config "$T/killed.json" > "$T/verify.out" 2>&1 || fail "verify after the killed imports: $(tail -n 2 "$T/verify.out")"
kill_wait "$SAT"
log "OK"
