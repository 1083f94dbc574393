#!/usr/bin/env bash
# podman_pull.sh HOST:PORT
# Push a linux/amd64 OCI image with skopeo, then `podman pull` it (by tag and
# by digest) into a throw-away podman storage and check with
# `podman image inspect` that the manifest digest, RepoDigests, image ID
# (config digest) and architecture match what was pushed. Also pulls the
# linux/arm64/v8 instance of a multi-arch index with `--platform`.
#
# Sandbox notes: podman runs as root without systemd, so everything it would
# take from /etc/containers or /var/lib/containers is redirected into
# $E2E_TMP: storage.conf (driver vfs: no overlay mounts needed),
# containers.conf (cgroupfs, events_logger=none, tmp_dir, cni backend so
# netavark does not create /run/containers/networks) and an empty
# registries.conf; `--tls-verify=false` allows plain HTTP.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

REG=${1:-}
check_registry "$REG"
T=$E2E_TMP
REPO="$REG/e2e/podman"
P="$T/podman"
mkdir -p "$P/root" "$P/runroot" "$P/tmp" "$P/networks"

cat > "$P/storage.conf" <<EOF
[storage]
driver = "vfs"
runroot = "$P/runroot"
graphroot = "$P/root"
EOF
cat > "$P/containers.conf" <<EOF
[engine]
cgroup_manager = "cgroupfs"
events_logger = "none"
tmp_dir = "$P/tmp"
static_dir = "$P/root/libpod"
volume_path = "$P/root/volumes"

[network]
network_backend = "cni"
network_config_dir = "$P/networks"
EOF
export CONTAINERS_STORAGE_CONF="$P/storage.conf" CONTAINERS_CONF="$P/containers.conf"
# CONTAINERS_REGISTRIES_CONF (empty file) is exported by lib.sh.

e2e_podman() {
    timeout --kill-after=5 "${E2E_CMD_TIMEOUT:-120}" podman \
        --root "$P/root" --runroot "$P/runroot" --storage-driver vfs \
        --tmpdir "$P/tmp" --cgroup-manager cgroupfs --events-backend none \
        --registries-conf "$CONTAINERS_REGISTRIES_CONF" \
        "$@"
}
# podman may leave a storage-layer lock holder around only while running;
# nothing is mounted with vfs, but unmount defensively if anything is.
on_exit "grep -F ' $P/' /proc/mounts | cut -d' ' -f2 | sort -r | xargs -r -n1 umount -l"

# --------------------------------------------------------------- single-arch
MDIGEST=$(python3 "$MKIMAGE" single "oci:$T/img:v1" --platform linux/amd64 --layers 2 --size 65536) \
    || fail "mkimage.py single failed"
CDIGEST=$(jq -r .config.digest "$T/img/blobs/sha256/${MDIGEST#sha256:}")
log "pushing linux/amd64 image $MDIGEST to docker://$REPO:v1"
run_or_fail "skopeo copy (push) to docker://$REPO:v1" \
    e2e_skopeo copy -q --preserve-digests --dest-tls-verify=false \
    "oci:$T/img:v1" "docker://$REPO:v1"

log "podman pull $REPO:v1"
run_or_fail "podman pull --tls-verify=false $REPO:v1" \
    e2e_podman pull -q --tls-verify=false "$REPO:v1"
e2e_podman image inspect "$REPO:v1" > "$T/inspect.json" 2> "$T/inspect.err" \
    || fail "podman image inspect $REPO:v1 failed: $(tail -n 2 "$T/inspect.err" | tr '\n' ' ')"
got=$(jq -r '.[0].Digest' "$T/inspect.json")
[[ "$got" == "$MDIGEST" ]] || fail "podman image Digest is $got, pushed $MDIGEST"
jq -e --arg r "$REPO@$MDIGEST" '.[0].RepoDigests | index($r)' "$T/inspect.json" >/dev/null \
    || fail "podman RepoDigests $(jq -c '.[0].RepoDigests' "$T/inspect.json") lack $REPO@$MDIGEST"
got=$(jq -r '.[0].Id' "$T/inspect.json")
[[ "sha256:$got" == "$CDIGEST" ]] || fail "podman image Id is $got, expected config digest $CDIGEST"
got=$(jq -r '.[0].Os + "/" + .[0].Architecture' "$T/inspect.json")
[[ "$got" == linux/amd64 ]] || fail "podman image platform is $got, expected linux/amd64"
got=$(jq -r '.[0].RootFS.Layers | length' "$T/inspect.json")
[[ "$got" == 2 ]] || fail "podman image has $got rootfs layers, expected 2"

log "podman pull $REPO@$MDIGEST"
run_or_fail "podman pull --tls-verify=false $REPO@$MDIGEST" \
    e2e_podman pull -q --tls-verify=false "$REPO@$MDIGEST"
got=$(e2e_podman image inspect --format '{{.Id}}' "$REPO@$MDIGEST") \
    || fail "podman image inspect $REPO@$MDIGEST failed"
[[ "sha256:$got" == "$CDIGEST" ]] || fail "pull by digest gave image Id $got, expected $CDIGEST"

# --------------------------------------------------------------- multi-arch
IDX=$(python3 "$MKIMAGE" index "oci:$T/multi:v1" --layers 1 --size 16384) || fail "mkimage.py index failed"
ARM_M=$(jq -r '.manifests[] | select(.platform.architecture=="arm64") | .digest' "$T/multi/blobs/sha256/${IDX#sha256:}")
ARM_C=$(jq -r .config.digest "$T/multi/blobs/sha256/${ARM_M#sha256:}")
log "pushing multi-arch index $IDX to docker://$REPO:multi"
run_or_fail "skopeo copy --all (push) to docker://$REPO:multi" \
    e2e_skopeo copy -q --all --preserve-digests --dest-tls-verify=false \
    "oci:$T/multi:v1" "docker://$REPO:multi"
log "podman pull --platform linux/arm64/v8 $REPO:multi"
run_or_fail "podman pull --platform linux/arm64/v8 $REPO:multi" \
    e2e_podman pull -q --tls-verify=false --platform linux/arm64/v8 "$REPO:multi"
e2e_podman image inspect "$REPO:multi" > "$T/inspect2.json" 2> "$T/inspect.err" \
    || fail "podman image inspect $REPO:multi failed: $(tail -n 2 "$T/inspect.err" | tr '\n' ' ')"
got=$(jq -r '.[0].Id' "$T/inspect2.json")
[[ "sha256:$got" == "$ARM_C" ]] || fail "linux/arm64/v8 pull gave image Id sha256:$got, expected config $ARM_C"
# podman 4.3 records the index digest as .Digest and both the index and the
# instance manifest in RepoDigests (it does not report the variant).
got=$(jq -r '.[0].Digest' "$T/inspect2.json")
[[ "$got" == "$IDX" ]] || fail "linux/arm64/v8 pull has Digest $got, expected index $IDX"
for d in "$IDX" "$ARM_M"; do
    jq -e --arg r "$REPO@$d" '.[0].RepoDigests | index($r)' "$T/inspect2.json" >/dev/null \
        || fail "linux/arm64/v8 pull RepoDigests $(jq -c '.[0].RepoDigests' "$T/inspect2.json") lack $REPO@$d"
done
got=$(jq -r '.[0].Os + "/" + .[0].Architecture' "$T/inspect2.json")
[[ "$got" == linux/arm64 ]] || fail "linux/arm64/v8 pull has platform $got"

echo "PASS podman_pull"
