#!/usr/bin/env bash
# skopeo_roundtrip.sh HOST:PORT
# 1. multi-arch OCI index (linux/amd64, linux/arm64/v8, linux/arm/v7):
#    push with `skopeo copy --all`, pull back with `--all` into a fresh OCI
#    layout; the index and every manifest/config/layer blob must be
#    byte-identical; `skopeo inspect --raw` must hash to the index digest
#    (and each per-platform manifest must be fetchable by digest).
# 2. single-arch image pushed as Docker schema2 (`--format v2s2`), pulled back
#    into a `dir:`; manifest digest, media types, layers and diff_ids checked.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

REG=${1:-}
check_registry "$REG"
T=$E2E_TMP
REPO="$REG/e2e/multi"
MT_INDEX=application/vnd.oci.image.index.v1+json
MT_V2S2=application/vnd.docker.distribution.manifest.v2+json

# ------------------------------------------------------------------ multi-arch
IDX_DIGEST=$(python3 "$MKIMAGE" index "oci:$T/src:v1" --layers 2 --size 65536) \
    || fail "mkimage.py index failed"
log "pushing multi-arch index $IDX_DIGEST to docker://$REPO:v1"
run_or_fail "skopeo copy --all (push) to docker://$REPO:v1" \
    e2e_skopeo copy -q --all --preserve-digests --dest-tls-verify=false \
    --digestfile "$T/push.digest" "oci:$T/src:v1" "docker://$REPO:v1"
[[ "$(cat "$T/push.digest")" == "$IDX_DIGEST" ]] \
    || fail "push digest differs: skopeo reported $(cat "$T/push.digest"), expected $IDX_DIGEST"

# inspect --raw: bytes must hash to the index digest and be the index we built
e2e_skopeo inspect --raw --tls-verify=false "docker://$REPO:v1" > "$T/raw.json" \
    || fail "skopeo inspect --raw docker://$REPO:v1 failed"
got=$(sha256_file "$T/raw.json")
[[ "$got" == "$IDX_DIGEST" ]] \
    || fail "inspect --raw of $REPO:v1 hashes to $got, expected $IDX_DIGEST"
cmp -s "$T/raw.json" "$T/src/blobs/sha256/${IDX_DIGEST#sha256:}" \
    || fail "inspect --raw of $REPO:v1 is not byte-identical to the pushed index"
[[ "$(jq -r .mediaType "$T/raw.json")" == "$MT_INDEX" ]] \
    || fail "inspect --raw mediaType is $(jq -r .mediaType "$T/raw.json"), expected $MT_INDEX"

# each platform manifest by digest, and by-digest fetch of the index itself
for d in $(jq -r '.manifests[].digest' "$T/raw.json") "$IDX_DIGEST"; do
    e2e_skopeo inspect --raw --tls-verify=false "docker://$REPO@$d" > "$T/m.json" \
        || fail "skopeo inspect --raw docker://$REPO@$d failed"
    got=$(sha256_file "$T/m.json")
    [[ "$got" == "$d" ]] || fail "manifest $REPO@$d hashes to $got"
done

# platform selection through the index
for p in amd64:: arm64:v8: arm:v7:; do
    IFS=: read -r arch variant _ <<<"$p"
    args=(--override-os linux --override-arch "$arch")
    [[ -n "$variant" ]] && args+=(--override-variant "$variant")
    md=$(jq -r --arg a "$arch" --arg v "$variant" \
        '.manifests[] | select(.platform.architecture==$a and (.platform.variant // "")==$v) | .digest' "$T/raw.json")
    [[ -n "$md" ]] || fail "index has no manifest for linux/$arch${variant:+/$variant}"
    want=$(jq -c '[.layers[].digest]' "$T/src/blobs/sha256/${md#sha256:}")
    got=$(e2e_skopeo "${args[@]}" inspect --tls-verify=false "docker://$REPO:v1" | jq -c '.Layers') \
        || fail "skopeo inspect for linux/$arch${variant:+/$variant} failed"
    [[ "$got" == "$want" ]] || fail "linux/$arch${variant:+/$variant} resolves to layers $got, expected $want (manifest $md)"
done

# pull everything back into a fresh layout
log "pulling back into a fresh OCI layout"
run_or_fail "skopeo copy --all (pull) from docker://$REPO:v1" \
    e2e_skopeo copy -q --all --preserve-digests --src-tls-verify=false \
    "docker://$REPO:v1" "oci:$T/dst:v1"
got=$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"]=="v1") | .digest' "$T/dst/index.json")
[[ "$got" == "$IDX_DIGEST" ]] || fail "pulled layout tags v1 as '$got', expected $IDX_DIGEST"
got=$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"]=="v1") | .mediaType' "$T/dst/index.json")
[[ "$got" == "$MT_INDEX" ]] || fail "pulled layout v1 mediaType is $got, expected $MT_INDEX"

# every blob: same set of digests, files byte-identical, content matches name
find "$T/src/blobs/sha256" -type f -printf '%f\n' | sort > "$T/src.list"
find "$T/dst/blobs/sha256" -type f -printf '%f\n' | sort > "$T/dst.list"
if ! cmp -s "$T/src.list" "$T/dst.list"; then
    fail "blob sets differ (pushed vs pulled): $(diff "$T/src.list" "$T/dst.list" | grep '^[<>]' | head -n 4 | tr '\n' ' ')"
fi
n=0
while read -r h; do
    cmp -s "$T/src/blobs/sha256/$h" "$T/dst/blobs/sha256/$h" || fail "blob sha256:$h differs after round trip"
    got=$(sha256_file "$T/dst/blobs/sha256/$h")
    [[ "$got" == "sha256:$h" ]] || fail "pulled blob sha256:$h has content digest $got"
    n=$((n + 1))
done < "$T/src.list"
# 1 index + 3 x (manifest + config + 2 layers) = 13
(( n == 13 )) || fail "expected 13 blobs in the round trip, found $n"
log "multi-arch round trip OK ($n blobs identical)"

# ------------------------------------------------------------------ docker schema2
SREPO="$REG/e2e/v2s2"
python3 "$MKIMAGE" single "oci:$T/single:v1" --platform linux/amd64 --layers 3 --size 32768 > "$T/single.digest" \
    || fail "mkimage.py single failed"
log "pushing single-arch image as docker schema2 to docker://$SREPO:v1"
run_or_fail "skopeo copy --format v2s2 (push) to docker://$SREPO:v1" \
    e2e_skopeo copy -q --format v2s2 --dest-tls-verify=false \
    --digestfile "$T/v2s2.digest" "oci:$T/single:v1" "docker://$SREPO:v1"
PUSHED=$(cat "$T/v2s2.digest")
run_or_fail "skopeo copy (pull) from docker://$SREPO:v1" \
    e2e_skopeo copy -q --src-tls-verify=false "docker://$SREPO:v1" "dir:$T/v2s2dir"
got=$(sha256_file "$T/v2s2dir/manifest.json")
[[ "$got" == "$PUSHED" ]] || fail "pulled v2s2 manifest hashes to $got, pushed $PUSHED"
got=$(jq -r .mediaType "$T/v2s2dir/manifest.json")
[[ "$got" == "$MT_V2S2" ]] || fail "pulled manifest mediaType is $got, expected $MT_V2S2"
got=$(jq -r .config.mediaType "$T/v2s2dir/manifest.json")
[[ "$got" == application/vnd.docker.container.image.v1+json ]] || fail "v2s2 config mediaType is $got"
e2e_skopeo inspect --raw --tls-verify=false "docker://$SREPO:v1" > "$T/v2s2raw.json" \
    || fail "skopeo inspect --raw docker://$SREPO:v1 failed"
cmp -s "$T/v2s2raw.json" "$T/v2s2dir/manifest.json" || fail "inspect --raw of $SREPO:v1 differs from pulled manifest"

SRC_M="$T/single/blobs/sha256/$(sed 's/^sha256://' "$T/single.digest")"
want=$(jq -r '.layers[].digest' "$SRC_M" | tr '\n' ' ')
got=$(jq -r '.layers[].digest' "$T/v2s2dir/manifest.json" | tr '\n' ' ')
[[ "$got" == "$want" ]] || fail "v2s2 layer digests '$got' differ from source '$want'"
for d in $(jq -r '.layers[].digest, .config.digest' "$T/v2s2dir/manifest.json"); do
    f="$T/v2s2dir/${d#sha256:}"
    [[ -f "$f" ]] || fail "blob $d missing from pulled dir"
    got=$(sha256_file "$f")
    [[ "$got" == "$d" ]] || fail "pulled blob $d has content digest $got"
done
for d in $(jq -r '.layers[].digest' "$SRC_M"); do
    cmp -s "$T/single/blobs/sha256/${d#sha256:}" "$T/v2s2dir/${d#sha256:}" || fail "v2s2 layer $d differs from source"
done
SRC_C="$T/single/blobs/sha256/$(jq -r .config.digest "$SRC_M" | sed 's/^sha256://')"
PULLED_C="$T/v2s2dir/$(jq -r .config.digest "$T/v2s2dir/manifest.json" | sed 's/^sha256://')"
[[ "$(jq -c .rootfs "$SRC_C")" == "$(jq -c .rootfs "$PULLED_C")" ]] \
    || fail "v2s2 config rootfs $(jq -c .rootfs "$PULLED_C") differs from source $(jq -c .rootfs "$SRC_C")"
log "docker schema2 round trip OK ($PUSHED)"
echo "PASS skopeo_roundtrip"
