#!/usr/bin/env bash
# gc_harbor.sh BIN (the ground-control binary)
# registry.kind = harbor against harbor_standin.py (Harbor's API v2.0 for the calls Harbor
# Satellite's Ground Control makes, request bodies validated against Harbor's swagger; its
# /v2/ checks Basic credentials like Harbor and proxies to Debian's docker-registry). No real
# Harbor runs here: this is what was tried.
#   1. satellite add: the `satellite` project is created, one system robot with pull on the
#      group's project and `satellite`; state artifacts pushed with registry.username/passwordFile;
#   2. ZTR rotates the robot's secret (PATCH); the credential pulls its group's image and its
#      state, and is refused on another project;
#   3. joining a second group re-scopes the robot (GET + PUT): the other project pulls now;
#   4. refresh rotates again: the old secret fails at ground-control and at the registry;
#      a refresh 5 days before the robot's expiry lengthens its duration in Harbor;
#   5. Harbor refusing (500) a membership change: 502, no row changed; ZTR refused by Harbor
#      leaves the token usable;
#   6. deleting the satellite deletes the robot: its credential stops working.
# Cost: ~15 s.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

BIN=${1:-}
[[ -n "$BIN" && -x "$BIN" ]] || fail "usage: $0 /path/to/ground-control (got '${BIN:-}')"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
need_tools docker-registry skopeo jq python3 curl
python3 -c 'import jsonschema' 2>/dev/null || fail "python3-jsonschema is not installed"
T=$E2E_TMP
HARBOR_ADMIN=admin HARBOR_PASSWORD=Harbor12345

start_docker_registry "$T/registry"
H_PORT=$(free_port)
H=127.0.0.1:$H_PORT
python3 "$E2E_DIR/harbor_standin.py" --listen "$H" --admin "$HARBOR_ADMIN:$HARBOR_PASSWORD" \
    --upstream "http://$DOCKER_REGISTRY_ADDR" --log "$T/harbor-calls.jsonl" --project library --project other \
    >"$T/harbor.log" 2>&1 &
H_PID=$!
on_exit "kill_wait $H_PID"
WAIT_HTTP_PID=$H_PID WAIT_HTTP_LOG="$T/harbor.log" wait_http "http://$H/v2/" 20

GC_PORT=$(free_port)
GC=http://127.0.0.1:$GC_PORT
export GC_ADMIN_PASSWORD=e2e-admin-password GC_URL=$GC
mkdir -p "$T/gc"
printf '%s\n' "$HARBOR_PASSWORD" >"$T/gc/harbor.password"
cat >"$T/gc/config.json" <<JSON
{ "listen": "127.0.0.1:$GC_PORT", "database": "sqlite://$T/gc/gc.sqlite", "dataDirectory": "$T/gc",
  "registry": { "url": "http://$H", "kind": "harbor", "username": "$HARBOR_ADMIN", "passwordFile": "$T/gc/harbor.password" } }
JSON
"$BIN" serve --config "$T/gc/config.json" >"$T/gc.log" 2>&1 &
GC_PID=$!
on_exit "kill_wait $GC_PID"
WAIT_HTTP_PID=$GC_PID WAIT_HTTP_LOG="$T/gc.log" wait_http "$GC/ping" 30
ADMIN=(-u "admin:$GC_ADMIN_PASSWORD" -H "Content-Type: application/json")

calls() { jq -c "select(.method == \"$1\" and (.path | test(\"$2\")))" "$T/harbor-calls.jsonl"; }
count() { calls "$1" "$2" | wc -l; }
robot_perms() {  # the projects of the robot's last written permissions, sorted, comma-separated
    jq -rs '[.[] | select((.method == "POST" and .path == "/api/v2.0/robots") or .method == "PUT") | .body.permissions]
            | last | map(.namespace) | sort | join(",")' "$T/harbor-calls.jsonl"
}
pull() { e2e_skopeo inspect --tls-verify=false --creds "$1" "docker://$H/$2" >"$T/pull.txt" 2>&1; }

log "images in Harbor (pushed as its admin)"
python3 "$E2E_DIR/mkimage.py" single --seed lib oci:"$T/img":lib >/dev/null
python3 "$E2E_DIR/mkimage.py" single --seed other oci:"$T/img":other >/dev/null
run_or_fail "push library/app" e2e_skopeo copy --dest-tls-verify=false --dest-creds "$HARBOR_ADMIN:$HARBOR_PASSWORD" \
    oci:"$T/img":lib docker://$H/library/app:1
run_or_fail "push other/app" e2e_skopeo copy --dest-tls-verify=false --dest-creds "$HARBOR_ADMIN:$HARBOR_PASSWORD" \
    oci:"$T/img":other docker://$H/other/app:1

log "1. satellite add: project satellite, a robot scoped to library + satellite"
"$BIN" group sync ships --image library/app:1 >/dev/null
"$BIN" group sync others --image other/app:1 >/dev/null
TOKEN=$("$BIN" satellite add edge-01 --group ships)
[[ ${#TOKEN} == 64 ]] || fail "satellite add printed '$TOKEN', not a token: $(tail -n 3 "$T/gc.log")"
[[ $(count HEAD '^/api/v2.0/projects\\?project_name=satellite$') -ge 1 ]] || fail "no HEAD /projects?project_name=satellite"
[[ $(calls POST '^/api/v2.0/projects$' | jq -r .body.project_name) == satellite ]] || fail "the satellite project was not created"
calls POST '^/api/v2.0/projects$' | jq -e '.body == {"project_name":"satellite","public":true,"storage_limit":-1}' >/dev/null \
    || fail "project request is not Harbor Satellite's: $(calls POST '^/api/v2.0/projects$')"
[[ $(count GET '^/api/v2.0/robots\\?q=name') -ge 1 ]] || fail "no robot lookup by name before creating it"
calls POST '^/api/v2.0/robots$' | jq -e '.body.name == "edge-01" and .body.level == "system" and .body.duration == 30
    and .body.disable == false and .body.description == "managed by ground-control should not edit"
    and (.body.permissions | all(.kind == "project" and (.access | map(.resource + ":" + .action) | sort
         == ["artifact:read", "repository:pull", "repository:read"])))' >/dev/null \
    || fail "robot request is not Harbor Satellite's: $(calls POST '^/api/v2.0/robots$')"
[[ $(robot_perms) == "library,satellite" ]] || fail "robot scoped to $(robot_perms), not library,satellite"
jq -e '.robot_name == "robot$edge-01"' < <(curl -sf "${ADMIN[@]}" "$GC/api/satellites/edge-01") >/dev/null \
    || fail "the satellite's robot name is not Harbor's: $(curl -s "${ADMIN[@]}" "$GC/api/satellites/edge-01")"
run_or_fail "the group state was pushed with the configured credentials" e2e_skopeo inspect --tls-verify=false \
    --creds "$HARBOR_ADMIN:$HARBOR_PASSWORD" docker://$H/satellite/group-state/ships/state:latest

log "2. ZTR: secret rotated in Harbor (PATCH), the credential pulls its group only"
curl -sf -X POST -d "{\"token\":\"$TOKEN\"}" "$GC/satellites/ztr" >"$T/ztr.json" || fail "ZTR refused: $(tail -n 3 "$T/gc.log")"
ROBOT=$(jq -r .auth.username "$T/ztr.json"); SECRET=$(jq -r .auth.password "$T/ztr.json")
[[ $ROBOT == 'robot$edge-01' ]] || fail "ZTR gave user $ROBOT"
[[ $(count PATCH '^/api/v2.0/robots/[0-9]+$') == 1 ]] || fail "ZTR did not rotate the secret with one PATCH"
calls PATCH '^/api/v2.0/robots/[0-9]+$' | jq -e '.body == {}' >/dev/null || fail "PATCH body is not an empty RobotSec"
pull "$ROBOT:$SECRET" library/app:1 || fail "the robot cannot pull its group's image: $(cat "$T/pull.txt")"
pull "$ROBOT:$SECRET" satellite/satellite-state/edge-01/state:latest || fail "the robot cannot pull its state: $(cat "$T/pull.txt")"
if pull "$ROBOT:$SECRET" other/app:1; then fail "the robot pulled another group's project"; fi
grep -qiE "denied|403|unauthorized" "$T/pull.txt" || fail "other project: $(cat "$T/pull.txt")"
code=$(curl -s -o /dev/null -w '%{http_code}' -u "$ROBOT:$SECRET" -X POST -d '{"name":"edge-01"}' "$GC/satellites/sync")
[[ $code == 200 ]] || fail "heartbeat with the Harbor credential: $code"

log "3. a second group re-scopes the robot (GET + PUT)"
puts=$(count PUT '^/api/v2.0/robots/[0-9]+$')
curl -sf "${ADMIN[@]}" -X POST -d '{"satellite":"edge-01","group":"others"}' "$GC/api/groups/satellite" >/dev/null \
    || fail "join refused"
[[ $(count PUT '^/api/v2.0/robots/[0-9]+$') == $((puts + 1)) ]] || fail "joining a group did not PUT the robot"
[[ $(robot_perms) == "library,other,satellite" ]] || fail "robot scoped to $(robot_perms) after joining others"
pull "$ROBOT:$SECRET" other/app:1 || fail "the robot cannot pull the new group's image: $(cat "$T/pull.txt")"

log "4. refresh rotates again; the old secret stops working"
curl -sf -u "$ROBOT:$SECRET" -X POST "$GC/satellites/refresh" >"$T/refresh.json" || fail "refresh refused"
NEW=$(jq -r .secret "$T/refresh.json")
[[ -n $NEW && $NEW != "$SECRET" ]] || fail "refresh gave no new secret: $(cat "$T/refresh.json")"
[[ $(count PATCH '^/api/v2.0/robots/[0-9]+$') == 2 ]] || fail "refresh did not PATCH the robot"
code=$(curl -s -o /dev/null -w '%{http_code}' -u "$ROBOT:$SECRET" -X POST -d '{}' "$GC/satellites/sync")
[[ $code == 401 ]] || fail "the old secret got $code from ground-control"
if pull "$ROBOT:$SECRET" library/app:1; then fail "the old secret still pulls from Harbor"; fi
pull "$ROBOT:$NEW" library/app:1 || fail "the new secret cannot pull: $(cat "$T/pull.txt")"
SECRET=$NEW

log "4b. a refresh 5 days before the robot's expiry lengthens its life in Harbor"
curl -sf -X POST "http://$H/standin/age?days=25" >/dev/null   # a 30-day robot, 5 days left
curl -sf -u "$ROBOT:$SECRET" -X POST "$GC/satellites/refresh" >"$T/refresh2.json" || fail "second refresh refused"
SECRET=$(jq -r .secret "$T/refresh2.json")
calls PUT '^/api/v2.0/robots/[0-9]+$' | tail -n 1 | jq -e '.body.duration == 56' >/dev/null \
    || fail "the refresh did not lengthen the robot to its age (25 days and seconds: 26) + 30 days: $(calls PUT '^/api/v2.0/robots/[0-9]+$' | tail -n 1)"
expires=$(date -d "$(jq -r .expires_at "$T/refresh2.json")" +%s)
(( expires > $(date +%s) + 29 * 86400 )) || fail "the refreshed credential expires at $(jq -r .expires_at "$T/refresh2.json")"
reply=$(curl -sf -u "$ROBOT:$SECRET" -X POST -d '{"name":"edge-01"}' "$GC/satellites/sync") || fail "heartbeat refused"
jq -e '.actions | length == 0' <<<"$reply" >/dev/null || fail "30 days before expiry the reply asks: $reply"
pull "$ROBOT:$SECRET" library/app:1 || fail "the lengthened robot cannot pull: $(cat "$T/pull.txt")"

log "5. Harbor refusing: 502, nothing changed"
curl -sf -X POST "http://$H/standin/fail?count=1" >/dev/null
code=$(curl -s -o "$T/502.json" -w '%{http_code}' "${ADMIN[@]}" -X DELETE -d '{"satellite":"edge-01","group":"others"}' "$GC/api/groups/satellite")
[[ $code == 502 ]] || fail "a membership change Harbor refused answered $code: $(cat "$T/502.json")"
jq -e '.code == 502 and (.message | test("Harbor"))' "$T/502.json" >/dev/null || fail "502 body: $(cat "$T/502.json")"
curl -sf "${ADMIN[@]}" "$GC/api/satellites/edge-01" | jq -e '.groups == ["others","ships"]' >/dev/null \
    || fail "the refused change left the membership changed: $(curl -s "${ADMIN[@]}" "$GC/api/satellites/edge-01")"
T2=$("$BIN" satellite add edge-02 --group ships)
curl -sf -X POST "http://$H/standin/fail?count=1" >/dev/null
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d "{\"token\":\"$T2\"}" "$GC/satellites/ztr")
[[ $code == 502 ]] || fail "ZTR with Harbor refusing answered $code"
curl -sf -X POST -d "{\"token\":\"$T2\"}" "$GC/satellites/ztr" >/dev/null || fail "the token was spent by a ZTR Harbor refused"
curl -sf -X POST "http://$H/standin/fail?count=1" >/dev/null
code=$(curl -s -o /dev/null -w '%{http_code}' "${ADMIN[@]}" -X POST -d '{"name":"edge-03","groups":["ships"]}' "$GC/api/satellites")
[[ $code == 502 ]] || fail "satellite add with Harbor refusing answered $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "${ADMIN[@]}" "$GC/api/satellites/edge-03")
[[ $code == 404 ]] || fail "a satellite whose robot Harbor refused was kept ($code)"

log "6. deleting the satellite deletes its robot"
code=$(curl -s -o /dev/null -w '%{http_code}' "${ADMIN[@]}" -X DELETE "$GC/api/satellites/edge-01")
[[ $code == 204 ]] || fail "delete answered $code"
[[ $(count DELETE '^/api/v2.0/robots/[0-9]+$') -ge 1 ]] || fail "no DELETE /robots/{id}"
if pull "$ROBOT:$SECRET" library/app:1; then fail "a deleted satellite's robot still pulls"; fi

if grep -q . "$T/harbor.log" && grep -qv "harbor stand-in on" "$T/harbor.log"; then
    cat "$T/harbor.log" >&2; fail "the stand-in logged errors"
fi
log "PASS: Harbor robot accounts: create, ZTR, re-scope, refresh, refusal, delete"
