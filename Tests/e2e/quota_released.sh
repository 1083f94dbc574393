#!/usr/bin/env bash
# quota_released.sh BIN
# Issue 10's bug, as a user met it, against Debian's docker-registry: content the agent
# itself just stopped wanting, and that nobody is reading, is evictable at once; the GC
# grace period (the default profile's 10 minutes, kept here) is only for content of
# unknown origin.
#   1. switch: quota 150 MiB; sync image A (~57.5 MiB: a 0.5 MiB base layer and a 57 MiB
#      layer); change the desired state to B and C (~57.5 MiB each, sharing A's base
#      layer); sync -> exit 0, A's unique layer evicted, A's tag gone, the base layer kept,
#      B and C present and pulled by skopeo through `serve`, disk use <= quota.
#      A blob pushed by a client (unknown origin) stays: it is inside the grace period.
#   2. busy: `run` with a 120 MiB quota, three desired images of ~10 MiB, one of them
#      re-pushed upstream with new content every UPDATE_EVERY seconds (default 4) for
#      BUSY_SECONDS (default 72: ~18 updates, 180 MiB, more than the 90 MiB the quota
#      leaves), the sync interval 1 s, while a client pulls the moving image in a loop;
#      -> every update but at most the last two lands (the tag moves to it), no pass
#      fails with "not enough room", disk use stays <= quota.
# QUOTA_RELEASED_SECTIONS (default "switch busy") selects sections.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

e2e_binary "${1:-}"
for t in docker-registry skopeo jq python3 curl sha256sum; do
    command -v "$t" >/dev/null || fail "$t is not installed"
done
T=$E2E_TMP
SECTIONS=" ${QUOTA_RELEASED_SECTIONS:-switch busy} "
want() { [[ "$SECTIONS" == *" $1 "* ]]; }
MIB=1048576
# The default profile's GC grace period (10 minutes) stays as it is: the point.
PROFILE="$E2E_DIR/../../hw-profiles/generic-amd64.json"
[[ -f "$PROFILE" ]] || fail "profile $PROFILE not found"
[[ "$(jq -r '.gc.gracePeriod' "$PROFILE")" == 10m ]] || fail "expected the profile's gracePeriod 10m, got $(jq -r '.gc.gracePeriod' "$PROFILE")"

# push.py ADDR REPO TAG SEED LAYER_BYTES...: pushes an image whose layers are
# deterministic bytes from (SEED, index) -- the same SEED and size give the same layer, so
# images share a base layer by sharing its seed -- and prints the manifest digest.
cat > "$T/push.py" <<'PY'
import hashlib, http.client, json, random, sys

addr, repo, tag, seed = sys.argv[1:5]
specs = sys.argv[5:]
host, port = addr.rsplit(":", 1)

def push(body):
    d = "sha256:" + hashlib.sha256(body).hexdigest()
    c = http.client.HTTPConnection(host, int(port), timeout=120)
    c.request("HEAD", "/v2/%s/blobs/%s" % (repo, d))
    r = c.getresponse(); r.read()
    if r.status == 200:
        return d
    c.request("POST", "/v2/%s/blobs/uploads/" % repo, headers={"Content-Length": "0"})
    r = c.getresponse(); r.read()
    if r.status != 202:
        sys.exit("POST upload: HTTP %d" % r.status)
    loc = r.getheader("Location")
    if loc.startswith("http"):
        loc = "/" + loc.split("/", 3)[3]
    sep = "&" if "?" in loc else "?"
    c.request("PUT", "%s%sdigest=%s" % (loc, sep, d), body=body,
              headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(body))})
    r = c.getresponse(); r.read()
    if r.status != 201:
        sys.exit("PUT blob: HTTP %d" % r.status)
    return d

layers = []
for i, spec in enumerate(specs):
    # "name=size": a layer named across images (a shared base); "size": unique to SEED.
    name, size = spec.split("=") if "=" in spec else ("%s|%d" % (seed, i), spec)
    body = random.Random(name).randbytes(int(size))
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": push(body), "size": len(body)})
config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [l["digest"] for l in layers]},
                     "config": {"Labels": {"seed": seed}}}).encode()
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": push(config), "size": len(config)},
                       "layers": layers}).encode()
c = http.client.HTTPConnection(host, int(port), timeout=60)
c.request("PUT", "/v2/%s/manifests/%s" % (repo, tag), body=manifest,
          headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
r = c.getresponse(); r.read()
if r.status != 201:
    sys.exit("PUT manifest: HTTP %d" % r.status)
print("sha256:" + hashlib.sha256(manifest).hexdigest())
PY
# push REPO TAG SEED LAYER...: prints the manifest digest.
push() { python3 "$T/push.py" "$UP" "$@" || fail "push of $1:$2 to the upstream failed"; }
blob_path() { local h=${2#sha256:}; echo "$1/blobs/sha256/${h:0:2}/$h"; }
used_bytes() { find "$1/blobs" -type f -printf '%s\n' | awk '{s+=$1} END{print s+0}'; }
mib() { awk -v b="$1" 'BEGIN{printf "%.1f MiB", b/1048576}'; }
# layer_digests REPO REF: the layer digests of a manifest in the upstream.
layer_digests() {
    curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$UP/v2/$1/manifests/$2" | jq -r '.layers[].digest'
}
# write_config FILE STORE LISTEN QUOTA INTERVAL IMAGE...
write_config() {
    local f=$1 store=$2 listen=$3 quota=$4 interval=$5; shift 5
    local images
    images=$(printf '%s\n' "$@" | jq -R . | jq -s .)
    jq -n --arg p "$PROFILE" --arg s "$store" --arg q "$quota" --arg l "$listen" --arg u "http://$UP" \
        --arg iv "$interval" --argjson i "$images" \
        '{profile:$p, storage:{path:$s, quota:$q}, registry:{listen:$l}, upstream:{url:$u},
          state:{images:$i, interval:$iv}, sync:{concurrency:2, timeout:"60s"}}' > "$f"
}

start_docker_registry "$T/up"
UP=$DOCKER_REGISTRY_ADDR

if want switch; then
    log "switch: building A, B, C (0.5 MiB shared base + 57 MiB each) in the upstream"
    BASE="base=$((MIB / 2))"
    A=$(push e2e/a v1 a "$BASE" $((57 * MIB)))
    B=$(push e2e/b v1 b "$BASE" $((57 * MIB)))
    C=$(push e2e/c v1 c "$BASE" $((57 * MIB)))
    mapfile -t A_LAYERS < <(layer_digests e2e/a v1)
    mapfile -t B_LAYERS < <(layer_digests e2e/b v1)
    [[ "${A_LAYERS[0]}" == "${B_LAYERS[0]}" ]] || fail "A and B do not share their base layer"
    S=$T/switch
    mkdir -p "$S"
    LISTEN=127.0.0.1:$(free_port)
    write_config "$S/a.json" "$S/store" "$LISTEN" 150MiB 1h e2e/a:v1
    timeout 120 "$BIN" sync --config "$S/a.json" > "$S/a.log" 2>&1 || fail "sync of A failed: $(tail -n 3 "$S/a.log" | tr '\n' ' ')"
    [[ -f "$(blob_path "$S/store" "${A_LAYERS[1]}")" ]] || fail "A's layer is not in the store after its sync"
    # A client pushes a blob straight into the agent: unknown origin, inside the grace period.
    LOG=$S/serve0.log
    "$BIN" serve --config "$S/a.json" > "$LOG" 2>&1 &
    SERVE=$!
    on_exit "kill_wait $SERVE"
    wait_http "http://$LISTEN/v2/" 20
    head -c 4096 /dev/urandom > "$S/pushed"
    PUSHED=sha256:$(sha256sum "$S/pushed" | cut -d' ' -f1)
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @"$S/pushed" \
        -H 'Content-Type: application/octet-stream' "http://$LISTEN/v2/client/blobs/uploads/?digest=$PUSHED")
    [[ "$code" == 201 ]] || fail "client push into the agent answered $code"
    kill_wait $SERVE
    used_before=$(used_bytes "$S/store")
    log "switch: A synced, $(mib "$used_before") used; the desired state becomes B and C"
    write_config "$S/bc.json" "$S/store" "$LISTEN" 150MiB 1h e2e/b:v1 e2e/c:v1
    set +e
    timeout 180 "$BIN" sync --config "$S/bc.json" > "$S/bc.log" 2>&1
    rc=$?
    set -e
    (( rc == 0 )) || fail "sync of B and C exited $rc, expected 0: $(grep -i 'room\|error' "$S/bc.log" | tail -n 3 | tr '\n' ' ' | cut -c1-400)"
    [[ ! -f "$(blob_path "$S/store" "${A_LAYERS[1]}")" ]] || fail "A's unique layer was not evicted"
    [[ -f "$(blob_path "$S/store" "${A_LAYERS[0]}")" ]] || fail "the shared base layer was evicted"
    [[ -f "$(blob_path "$S/store" "$PUSHED")" ]] || fail "the client's pushed blob (unknown origin, in its grace period) was evicted"
    [[ ! -f "$S/store/repositories/e2e/a/_manifests/tags/v1" ]] || fail "A's tag is still there"
    used_after=$(used_bytes "$S/store")
    (( used_after <= 150 * MIB )) || fail "disk use $(mib "$used_after") is over the 150 MiB quota"
    # B and C serve, byte for byte.
    "$BIN" serve --config "$S/bc.json" > "$S/serve.log" 2>&1 &
    SERVE=$!
    on_exit "kill_wait $SERVE"
    wait_http "http://$LISTEN/v2/" 20
    for image in b c; do
        e2e_skopeo copy -q --src-tls-verify=false "docker://$LISTEN/e2e/$image:v1" "oci:$S/pulled-$image:v1" \
            > "$S/pull-$image.log" 2>&1 || fail "skopeo could not pull e2e/$image:v1 through serve: $(tail -n 2 "$S/pull-$image.log" | tr '\n' ' ')"
    done
    kill_wait $SERVE
    log "switch: sync exit 0; A's 57 MiB layer evicted at once (grace period 10m), base layer and the client's blob kept; $(mib "$used_after") used of 150 MiB; B and C pulled"
fi

if want busy; then
    BUSY_SECONDS=${BUSY_SECONDS:-72}
    UPDATE_EVERY=${UPDATE_EVERY:-4}
    log "busy: three ~10 MiB images, e2e/hot updated every ${UPDATE_EVERY}s for ${BUSY_SECONDS}s, quota 120 MiB"
    push e2e/x v1 x $((10 * MIB)) > /dev/null
    push e2e/y v1 y $((10 * MIB)) > /dev/null
    HOT=$(push e2e/hot v1 hot-0 $((10 * MIB)))
    S=$T/busy
    mkdir -p "$S"
    LISTEN=127.0.0.1:$(free_port)
    write_config "$S/config.json" "$S/store" "$LISTEN" 120MiB 1s e2e/x:v1 e2e/y:v1 e2e/hot:v1
    "$BIN" run --config "$S/config.json" > "$S/run.log" 2>&1 &
    RUN=$!
    on_exit "kill_wait $RUN 20"
    WAIT_HTTP_PID=$RUN WAIT_HTTP_LOG="$S/run.log" wait_http "http://$LISTEN/v2/" 20
    # A client pulls the moving image all along (manifest and layers).
    (
        while [[ ! -f "$S/stop" ]]; do
            m=$(curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$LISTEN/v2/e2e/hot/manifests/v1") || { sleep 0.2; continue; }
            for d in $(jq -r '.config.digest, .layers[].digest' <<<"$m"); do
                curl -sf -o /dev/null "http://$LISTEN/v2/e2e/hot/blobs/$d" && echo ok >> "$S/pulls" || echo missing >> "$S/pulls"
            done
        done
    ) &
    CLIENT=$!
    on_exit "touch $S/stop; kill_wait $CLIENT"
    updates=()
    end=$(( SECONDS + BUSY_SECONDS ))
    n=0
    while (( SECONDS < end )); do
        sleep "$UPDATE_EVERY"
        n=$((n + 1))
        updates+=("$(push e2e/hot v1 "hot-$n" $((10 * MIB)))")
        kill -0 $RUN 2>/dev/null || fail "run exited: $(tail -n 3 "$S/run.log" | tr '\n' ' ')"
        used=$(used_bytes "$S/store")
        (( used <= 120 * MIB )) || fail "disk use $(mib "$used") is over the 120 MiB quota after update $n"
    done
    sleep 6
    touch "$S/stop"
    kill_wait $CLIENT
    kill_wait $RUN 20
    landed=0
    for d in "${updates[@]}"; do
        if grep -F "digest=$d " "$S/run.log" | grep -q "image updated"; then landed=$((landed + 1)); fi
    done
    tag=$(cat "$S/store/repositories/e2e/hot/_manifests/tags/v1")
    refusals=$(grep -c 'not enough room' "$S/run.log" || true)
    pulls=$(grep -c ok "$S/pulls" || true)
    log "busy: $landed of ${#updates[@]} updates landed, ${refusals} 'not enough room' refusals, final tag ${tag:0:19}…, $pulls blob pulls by the client"
    (( refusals == 0 )) || fail "passes failed for room: $(grep 'not enough room' "$S/run.log" | tail -n 1 | cut -c1-300)"
    (( landed >= ${#updates[@]} - 2 )) || fail "only $landed of ${#updates[@]} updates landed"
    [[ "$tag" == "${updates[-1]}" || "$tag" == "${updates[-2]}" ]] || fail "the tag is not at one of the last two updates"
    (( pulls > 0 )) || fail "the client pulled nothing"
fi
log "PASS"
echo "PASS quota_released"
