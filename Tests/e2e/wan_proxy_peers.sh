#!/usr/bin/env bash
# wan_proxy_peers.sh BIN
# The pull-through proxy asks the site's peers before the WAN (issues 14 + 16): network
# namespaces as in wan_peers.sh, two satellites on the site LAN, the upstream behind a tbf
# link whose bytes tc counts.
#   1. s1 syncs site/app:v1 (the WAN). s2 (proxy on, no desired state, same site secret)
#      serves a skopeo pull of site/app:v1 through its proxy: the image is identical, its
#      blobs came from s1 (LAN), the WAN carried the manifest only.
#   2. both proxies pull site/app:v2 (32 MB, held by nobody) at about the same time: s2's
#      proxied download shows as `fetching` on its peer endpoint, s1 follows it (shows as
#      `following`, never `fetching`); the WAN carries v2 once.
#   3. s2 restarted with a fresh store and its only sync window hours away: a skopeo pull of
#      site/app:v1 works (the tag through s1's sync-managed tag, manifest and blobs from s1),
#      a blob GET of a v2 layer works (its size from s1's probe), a pull of site/app:v2 by
#      digest works (manifest from s1), 0 WAN bytes; a blob no peer holds is 503 with
#      Retry-After.
#   4. s1 is killed (SIGKILL) while s2's proxy follows its download of site/app:v4: s2
#      continues from the upstream at the same offset (WAN < 1.2 x the image in total).
#   5. s1 lies (a corrupted layer in its store): s2 (fresh, window open) catches it, takes
#      that layer from the upstream, and skopeo gets the right bytes.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_netns.sh"

e2e_binary "${1:-}"
need_tools docker-registry skopeo python3 curl ip tc jq
export TZ=UTC
D=$E2E_TMP/site
mkdir -p "$D"
head -c 32 /dev/urandom | base64 > "$D/site.secret"

site_up 8mbps
nsx "$NS_UP" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 2>/dev/null || true
# "0 WAN bytes": a stray ARP frame is not an HTTP exchange (several hundred bytes at least).
NOISE=256
for n in 1 2; do site_satellite "$n"; done
start_upstream "$D/upstream"
push_image 1 1 v3
push_image 24 1 v4
V4_BYTES=$IMAGE_BYTES
V4_LAYER=$(jq -r '.layers[0].digest' "$E2E_TMP/img-v4/blobs/sha256/$(jq -r '.manifests[0].digest' "$E2E_TMP/img-v4/index.json" | cut -d: -f2)")
V3_LAYER=$(jq -r '.layers[0].digest' "$E2E_TMP/img-v3/blobs/sha256/$(jq -r '.manifests[0].digest' "$E2E_TMP/img-v3/index.json" | cut -d: -f2)")
push_image 32 1 v2
V2_BYTES=$IMAGE_BYTES
V2_LAYER=$(jq -r '.layers[0].digest' "$E2E_TMP/img-v2/blobs/sha256/$(jq -r '.manifests[0].digest' "$E2E_TMP/img-v2/index.json" | cut -d: -f2)")
push_image 12 2 v1
log "images: v1 $IMAGE_BYTES bytes in 2 layers, v2 $V2_BYTES bytes in 1 layer; WAN at 8 MB/s"

h=$(date -u +%-H)
CLOSED_WINDOW=$(printf '%02d:00-%02d:00' $(( (h + 2) % 24 )) $(( (h + 3) % 24 )))
peer_of() { echo "{ \"urls\": [\"http://$(sat_ip "$2"):5000\"], \"secretFile\": \"$D/site.secret\", \"advertise\": \"http://$(sat_ip "$1"):5000\" }"; }
# s1: desired state site/app:v1, proxy on. s2: proxy on, no desired state.
sat_config 1 "$D" v1 "$(peer_of 1 2)"
jq '.proxy = { enabled: true }' "$D/s1/config.json" > "$D/s1/c.tmp" && mv "$D/s1/c.tmp" "$D/s1/config.json"
s2_config() {  # s2_config [WINDOW]
    sat_config 2 "$D" v1 "$(peer_of 2 1)"
    jq --arg w "${1:-}" 'del(.state) | .proxy = { enabled: true } | if $w != "" then .sync.windows = [$w] else . end' \
        "$D/s2/config.json" > "$D/s2/c.tmp" && mv "$D/s2/c.tmp" "$D/s2/config.json"
}
s2_config
for n in 1 2; do start_serve "$n" "$D"; done

# pull N TAG|@DIGEST OUT: skopeo pulls site/app through satellite N's registry into oci:OUT.
pull() {
    local n=$1 ref=$2 out=$3 sep=:
    [[ $ref == @* ]] && sep=""
    rm -rf "$out"
    nsx "${NS_SATS[$n]}" timeout 60 skopeo --policy "$E2E_CONF/policy.json" --tmpdir "$E2E_TMP" copy -q --src-tls-verify=false \
        "docker://$(sat_ip "$n"):5000/site/app$sep$ref" "oci:$out:x" 2>"$out.err"
}
# identical OUT TAG: the pulled image is the pushed one (manifest digest, every blob verifies).
identical() {
    local out=$1 tag=$2 f
    [[ "$(jq -r '.manifests[0].digest' "$out/index.json")" == "$(jq -r '.manifests[0].digest' "$E2E_TMP/img-$tag/index.json")" ]] || return 1
    for f in "$E2E_TMP/img-$tag/blobs/sha256/"*; do
        [[ -f "$out/blobs/sha256/$(basename "$f")" ]] || return 1
        [[ "$(sha256sum "$out/blobs/sha256/$(basename "$f")" | cut -c1-64)" == "$(basename "$f")" ]] || return 1
    done
}
metric() { nsx "${NS_SATS[$1]}" curl -sf "http://$(sat_ip "$1"):5000/metrics" | awk -v m="$2" '$1 == m { print $2 }'; }

# ---- 1. s1 syncs v1; s2's proxy serves it from s1
start_sync 1 "$D"
wait "${SYNC_PIDS[1]}" || fail "sync of s1 failed: $(tail -n 5 "$D/s1/sync.log" | tr '\n' ' ' | cut -c1-600)"
store_verified "$D" 1 v1 || fail "s1 does not hold site/app:v1 verified"
before=$(wan_bytes)
start=$(date +%s.%N)
pull 2 v1 "$D/pull1" || fail "skopeo pull of site/app:v1 through s2's proxy failed: $(tail -n 3 "$D/pull1.err" | tr '\n' ' ')"
wan=$(( $(wan_bytes) - before ))
identical "$D/pull1" v1 || fail "the image pulled through s2's proxy differs from site/app:v1"
peer_bytes=$(metric 2 satellite_proxy_peer_bytes_total)
log "s2's proxy: site/app:v1 in $(since "$start")s, WAN $wan bytes (manifest), $peer_bytes blob bytes from s1"
(( wan < 64 * 1024 )) || fail "a pull of what s1 holds moved $wan bytes on the WAN (the $IMAGE_BYTES-byte image came from the WAN)"
(( peer_bytes * 100 >= IMAGE_BYTES * 95 )) || fail "s2's proxy took only ${peer_bytes:-0} bytes from its peer for a $IMAGE_BYTES-byte image"

# ---- 2. two proxies, one WAN download: s2 fetches, s1 follows (and shows as following)
cat > "$D/watch.py" <<'PY'
# watch.py SECRET DIGEST STOPFILE URL...: every 50 ms, each URL's peer-endpoint state of DIGEST.
import hmac, hashlib, os, sys, time, urllib.request, urllib.error
secret = open(sys.argv[1], "rb").read().strip()
digest, stop, urls = sys.argv[2], sys.argv[3], sys.argv[4:]
path = "/peer/v1/blobs/" + digest
while not os.path.exists(stop):
    for url in urls:
        ts, nonce = int(time.time()), os.urandom(8).hex()
        mac = hmac.new(secret, ("HEAD %s %d %s" % (path, ts, nonce)).encode(), hashlib.sha256).hexdigest()
        req = urllib.request.Request(url + path, method="HEAD", headers={"Authorization": "SatellitePeer ts=%d,nonce=%s,mac=%s" % (ts, nonce, mac)})
        try:
            headers = urllib.request.urlopen(req, timeout=2).headers
        except urllib.error.HTTPError as e:
            headers = e.headers
        except Exception:
            continue
        print(url, headers.get("Satellite-Blob-State", "none"), headers.get("Satellite-Blob-Offset", "-"), flush=True)
    time.sleep(0.05)
PY
S1=http://$(sat_ip 1):5000 S2=http://$(sat_ip 2):5000
# watch LAYER LOG: the peer-endpoint states of LAYER on s1 and s2 into LOG until watch_stop.
watch() {
    rm -f "$D/watch.stop"
    ip netns exec "${NS_SATS[2]}" python3 "$D/watch.py" "$D/site.secret" "$1" "$D/watch.stop" "$S1" "$S2" > "$2" 2>&1 &
    WATCH=$!
    on_exit "kill $WATCH"
}
watch_stop() { touch "$D/watch.stop"; wait "$WATCH" 2>/dev/null || true; }
# pull_behind A B TAG LOG: sA's proxy pulls TAG (PULL_A, into $D/pull-TAG-sA); once it shows
# as fetching the layer (LOG of watch), sB's proxy pulls it too (PULL_B).
pull_behind() {
    local a=$1 b=$2 tag=$3 log=$4 url
    url=http://$(sat_ip "$a"):5000
    ( pull "$a" "$tag" "$D/pull-$tag-s$a" ) &
    PULL_A=$!
    wait_until 30 "s$a's proxied download of the $tag layer shows as fetching" "grep -q '^$url fetching [1-9]' '$log'" "$D/s$a/serve.log"
    ( pull "$b" "$tag" "$D/pull-$tag-s$b" ) &
    PULL_B=$!
}
pull_failed() { echo "skopeo pull of site/app:$1 through s$2's proxy failed: $(tail -n 3 "$D/pull-$1-s$2.err" | tr '\n' ' ')"; }
watch "$V2_LAYER" "$D/watch.log"
before=$(wan_bytes)
pull_behind 2 1 v2 "$D/watch.log"
wait "$PULL_B" || fail "$(pull_failed v2 1)"
wait "$PULL_A" || fail "$(pull_failed v2 2)"
watch_stop
wan=$(( $(wan_bytes) - before ))
for n in 1 2; do identical "$D/pull-v2-s$n" v2 || fail "the site/app:v2 pulled through s$n's proxy differs"; done
grep -q "^$S1 following" "$D/watch.log" || fail "s1 never showed as following s2's download: $(sort "$D/watch.log" | uniq -c | sort -rn | head -n 5 | tr '\n' ' ')"
if grep -q "^$S1 fetching" "$D/watch.log"; then fail "s1 showed as fetching while it followed s2: $(grep "^$S1" "$D/watch.log" | sort | uniq -c | head -n 5 | tr '\n' ' ')"; fi
log "two proxies pulled site/app:v2: WAN $(ratio $wan $V2_BYTES) x the image; s2 fetching, s1 following"
(( wan * 100 <= V2_BYTES * 110 )) || fail "two proxies pulling site/app:v2 moved $wan bytes on the WAN ($(ratio $wan $V2_BYTES) x > 1.10 x)"

# ---- 3. s2's WAN window closed: what s1 holds is served, the rest is 503 + Retry-After
stop_serve 2; rm -rf "$D/s2/store"; : > "$D/s2/serve.log"
s2_config "$CLOSED_WINDOW"
start_serve 2 "$D"
before=$(wan_bytes)
pull 2 v1 "$D/pull3" || fail "skopeo pull of site/app:v1 through s2's proxy outside its window failed: $(tail -n 3 "$D/pull3.err" | tr '\n' ' ')"
identical "$D/pull3" v1 || fail "the image pulled through s2's proxy outside its window differs from site/app:v1"
grep -q "proxied tag resolved by the peers" "$D/s2/serve.log" || fail "s2 did not resolve site/app:v1 through its peer: $(tail -n 3 "$D/s2/serve.log" | tr '\n' ' ')"
got=$(nsx "${NS_SATS[2]}" curl -sf "$S2/v2/site/app/blobs/$V2_LAYER" | sha256sum | cut -c1-64) || fail "GET of the v2 layer through s2's proxy outside its window failed"
[[ "sha256:$got" == "$V2_LAYER" ]] || fail "the v2 layer served outside the window hashes to $got"
# By digest: the manifest from s1 (which cached it through its proxy), checked against the digest.
v2_digest=$(jq -r '.manifests[0].digest' "$E2E_TMP/img-v2/index.json")
pull 2 "@$v2_digest" "$D/pull3-v2" || fail "skopeo pull of site/app@$v2_digest through s2's proxy outside its window failed: $(tail -n 3 "$D/pull3-v2.err" | tr '\n' ' ')"
identical "$D/pull3-v2" v2 || fail "the site/app@$v2_digest pulled outside the window differs"
grep -q "from=peers .*reference=$v2_digest" "$D/s2/serve.log" || fail "s2 did not take the manifest $v2_digest from its peer: $(grep "proxied manifest" "$D/s2/serve.log" | tail -n 2 | tr '\n' ' ')"
wan=$(( $(wan_bytes) - before ))
(( wan < NOISE )) || fail "s2's proxy outside its window ($CLOSED_WINDOW) moved $wan bytes on the WAN"
code=$(nsx "${NS_SATS[2]}" curl -s -D "$D/h503" -o "$D/b503" -w '%{http_code}' "$S2/v2/site/app/blobs/$V3_LAYER")
[[ $code == 503 ]] && grep -qi '^retry-after: [0-9]' "$D/h503" && grep -q '"UNAVAILABLE"' "$D/b503" \
    || fail "a blob no peer holds, outside the window: HTTP $code $(tr '\n' ' ' < "$D/b503" | cut -c1-200)"
log "s2 outside its window ($CLOSED_WINDOW): site/app:v1, a v2 layer and site/app@v2-digest from s1, WAN $wan bytes; a blob no peer holds: 503 + Retry-After"

# ---- 4. the peer dies mid-blob: s2 continues from the upstream at the same offset
stop_serve 2; rm -rf "$D/s2/store"; : > "$D/s2/serve.log"
s2_config
start_serve 2 "$D"
# A slower WAN for this part: the kill must land in the middle of the layer, even on a busy machine.
nsx "$NS_UP" tc qdisc change dev up0 root tbf rate 4mbps burst 256kb latency 500ms
watch "$V4_LAYER" "$D/watch4.log"
before=$(wan_bytes)
pull_behind 1 2 v4 "$D/watch4.log"
# s2 follows s1; kill s1 once s2 holds a third of the layer.
wait_until 30 "s2 following s1 past a third of the v4 layer" \
    "awk -v u='$S2' -v min=$(( V4_BYTES / 3 )) '\$1 == u && \$2 == \"following\" && \$3 + 0 > min { f = 1 } END { exit !f }' '$D/watch4.log'" "$D/s2/serve.log"
kill -KILL "${SERVE_PIDS[1]}"
wait "$PULL_A" 2>/dev/null || true
wait "$PULL_B" || fail "after its peer died: $(pull_failed v4 2)"
watch_stop
wan=$(( $(wan_bytes) - before ))
identical "$D/pull-v4-s2" v4 || fail "the site/app:v4 pulled through s2's proxy after its peer died differs"
grep -q "peer transfer cut" "$D/s2/serve.log" || fail "s2 did not notice its peer died mid-blob: $(tail -n 3 "$D/s2/serve.log" | tr '\n' ' ')"
log "s1 killed while s2 followed it: s2 continued from the upstream, WAN $(ratio $wan $V4_BYTES) x site/app:v4 in total"
(( wan * 100 <= V4_BYTES * 120 )) || fail "after its peer died s2 did not continue at the same offset: WAN $(ratio $wan $V4_BYTES) x the image"
start_serve 1 "$D"
nsx "$NS_UP" tc qdisc change dev up0 root tbf rate 8mbps burst 256kb latency 500ms

# ---- 5. a lying peer: s1's copy of the big v1 layer is corrupted
big=$(ls -S "$E2E_TMP/img-v1/blobs/sha256" | head -n 1)
blob="$D/s1/store/blobs/sha256/${big:0:2}/$big"
chmod u+w "$blob" 2>/dev/null || true
printf 'LIES' | dd of="$blob" bs=1 seek=1000 conv=notrunc status=none
stop_serve 2; rm -rf "$D/s2/store"; : > "$D/s2/serve.log"
s2_config
start_serve 2 "$D"
before=$(wan_bytes)
pull 2 v1 "$D/pull4" || fail "skopeo pull of site/app:v1 through s2's proxy with a lying peer failed: $(tail -n 3 "$D/pull4.err" | tr '\n' ' ')"
wan=$(( $(wan_bytes) - before ))
identical "$D/pull4" v1 || fail "skopeo got other bytes than site/app:v1 through s2's proxy with a lying peer"
grep -q "does not match its digest" "$D/s2/serve.log" || fail "the lie was not caught: $(tail -n 5 "$D/s2/serve.log" | tr '\n' ' ')"
liars=$(metric 2 satellite_proxy_peer_liars_total)
(( liars >= 1 )) || fail "satellite_proxy_peer_liars_total is ${liars:-missing}"
big_size=$(stat -c %s "$E2E_TMP/img-v1/blobs/sha256/$big")
(( wan >= big_size )) || fail "the corrupted layer was not fetched again from the upstream (WAN $wan < $big_size)"
log "lying peer caught; its layer ($big_size bytes) came from the upstream (WAN $wan bytes), skopeo got site/app:v1 intact"
log "PASS"
