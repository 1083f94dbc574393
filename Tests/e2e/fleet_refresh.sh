#!/usr/bin/env bash
# fleet_refresh.sh SATELLITE_BIN GROUND_CONTROL_BIN
# Credential refresh against the real ground-control: credentials that live 30 s, with a
# 20 s refresh window (credentialLifetime / credentialRefreshWindow in its config), so its
# heartbeat replies carry `refresh_credentials` soon after onboarding. Debian's
# docker-registry is the central registry with ground-control as its token issuer.
#  1. the satellite onboards (ZTR) and syncs its group's image with the first secret;
#  2. a heartbeat reply asks for a refresh: it rotates the secret (POST /satellites/refresh),
#     stores the new one (fleet/link.json, 0600) and goes on heartbeating with it;
#  3. the old secret is refused by the token issuer (401), the new one gets a pull token
#     and the registry serves the manifest with it;
#  4. after the rotation it keeps pulling: a group change (a second image) reaches it;
#  5. the pull-through proxy uses the upstream and the rotated credentials Ground Control
#     supplies: proj/app:v2, outside the desired state, is pulled through the satellite;
#  6. neither secret appears in its log.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

SAT=${1:-}
GC=${2:-}
[[ -n "$SAT" && -x "$SAT" ]] || fail "usage: $0 /path/to/satellite-lite /path/to/ground-control (got '${SAT:-}')"
[[ -n "$GC" && -x "$GC" ]] || fail "usage: $0 /path/to/satellite-lite /path/to/ground-control (got '${GC:-}')"
SAT=$(cd "$(dirname "$SAT")" && pwd)/$(basename "$SAT")
GC=$(cd "$(dirname "$GC")" && pwd)/$(basename "$GC")
need_tools docker-registry skopeo jq python3 curl
T=$E2E_TMP
export E2E_CMD_TIMEOUT=${E2E_CMD_TIMEOUT:-60}
ADMIN_PW="admin-$RANDOM-$RANDOM-pw"

# ---------------------------------------------------------------- ground-control + registry
. "$(dirname "$0")/lib_fleet.sh"
fleet_up '.credentialLifetime = "30s" | .credentialRefreshWindow = "20s"'

APP=$(python3 "$MKIMAGE" single --platform linux/amd64 "oci:$T/img/app:v1" --layers 1 --size 8192) || fail "mkimage failed"
WEB=$(python3 "$MKIMAGE" single --platform linux/amd64 "oci:$T/img/web:v1" --layers 1 --size 8192) || fail "mkimage failed"
push "oci:$T/img/app:v1" proj/app:v1
push "oci:$T/img/web:v1" proj/web:v1
APP2=$(python3 "$MKIMAGE" single --platform linux/amd64 "oci:$T/img/app:v2" --layers 1 --size 8192 --seed 7) || fail "mkimage failed"
push "oci:$T/img/app:v2" proj/app:v2

group_sync "$(art proj/app v1 "$APP")"
TOKEN=$(api POST /api/satellites '{"name":"edge-01","groups":["site-a"]}' | jq -r '.token // empty')
[[ -n "$TOKEN" ]] || fail "POST /api/satellites returned no token"
printf '%s\n' "$TOKEN" > "$T/join.token"

# ---------------------------------------------------------------- the satellite
STORE=$T/store
SAT_ADDR="127.0.0.1:$(free_port)"
jq -n --arg store "$STORE" --arg listen "$SAT_ADDR" --arg gc "$GC_URL" --arg tok "$T/join.token" \
    '{storage:{path:$store}, registry:{listen:$listen}, state:{interval:"3s"},
      groundControl:{url:$gc, tokenFile:$tok, heartbeat:"2s", remoteConfig:false}, proxy:{enabled:true}}' > "$T/sat.json"
"$SAT" run --config "$T/sat.json" >>"$T/sat.log" 2>&1 &
SAT_PID=$!
on_exit 'kill_wait $SAT_PID'
WAIT_HTTP_PID=$SAT_PID WAIT_HTTP_LOG="$T/sat.log" wait_http "http://$SAT_ADDR/v2/" 20
wait_for() { wait_until "$1" "$2" "$3" "$T/sat.log"; }
tag_of() { tr -d ' \n' < "$STORE/repositories/$1/_manifests/tags/$2" 2>/dev/null || true; }
secret() { jq -r '.registry.password' "$STORE/fleet/link.json" 2>/dev/null; }
robot() { jq -r '.registry.username' "$STORE/fleet/link.json"; }
token_status() { # PASSWORD: the token issuer's answer to the satellite's robot with it
    curl -s -o "$T/token.out" -w '%{http_code}' -u "$(robot):$1" \
        "$GC_URL/auth/token?service=central-registry&scope=repository:proj/app:pull"
}

# 1. Onboarded, synced with the first secret.
wait_for 30 "onboarding" 'test -s "$STORE/fleet/link.json"'
FIRST=$(secret)
[[ -n "$FIRST" ]] || fail "no secret in fleet/link.json"
wait_for 60 "proj/app:v1 in the store" 'test "$(tag_of proj/app v1)" = "$APP"'
log "1. onboarded as $(robot), synced proj/app:v1"

# 2. Ground Control asks for a refresh (the secret expires within 20 s): it rotates.
wait_for 40 "a refreshed secret in fleet/link.json" 'test -n "$(secret)" && test "$(secret)" != "$FIRST"'
SECOND=$(secret)
[[ "$(stat -c %a "$STORE/fleet/link.json")" == 600 ]] || fail "fleet/link.json has mode $(stat -c %a "$STORE/fleet/link.json") after the refresh"
grep -q 'reason=asked by Ground Control.*registry credentials refreshed' "$T/sat.log" || fail "the refresh was not the one Ground Control asked for: $(grep -i refresh "$T/sat.log" | tail -n 2 | tr '\n' ' ')"
wait_for 20 "an accepted heartbeat with the new secret" \
    '"$SAT" status --config "$T/sat.json" --json | jq -e ".fleet.lastHeartbeatResult == \"ok\" and .fleet.credentialsRefreshedAt != null and .fleet.lastHeartbeatOK > .fleet.credentialsRefreshedAt" >/dev/null'
log "2. rotated on refresh_credentials; heartbeats go on"

# 3. The old secret is refused, the new one pulls. The refresh may run again meanwhile
#    (the window is wide): take whatever secret is current.
CURRENT=$(secret)
code=$(token_status "$FIRST")
[[ "$code" == 401 ]] || fail "the first secret still gets a token (HTTP $code)"
code=$(token_status "$CURRENT")
[[ "$code" == 200 ]] || fail "the current secret gets no token (HTTP $code: $(head -c 200 "$T/token.out"))"
BEARER=$(jq -r '.token // .access_token' "$T/token.out")
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $BEARER" \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json' \
    "http://$REG/v2/proj/app/manifests/v1")
[[ "$code" == 200 ]] || fail "the registry refused the current secret's token (HTTP $code)"
log "3. the first secret gets 401 from the token issuer; the current one pulls from docker-registry"

# 4. After the rotation it keeps pulling: a group change reaches it.
group_sync "$(art proj/app v1 "$APP")" "$(art proj/web v1 "$WEB")"
wait_for 60 "proj/web:v1 in the store (pulled with a refreshed secret)" 'test "$(tag_of proj/web v1)" = "$WEB"'
[[ "$(secret)" != "$FIRST" ]] || fail "back to the first secret"
! grep -q '401' "$T/sat.log" || log "note: a 401 was logged (a pass raced a rotation): $(grep '401' "$T/sat.log" | tail -n 1 | cut -c1-200)"
log "4. group change synced after the rotation ($(grep -c 'registry credentials refreshed' "$T/sat.log") refresh(es) so far)"

# 5. The proxy follows the fleet's upstream and the rotated secret: a tag outside the
#    desired state (same repository, so the robot may pull it) comes through the satellite.
code=$(curl -s -o "$T/proxied" -w '%{http_code}' -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json' \
    "http://$SAT_ADDR/v2/proj/app/manifests/v2")
[[ "$code" == 200 ]] || fail "proj/app:v2 through the proxy answered $code: $(head -c 300 "$T/proxied")"
[[ "sha256:$(sha256sum < "$T/proxied" | cut -d' ' -f1)" == "$APP2" ]] || fail "the proxied proj/app:v2 does not hash to $APP2"
LAYER2=$(jq -r '.layers[0].digest // empty' "$T/proxied")
if [[ -z "$LAYER2" ]]; then # an index: its first manifest
    M=$(jq -r '.manifests[0].digest' "$T/proxied")
    curl -s -o "$T/proxied" -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$SAT_ADDR/v2/proj/app/manifests/$M"
    LAYER2=$(jq -r '.layers[0].digest' "$T/proxied")
fi
code=$(curl -s -o "$T/layer" -w '%{http_code}' "http://$SAT_ADDR/v2/proj/app/blobs/$LAYER2")
[[ "$code" == 200 && "sha256:$(sha256sum < "$T/layer" | cut -d' ' -f1)" == "$LAYER2" ]] || fail "the proxied layer answered $code or does not hash to $LAYER2"
log "5. proj/app:v2 (not in the desired state) pulled through the proxy with the fleet's upstream and rotated secret"

# 6. No secret in the log.
for s in "$TOKEN" "$FIRST" "$SECOND" "$(secret)"; do
    ! grep -qF -- "$s" "$T/sat.log" || fail "a secret appears in the satellite's log"
done
kill -0 "$SAT_PID" || fail "satellite-lite exited"
log "PASS"
