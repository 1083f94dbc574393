#!/usr/bin/env bash
# fleet_ground_control.sh SATELLITE_BIN GROUND_CONTROL_BIN
# The satellite joins a fleet, with the real pieces: ground-control (SQLite), Debian's
# docker-registry as the central registry with ground-control as its token issuer, and
# `satellite-lite run` whose config names only groundControl (plus where to keep its store
# and listen). Steps:
#  1. an operator (admin API) creates group site-a (proj/app), config edge-cfg and satellite
#     edge-01, gets its join token;
#  2. Ground Control is down at first boot: the satellite retries ZTR with backoff and is
#     killed -9 meanwhile; the next start completes onboarding with the same token;
#  3. killed -9 again once onboarded, the join token deleted: the next start needs no token
#     and does not call ZTR;
#  4. it syncs the group's images; its heartbeat carries the applied state digest, the
#     config digest, sizes; Ground Control reports it in sync;
#  5. a group change (proj/web added) reaches it and Ground Control shows it in sync again;
#  6. a config change (interval, bandwidth) is applied without a restart;
#  7. an invalid remote config (satellite_lite.storage.path) is refused, reported in the
#     heartbeat's activity, and the last good config stays;
#  8. Ground Control down: the satellite keeps serving; heartbeats fail and back off; when
#     it is back, the next heartbeat says how long it was cut off;
#  9. the token and the registry password never appear in its log or `status`.
# Each request body the satellite sent is also what Harbor Satellite's API takes (FleetLinkTests).
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

# ---------------------------------------------------------------- ground-control + central registry
. "$(dirname "$0")/lib_fleet.sh"
fleet_up

APP=$(python3 "$MKIMAGE" single --platform linux/amd64 "oci:$T/img/app:v1" --layers 2 --size 16384) || fail "mkimage failed"
WEB=$(python3 "$MKIMAGE" single --platform linux/amd64 "oci:$T/img/web:v1" --layers 1 --size 16384) || fail "mkimage failed"
push "oci:$T/img/app:v1" proj/app:v1
push "oci:$T/img/web:v1" proj/web:v1

# ---------------------------------------------------------------- the operator
group_sync "$(art proj/app v1 "$APP")"
api POST /api/configs "$(jq -cn '{config_name:"edge-cfg",
    config:{app_config:{state_replication_interval:"@every 00h00m03s", heartbeat_interval:"@every 00h00m02s", log_level:"info"},
            satellite_lite:{sync:{bandwidth:"20MB/s"}}}}')" >/dev/null
TOKEN=$(api POST /api/satellites '{"name":"edge-01","groups":["site-a"],"config_name":"edge-cfg"}' | jq -r '.token // empty')
[[ -n "$TOKEN" ]] || fail "POST /api/satellites returned no token: $(head -c 300 "$T/api.out")"
printf '%s\n' "$TOKEN" > "$T/join.token"

# ---------------------------------------------------------------- the gateway
STORE=$T/store
SAT_ADDR="127.0.0.1:$(free_port)"
jq -n --arg store "$STORE" --arg listen "$SAT_ADDR" --arg gc "$GC_URL" --arg tok "$T/join.token" \
    '{storage:{path:$store}, registry:{listen:$listen},
      groundControl:{url:$gc, tokenFile:$tok, heartbeat:"2s"}}' > "$T/sat.json"
"$SAT" config check --config "$T/sat.json" >"$T/check.out" 2>&1 || fail "config check refused a groundControl-only config: $(tail -n 3 "$T/check.out")"
SAT_PID=
start_sat() {
    "$SAT" run --config "$T/sat.json" >>"$T/sat.log" 2>&1 &
    SAT_PID=$!
    WAIT_HTTP_PID=$SAT_PID WAIT_HTTP_LOG="$T/sat.log" wait_http "http://$SAT_ADDR/v2/" 20
}
on_exit '[[ -n "$SAT_PID" ]] && kill_wait $SAT_PID'
wait_for() { wait_until "$1" "$2" "$3" "$T/sat.log"; }
sat_status() { "$SAT" status --config "$T/sat.json" --json | jq -r "$1"; }
tag_of() { tr -d ' \n' < "$STORE/repositories/$1/_manifests/tags/$2" 2>/dev/null || true; }
has_tag() { [[ "$(tag_of "$1" "$2")" == "$3" ]]; }
gc_status() { curl -s -u "admin:$ADMIN_PW" "$GC_URL/api/satellites/edge-01/status"; }
gc_in_sync() { [[ "$(gc_status | jq -r '.in_sync')" == true ]]; }

# 2. Ground Control down at first boot; kill -9 while the satellite retries ZTR.
stop_gc
start_sat
wait_for 20 "a ZTR retry" 'grep -q "onboarding: Ground Control not reachable" "$T/sat.log"'
kill -KILL "$SAT_PID"; wait "$SAT_PID" 2>/dev/null || true; SAT_PID=
[[ ! -e "$STORE/fleet/link.json" ]] || fail "a link was stored without an answer from Ground Control"
start_gc
start_sat
wait_for 30 "onboarding" 'test -s "$STORE/fleet/link.json"'
[[ "$(stat -c %a "$STORE/fleet/link.json")" == 600 ]] || fail "fleet/link.json has mode $(stat -c %a "$STORE/fleet/link.json"), expected 600"
log "step 2 ok: onboarded after a kill -9 during onboarding, same token"

# 3. Onboarded: kill -9, delete the token; the next start must not need it.
kill -KILL "$SAT_PID"; wait "$SAT_PID" 2>/dev/null || true; SAT_PID=
rm -f "$T/join.token"
ONBOARDED_BEFORE=$(grep -c "onboarded with Ground Control" "$T/sat.log" || true)
start_sat
sleep 2
ONBOARDED_AFTER=$(grep -c "onboarded with Ground Control" "$T/sat.log" || true)
(( ONBOARDED_AFTER == ONBOARDED_BEFORE )) || fail "the restart called ZTR again"
log "step 3 ok: restart without a token uses the stored link"

# 4. It syncs its group, heartbeats with the applied digests; Ground Control says in sync.
wait_for 60 "proj/app:v1 in the store" 'has_tag proj/app v1 "$APP"'
STATE_DIGEST=$(remote_digest satellite/satellite-state/edge-01/state:latest)
wait_for 30 "the applied state digest" 'test "$(sat_status '\''.fleet.appliedStateDigest'\'')" = "$STATE_DIGEST"'
wait_for 30 "an applied config" 'test -n "$(sat_status '\''.fleet.appliedConfigDigest'\'')"'
CONFIG_DIGEST=$(remote_digest satellite/config-state/edge-cfg/state:latest)
[[ "$(sat_status '.fleet.appliedConfigDigest')" == "$CONFIG_DIGEST" ]] || fail "applied config $(sat_status '.fleet.appliedConfigDigest') is not the registry's $CONFIG_DIGEST"
wait_for 30 "Ground Control to report edge-01 in sync" gc_in_sync
gc_status > "$T/gc-status.json"
# The heartbeat's activity carries the WAN/LAN line (docs/sync.md): WAN bytes > 0 after a sync.
wait_for 30 "a heartbeat reporting WAN bytes" 'gc_status | grep -Eq "wan_bytes=[1-9][0-9]* lan_bytes=[0-9]+ wan_window=open"'
log "step 4 ok: synced, state $STATE_DIGEST, config $CONFIG_DIGEST; Ground Control: $(jq -c '{in_sync, missing, unexpected}' "$T/gc-status.json")"

# 5. A group change reaches it.
group_sync "$(art proj/app v1 "$APP")" "$(art proj/web v1 "$WEB")"
wait_for 60 "proj/web:v1 in the store" 'has_tag proj/web v1 "$WEB"'
NEW_STATE=$(remote_digest satellite/satellite-state/edge-01/state:latest)
wait_for 30 "Ground Control to report edge-01 in sync after the group change" gc_in_sync
log "step 5 ok: group change synced (state $NEW_STATE)"

# 6. A config change is applied without a restart.
PID_BEFORE=$SAT_PID
api PATCH /api/configs/edge-cfg '{"app_config":{"state_replication_interval":"@every 00h00m04s"},"satellite_lite":{"sync":{"bandwidth":"10MB/s"}}}' >/dev/null
wait_for 30 "the new config in the registry" 'test "$(remote_digest satellite/config-state/edge-cfg/state:latest)" != "$CONFIG_DIGEST"'
CONFIG2=$(remote_digest satellite/config-state/edge-cfg/state:latest)
wait_for 30 "the new config applied" 'test "$(sat_status '\''.fleet.appliedConfigDigest'\'')" = "$CONFIG2"'
wait_for 20 "the 4s interval in effect" 'grep -q "interval=4s.*remote config in effect" "$T/sat.log"' \
    || fail "the 4s interval is not in effect: $(grep 'remote config' "$T/sat.log" | tail -n 2 | tr '\n' ' ')"
kill -0 "$PID_BEFORE" || fail "the satellite restarted"
log "step 6 ok: config $CONFIG2 applied in the running process"

# 7. An invalid remote config is refused; the last good one stays.
api PATCH /api/configs/edge-cfg '{"satellite_lite":{"storage":{"path":"/tmp/elsewhere"}}}' >/dev/null
wait_for 30 "the refusal" 'test -n "$(sat_status '\''.fleet.refusedConfigDigest // empty'\'')"'
[[ "$(sat_status '.fleet.appliedConfigDigest')" == "$CONFIG2" ]] || fail "the refused config replaced the last good one"
wait_for 30 "the refusal in Ground Control's view" 'gc_status | grep -q "refused config"'
log "step 7 ok: refused ($(sat_status '.fleet.refusedConfigReason' | cut -c1-100)), kept $CONFIG2"

# 8. Ground Control down: serving goes on; heartbeats back off and report the gap later.
stop_gc
wait_for 20 "a failed heartbeat" 'test "$(sat_status '\''.fleet.unreachableSince // empty'\'')" != ""'
e2e_skopeo inspect --tls-verify=false --raw "docker://$SAT_ADDR/proj/app:v1" >/dev/null || fail "the satellite stopped serving while Ground Control is down"
sleep 5
start_gc
wait_for 60 "a heartbeat after the outage" 'test -z "$(sat_status '\''.fleet.unreachableSince // empty'\'')"'
wait_for 30 "Ground Control to see the reconnection" 'gc_status | grep -q "reconnected after"'
log "step 8 ok: kept serving while Ground Control was down; reported the gap when it came back"

# 9. No secret in the log or status.
PASSWORD=$(jq -r '.registry.password' "$STORE/fleet/link.json")
"$SAT" status --config "$T/sat.json" > "$T/status.txt" 2>&1 || true
"$SAT" status --config "$T/sat.json" --json >> "$T/status.txt" 2>&1 || true
for secret in "$TOKEN" "$PASSWORD"; do
    ! grep -qF -- "$secret" "$T/sat.log" "$T/status.txt" || fail "a secret appears in the satellite's log or status"
done
log "step 9 ok: no token or password in log or status"
log "PASS"
