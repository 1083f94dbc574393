#!/usr/bin/env bash
# wan_peers.sh BIN
# LAN peers (issue 16) in network namespaces: a site LAN (bridge) with three satellites,
# the upstream docker-registry behind a rate-limited link (tc tbf) whose bytes tc counts.
#   1. three satellites sync the same 40 MB image at the same moment (peers.urls): the WAN
#      carries it once (<= 1.05 x image), all three hold it verified.
#   2. discovery: no peers.urls, peers.discover: two fresh satellites find the one holding
#      the image and take it over the LAN (WAN < 10 % of the image); an announcement with
#      a wrong secret is ignored.
#   3. a satellite killed in the middle of a shared sync: the other two complete.
#   4. a peer serving a corrupted blob: caught, the blob fetched elsewhere, the image verified.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_netns.sh"

e2e_binary "${1:-}"
need_tools docker-registry skopeo python3 curl ip tc
MB=${WAN_PEERS_MB:-40}
RATE=${WAN_PEERS_RATE:-8mbps}
D=$E2E_TMP/site
mkdir -p "$D"
head -c 32 /dev/urandom | base64 > "$D/site.secret"

site_up "$RATE"
for n in 1 2 3; do site_satellite "$n"; done
start_upstream "$D/upstream"
push_image "$MB" 4 v1
log "image: $IMAGE_BYTES bytes in 4 layers; WAN at $RATE"


# ---- 1. three at once
for n in 1 2 3; do sat_config "$n" "$D" v1 "$(peers_json "$n" "$D/site.secret")"; start_serve "$n" "$D"; done
before=$(wan_bytes); before_packets=$(wan_packets)
start=$(date +%s.%N)
for n in 1 2 3; do start_sync "$n" "$D"; done
for n in 1 2 3; do wait "${SYNC_PIDS[$n]}" || fail "sync of s$n failed: $(tail -n 5 "$D/s$n/sync.log" | tr '\n' ' ' | cut -c1-600)"; done
elapsed=$(since $start)
wan=$(( $(wan_bytes) - before ))
payload=$(( wan - ($(wan_packets) - before_packets) * WAN_HEADER_BYTES ))
ratio=$(ratio $wan $IMAGE_BYTES)
payload_ratio=$(ratio $payload $IMAGE_BYTES)
log "three at once: WAN $wan bytes on the wire = ${ratio} x image (payload ~${payload_ratio} x), all done in ${elapsed}s"
for n in 1 2 3; do store_verified "$D" "$n" v1 || fail "s$n does not hold site/app:v1 verified"; done
(( payload * 100 <= IMAGE_BYTES * 105 )) || fail "WAN carried ~$payload payload bytes for a $IMAGE_BYTES-byte image (${payload_ratio} x > 1.05 x)"
(( wan * 100 <= IMAGE_BYTES * 110 )) || fail "WAN carried $wan wire bytes for a $IMAGE_BYTES-byte image (${ratio} x > 1.10 x)"

# The peer endpoint answers only proofs of the site secret (HMAC, once, fresh).
proof() {  # proof SECRET_FILE METHOD PATH
    python3 - "$1" "$2" "$3" <<'PY'
import hmac, hashlib, os, sys, time
secret = open(sys.argv[1], "rb").read().strip()
ts, nonce = int(time.time()), os.urandom(8).hex()
mac = hmac.new(secret, ("%s %s %d %s" % (sys.argv[2], sys.argv[3], ts, nonce)).encode(), hashlib.sha256).hexdigest()
print("SatellitePeer ts=%d,nonce=%s,mac=%s" % (ts, nonce, mac))
PY
}
layer=$(ls -S "$E2E_TMP/img-v1/blobs/sha256" | head -n 1)
ppath="/peer/v1/blobs/sha256:$layer"
purl="http://$(sat_ip 1):5000$ppath"
code=$(nsx "${NS_SATS[2]}" curl -s -o "$D/peer.json" -w '%{http_code}' "$purl")
[[ $code == 401 ]] && grep -q '"UNAUTHORIZED"' "$D/peer.json" || fail "peer endpoint without a proof: HTTP $code $(head -c 200 "$D/peer.json")"
printf 'another site\n' > "$D/wrong.secret"
code=$(nsx "${NS_SATS[2]}" curl -s -o /dev/null -w '%{http_code}' -H "Authorization: $(proof "$D/wrong.secret" GET "$ppath")" "$purl")
[[ $code == 401 ]] || fail "peer endpoint with another site's secret: HTTP $code"
auth=$(proof "$D/site.secret" GET "$ppath")
got=$(nsx "${NS_SATS[2]}" curl -sf -H "Authorization: $auth" "$purl" | sha256sum | cut -c1-64) || fail "peer endpoint refused a valid proof"
[[ $got == "$layer" ]] || fail "peer endpoint served other bytes for $layer"
code=$(nsx "${NS_SATS[2]}" curl -s -o /dev/null -w '%{http_code}' -H "Authorization: $auth" "$purl")
[[ $code == 401 ]] || fail "a replayed peer proof was accepted (HTTP $code)"

# ---- 2. discovery (no urls), a rogue announcement ignored
for n in 1 2 3; do stop_serve "$n"; done
rm -rf "$D/s2/store" "$D/s3/store"
for n in 1 2 3; do
    sat_config "$n" "$D" v1 "{ \"discover\": true, \"secretFile\": \"$D/site.secret\", \"advertise\": \"http://$(sat_ip "$n"):5000\", \"discoveryAddress\": \"$LAN_PREFIX.255\" }"
    : > "$D/s$n/serve.log"; : > "$D/s$n/sync.log"
    start_serve "$n" "$D"
done
# A stranger on the LAN announces itself with another secret, over and over.
ip netns exec "${NS_SATS[1]}" python3 - "$LAN_PREFIX.255" <<'PY' &
import hmac, hashlib, os, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
for _ in range(40):
    body = "SATPEER1 rogue http://10.99.0.99:5000 %d %s" % (int(time.time()), os.urandom(8).hex())
    mac = hmac.new(b"not-the-site-secret-at-all", body.encode(), hashlib.sha256).hexdigest()
    try:
        s.sendto(("%s %s" % (body, mac)).encode(), (sys.argv[1], 47823))
    except OSError:
        break
    time.sleep(0.5)
PY
ROGUE=$!
on_exit "kill $ROGUE"
before=$(wan_bytes)
start_sync 2 "$D"; start_sync 3 "$D"
for n in 2 3; do wait "${SYNC_PIDS[$n]}" || fail "sync of s$n (discovery) failed: $(tail -n 5 "$D/s$n/sync.log" | tr '\n' ' ' | cut -c1-600)"; done
wan=$(( $(wan_bytes) - before ))
for n in 2 3; do store_verified "$D" "$n" v1 || fail "s$n does not hold site/app:v1 after discovery"; done
grep -q "peer discovered" "$D/s2/sync.log" || fail "s2 discovered no peer: $(tail -n 5 "$D/s2/sync.log" | tr '\n' ' ')"
if grep -q "10.99.0.99" "$D"/s*/sync.log "$D"/s*/serve.log; then fail "an announcement without the site secret was accepted"; fi
grep -q "ignored a peer announcement without a valid proof" "$D/s2/sync.log" "$D/s2/serve.log" \
    || fail "the stranger's announcements were not seen (and ignored) by s2"
metrics=$(nsx "${NS_SATS[2]}" curl -sf "http://$(sat_ip 2):5000/metrics") || fail "s2 /metrics did not answer"
grep -qx 'satellite_peers_known 2' <<<"$metrics" || fail "s2's serve does not know exactly its two peers: $(grep satellite_peers <<<"$metrics" | tr '\n' ' ')"
served=$(awk '/^satellite_peer_served_bytes_total / { print $2 }' <<<"$(nsx "${NS_SATS[1]}" curl -sf "http://$(sat_ip 1):5000/metrics")")
(( served > 0 )) || fail "s1's peer endpoint counted no bytes served to peers"
log "discovery: WAN $wan bytes for two satellites ($(( wan * 100 / IMAGE_BYTES )) % of the image)"
(( wan * 10 < IMAGE_BYTES )) || fail "discovered peers were not used: WAN carried $wan bytes"
kill "$ROGUE" 2>/dev/null || true

# ---- 3. a satellite killed mid-transfer
for n in 1 2 3; do stop_serve "$n"; rm -rf "$D/s$n/store"; sat_config "$n" "$D" v1 "$(peers_json "$n" "$D/site.secret")"; : > "$D/s$n/sync.log"; start_serve "$n" "$D"; done
before=$(wan_bytes)
for n in 1 2 3; do start_sync "$n" "$D"; done
# Kill satellite 1 (its sync and its peer endpoint) once a third of the image crossed the WAN.
wait_until 60 "a third of the image on the WAN" "(( \$(wan_bytes) - before > IMAGE_BYTES / 3 ))"
kill -KILL "${SYNC_PIDS[1]}" "${SERVE_PIDS[1]}"
for n in 2 3; do wait "${SYNC_PIDS[$n]}" || fail "sync of s$n failed after s1 died: $(tail -n 5 "$D/s$n/sync.log" | tr '\n' ' ' | cut -c1-600)"; done
wan=$(( $(wan_bytes) - before ))
ratio=$(ratio $wan $IMAGE_BYTES)
for n in 2 3; do store_verified "$D" "$n" v1 || fail "s$n does not hold site/app:v1 after s1 died"; done
log "peer killed mid-transfer: s2 and s3 complete; WAN ${ratio} x image"
(( wan * 100 <= IMAGE_BYTES * 150 )) || fail "after the kill the WAN carried ${ratio} x the image"

# ---- 4. a lying peer: s3 serves a corrupted layer; s2 is unreachable (its link is down:
# connects time out), so s1 (fresh) has only the liar and the upstream.
nsx "${NS_SATS[2]}" ip link set eth0 down
big=$(ls -S "$E2E_TMP/img-v1/blobs/sha256" | head -n 1)
blob="$D/s3/store/blobs/sha256/${big:0:2}/$big"
chmod u+w "$blob" 2>/dev/null || true
printf 'LIES' | dd of="$blob" bs=1 seek=1000 conv=notrunc status=none
rm -rf "$D/s1/store"; : > "$D/s1/sync.log"
start_serve 1 "$D"
before=$(wan_bytes)
start_sync 1 "$D"
wait "${SYNC_PIDS[1]}" || fail "sync of s1 failed with a lying peer: $(tail -n 5 "$D/s1/sync.log" | tr '\n' ' ' | cut -c1-600)"
wan=$(( $(wan_bytes) - before ))
store_verified "$D" 1 v1 || fail "s1 does not hold site/app:v1 verified after the lying peer"
grep -q "does not match its digest" "$D/s1/sync.log" || fail "the lie was not caught: $(tail -n 5 "$D/s1/sync.log" | tr '\n' ' ')"
big_size=$(stat -c %s "$E2E_TMP/img-v1/blobs/sha256/$big")
(( wan >= big_size )) || fail "the corrupted blob was not fetched again from the upstream (WAN $wan < $big_size)"
# The dead peer cost one short connect timeout for the pass (concurrent probes at most
# share it), not one per blob.
seconds=$(grep "does not answer" "$D/s1/sync.log" | grep "$(sat_ip 2)" | awk '{ print $1 }' | sort -u | wc -l)
(( seconds >= 1 && seconds <= 2 )) || fail "the unreachable peer was probed in $seconds different seconds (expected one timeout)"
log "lying peer caught; the blob ($big_size bytes) came from the upstream, the rest from the LAN (WAN $wan bytes)"
log "PASS"
