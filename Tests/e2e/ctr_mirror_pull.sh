#!/usr/bin/env bash
# ctr_mirror_pull.sh HOST:PORT
# Start a private containerd (own root/state/socket in $E2E_TMP), configure
# HOST:PORT as a plain-HTTP pull/resolve mirror for the foreign registries
# harbor.example.com and registry.example.invalid:443 (hosts.toml in a hosts
# dir), push a multi-arch index with skopeo to HOST:PORT/e2e/ctr:v1, then
#   ctr images pull --hosts-dir DIR harbor.example.com/e2e/ctr:v1
#   ctr images pull --hosts-dir DIR registry.example.invalid:443/e2e/ctr@<amd64 manifest>
# and check: requests went to the mirror with ?ns=<upstream> (--http-dump),
# image target digests, every fetched blob byte-identical to what was pushed,
# and the unpacked snapshot chain ID computed from the config's diff_ids.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

REG=${1:-}
check_registry "$REG"
T=$E2E_TMP
C="$T/ctrd"
NS=e2e
mkdir -p "$C/certs.d/harbor.example.com" "$C/certs.d/registry.example.invalid:443"

# Registry host configuration (used by ctr --hosts-dir and by the CRI plugin).
for up in harbor.example.com registry.example.invalid:443; do
    cat > "$C/certs.d/$up/hosts.toml" <<EOF
server = "https://$up"

[host."http://$REG"]
  capabilities = ["pull", "resolve"]
EOF
done

start_private_containerd "$C" "$C/certs.d"
log "containerd up (pid $CTRD_PID, snapshotter $SNAPSHOTTER)"

# ------------------------------------------------------------------ push
IDX=$(python3 "$MKIMAGE" index "oci:$T/img:v1" --layers 2 --size 65536) || fail "mkimage.py index failed"
B="$T/img/blobs/sha256"
AMD_M=$(jq -r '.manifests[] | select(.platform.architecture=="amd64") | .digest' "$B/${IDX#sha256:}")
AMD_C=$(jq -r .config.digest "$B/${AMD_M#sha256:}")
log "pushing multi-arch index $IDX to docker://$REG/e2e/ctr:v1"
run_or_fail "skopeo copy --all (push) to docker://$REG/e2e/ctr:v1" \
    e2e_skopeo copy -q --all --preserve-digests --dest-tls-verify=false \
    "oci:$T/img:v1" "docker://$REG/e2e/ctr:v1"

# expected chain ID of the linux/amd64 image (identity of the unpacked rootfs)
CHAIN=""
for d in $(jq -r '.rootfs.diff_ids[]' "$B/${AMD_C#sha256:}"); do
    if [[ -z "$CHAIN" ]]; then CHAIN=$d
    else CHAIN="sha256:$(printf '%s %s' "$CHAIN" "$d" | sha256sum | cut -d' ' -f1)"; fi
done

# pull_check REF EXPECTED_TARGET UPSTREAM: pull through the mirror and verify.
pull_check() {
    local ref=$1 want=$2 up=$3 out got d
    log "ctr images pull --hosts-dir ... $ref"
    if ! e2e_ctr images pull --hosts-dir "$C/certs.d" --platform linux/amd64 \
            --snapshotter "$SNAPSHOTTER" --print-chainid --http-dump "$ref" \
            > "$T/pull.out" 2> "$T/pull.err"; then
        fail "ctr images pull $ref via mirror $REG failed: $(grep -vE 'level=info' "$T/pull.err" | tail -n 2 | tr '\n' ' ')$(grep -E 'msg="HTTP/1.1 [45]' "$T/pull.err" | head -n 1)"
    fi
    # the request must have gone to the mirror with ?ns=<upstream>
    # (containerd URL-encodes it: registry.example.invalid%3A443)
    grep -qF -e "?ns=$up HTTP/1.1" -e "?ns=${up//:/%3A} HTTP/1.1" "$T/pull.err" \
        || fail "no request to the mirror carried ?ns=$up (containerd mirror path not exercised)"
    got=$(grep -o 'image chain ID: sha256:[0-9a-f]*' "$T/pull.out" | cut -d' ' -f4)
    [[ "$got" == "$CHAIN" ]] || fail "$ref unpacked to chain ID '${got:-none}', expected $CHAIN"
    got=$(e2e_ctr images ls "name==$ref" | awk 'NR==2{print $3}')
    [[ "$got" == "$want" ]] || fail "containerd image $ref has target '${got:-none}', expected $want"
    e2e_ctr images check "name==$ref" > "$T/check.out" 2>&1 || fail "ctr images check $ref failed"
    grep -q 'complete' "$T/check.out" || fail "ctr images check $ref: $(tail -n 1 "$T/check.out")"
    # every fetched blob must be byte-identical to what was pushed
    for d in "$want" "$AMD_M" "$AMD_C" $(jq -r '.layers[].digest' "$B/${AMD_M#sha256:}"); do
        e2e_ctr content get "$d" > "$T/blob" 2>/dev/null || fail "blob $d missing from containerd after pulling $ref"
        cmp -s "$T/blob" "$B/${d#sha256:}" || fail "blob $d in containerd differs from pushed content"
    done
}

pull_check "harbor.example.com/e2e/ctr:v1" "$IDX" "harbor.example.com"
# drop the image and let the GC remove its content so the second pull has to
# fetch every blob again (pull_check then finds them all in the content store;
# --http-dump output is not reliable enough under concurrency to grep per blob)
e2e_ctr images rm --sync "harbor.example.com/e2e/ctr:v1" >/dev/null 2>&1 || fail "ctr images rm --sync failed"
left=$(e2e_ctr content ls -q | wc -l)
(( left == 0 )) || fail "containerd still holds $left blobs after removing the image"
pull_check "registry.example.invalid:443/e2e/ctr@$AMD_M" "$AMD_M" "registry.example.invalid:443"

e2e_ctr images rm "registry.example.invalid:443/e2e/ctr@$AMD_M" >/dev/null 2>&1 || true
log "stopping containerd"
kill_wait "$CTRD_PID" 15
kill -0 "$CTRD_PID" 2>/dev/null && fail "containerd $CTRD_PID did not stop"
echo "PASS ctr_mirror_pull"
