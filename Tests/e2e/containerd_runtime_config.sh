#!/usr/bin/env bash
# containerd_runtime_config.sh BIN
# Issue 5 end to end: containerd pulls an upstream image through satellite-lite with
# the mirror configuration `satellite-lite runtime-config` wrote, while the upstream is
# down.
#   1. upstream: Debian's docker-registry; a multi-arch index (amd64, arm64/v8) is
#      pushed as e2e/app:v1.
#   2. `satellite-lite run` (serve + sync every 2 s, profile generic-amd64) until
#      `status --json` shows e2e/app:v1 present at the upstream's index digest.
#   3. `runtime-config --runtime containerd --root R`, three times: no
#      R/etc/containerd/config.toml (says so), a config.toml without config_path
#      (warns "config_path is not set"), one with config_path (says "config_path is
#      set"); hosts.toml for the upstream host has the upstream as server and
#      satellite-lite as a pull/resolve host; a second run changes nothing.
#   4. a private containerd; the upstream is STOPPED; `ctr images pull --hosts-dir
#      R/etc/containerd/certs.d <upstream>/e2e/app:v1` succeeds through satellite-lite:
#      image target = upstream index digest, manifest/config/layers byte-identical,
#      unpacked chain ID as computed from the config's diff_ids, requests went to
#      satellite-lite with ?ns=<upstream>.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

e2e_binary "${1:-}"
for t in docker-registry skopeo jq python3 curl containerd ctr; do
    command -v "$t" >/dev/null || fail "$t is not installed"
done
T=$E2E_TMP
export E2E_CMD_TIMEOUT=${E2E_CMD_TIMEOUT:-60}

# ------------------------------------------------------------------ 1. upstream + image
start_docker_registry "$T/up"
UP=$DOCKER_REGISTRY_ADDR
IDX=$(python3 "$MKIMAGE" index --platforms linux/amd64,linux/arm64/v8 --layers 2 --size 65536 "oci:$T/img:v1") \
    || fail "mkimage.py index failed"
B="$T/img/blobs/sha256"
AMD_M=$(jq -r '.manifests[] | select(.platform.architecture=="amd64") | .digest' "$B/${IDX#sha256:}")
AMD_C=$(jq -r .config.digest "$B/${AMD_M#sha256:}")
run_or_fail "push of the index to the upstream" \
    e2e_skopeo copy -q --all --preserve-digests --dest-tls-verify=false "oci:$T/img:v1" "docker://$UP/e2e/app:v1"
got=$(curl -s -o /dev/null -D - -H 'Accept: application/vnd.oci.image.index.v1+json' \
    "http://$UP/v2/e2e/app/manifests/v1" | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}')
[[ "$got" == "$IDX" ]] || fail "upstream serves e2e/app:v1 as '$got', expected $IDX"
log "upstream $UP holds e2e/app:v1 = $IDX"

# ------------------------------------------------------------------ 2. satellite-lite run
SAT=127.0.0.1:$(free_port)
CFG=$T/config.json
jq -n --arg s "$T/store" --arg l "$SAT" --arg u "http://$UP" \
    '{profile:"generic-amd64", storage:{path:$s, quota:"1GiB"}, registry:{listen:$l}, upstream:{url:$u},
      state:{images:["e2e/app:v1"], interval:"2s"}, sync:{timeout:"20s"}}' > "$CFG"
"$BIN" run --config "$CFG" > "$T/run.log" 2>&1 &
RUN_PID=$!
on_exit "kill_wait $RUN_PID"
WAIT_HTTP_PID=$RUN_PID WAIT_HTTP_LOG="$T/run.log" wait_http "http://$SAT/v2/" 20
deadline=$(( SECONDS + 60 )) state=""
while (( SECONDS < deadline )); do
    kill -0 "$RUN_PID" 2>/dev/null || fail "satellite-lite run exited: $(tail -n 3 "$T/run.log" | tr '\n' ' ')"
    state=$("$BIN" status --config "$CFG" --json 2>/dev/null \
        | jq -r '.images[] | select(.image=="e2e/app:v1") | "\(.state) \(.digest)"' || true)
    [[ "$state" == "present $IDX" ]] && break
    sleep 0.5
done
[[ "$state" == "present $IDX" ]] || fail "satellite-lite run did not sync e2e/app:v1 within 60s (status: '${state:-none}'): $(grep -m1 -i error "$T/run.log" || tail -n 1 "$T/run.log")"
log "satellite-lite run ($SAT) holds e2e/app:v1"

# ------------------------------------------------------------------ 3. runtime-config
R=$T/root
mkdir -p "$R"
rc_run() { # OUT: runtime-config into $R; fail unless exit 0
    "$BIN" runtime-config --config "$CFG" --runtime containerd --root "$R" > "$1" 2>&1 \
        || fail "runtime-config --runtime containerd --root $R failed: $(tail -n 3 "$1" | tr '\n' ' ')"
}
HOSTS=$R/etc/containerd/certs.d/$UP/hosts.toml
# (a) no config.toml
rc_run "$T/rc1.out"
grep -q 'containerd: no /etc/containerd/config.toml' "$T/rc1.out" \
    || fail "runtime-config without config.toml does not say so: $(tr '\n' ' ' < "$T/rc1.out" | cut -c1-300)"
[[ -f "$HOSTS" ]] || fail "runtime-config wrote no $HOSTS ($(find "$R" -type f | tr '\n' ' '))"
# (b) a config.toml without config_path
mkdir -p "$R/etc/containerd"
printf 'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\n  snapshotter = "overlayfs"\n' > "$R/etc/containerd/config.toml"
rc_run "$T/rc2.out"
grep -q 'warning: containerd: config_path is not set' "$T/rc2.out" \
    || fail "runtime-config does not warn that config_path is not set: $(tr '\n' ' ' < "$T/rc2.out" | cut -c1-300)"
# (c) config_path set
printf 'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n' > "$R/etc/containerd/config.toml"
rc_run "$T/rc3.out"
grep -q 'containerd: config_path is set' "$T/rc3.out" \
    || fail "runtime-config does not say config_path is set: $(tr '\n' ' ' < "$T/rc3.out" | cut -c1-300)"
grep -q 'nothing to change' "$T/rc3.out" \
    || fail "a repeated runtime-config changed files: $(tr '\n' ' ' < "$T/rc3.out" | cut -c1-300)"
grep -qxF "server = \"http://$UP\"" "$HOSTS" || fail "$HOSTS: no server = \"http://$UP\": $(tr '\n' '~' < "$HOSTS")"
grep -qxF "[host.\"http://$SAT\"]" "$HOSTS" || fail "$HOSTS: no [host.\"http://$SAT\"]: $(tr '\n' '~' < "$HOSTS")"
grep -qF 'capabilities = ["pull", "resolve"]' "$HOSTS" || fail "$HOSTS: satellite-lite lacks pull/resolve capabilities"
log "runtime-config: $(grep -m1 -o 'config_path is set[^;]*' "$T/rc3.out")"

# ------------------------------------------------------------------ 4. containerd, upstream down
C="$T/ctrd"
NS=e2e
E2E_CMD_TIMEOUT=${E2E_CMD_TIMEOUT:-60}
start_private_containerd "$C" "$R/etc/containerd/certs.d"

# the upstream goes away
kill_wait "$DOCKER_REGISTRY_PID"
if curl -s -o /dev/null --max-time 2 "http://$UP/v2/"; then fail "the upstream $UP still answers after it was stopped"; fi
log "upstream stopped; ctr images pull $UP/e2e/app:v1 via the hosts dir"

REF="$UP/e2e/app:v1"
if ! e2e_ctr images pull --hosts-dir "$R/etc/containerd/certs.d" --platform linux/amd64 \
        --snapshotter "$SNAPSHOTTER" --print-chainid --http-dump "$REF" > "$T/pull.out" 2> "$T/pull.err"; then
    fail "ctr images pull $REF through satellite-lite failed: $(grep -vE 'level=info' "$T/pull.err" | tail -n 2 | tr '\n' ' ')"
fi
grep -qF -e "?ns=$UP HTTP/1.1" -e "?ns=${UP//:/%3A} HTTP/1.1" "$T/pull.err" \
    || fail "no request to satellite-lite carried ?ns=$UP (mirror path not exercised)"
got=$(e2e_ctr images ls "name==$REF" | awk 'NR==2{print $3}')
[[ "$got" == "$IDX" ]] || fail "containerd image $REF has target '${got:-none}', expected the upstream's $IDX"
for d in "$IDX" "$AMD_M" "$AMD_C" $(jq -r '.layers[].digest' "$B/${AMD_M#sha256:}"); do
    e2e_ctr content get "$d" > "$T/blob" 2>/dev/null || fail "blob $d missing from containerd after the pull"
    cmp -s "$T/blob" "$B/${d#sha256:}" || fail "blob $d in containerd differs from the upstream's"
done
CHAIN=""
for d in $(jq -r '.rootfs.diff_ids[]' "$B/${AMD_C#sha256:}"); do
    if [[ -z "$CHAIN" ]]; then CHAIN=$d
    else CHAIN="sha256:$(printf '%s %s' "$CHAIN" "$d" | sha256sum | cut -d' ' -f1)"; fi
done
got=$(grep -o 'image chain ID: sha256:[0-9a-f]*' "$T/pull.out" | cut -d' ' -f4)
[[ "$got" == "$CHAIN" ]] || fail "$REF unpacked to chain ID '${got:-none}', expected $CHAIN"
log "pulled $REF = $IDX through satellite-lite with the upstream down; chain ID ok"

e2e_ctr images rm "$REF" > /dev/null 2>&1 || true
kill_wait "$CTRD_PID" 15
kill -TERM "$RUN_PID"
for (( i = 0; i < 100; i++ )); do kill -0 "$RUN_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$RUN_PID" 2>/dev/null && fail "satellite-lite run did not stop within 10s of SIGTERM"
wait "$RUN_PID" || fail "satellite-lite run exited $? on SIGTERM, expected 0"
echo "PASS containerd_runtime_config"
