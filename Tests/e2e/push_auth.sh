#!/usr/bin/env bash
# push_auth.sh BIN
# registry.push and the desired tags, with real clients:
#   1. loopback (the default), listener on 0.0.0.0: a client in its own network namespace
#      (ip netns + a veth pair this script creates and removes; not loopback) pulls an image
#      but its skopeo push fails and a raw POST gets 403 DENIED; loopback pushes.
#   2. authenticated: htpasswd users made with -B (bcrypt), -2 (SHA-256-crypt) and -5
#      (SHA-512-crypt): skopeo pushes from the namespace with each; without credentials
#      and with a wrong password it gets 401 with a Basic challenge; podman pushes with
#      --creds from the namespace too.
#   3. desired tags: after `satellite-lite sync` of app/web:v1 from Debian's
#      docker-registry, a skopeo push over app/web:v1 and a skopeo delete of it are refused
#      (403 DENIED) from loopback under `anyone`, and the tag still holds the synced digest.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

e2e_binary "${1:-}"
for t in ip skopeo podman htpasswd jq curl python3 docker-registry; do
    command -v "$t" >/dev/null || fail "$t is not installed"
done
[[ $(id -u) == 0 ]] || fail "needs root for ip netns"
T=$E2E_TMP
export E2E_CMD_TIMEOUT=${E2E_CMD_TIMEOUT:-90}

# ---------------------------------------------------------------- namespace
NS=satpush$$
SUB=$(( 16 + RANDOM % 200 ))
HOST_IP=10.231.$SUB.1
NS_IP=10.231.$SUB.2
VETH=vsp$$
ip netns add "$NS" || fail "ip netns add $NS failed"
on_exit "ip netns del $NS 2>/dev/null || true"
ip link add "$VETH" type veth peer name "${VETH}n" || fail "cannot create a veth pair"
on_exit "ip link del $VETH 2>/dev/null || true"
ip link set "${VETH}n" netns "$NS"
ip addr add "$HOST_IP/24" dev "$VETH"
ip link set "$VETH" up
ip netns exec "$NS" ip addr add "$NS_IP/24" dev "${VETH}n"
ip netns exec "$NS" ip link set "${VETH}n" up
ip netns exec "$NS" ip link set lo up
in_ns() { ip netns exec "$NS" "$@"; }

PORT=$(free_port)
REMOTE=$HOST_IP:$PORT
LOCAL=127.0.0.1:$PORT
python3 "$MKIMAGE" single "oci:$T/src:v1" --layers 1 --size 4096 >/dev/null || fail "mkimage failed"
python3 "$MKIMAGE" single "oci:$T/evil:v1" --layers 1 --size 5000 >/dev/null || fail "mkimage failed"

SAT_PID=""
# serve_with CONFIG_JSON: (re)start `satellite-lite serve` on 0.0.0.0:PORT with this config.
serve_with() {
    [[ -n "$SAT_PID" ]] && kill_wait "$SAT_PID"
    printf '%s\n' "$1" > "$T/config.json"
    "$BIN" serve --config "$T/config.json" >"$T/serve.log" 2>&1 &
    SAT_PID=$!
    on_exit "kill_wait $SAT_PID 2>/dev/null || true"
    WAIT_HTTP_PID=$SAT_PID WAIT_HTTP_LOG="$T/serve.log" wait_http "http://$LOCAL/healthz" 20
}
base_config() { jq -n --arg store "$T/store" --arg listen "0.0.0.0:$PORT" '{storage:{path:$store}, registry:{listen:$listen}}'; }
status_of() { curl -s -o "$T/body" -w '%{http_code}' "$@"; }

# ---------------------------------------------------------------- 1. loopback
serve_with "$(base_config)"
run_or_fail "loopback push" e2e_skopeo copy -q --dest-tls-verify=false "oci:$T/src:v1" "docker://$LOCAL/e2e/img:v1"
run_or_fail "pull from the namespace" in_ns env CONTAINERS_REGISTRIES_CONF="$CONTAINERS_REGISTRIES_CONF" \
    skopeo --policy "$E2E_CONF/policy.json" inspect --raw --tls-verify=false "docker://$REMOTE/e2e/img:v1"
if in_ns skopeo --policy "$E2E_CONF/policy.json" copy -q --dest-tls-verify=false "oci:$T/evil:v1" "docker://$REMOTE/e2e/img:v1" >"$T/ns.out" 2>&1; then
    fail "loopback: a push from the namespace ($NS_IP) succeeded"
fi
code=$(in_ns curl -s -o "$T/body" -w '%{http_code}' -X POST "http://$REMOTE/v2/e2e/img/blobs/uploads/")
[[ $code == 403 ]] && grep -q DENIED "$T/body" || fail "loopback: POST from the namespace got $code $(head -c 200 "$T/body"), expected 403 DENIED"
code=$(in_ns curl -s -o /dev/null -w '%{http_code}' -X DELETE "http://$REMOTE/v2/e2e/img/manifests/v1")
[[ $code == 403 ]] || fail "loopback: DELETE from the namespace got $code, expected 403"
log "loopback: namespace pulls, its push and delete get 403; loopback pushes"

# ---------------------------------------------------------------- 2. authenticated
: > "$T/htpasswd"
htpasswd -b -B "$T/htpasswd" bcrypt pw-bcrypt 2>/dev/null
htpasswd -b -2 "$T/htpasswd" sha256 pw-sha256 2>/dev/null
htpasswd -b -5 "$T/htpasswd" sha512 pw-sha512 2>/dev/null
grep -q '^bcrypt:\$2y\$' "$T/htpasswd" && grep -q '^sha256:\$5\$' "$T/htpasswd" && grep -q '^sha512:\$6\$' "$T/htpasswd" \
    || fail "htpasswd did not write the three hash kinds: $(cut -c1-12 "$T/htpasswd" | tr '\n' ' ')"
serve_with "$(base_config | jq --arg u "$T/htpasswd" '.registry += {push:"authenticated", users:$u}')"
for user in bcrypt sha256 sha512; do
    run_or_fail "authenticated push as $user from the namespace" in_ns \
        skopeo --policy "$E2E_CONF/policy.json" copy -q --dest-tls-verify=false --dest-creds "$user:pw-$user" \
        "oci:$T/src:v1" "docker://$REMOTE/e2e/$user:v1"
done
if in_ns skopeo --policy "$E2E_CONF/policy.json" copy -q --dest-tls-verify=false "oci:$T/src:v1" "docker://$REMOTE/e2e/anon:v1" >"$T/ns.out" 2>&1; then
    fail "authenticated: a push without credentials succeeded"
fi
grep -qi "unauthorized\|authentication required" "$T/ns.out" || fail "authenticated: skopeo without credentials failed for another reason: $(tail -n 2 "$T/ns.out" | tr '\n' ' ')"
if in_ns skopeo --policy "$E2E_CONF/policy.json" copy -q --dest-tls-verify=false --dest-creds bcrypt:wrong "oci:$T/src:v1" "docker://$REMOTE/e2e/anon:v1" >"$T/ns.out" 2>&1; then
    fail "authenticated: a push with a wrong password succeeded"
fi
code=$(in_ns curl -s -D "$T/h" -o "$T/body" -w '%{http_code}' -X POST "http://$REMOTE/v2/e2e/x/blobs/uploads/")
[[ $code == 401 ]] && grep -qi '^www-authenticate: Basic realm=' "$T/h" && grep -q UNAUTHORIZED "$T/body" \
    || fail "authenticated: POST without credentials got $code, expected 401 with a Basic challenge"
code=$(in_ns curl -s -o /dev/null -w '%{http_code}' "http://$REMOTE/v2/e2e/bcrypt/manifests/v1")
[[ $code == 200 ]] || fail "authenticated: an anonymous pull got $code, expected 200"
# podman, in throw-away storage, from the namespace: pull anonymously, push with --creds.
P=$T/podman
mkdir -p "$P"
printf '[storage]\ndriver = "vfs"\nrunroot = "%s/runroot"\ngraphroot = "%s/root"\n' "$P" "$P" > "$P/storage.conf"
printf '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "none"\n' > "$P/containers.conf"
ns_podman() {
    in_ns env CONTAINERS_STORAGE_CONF="$P/storage.conf" CONTAINERS_CONF="$P/containers.conf" \
        CONTAINERS_REGISTRIES_CONF="$CONTAINERS_REGISTRIES_CONF" REGISTRY_AUTH_FILE="$REGISTRY_AUTH_FILE" \
        timeout --kill-after=5 "$E2E_CMD_TIMEOUT" podman --root "$P/root" --runroot "$P/runroot" --storage-driver vfs \
        --tmpdir "$T" --cgroup-manager cgroupfs --events-backend none "$@"
}
on_exit "rm -rf '$P' 2>/dev/null || true"
run_or_fail "podman pull from the namespace" ns_podman pull -q --tls-verify=false "$REMOTE/e2e/bcrypt:v1"
if ns_podman push -q --tls-verify=false "$REMOTE/e2e/bcrypt:v1" "$REMOTE/e2e/podman:v1" >"$T/podman.out" 2>&1; then
    fail "authenticated: podman push without credentials succeeded"
fi
run_or_fail "podman push --creds sha512 from the namespace" \
    ns_podman push -q --tls-verify=false --creds sha512:pw-sha512 "$REMOTE/e2e/bcrypt:v1" "$REMOTE/e2e/podman:v1"
log "authenticated: skopeo with -B/-2/-5 users and podman push; 401 + Basic challenge without or with wrong credentials"

# ---------------------------------------------------------------- 3. desired tags
start_docker_registry "$T/up"
run_or_fail "push to the upstream" e2e_skopeo copy -q --dest-tls-verify=false "oci:$T/src:v1" "docker://$DOCKER_REGISTRY_ADDR/app/web:v1"
cfg=$(base_config | jq --arg up "http://$DOCKER_REGISTRY_ADDR" '. + {upstream:{url:$up}, state:{images:["app/web:v1"], interval:"1h"}} | .registry += {push:"anyone"}')
printf '%s\n' "$cfg" > "$T/sync.json"
run_or_fail "satellite-lite sync" "$BIN" sync --config "$T/sync.json"
serve_with "$cfg"
want=$(curl -s -o /dev/null -D - -I "http://$LOCAL/v2/app/web/manifests/v1" -H 'Accept: application/vnd.oci.image.manifest.v1+json' | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}')
[[ -n $want ]] || fail "desired: app/web:v1 is not served after the sync"
if e2e_skopeo copy -q --dest-tls-verify=false "oci:$T/evil:v1" "docker://$LOCAL/app/web:v1" >"$T/evil.out" 2>&1; then
    fail "desired: a push over app/web:v1 from loopback succeeded"
fi
grep -qi "denied\|forbidden\|desired state" "$T/evil.out" || fail "desired: the push failed for another reason: $(tail -n 2 "$T/evil.out" | tr '\n' ' ')"
if e2e_skopeo delete --tls-verify=false "docker://$LOCAL/app/web:v1" >"$T/del.out" 2>&1; then
    fail "desired: skopeo delete of app/web:v1 succeeded"
fi
code=$(status_of -X DELETE "http://$LOCAL/v2/app/web/manifests/$want")
[[ $code == 403 ]] && grep -q DENIED "$T/body" || fail "desired: DELETE by digest got $code, expected 403 DENIED"
got=$(curl -s -o /dev/null -D - -I "http://$LOCAL/v2/app/web/manifests/v1" -H 'Accept: application/vnd.oci.image.manifest.v1+json' | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}')
[[ $got == "$want" ]] || fail "desired: app/web:v1 now holds $got, the sync put $want there"
run_or_fail "a client tag next to the desired one" e2e_skopeo copy -q --dest-tls-verify=false "oci:$T/evil:v1" "docker://$LOCAL/app/web:mine"
log "desired: push over and delete of app/web:v1 refused (403), digest unchanged; client tags still work"
log "OK"
