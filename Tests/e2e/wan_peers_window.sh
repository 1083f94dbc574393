#!/usr/bin/env bash
# wan_peers_window.sh BIN
# Peers keep a satellite current outside its sync window (issue 16): network namespaces as
# in wan_peers.sh, two satellites on the site LAN, the upstream behind a tbf link whose
# bytes tc counts.
#   1. s1 (no window) syncs site/app:v1 from the upstream.
#   2. s2, whose only window is hours away (TZ=UTC), syncs site/app:v1: the tag resolves
#      through s1's peer endpoint (a tag s1's sync manages), the manifest and every blob
#      come from s1, verified by digest; the WAN carries 0 bytes and the sync exits 0.
#   3. s2 asks for site/app:v2, in the upstream but synced by no peer: the pass pauses
#      (exit 75, "outside the sync window"), still 0 WAN bytes.
#   4. the peer endpoint's tag route: no proof -> 401, a tag no sync manages -> 404.
#   5. `run` (fresh store, window closed) runs its pass through the peer anyway: it holds
#      site/app:v1 within seconds, 0 WAN bytes.
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
# The WAN counter must see only what the upstream sends: no IPv6 router solicitations.
nsx "$NS_UP" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 2>/dev/null || true
# "0 WAN bytes": no HTTP exchange with the upstream. tc counts every frame the upstream
# sends; a stray ARP or neighbour packet (42-90 bytes) is not traffic of ours, while any
# HTTP exchange (handshake and response) is several hundred bytes.
NOISE=256
for n in 1 2; do site_satellite "$n"; done
start_upstream "$D/upstream"
push_image 2 1 v2
V2_BYTES=$IMAGE_BYTES
push_image 12 2 v1
log "image: $IMAGE_BYTES bytes in 2 layers"

# A window that is closed now: two hours from now, one hour long (UTC).
h=$(date -u +%-H)
closed_window=$(printf '%02d:00-%02d:00' $(( (h + 2) % 24 )) $(( (h + 3) % 24 )))
peer_of() { echo "{ \"urls\": [\"http://$(sat_ip "$2"):5000\"], \"secretFile\": \"$D/site.secret\", \"advertise\": \"http://$(sat_ip "$1"):5000\" }"; }
sat_config 1 "$D" v1 "$(peer_of 1 2)"
sat_config 2 "$D" v1 "$(peer_of 2 1)"
jq --arg w "$closed_window" '.sync.windows = [$w]' "$D/s2/config.json" > "$D/s2/config.tmp" && mv "$D/s2/config.tmp" "$D/s2/config.json"
for n in 1 2; do start_serve "$n" "$D"; done

# ---- 1. s1 syncs in its (unrestricted) window
start_sync 1 "$D"
wait "${SYNC_PIDS[1]}" || fail "sync of s1 failed: $(tail -n 5 "$D/s1/sync.log" | tr '\n' ' ' | cut -c1-600)"
store_verified "$D" 1 v1 || fail "s1 does not hold site/app:v1 verified"

# ---- 2. s2 outside its window: everything from s1, nothing on the WAN
before=$(wan_bytes)
start=$(date +%s.%N)
start_sync 2 "$D"
wait "${SYNC_PIDS[2]}" || fail "sync of s2 outside its window failed: $(tail -n 5 "$D/s2/sync.log" | tr '\n' ' ' | cut -c1-600)"
wan=$(( $(wan_bytes) - before ))
store_verified "$D" 2 v1 || fail "s2 does not hold site/app:v1 verified after its sync outside the window"
(( wan < NOISE )) || fail "s2 outside its window ($closed_window) moved $wan bytes on the WAN"
grep -q "tag resolved by the peers" "$D/s2/sync.log" || fail "s2 did not resolve the tag through its peer: $(tail -n 5 "$D/s2/sync.log" | tr '\n' ' ')"
log "outside the window ($closed_window): s2 took site/app:v1 from s1 in $(since "$start")s, WAN $wan bytes"

# ---- 3. a tag no peer's sync holds: the pass pauses, no WAN byte
sat_config 2 "$D" v2 "$(peer_of 2 1)"
jq --arg w "$closed_window" '.sync.windows = [$w]' "$D/s2/config.json" > "$D/s2/config.tmp" && mv "$D/s2/config.tmp" "$D/s2/config.json"
before=$(wan_bytes)
set +e
nsx "${NS_SATS[2]}" "$BIN" sync --config "$D/s2/config.json" >"$D/s2/sync-v2.log" 2>&1
rc=$?
set -e
wan=$(( $(wan_bytes) - before ))
[[ $rc == 75 ]] || fail "s2 syncing a tag no peer holds outside its window: exit $rc, want 75: $(tail -n 3 "$D/s2/sync-v2.log" | tr '\n' ' ')"
grep -q "outside the sync window" "$D/s2/sync-v2.log" || fail "no 'outside the sync window' in: $(tail -n 3 "$D/s2/sync-v2.log" | tr '\n' ' ')"
(( wan < NOISE )) || fail "a paused pass moved $wan bytes on the WAN"
log "site/app:v2 ($V2_BYTES bytes) held by no peer: paused until the window, WAN 0 bytes"

# ---- 4. the tag route asks for proofs and answers only sync-managed tags
proof() {  # proof METHOD PATH
    python3 - "$D/site.secret" "$1" "$2" <<'PY'
import hmac, hashlib, os, sys, time
secret = open(sys.argv[1], "rb").read().strip()
ts, nonce = int(time.time()), os.urandom(8).hex()
mac = hmac.new(secret, ("%s %s %d %s" % (sys.argv[2], sys.argv[3], ts, nonce)).encode(), hashlib.sha256).hexdigest()
print("SatellitePeer ts=%d,nonce=%s,mac=%s" % (ts, nonce, mac))
PY
}
tpath=/peer/v1/tags/site/app/v1
code=$(nsx "${NS_SATS[2]}" curl -s -o /dev/null -w '%{http_code}' "http://$(sat_ip 1):5000$tpath")
[[ $code == 401 ]] || fail "tag route without a proof: HTTP $code"
digest=$(nsx "${NS_SATS[2]}" curl -sf -H "Authorization: $(proof GET "$tpath")" "http://$(sat_ip 1):5000$tpath" | jq -r .digest) \
    || fail "tag route refused a valid proof"
[[ $digest == sha256:* ]] || fail "tag route answered no digest: $digest"
code=$(nsx "${NS_SATS[2]}" curl -s -o /dev/null -w '%{http_code}' -H "Authorization: $(proof GET /peer/v1/tags/site/app/v2)" \
    "http://$(sat_ip 1):5000/peer/v1/tags/site/app/v2")
[[ $code == 404 ]] || fail "tag route for a tag s1's sync does not hold: HTTP $code"

# ---- 5. `run` outside its window: one pass through the peer
stop_serve 2
rm -rf "$D/s2/store"
sat_config 2 "$D" v1 "$(peer_of 2 1)"
jq --arg w "$closed_window" '.sync.windows = [$w] | .state.interval = "1h"' "$D/s2/config.json" > "$D/s2/config.tmp" && mv "$D/s2/config.tmp" "$D/s2/config.json"
before=$(wan_bytes)
ip netns exec "${NS_SATS[2]}" "$BIN" run --config "$D/s2/config.json" >"$D/s2/run.log" 2>&1 &
RUN_PID=$!
on_exit "kill_wait $RUN_PID"
wait_until 30 "run of s2 holds site/app:v1" 'store_verified "$D" 2 v1' "$D/s2/run.log"
wan=$(( $(wan_bytes) - before ))
(( wan < NOISE )) || fail "run outside its window moved $wan bytes on the WAN"
log "run outside the window: site/app:v1 from the peer, WAN 0 bytes"
log "PASS"
