# shellcheck shell=bash
# A site in network namespaces, for the peer scripts (wan_peers.sh, bench/wan.sh).
# Source after lib.sh. Topology (every name carries a random suffix, so parallel runs
# never collide; everything is removed at exit):
#   ns up    10.78.R.2   docker-registry (the central registry), behind a tbf on its
#                        link: the WAN, whose bytes `tc -s` counts (egress of up0)
#   ns gw    10.78.R.1 / 10.77.R.1  the site's router, holds the LAN bridge
#   ns sN    10.77.R.(10+N)         satellite N on the bridge (the site LAN)
# The host's default namespace is never touched.

NS_SUFFIX=$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')
NS_OCTET=$(( (0x${NS_SUFFIX:0:2} % 200) + 20 ))
NS_UP="spl-up-$NS_SUFFIX"
NS_GW="spl-gw-$NS_SUFFIX"
UP_IP="10.78.$NS_OCTET.2"
LAN_PREFIX="10.77.$NS_OCTET"
NS_SATS=()

# ratio A B: A / B with three decimals; since T0: seconds since T0 (date +%s.%N).
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
since() { awk -v t0="$1" -v t1="$(date +%s.%N)" 'BEGIN { printf "%.2f", t1 - t0 }'; }

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# site_up RATE: the router, the upstream namespace and its rate-limited link (RATE for tc,
# e.g. 4mbps = 4 MB/s).
site_up() {
    local rate=$1
    ip netns add "$NS_GW" || fail "cannot create network namespaces (need root and ip netns)"
    on_exit "ip netns del $NS_GW"
    ip netns add "$NS_UP"
    on_exit "ip netns del $NS_UP"
    nsx "$NS_GW" ip link set lo up
    nsx "$NS_UP" ip link set lo up
    ip link add "up0-$NS_SUFFIX" netns "$NS_UP" type veth peer name "wan-$NS_SUFFIX" netns "$NS_GW"
    nsx "$NS_UP" ip link set "up0-$NS_SUFFIX" name up0
    nsx "$NS_GW" ip link set "wan-$NS_SUFFIX" name wan0
    nsx "$NS_UP" ip addr add "$UP_IP/24" dev up0
    nsx "$NS_GW" ip addr add "10.78.$NS_OCTET.1/24" dev wan0
    nsx "$NS_UP" ip link set up0 up
    nsx "$NS_GW" ip link set wan0 up
    nsx "$NS_UP" ip route add "$LAN_PREFIX.0/24" via "10.78.$NS_OCTET.1"
    nsx "$NS_GW" ip link add br0 type bridge
    nsx "$NS_GW" ip addr add "$LAN_PREFIX.1/24" dev br0
    nsx "$NS_GW" ip link set br0 up
    nsx "$NS_GW" sysctl -qw net.ipv4.ip_forward=1
    # The WAN: everything the upstream sends goes through one token bucket.
    nsx "$NS_UP" tc qdisc add dev up0 root tbf rate "$rate" burst 256kb latency 500ms
}

# site_satellite N: namespace sN on the LAN bridge.
site_satellite() {
    local n=$1 ns="spl-s$1-$NS_SUFFIX"
    ip netns add "$ns"
    on_exit "ip netns del $ns"
    NS_SATS[$n]=$ns
    nsx "$ns" ip link set lo up
    ip link add "lan$n-$NS_SUFFIX" netns "$ns" type veth peer name "p$n-$NS_SUFFIX" netns "$NS_GW"
    nsx "$ns" ip link set "lan$n-$NS_SUFFIX" name eth0
    nsx "$ns" ip addr add "$LAN_PREFIX.$((10 + n))/24" dev eth0
    nsx "$ns" ip link set eth0 up
    nsx "$ns" ip route add default via "$LAN_PREFIX.1"
    nsx "$NS_GW" ip link set "p$n-$NS_SUFFIX" master br0
    nsx "$NS_GW" ip link set "p$n-$NS_SUFFIX" up
}

sat_ip() { echo "$LAN_PREFIX.$((10 + $1))"; }

# wan_bytes: bytes the upstream has sent over the WAN link so far.
wan_bytes() {
    nsx "$NS_UP" tc -s qdisc show dev up0 | awk '/Sent/ { print $2; exit }'
}

# wan_packets: packets the upstream has sent over the WAN link so far.
wan_packets() {
    nsx "$NS_UP" tc -s qdisc show dev up0 | awk '/Sent/ { print $4; exit }'
}

# WAN_HEADER_BYTES: per-packet bytes on the wire that are not HTTP (Ethernet 14, IPv4 20,
# TCP with timestamps 32): wire bytes - packets x this = the payload estimate.
WAN_HEADER_BYTES=66

# start_upstream DIR: docker-registry in the upstream namespace on $UP_IP:5000.
start_upstream() {
    local dir=$1
    mkdir -p "$dir/storage"
    cat > "$dir/config.yml" <<YAML
version: 0.1
log: { level: warn, accesslog: { disabled: true } }
storage: { filesystem: { rootdirectory: $dir/storage }, delete: { enabled: true } }
http: { addr: "$UP_IP:5000" }
YAML
    env -u REGISTRY_AUTH_FILE ip netns exec "$NS_UP" /usr/bin/docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
    UPSTREAM_PID=$!
    on_exit "kill_wait $UPSTREAM_PID"
    local i
    for (( i=0; i<100; i++ )); do
        nsx "$NS_UP" curl -s -o /dev/null --max-time 1 "http://$UP_IP:5000/v2/" && return 0
        sleep 0.2
    done
    fail "docker-registry did not start in $NS_UP: $(tail -n 3 "$dir/registry.log" | tr '\n' ' ')"
}

# push_image SIZE_MB LAYERS TAG: an image of SIZE_MB MB of random layers into the upstream.
push_image() {
    local mb=$1 layers=$2 tag=$3
    python3 "$E2E_DIR/mkimage.py" single --layers "$layers" --size $(( mb * 1048576 / layers )) --seed "$tag" \
        "oci:$E2E_TMP/img-$tag:$tag" >/dev/null || fail "mkimage.py failed"
    nsx "$NS_UP" timeout 120 skopeo --policy "$E2E_CONF/policy.json" copy -q --dest-tls-verify=false \
        "oci:$E2E_TMP/img-$tag:$tag" "docker://$UP_IP:5000/site/app:$tag" || fail "skopeo push failed"
    IMAGE_BYTES=$(du -sb --apparent-size "$E2E_TMP/img-$tag/blobs" | awk '{print $1}')
}

# sat_config N DIR TAG PEERS_JSON: writes DIR/sN/config.json (peers object as given).
sat_config() {
    local n=$1 dir=$2 tag=$3 peers=$4
    mkdir -p "$dir/s$n"
    cat > "$dir/s$n/config.json" <<JSON
{
  "storage": { "path": "$dir/s$n/store" },
  "registry": { "listen": "$(sat_ip "$n"):5000" },
  "upstream": { "url": "http://$UP_IP:5000" },
  "state": { "images": ["site/app:$tag"] },
  "sync": { "timeout": "120s" },
  "peers": $peers
}
JSON
}

# peers_json N SECRET_FILE: the peers object of satellite N listing the other two.
peers_json() {
    local n=$1 m urls=()
    for m in 1 2 3; do [[ $m == "$n" ]] || urls+=("\"http://$(sat_ip "$m"):5000\""); done
    local IFS=,
    echo "{ \"urls\": [${urls[*]}], \"secretFile\": \"$2\", \"advertise\": \"http://$(sat_ip "$n"):5000\" }"
}

# start_serve N DIR: `satellite-lite serve` of satellite N (its peer endpoint).
declare -A SERVE_PIDS=()
start_serve() {
    local n=$1 dir=$2 i
    ip netns exec "${NS_SATS[$n]}" "$BIN" serve --config "$dir/s$n/config.json" >>"$dir/s$n/serve.log" 2>&1 &
    SERVE_PIDS[$n]=$!
    on_exit "kill_wait ${SERVE_PIDS[$n]}"
    for (( i=0; i<100; i++ )); do
        nsx "${NS_SATS[$n]}" curl -s -o /dev/null --max-time 1 "http://$(sat_ip "$n"):5000/v2/" && return 0
        kill -0 "${SERVE_PIDS[$n]}" 2>/dev/null || fail "serve of s$n exited: $(tail -n 3 "$dir/s$n/serve.log" | tr '\n' ' ')"
        sleep 0.2
    done
    fail "serve of s$n did not answer"
}

stop_serve() { kill_wait "${SERVE_PIDS[$1]}"; }

# start_sync N DIR: `satellite-lite sync` of satellite N in the background; SYNC_PIDS[N].
declare -A SYNC_PIDS=()
start_sync() {
    local n=$1 dir=$2
    ip netns exec "${NS_SATS[$n]}" "$BIN" sync --config "$dir/s$n/config.json" >>"$dir/s$n/sync.log" 2>&1 &
    SYNC_PIDS[$n]=$!
    on_exit "kill_wait ${SYNC_PIDS[$n]}"
}

# store_verified DIR N TAG: every blob of the image is in satellite N's store and hashes
# to its name, and N's registry answers the tag (serve must run).
store_verified() {
    local dir=$1 n=$2 tag=$3 store="$1/s$2/store" f name
    nsx "${NS_SATS[$n]}" curl -sf -o /dev/null --max-time 5 \
        -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        "http://$(sat_ip "$n"):5000/v2/site/app/manifests/$tag" || return 1
    for f in "$E2E_TMP/img-$tag/blobs/sha256/"*; do
        name=$(basename "$f")
        [[ -f "$store/blobs/sha256/${name:0:2}/$name" ]] || return 1
        [[ "$(sha256sum "$store/blobs/sha256/${name:0:2}/$name" | cut -c1-64)" == "$name" ]] || return 1
    done
}

# site_of_three DIR RATE MB LAYERS: the whole site in one call: a site secret in
# DIR/site.secret, the router and WAN at RATE (site_up), satellites 1-3, the upstream, and
# site/app:v1 of MB MB in LAYERS layers pushed to it (IMAGE_BYTES).
site_of_three() {
    local dir=$1 n
    mkdir -p "$dir"
    head -c 32 /dev/urandom | base64 > "$dir/site.secret"
    site_up "$2"
    for n in 1 2 3; do site_satellite "$n"; done
    start_upstream "$dir/upstream"
    push_image "$3" "$4" v1
}
