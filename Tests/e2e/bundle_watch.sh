#!/usr/bin/env bash
# bundle_watch.sh BIN
# The watch folder of `run` (bundles.watch): a bundle copied in slowly is imported only once
# its size is stable; a bad one (with a .done marker) is reported (log, status, sync-failed
# hook) and left in place with the previous state served; a differential one applies; no
# file is imported twice, also across a restart.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

e2e_binary "${1:-}"
need_tools docker-registry skopeo jq python3 curl openssl
T=$E2E_TMP
TAMPER="$(dirname "$0")/bundle_tamper.py"
export E2E_CMD_TIMEOUT=${E2E_CMD_TIMEOUT:-60}

openssl ecparam -name prime256v1 -genkey -noout -out "$T/bundle.key" 2>/dev/null
openssl ec -in "$T/bundle.key" -pubout -out "$T/bundle.pub" 2>/dev/null

start_docker_registry "$T/up"
UP=$DOCKER_REGISTRY_ADDR
push_up() { # NAME SEED -> digest of factory/app:v1
    python3 "$MKIMAGE" single "oci:$T/$1:v1" --layers 2 --size 300000 --seed "$2" >/dev/null
    e2e_skopeo copy -q --dest-tls-verify=false --preserve-digests --digestfile "$T/$1.digest" \
        "oci:$T/$1:v1" "docker://$UP/factory/app:v1" >/dev/null 2>&1 || fail "push $1 failed"
    cat "$T/$1.digest"
}
jq -n --arg s "$T/connected" --arg up "http://$UP" \
    '{storage:{path:$s}, upstream:{url:$up}, state:{images:["factory/app:v1"]}, sync:{timeout:"30s"}}' > "$T/connected.json"
A1=$(push_up a1 31)
run_or_fail "bundle create b1" "$BIN" bundle create --config "$T/connected.json" --sign "$T/bundle.key" --output "$T/b1.tar"
A2=$(push_up a2 32)
run_or_fail "bundle create b2" "$BIN" bundle create --config "$T/connected.json" --sign "$T/bundle.key" --base "$T/b1.tar" --output "$T/b2.tar"
python3 "$TAMPER" flip "$T/b2.tar" "$T/bad.tar"

PORT=$(free_port)
SITE=127.0.0.1:$PORT
mkdir -p "$T/usb"
hook='printf "%s|%s|%s|%s\n" "$SATELLITE_EVENT" "$SATELLITE_IMAGE" "$SATELLITE_DIGEST" "$SATELLITE_MESSAGE" >> '"$T/hooks.log"
jq -n --arg s "$T/site" --arg listen "$SITE" --arg key "$T/bundle.pub" --arg usb "$T/usb" --arg hook "$hook" \
    '{storage:{path:$s}, registry:{listen:$listen}, bundles:{watch:$usb, keys:[$key], settle:"3s"},
      hooks:[{on:"image-updated", run:$hook}, {on:"bundle-imported", run:$hook}, {on:"sync-failed", run:$hook}]}' > "$T/site.json"
start_run() {
    "$BIN" run --config "$T/site.json" > "$T/run.log" 2>&1 & SAT=$!
    on_exit "kill_wait $SAT 2>/dev/null || true"
    WAIT_HTTP_PID=$SAT WAIT_HTTP_LOG="$T/run.log" wait_http "http://$SITE/healthz" 20
}
served() {
    curl -s -o /dev/null -D - -I -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        "http://$SITE/v2/factory/app/manifests/v1" | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}'
}
count() { grep -c "^$1|" "$T/hooks.log" 2>/dev/null || true; }
touch "$T/hooks.log"
start_run

# A slow copy: half the file, a pause longer than a scan, then the rest.
size=$(stat -c %s "$T/b1.tar")
head -c $(( size / 2 )) "$T/b1.tar" > "$T/usb/b1.tar"
sleep 1.5
grep -q "bundle refused" "$T/run.log" && fail "a half-copied bundle was imported: $(grep 'bundle refused' "$T/run.log")"
tail -c +$(( size / 2 + 1 )) "$T/b1.tar" >> "$T/usb/b1.tar"
wait_until 20 "b1.tar imported from the watch folder" '[[ $(served) == "$A1" ]]' "$T/run.log"
wait_until 10 "the bundle-imported hook" '(( $(count bundle-imported) == 1 ))' "$T/hooks.log"
log "slowly copied bundle imported once complete"

cp "$T/bad.tar" "$T/usb/bad.tar" && touch "$T/usb/bad.tar.done"
wait_until 15 "the sync-failed hook for bad.tar" 'grep -q "^sync-failed|.*bad.tar" "$T/hooks.log"' "$T/run.log"
[[ $(served) == "$A1" ]] || fail "after the bad bundle the site serves $(served), not $A1"
[[ -e "$T/usb/bad.tar" ]] || fail "the bad bundle was removed from the watch folder"
"$BIN" status --config "$T/site.json" | grep -q "bundle watch: .*bad.tar.*damaged" || fail "status does not show the refusal: $("$BIN" status --config "$T/site.json")"
grep -q "bundle refused" "$T/run.log" || fail "the log does not report the refusal"
log "bad bundle reported (hook, status, log) and left in place"

cp "$T/b2.tar" "$T/usb/b2.tar.partial" && mv "$T/usb/b2.tar.partial" "$T/usb/b2.tar" && touch "$T/usb/b2.tar.done"
wait_until 15 "the differential b2.tar applied" '[[ $(served) == "$A2" ]]' "$T/run.log"
wait_until 10 "two bundle-imported hooks" '(( $(count bundle-imported) == 2 ))' "$T/hooks.log"
! "$BIN" status --config "$T/site.json" | grep -q "bundle watch:" || fail "status still shows the old refusal after a good import"

sleep 3
kill_wait "$SAT"
start_run
sleep 4
(( $(count bundle-imported) == 2 )) || fail "a bundle was imported twice: $(grep bundle-imported "$T/hooks.log")"
(( $(grep -c "^sync-failed|.*bad.tar" "$T/hooks.log") == 1 )) || fail "the bad bundle was reported more than once"
[[ $(served) == "$A2" ]] || fail "after the restart the site serves $(served), not $A2"
kill_wait "$SAT"
log "OK"
