#!/usr/bin/env bash
# fleet_offline.sh BIN
# A satellite onboarded earlier (its fleet/link.json in the store, as ZTR wrote it) while
# Ground Control is unreachable, with Debian's docker-registry (Basic auth, like Harbor's
# robot accounts) as the central registry holding the state artifacts:
#  1. `run` keeps serving and syncs the group's images from the registry: Ground Control
#     being down holds up neither; the applied state digest is the registry's;
#  2. the config state it names is applied without a restart (interval 2s, bandwidth);
#  3. an invalid config state (storage.path) is refused; the last good one stays and
#     survives a restart (the 2s interval is still in effect after it);
#  4. heartbeats fail and back off, counted in status and /metrics;
#  5. a 401 from the registry (rotated secret) triggers one credential refresh;
#  6. the registry password never appears in the log, status or /metrics.
# The same steps with the real ground-control are in fleet_ground_control.sh.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

e2e_binary "${1:-}"
need_tools docker-registry skopeo jq python3 curl htpasswd
T=$E2E_TMP
MKSTATE="$E2E_DIR/mkstate.py"
ROBOT='robot$edge-07'
PASSWORD="pw-$RANDOM-$RANDOM-secret"
export E2E_CMD_TIMEOUT=${E2E_CMD_TIMEOUT:-60}

mkdir -p "$T/reg"
htpasswd -B -b -c "$T/reg/htpasswd" "$ROBOT" "$PASSWORD" >/dev/null 2>&1 || fail "htpasswd -B failed"
start_docker_registry "$T/reg" "auth:
  htpasswd:
    realm: central
    path: $T/reg/htpasswd"
REG=$DOCKER_REGISTRY_ADDR
push() {
    local out
    out=$(e2e_skopeo copy -q --all --preserve-digests --dest-tls-verify=false --dest-creds "$ROBOT:$PASSWORD" "$1" "docker://$REG/$2" 2>&1) \
        || fail "push of $1 to $2 failed: $(tail -n 2 <<<"$out" | tr '\n' ' ')"
}
push_state() { # REPO JSON -> prints the manifest digest
    local dir=$T/state-$RANDOM$RANDOM digest
    digest=$(printf '%s\n' "$2" | python3 "$MKSTATE" --docker --json - "dir:$dir") || fail "mkstate.py failed for $1"
    push "dir:$dir" "$1:latest"
    printf '%s\n' "$digest"
}
APP=$(python3 "$MKIMAGE" single --platform linux/amd64 "oci:$T/img/app:v1" --layers 2 --size 16384) || fail "mkimage failed"
push "oci:$T/img/app:v1" proj/app:v1
push_state satellite/group-state/site-a/state "$(jq -cn --arg reg "http://$REG" --arg d "$APP" \
    '{group:"site-a", registry:$reg, artifacts:[{repository:"proj/app", tag:["v1"], digest:$d, type:"IMAGE"}]}')" >/dev/null
CONFIG1=$(push_state satellite/config-state/edge-cfg/state \
    '{"app_config":{"state_replication_interval":"@every 00h00m02s","log_level":"info"},"satellite_lite":{"sync":{"bandwidth":"20MB/s"}}}')
STATE=$(push_state satellite/satellite-state/edge-07/state "$(jq -cn --arg reg "http://$REG" \
    '{states:[($reg + "/satellite/group-state/site-a/state:latest")], config:($reg + "/satellite/config-state/edge-cfg/state:latest")}')")

# The store as onboarding left it: link.json (0600) with the ZTR answer.
STORE=$T/store
mkdir -p "$STORE/fleet"
jq -n --arg reg "http://$REG" --arg u "$ROBOT" --arg p "$PASSWORD" \
    '{groundControl:"http://127.0.0.1:1", name:"edge-07", state:($reg + "/satellite/satellite-state/edge-07/state:latest"),
      registry:{url:$reg, username:$u, password:$p}, onboardedAt:1}' > "$STORE/fleet/link.json"
chmod 600 "$STORE/fleet/link.json"
SAT_ADDR="127.0.0.1:$(free_port)"
# Ground Control at a port nothing listens on; no token: onboarding is done.
jq -n --arg store "$STORE" --arg listen "$SAT_ADDR" \
    '{storage:{path:$store}, registry:{listen:$listen}, groundControl:{url:"http://127.0.0.1:1", heartbeat:"1s"}}' > "$T/sat.json"
SAT_PID=
start_sat() {
    "$BIN" run --config "$T/sat.json" >>"$T/sat.log" 2>&1 &
    SAT_PID=$!
    WAIT_HTTP_PID=$SAT_PID WAIT_HTTP_LOG="$T/sat.log" wait_http "http://$SAT_ADDR/v2/" 20
}
on_exit '[[ -n "$SAT_PID" ]] && kill_wait $SAT_PID'
wait_for() { wait_until "$1" "$2" "$3" "$T/sat.log"; }
sat_status() { "$BIN" status --config "$T/sat.json" --json | jq -r "$1"; }
has_app() { [[ "$(tr -d ' \n' < "$STORE/repositories/proj/app/_manifests/tags/v1" 2>/dev/null)" == "$APP" ]]; }

# 1. Serving and syncing with Ground Control down.
start_sat
wait_for 30 "proj/app:v1 in the store" has_app
e2e_skopeo inspect --tls-verify=false --raw "docker://$SAT_ADDR/proj/app:v1" >/dev/null || fail "the satellite does not serve proj/app:v1"
wait_for 20 "the applied state digest" 'test "$(sat_status '\''.fleet.appliedStateDigest'\'')" = "$STATE"'
log "step 1 ok: synced and serving without Ground Control; applied state $STATE"

# 2. The config state is applied in the running process.
wait_for 20 "config $CONFIG1 applied" 'test "$(sat_status '\''.fleet.appliedConfigDigest'\'')" = "$CONFIG1"'
wait_for 20 "the 2s interval in effect" 'grep -q "interval=2s.*remote config in effect" "$T/sat.log"'
PASSES=$(grep -c 'sync pass finished' "$T/sat.log")
sleep 5
(( $(grep -c 'sync pass finished' "$T/sat.log") >= PASSES + 2 )) || fail "passes do not run every 2s after the remote config"
log "step 2 ok: config $CONFIG1 applied without a restart"

# 3. An invalid config is refused; the last good one stays, also across a restart.
BAD=$(push_state satellite/config-state/edge-cfg/state '{"satellite_lite":{"storage":{"path":"/tmp/elsewhere"}}}')
wait_for 20 "the refusal of $BAD" 'test "$(sat_status '\''.fleet.refusedConfigDigest // empty'\'')" = "$BAD"'
[[ "$(sat_status '.fleet.appliedConfigDigest')" == "$CONFIG1" ]] || fail "the refused config replaced the last good one"
sat_status '.fleet.refusedConfigReason' | grep -q 'storage.path' || fail "the refusal does not say why: $(sat_status '.fleet.refusedConfigReason')"
kill_wait "$SAT_PID"; SAT_PID=
: > "$T/sat.log.2"; mv "$T/sat.log" "$T/sat.log.1"
start_sat
wait_for 20 "a pass after the restart" 'grep -q "sync pass finished" "$T/sat.log"'
PASSES=$(grep -c 'sync pass finished' "$T/sat.log")
sleep 5
(( $(grep -c 'sync pass finished' "$T/sat.log") >= PASSES + 2 )) || fail "after a restart, the last good config's 2s interval is not in effect"
[[ "$(sat_status '.fleet.appliedConfigDigest')" == "$CONFIG1" ]] || fail "after a restart the applied config is $(sat_status '.fleet.appliedConfigDigest')"
log "step 3 ok: $BAD refused ($(sat_status '.fleet.refusedConfigReason' | cut -c1-80)); $CONFIG1 kept across a restart"

# 4. Heartbeats fail, are counted, and back off.
wait_for 20 "failed heartbeats" 'test "$(sat_status '\''.fleet.heartbeatsFailed'\'')" -ge 2'
[[ -n "$(sat_status '.fleet.unreachableSince // empty')" ]] || fail "status does not say since when Ground Control is unreachable"
curl -s "http://$SAT_ADDR/metrics" > "$T/metrics.txt"
grep -q '^satellite_heartbeat_failures_total [1-9]' "$T/metrics.txt" || fail "/metrics lacks heartbeat failures: $(grep heartbeat "$T/metrics.txt" | tr '\n' ' ')"
grep -q '^satellite_ground_control_reachable 0' "$T/metrics.txt" || fail "/metrics says Ground Control is reachable"
log "step 4 ok: $(sat_status '.fleet.heartbeatsFailed') failed heartbeats counted"

# 5. The registry refuses the credentials (its robot secret rotated): one refresh is tried.
kill_wait "$DOCKER_REGISTRY_PID"
htpasswd -B -b -c "$T/reg/htpasswd" "$ROBOT" "rotated-$RANDOM" >/dev/null 2>&1 || fail "htpasswd -B failed"
unset_env=()
for v in $(compgen -e | grep '^REGISTRY_' || true); do unset_env+=(-u "$v"); done
env "${unset_env[@]}" docker-registry serve "$T/reg/config.yml" >>"$T/reg/registry.log" 2>&1 &
REG_PID=$!
on_exit "kill_wait $REG_PID"
WAIT_HTTP_PID=$REG_PID WAIT_HTTP_LOG="$T/reg/registry.log" wait_http "http://$REG/v2/" 20
wait_for 20 "a credential refresh after the registry's 401" 'grep -q "reason=the registry answered 401.*credential refresh failed\|credential refresh failed.*reason=the registry answered 401" "$T/sat.log"'
e2e_skopeo inspect --tls-verify=false --raw "docker://$SAT_ADDR/proj/app:v1" >/dev/null || fail "the satellite stopped serving after the registry refused it"
log "step 5 ok: the registry's 401 triggered a credential refresh (Ground Control unreachable, so it failed and was reported)"

# 6. No secret anywhere.
"$BIN" status --config "$T/sat.json" > "$T/status.txt" 2>&1
"$BIN" status --config "$T/sat.json" --json >> "$T/status.txt" 2>&1
! grep -qF -- "$PASSWORD" "$T/sat.log.1" "$T/sat.log" "$T/status.txt" "$T/metrics.txt" "$STORE/fleet/status.json" || fail "the registry password appears in a log, status or /metrics"
[[ "$(stat -c %a "$STORE/fleet/config.json")" == 600 ]] || fail "fleet/config.json is not 0600"
log "step 6 ok: no secret in logs, status or /metrics"
log "PASS"
