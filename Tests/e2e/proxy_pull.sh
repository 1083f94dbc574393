#!/usr/bin/env bash
# proxy_pull.sh BIN
# Real clients pull images that are NOT in the desired state through satellite-lite's
# pull-through proxy (`proxy`), from Debian's docker-registry as the upstream and a second
# one as the mirror "registry.example.com" (proxy.mirrors):
#   1. skopeo and podman pull library/app:v1 from satellite-lite (byte-identical manifest,
#      verified layers); podman pulls registry.example.com/team/tool:v1 through the
#      registries.conf drop-in `runtime-config --runtime podman` wrote (path prefix
#      /v2/registry.example.com/...); containerd (ctr) pulls both through the hosts.toml
#      files `runtime-config --runtime containerd` wrote (?ns=...). The mirror's content is
#      stored under repositories/registry.example.com/team/tool.
#   2. a client push over a proxied tag is refused (403 DENIED): proxied tags are the agent's.
#   3. the tag moves upstream: after proxy.tagRecheck the proxy serves the new digest.
#   4. both upstreams stopped: the same skopeo, podman and ctr pulls still work.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

e2e_binary "${1:-}"
for t in docker-registry skopeo podman containerd ctr jq python3 curl; do
    command -v "$t" >/dev/null || fail "$t is not installed"
done
T=$E2E_TMP
export E2E_CMD_TIMEOUT=${E2E_CMD_TIMEOUT:-60}

start_docker_registry "$T/up"
UP=$DOCKER_REGISTRY_ADDR UP_PID=$DOCKER_REGISTRY_PID
start_docker_registry "$T/mirror"
MIR=$DOCKER_REGISTRY_ADDR MIR_PID=$DOCKER_REGISTRY_PID
APP=$(python3 "$MKIMAGE" single --platform linux/amd64 --layers 2 --size 300000 "oci:$T/app:v1") || fail "mkimage.py failed"
APP2=$(python3 "$MKIMAGE" single --platform linux/amd64 --layers 1 --size 200000 "oci:$T/app2:v1") || fail "mkimage.py failed"
TOOL=$(python3 "$MKIMAGE" single --platform linux/amd64 --layers 2 --size 200000 "oci:$T/tool:v1") || fail "mkimage.py failed"
run_or_fail "push library/app:v1" e2e_skopeo copy -q --preserve-digests --dest-tls-verify=false "oci:$T/app:v1" "docker://$UP/library/app:v1"
run_or_fail "push team/tool:v1 to the mirror" e2e_skopeo copy -q --preserve-digests --dest-tls-verify=false "oci:$T/tool:v1" "docker://$MIR/team/tool:v1"

SAT=127.0.0.1:$(free_port)
CFG=$T/config.json
jq -n --arg s "$T/store" --arg l "$SAT" --arg u "http://$UP" --arg m "http://$MIR" \
    '{profile:"generic-amd64", storage:{path:$s}, registry:{listen:$l}, upstream:{url:$u},
      proxy:{enabled:true, allow:["library/**","registry.example.com/**"], tagRecheck:"2s",
             mirrors:[{registry:"registry.example.com", url:$m}]}}' > "$CFG"
"$BIN" serve --config "$CFG" > "$T/sat.log" 2>&1 &
SAT_PID=$!
on_exit "kill_wait $SAT_PID"
WAIT_HTTP_PID=$SAT_PID WAIT_HTTP_LOG="$T/sat.log" wait_http "http://$SAT/v2/" 20

# Mirror configuration for podman and containerd, from runtime-config.
R=$T/root
mkdir -p "$R/etc/containerd"
printf 'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n' > "$R/etc/containerd/config.toml"
for rt in containerd podman; do
    "$BIN" runtime-config --config "$CFG" --runtime $rt --root "$R" > "$T/rc-$rt.out" 2>&1 \
        || fail "runtime-config --runtime $rt failed: $(tail -n 3 "$T/rc-$rt.out" | tr '\n' ' ')"
done
DROPIN=$R/etc/containers/registries.conf.d/50-satellite-lite.conf
grep -qF "location = \"$SAT/registry.example.com\"" "$DROPIN" \
    || fail "registries.conf drop-in lacks the path-prefix mirror $SAT/registry.example.com: $(tr '\n' '~' < "$DROPIN")"
HOSTS=$R/etc/containerd/certs.d/registry.example.com/hosts.toml
grep -qxF "server = \"http://$MIR\"" "$HOSTS" || fail "$HOSTS: no server = \"http://$MIR\": $(tr '\n' '~' < "$HOSTS")"
grep -qxF "[host.\"http://$SAT\"]" "$HOSTS" || fail "$HOSTS: satellite-lite is not a host: $(tr '\n' '~' < "$HOSTS")"

# podman, isolated (as podman_pull.sh), reading the drop-in as its registries.conf.
isolated_podman "$T/podman" "$DROPIN"
C="$T/ctrd"
start_private_containerd "$C" "$R/etc/containerd/certs.d"

pulls() { # WHEN: every client pull of both images, checked
    local when=$1 got
    rm -rf "$T/out"
    run_or_fail "skopeo copy of library/app:v1 from satellite-lite ($when)" \
        e2e_skopeo copy -q --src-tls-verify=false "docker://$SAT/library/app:v1" "oci:$T/out:v1"
    got=$(jq -r '.manifests[0].digest' "$T/out/index.json")
    [[ "$got" == "$APP" ]] || fail "skopeo ($when) got library/app:v1 = $got, expected $APP"
    for f in "$T/out/blobs/sha256/"*; do
        [[ "$(sha256_file "$f")" == "sha256:$(basename "$f")" ]] || fail "skopeo ($when): blob $(basename "$f") does not verify"
    done
    e2e_podman rmi -a -f > /dev/null 2>&1 || true
    run_or_fail "podman pull $SAT/library/app:v1 ($when)" e2e_podman pull -q --tls-verify=false "$SAT/library/app:v1"
    got=$(e2e_podman image inspect "$SAT/library/app:v1" | jq -r '.[0].Digest')
    [[ "$got" == "$APP" ]] || fail "podman ($when) got library/app:v1 = $got, expected $APP"
    run_or_fail "podman pull registry.example.com/team/tool:v1 via the mirror drop-in ($when)" \
        e2e_podman pull -q registry.example.com/team/tool:v1
    got=$(e2e_podman image inspect registry.example.com/team/tool:v1 | jq -r '.[0].Digest')
    [[ "$got" == "$TOOL" ]] || fail "podman ($when) got registry.example.com/team/tool:v1 = $got, expected $TOOL"
    for ref in "$UP/library/app:v1" "registry.example.com/team/tool:v1"; do
        e2e_ctr images rm "$ref" > /dev/null 2>&1 || true
        e2e_ctr images pull --hosts-dir "$R/etc/containerd/certs.d" --platform linux/amd64 --snapshotter "$SNAPSHOTTER" \
            --http-dump "$ref" > "$T/ctr.out" 2> "$T/ctr.err" \
            || fail "ctr images pull $ref ($when) failed: $(grep -vE 'level=info' "$T/ctr.err" | tail -n 2 | tr '\n' ' ')"
        grep -qE "(GET|HEAD) /v2/.*\?ns=" "$T/ctr.err" || fail "ctr ($when) did not go through satellite-lite with ?ns= for $ref"
        ! grep -qE "Host: ($UP|$MIR)\"" "$T/ctr.err" || fail "ctr ($when) also asked the upstream directly for $ref"
    done
    got=$(e2e_ctr images ls "name==registry.example.com/team/tool:v1" | awk 'NR==2{print $3}')
    [[ "$got" == "$TOOL" ]] || fail "containerd ($when) has registry.example.com/team/tool:v1 = '${got:-none}', expected $TOOL"
}
pulls online
[[ -n "$(ls "$T/store/repositories/registry.example.com/team/tool/_manifests/tags" 2>/dev/null)" ]] \
    || fail "the mirror's image is not stored under registry.example.com/team/tool"
[[ ! -e "$T/store/repositories/team" ]] || fail "the mirror's image was stored under its bare name team/tool"
log "online: skopeo, podman (path prefix) and ctr (?ns=) pulled through the proxy"

# 2. Proxied tags are the agent's: a client push over one is refused.
if e2e_skopeo copy -q --dest-tls-verify=false "oci:$T/app2:v1" "docker://$SAT/library/app:v1" > "$T/push.err" 2>&1; then
    fail "a client push over the proxied tag library/app:v1 was accepted"
fi
grep -qiE "denied|403" "$T/push.err" || fail "the refused push does not say DENIED: $(tail -n 2 "$T/push.err" | tr '\n' ' ')"

# 3. The tag moves upstream: rechecked after tagRecheck.
run_or_fail "re-tag upstream" e2e_skopeo copy -q --preserve-digests --dest-tls-verify=false "oci:$T/app2:v1" "docker://$UP/library/app:v1"
sleep 2.5
got=$(e2e_skopeo inspect --raw --tls-verify=false "docker://$SAT/library/app:v1" | sha256sum | cut -d' ' -f1)
[[ "sha256:$got" == "$APP2" ]] || fail "after tagRecheck the proxy still serves sha256:$got, upstream moved to $APP2"
run_or_fail "restore the tag upstream" e2e_skopeo copy -q --preserve-digests --dest-tls-verify=false "oci:$T/app:v1" "docker://$UP/library/app:v1"
sleep 2.5
run_or_fail "skopeo inspect after the restore" e2e_skopeo inspect --raw --tls-verify=false "docker://$SAT/library/app:v1"
log "the upstream's tag move is picked up after tagRecheck"

# 4. Offline: both upstreams stopped, the same pulls work from the cache.
kill_wait "$UP_PID"; kill_wait "$MIR_PID"
for a in "$UP" "$MIR"; do
    if curl -s -o /dev/null --max-time 2 "http://$a/v2/"; then fail "upstream $a still answers after it was stopped"; fi
done
sleep 2.5   # past tagRecheck: the recheck finds the upstream gone and serves the cached tag
pulls offline
log "offline: the same pulls work from the cache"
echo "PASS proxy_pull"
