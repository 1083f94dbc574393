# shellcheck shell=bash
# Shared helpers for the satellite-lite end-to-end scripts.
# Source it from a script running under `set -euo pipefail`:
#     . "$(dirname "$0")/lib.sh"
# It creates $E2E_TMP (removed on exit) and installs an EXIT trap that runs
# every command registered with `on_exit` (LIFO), then removes $E2E_TMP.
# Environment knobs: E2E_KEEP=1 keeps $E2E_TMP for debugging, E2E_VERBOSE=1
# echoes tool output, E2E_CMD_TIMEOUT (default 120 s) bounds each tool call.

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
E2E_NAME="$(basename "${0:-e2e}" .sh)"

# ---------------------------------------------------------------- output
log()  { printf '[%s] %s\n' "$E2E_NAME" "$*" >&2; }
# fail MSG...: print one clear line and exit 1.
fail() { printf 'FAIL [%s]: %s\n' "$E2E_NAME" "$*" >&2; exit 1; }

# ---------------------------------------------------------------- cleanup
_E2E_CLEANUPS=()
# on_exit CMD: register a shell command (string) to run at exit, newest first.
on_exit() { _E2E_CLEANUPS+=("$1"); }
_e2e_cleanup() {
    local rc=$? i
    set +e
    for (( i=${#_E2E_CLEANUPS[@]}-1; i>=0; i-- )); do
        eval "${_E2E_CLEANUPS[$i]}" >/dev/null 2>&1
    done
    if [[ -n "${E2E_TMP:-}" && -d "$E2E_TMP" && -z "${E2E_KEEP:-}" ]]; then
        rm -rf "$E2E_TMP" 2>/dev/null
        # vfs/containerd may leave read-only dirs; retry after chmod
        [[ -d "$E2E_TMP" ]] && { chmod -R u+rwX "$E2E_TMP"; rm -rf "$E2E_TMP"; }
    fi
    exit "$rc"
}
trap _e2e_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

E2E_TMP="$(mktemp -d "${TMPDIR:-/tmp}/e2e-${E2E_NAME}.XXXXXX")"
export E2E_TMP

# kill_wait PID [SECONDS]: TERM, wait up to SECONDS (default 10), then KILL.
kill_wait() {
    local pid=$1 t=${2:-10} i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for (( i=0; i<t*10; i++ )); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------- network
# free_port: print a TCP port on 127.0.0.1 that is currently unused.
free_port() {
    python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

# wait_http URL [SECONDS]: wait (default 20 s) until URL answers any HTTP status.
# If WAIT_HTTP_PID is set, fail as soon as that process has exited (showing
# the tail of WAIT_HTTP_LOG if set).
wait_http() {
    local url=$1 t=${2:-20} deadline
    deadline=$(( SECONDS + t ))
    while (( SECONDS < deadline )); do
        if curl -s -o /dev/null --max-time 2 "$url"; then return 0; fi
        if [[ -n "${WAIT_HTTP_PID:-}" ]] && ! kill -0 "$WAIT_HTTP_PID" 2>/dev/null; then
            fail "process $WAIT_HTTP_PID exited before $url answered${WAIT_HTTP_LOG:+: $(tail -n 3 "$WAIT_HTTP_LOG" 2>/dev/null | tr '\n' ' ')}"
        fi
        sleep 0.2
    done
    fail "timed out after ${t}s waiting for $url"
}

# check_registry HOST:PORT: fail unless /v2/ answers 200 (no auth expected).
check_registry() {
    local code
    [[ "$1" =~ ^[^/[:space:]]+:[0-9]+$ ]] || fail "first argument must be HOST:PORT, got '${1:-}'"
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$1/v2/" || true)
    [[ "$code" == 200 ]] || fail "GET http://$1/v2/ returned '${code:-no answer}', expected 200"
}

# ---------------------------------------------------------------- docker-registry
# start_docker_registry DIR [EXTRA_YAML]: run Debian's docker-registry (distribution 2.8)
# with filesystem storage under DIR on 127.0.0.1:<free port>, deletes enabled; EXTRA_YAML
# (e.g. an auth: section) is appended to its config. DOCKER_REGISTRY_ACCESSLOG=1 keeps the
# access log (registry.log) for tests that count requests.
# Exports DOCKER_REGISTRY_ADDR (HOST:PORT) and DOCKER_REGISTRY_PID; it is
# stopped automatically at exit.
start_docker_registry() {
    local dir=$1 extra=${2:-} port bin=${DOCKER_REGISTRY_BIN:-/usr/bin/docker-registry}
    local accesslog_disabled=true
    [[ "${DOCKER_REGISTRY_ACCESSLOG:-0}" == 1 ]] && accesslog_disabled=false
    [[ -x "$bin" ]] || fail "docker-registry not found at $bin"
    mkdir -p "$dir/storage"
    port=$(free_port)
    cat > "$dir/config.yml" <<YAML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: $accesslog_disabled
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  headers:
    X-Content-Type-Options: [nosniff]
$extra
YAML
    # distribution maps every REGISTRY_* variable onto its config (e.g. our
    # REGISTRY_AUTH_FILE would become auth.file), so strip them all.
    local -a unset_env=()
    local v
    for v in $(compgen -e | grep '^REGISTRY_' || true); do unset_env+=(-u "$v"); done
    env "${unset_env[@]}" "$bin" serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
    DOCKER_REGISTRY_PID=$!
    on_exit "kill_wait $DOCKER_REGISTRY_PID"
    DOCKER_REGISTRY_ADDR="127.0.0.1:$port"
    export DOCKER_REGISTRY_ADDR DOCKER_REGISTRY_PID
    WAIT_HTTP_PID=$DOCKER_REGISTRY_PID WAIT_HTTP_LOG="$dir/registry.log" \
        wait_http "http://$DOCKER_REGISTRY_ADDR/v2/" 20
}

# ---------------------------------------------------------------- TLS test certificates
# tls_self_signed DIR: DIR/cert.pem (P-256, CN and SAN 127.0.0.1, 2 days) and DIR/key.pem.
tls_self_signed() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1/key.pem" -out "$1/cert.pem" \
        -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1 || fail "openssl: self-signed certificate"
}
# tls_ca_and_leaf DIR: a test CA (DIR/ca.pem, DIR/ca.key) and a leaf it issued for
# 127.0.0.1 (DIR/cert.pem, DIR/key.pem; serverAuth), all P-256, 2 days.
tls_ca_and_leaf() {
    local d=$1
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/ca.key" -out "$d/ca.pem" \
        -days 2 -subj "/CN=satellite-lite test CA" >/dev/null 2>&1 || fail "openssl: CA"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/key.pem" -out "$d/leaf.csr" \
        -subj /CN=127.0.0.1 >/dev/null 2>&1 || fail "openssl: CSR"
    printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > "$d/leaf.ext"
    openssl x509 -req -in "$d/leaf.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
        -extfile "$d/leaf.ext" -out "$d/cert.pem" >/dev/null 2>&1 || fail "openssl: sign the leaf"
}

# ---------------------------------------------------------------- containers/image tools
# Isolated containers/image configuration (policy, registries.conf,
# registries.d) so host config in /etc/containers does not matter.
E2E_CONF="$E2E_TMP/containers-conf"
mkdir -p "$E2E_CONF/registries.d"
printf '{"default":[{"type":"insecureAcceptAnything"}]}\n' > "$E2E_CONF/policy.json"
: > "$E2E_CONF/registries.conf"
export CONTAINERS_REGISTRIES_CONF="$E2E_CONF/registries.conf"
export REGISTRY_AUTH_FILE="$E2E_CONF/auth.json"
printf '{"auths":{}}\n' > "$REGISTRY_AUTH_FILE"

# e2e_skopeo ARGS...: skopeo with isolated config (registries.conf via env) and a timeout (E2E_CMD_TIMEOUT, default 120 s).
e2e_skopeo() {
    timeout --kill-after=5 "${E2E_CMD_TIMEOUT:-120}" skopeo \
        --policy "$E2E_CONF/policy.json" \
        --registries.d "$E2E_CONF/registries.d" \
        --tmpdir "$E2E_TMP" \
        "$@"
}

# isolated_podman DIR REGISTRIES_CONF: defines e2e_podman ARGS..., podman with its own vfs
# storage, run root and temp dir under DIR (no overlay mounts, nothing of the host's), reading
# REGISTRIES_CONF as its registries.conf, with a timeout (E2E_CMD_TIMEOUT). Mounts podman leaves
# under DIR are undone at exit.
isolated_podman() {
    _E2E_PODMAN=$1 _E2E_PODMAN_REGISTRIES=$2
    mkdir -p "$_E2E_PODMAN/root" "$_E2E_PODMAN/runroot" "$_E2E_PODMAN/tmp"
    printf '[storage]\ndriver = "vfs"\nrunroot = "%s"\ngraphroot = "%s"\n' "$_E2E_PODMAN/runroot" "$_E2E_PODMAN/root" > "$_E2E_PODMAN/storage.conf"
    printf '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "none"\ntmp_dir = "%s"\n' "$_E2E_PODMAN/tmp" > "$_E2E_PODMAN/containers.conf"
    export CONTAINERS_STORAGE_CONF="$_E2E_PODMAN/storage.conf" CONTAINERS_CONF="$_E2E_PODMAN/containers.conf"
    on_exit "grep -F ' $_E2E_PODMAN/' /proc/mounts | cut -d' ' -f2 | sort -r | xargs -r -n1 umount -l"
}
e2e_podman() {
    timeout --kill-after=5 "${E2E_CMD_TIMEOUT:-120}" podman --root "$_E2E_PODMAN/root" --runroot "$_E2E_PODMAN/runroot" \
        --storage-driver vfs --tmpdir "$_E2E_PODMAN/tmp" --cgroup-manager cgroupfs --events-backend none \
        --registries-conf "$_E2E_PODMAN_REGISTRIES" "$@"
}

# e2e_binary PATH: BIN=PATH made absolute; fails with the usage line unless it is executable.
e2e_binary() {
    BIN=$1
    [[ -n "$BIN" && -x "$BIN" ]] || fail "usage: $0 /path/to/satellite-lite (got '${BIN:-}')"
    BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
}

# need_tools TOOL...: fails naming the first one not installed.
need_tools() {
    local t
    for t in "$@"; do command -v "$t" >/dev/null || fail "$t is not installed"; done
}

# run_or_fail "what" CMD...: run CMD, on failure print last lines of its output in one line.
run_or_fail() {
    local what=$1 out; shift
    if ! out=$("$@" 2>&1); then
        fail "$what failed: $(printf '%s' "$out" | tail -n 3 | tr '\n' ' ')"
    fi
    [[ -n "${E2E_VERBOSE:-}" ]] && printf '%s\n' "$out" >&2
    return 0
}

# sha256_file FILE: print "sha256:<hex>".
sha256_file() { printf 'sha256:%s\n' "$(sha256sum "$1" | cut -d' ' -f1)"; }

export MKIMAGE="$E2E_DIR/mkimage.py"

# start_private_containerd DIR CERTS_DIR
# Starts a containerd of its own under DIR (root, state, socket DIR/c.sock), with CERTS_DIR
# as the CRI plugin's registry config_path, and waits for it. Sets SOCK and CTRD_PID and
# defines e2e_ctr (ctr against it, namespace $NS, default e2e). Plugins that cannot work in
# this sandbox (aufs, btrfs, zfs, devmapper) are disabled; CRI points at private CNI dirs.
# E2E_SNAPSHOTTER=native if overlay mounts fail.
start_private_containerd() {
    local C=$1 certs=$2
    SOCK="$C/c.sock"
    NS=${NS:-e2e}
    SNAPSHOTTER=${E2E_SNAPSHOTTER:-overlayfs}
    mkdir -p "$C/root" "$C/state" "$C/opt" "$C/cni/bin" "$C/cni/conf"
    (( ${#SOCK} < 100 )) || fail "socket path too long for a unix socket: $SOCK (set TMPDIR shorter)"
    cat > "$C/config.toml" <<CONFIG
version = 2
root = "$C/root"
state = "$C/state"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
]

[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[debug]
  address = ""
  level = "warn"
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$C/opt"
[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "$SNAPSHOTTER"
[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "$C/cni/bin"
  conf_dir = "$C/cni/conf"
[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "$certs"
CONFIG
    containerd --config "$C/config.toml" > "$C/containerd.log" 2>&1 &
    CTRD_PID=$!
    # stop containerd, then lazily unmount anything it left under its dir
    on_exit "grep -F ' $C/' /proc/mounts | cut -d' ' -f2 | sort -r | xargs -r -n1 umount -l"
    on_exit "kill_wait $CTRD_PID 15"
    e2e_ctr() { timeout --kill-after=5 "${E2E_CMD_TIMEOUT:-120}" ctr --address "$SOCK" --namespace "$NS" "$@"; }
    local deadline=$(( SECONDS + 20 ))
    until e2e_ctr version >/dev/null 2>&1; do
        kill -0 "$CTRD_PID" 2>/dev/null \
            || fail "containerd exited at startup: $(grep -m1 -E 'level=(fatal|error)' "$C/containerd.log" || tail -n 1 "$C/containerd.log")"
        (( SECONDS < deadline )) || fail "containerd did not answer on $SOCK within 20s"
        sleep 0.2
    done
    e2e_ctr plugins ls 2>/dev/null | awk -v s="$SNAPSHOTTER" '$1=="io.containerd.snapshotter.v1" && $2==s && $4=="ok"{f=1} END{exit !f}' \
        || fail "containerd snapshotter $SNAPSHOTTER is not ok here (try E2E_SNAPSHOTTER=native)"
}

# wait_until SECONDS WHAT 'SHELL CONDITION' [LOG]: poll the condition (evaluated afresh each
# time) every 0.3 s; on timeout fail naming WHAT and the last lines of LOG.
wait_until() {
    local t=$1 what=$2 condition=$3 logfile=${4:-} deadline
    deadline=$(( SECONDS + t ))
    until eval "$condition" >/dev/null 2>&1; do
        (( SECONDS < deadline )) || fail "timed out after ${t}s waiting for $what${logfile:+; log: $(tail -n 5 "$logfile" 2>/dev/null | tr '\n' ' ' | cut -c1-600)}"
        sleep 0.3
    done
}
