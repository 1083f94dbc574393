#!/usr/bin/env bash
# gc_registry_token.sh BIN (the ground-control binary)
# ground-control as the token issuer of Debian's docker-registry (registry.kind =
# distribution, auth.token with the certificate ground-control creates at first start):
#   1. an admin pushes two images (ships/app, other/app) through ground-control's tokens;
#   2. `ground-control group sync` and `satellite add` (the CLI verbs) create a group and a
#      satellite; ZTR with the join token returns registry credentials, once;
#   3. the satellite's credential pulls its group's image and its own state artifact
#      (published by ground-control: artifacts.json naming its group state) and is
#      refused (401/403) on the other group's image;
#   4. a heartbeat is stored and `ground-control status` shows the satellite.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

BIN=${1:-}
[[ -n "$BIN" && -x "$BIN" ]] || fail "usage: $0 /path/to/ground-control (got '${BIN:-}')"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
need_tools docker-registry skopeo jq python3 curl tar
T=$E2E_TMP
GC_PORT=$(free_port)
REG_PORT=$(free_port)
REG=127.0.0.1:$REG_PORT
GC=http://127.0.0.1:$GC_PORT
export GC_ADMIN_PASSWORD=e2e-admin-password GC_URL=$GC

mkdir -p "$T/gc" "$T/registry/storage"
cat > "$T/gc/config.json" <<JSON
{ "listen": "127.0.0.1:$GC_PORT", "database": "sqlite://$T/gc/gc.sqlite", "dataDirectory": "$T/gc",
  "registry": { "url": "http://$REG", "kind": "distribution" } }
JSON
"$BIN" serve --config "$T/gc/config.json" >"$T/gc.log" 2>&1 &
GC_PID=$!
on_exit "kill_wait $GC_PID"
WAIT_HTTP_PID=$GC_PID WAIT_HTTP_LOG="$T/gc.log" wait_http "$GC/ping" 30
[[ -s "$T/gc/token-signing.crt" ]] || fail "no token signing certificate created at first start"

cat > "$T/registry/config.yml" <<YAML
version: 0.1
log: { level: warn, accesslog: { disabled: true } }
storage: { filesystem: { rootdirectory: $T/registry/storage } }
http: { addr: $REG }
auth:
  token:
    realm: $GC/auth/token
    service: central-registry
    issuer: ground-control
    rootcertbundle: $T/gc/token-signing.crt
YAML
unset_env=()
for v in $(compgen -e | grep '^REGISTRY_' | grep -v '^REGISTRY_AUTH_FILE$' || true); do unset_env+=(-u "$v"); done
env "${unset_env[@]}" -u REGISTRY_AUTH_FILE docker-registry serve "$T/registry/config.yml" >"$T/registry.log" 2>&1 &
REG_PID=$!
on_exit "kill_wait $REG_PID"
WAIT_HTTP_PID=$REG_PID WAIT_HTTP_LOG="$T/registry.log" wait_http "http://$REG/v2/" 20
code=$(curl -s -o /dev/null -w '%{http_code}' "http://$REG/v2/")
[[ $code == 401 ]] || fail "the registry answers /v2/ without a token: $code"

log "1. admin pushes through ground-control's tokens"
python3 "$E2E_DIR/mkimage.py" single --seed ships oci:"$T/img":ships >/dev/null
python3 "$E2E_DIR/mkimage.py" single --seed other oci:"$T/img":other >/dev/null
for name in ships other; do
    run_or_fail "push $name/app" e2e_skopeo copy --dest-tls-verify=false --dest-creds "admin:$GC_ADMIN_PASSWORD" \
        oci:"$T/img":$name docker://$REG/$name/app:1
done

log "2. group sync, satellite add (CLI), ZTR"
"$BIN" group sync ships --image ships/app:1 >/dev/null
"$BIN" group sync other --image other/app:1 >/dev/null
TOKEN=$("$BIN" satellite add edge-01 --group ships)
[[ ${#TOKEN} == 64 ]] || fail "satellite add printed '$TOKEN', not a token"
curl -sf -X POST -d "{\"token\":\"$TOKEN\"}" "$GC/satellites/ztr" >"$T/ztr.json" || fail "ZTR refused"
USER=$(jq -r .auth.username "$T/ztr.json"); PASS=$(jq -r .auth.password "$T/ztr.json")
[[ $(jq -r .state "$T/ztr.json") == "$REG/satellite/satellite-state/edge-01/state:latest" ]] || fail "state: $(cat "$T/ztr.json")"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d "{\"token\":\"$TOKEN\"}" "$GC/satellites/ztr")
[[ $code == 400 ]] || fail "a spent token answered $code, not 400"

log "3. the satellite's credential: its group yes, the other group no"
run_or_fail "pull ships/app" e2e_skopeo inspect --tls-verify=false --creds "$USER:$PASS" docker://$REG/ships/app:1
if e2e_skopeo inspect --tls-verify=false --creds "$USER:$PASS" docker://$REG/other/app:1 >"$T/denied.txt" 2>&1; then
    fail "the satellite could read another group's image"
fi
grep -qiE 'denied|unauthorized|401|403' "$T/denied.txt" || fail "unexpected refusal: $(tail -1 "$T/denied.txt")"
run_or_fail "pull own state" e2e_skopeo copy --src-tls-verify=false --src-creds "$USER:$PASS" \
    docker://$REG/satellite/satellite-state/edge-01/state:latest dir:"$T/state"
layer=$(jq -r '.layers[0].digest' "$T/state/manifest.json" | cut -d: -f2)
tar -xzf "$T/state/$layer" -O artifacts.json >"$T/artifacts.json"
jq -e --arg g "$REG/satellite/group-state/ships/state:latest" '.states == [$g]' "$T/artifacts.json" >/dev/null \
    || fail "satellite state: $(cat "$T/artifacts.json")"
if e2e_skopeo inspect --tls-verify=false --creds "$USER:$PASS" docker://$REG/satellite/group-state/other/state:latest >/dev/null 2>&1; then
    fail "the satellite could read another group's state"
fi

log "4. heartbeat and status"
curl -sf -u "$USER:$PASS" -d '{"name":"edge-01","cached_images":[{"reference":"'$REG'/ships/app:1","size_bytes":1}]}' \
    "$GC/satellites/sync" | jq -e '.actions == [] and .events == []' >/dev/null || fail "heartbeat refused"
"$BIN" status | grep -E '^edge-01 +in_sync' >/dev/null || fail "status: $("$BIN" status)"
log "ok"
