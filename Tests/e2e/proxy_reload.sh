#!/usr/bin/env bash
# proxy_reload.sh BIN
# The proxy settings of `satellite-lite run` and `serve` follow a SIGHUP, as the rest of the
# config, against Debian's docker-registry as the upstream (its access log shows what reached it):
#   0. `run` starts with proxy.enabled false: library/app is 404, the upstream not asked;
#      SIGHUP with the proxy enabled puts it to work without a restart (step 1 on);
#   1. library/app is outside proxy.allow: 404, and the upstream never hears of it;
#   2. proxy.allow widened + SIGHUP: the same pull is fetched through the proxy (manifest and
#      layer, verified), without a restart;
#   3. a mirror added + SIGHUP: a pull with containerd's ?ns= goes to the mirror;
#   4. sync.windows set + SIGHUP, the agent's clock (moved through its hidden offset file)
#      outside the window: an uncached manifest and blob are answered at once with 503
#      UNAVAILABLE and a Retry-After, nothing reaches the upstream; the cached image is
#      still served (with tagRecheck 0s: the recheck is deferred, the cached tag served);
#   5. proxy.enabled false + SIGHUP: an uncached tag is 404 and the upstream is not asked;
#      the cached image is still served;
#   6. a broken config + SIGHUP is refused and the proxy settings in effect stay;
#   7. `serve` (no sync) started with the proxy disabled: 404; SIGHUP enabling it: the same
#      pull is proxied (manifest and layer verified); SIGHUP disabling it: 404 again.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

e2e_binary "${1:-}"
need_tools docker-registry skopeo jq python3 curl sha256sum
T=$E2E_TMP
export E2E_CMD_TIMEOUT=${E2E_CMD_TIMEOUT:-60}
export TZ=UTC
export SATELLITE_LITE_CLOCK_OFFSET_FILE=$T/clock-offset

DOCKER_REGISTRY_ACCESSLOG=1 start_docker_registry "$T/up"
UP=$DOCKER_REGISTRY_ADDR
DOCKER_REGISTRY_ACCESSLOG=1 start_docker_registry "$T/mirror"
MIRROR=$DOCKER_REGISTRY_ADDR
push() { # REGISTRY NAME:TAG SEED -> manifest digest; image in $T/img-SEED
    local d
    d=$(python3 "$MKIMAGE" single --layers 1 --size 20000 --seed "$3" "oci:$T/img-$3:v1") || fail "mkimage.py failed"
    run_or_fail "push of $2" e2e_skopeo copy -q --preserve-digests --dest-tls-verify=false "oci:$T/img-$3:v1" "docker://$1/$2"
    echo "$d"
}
APP1=$(push "$UP" library/app:v1 21)
APP2=$(push "$UP" library/app:v2 22)
TOOL=$(push "$MIRROR" library/tool:v1 23)
LAYER=$(jq -r '.layers[0].digest' "$T/img-21/blobs/sha256/${APP1#sha256:}")
asked() { grep -cE "(GET|HEAD) /v2/library/$2/" "$T/$1/registry.log" 2>/dev/null || true; }

SAT=127.0.0.1:$(free_port)
CFG=$T/config.json STORE=$T/store
config() { # PROXY_JSON [SYNC_JSON]: $CFG for a satellite with its store at $STORE
    jq -n --arg s "$STORE" --arg l "$SAT" --arg u "http://$UP" --argjson p "$1" --argjson y "${2:-{\}}" \
        '{profile:"generic-amd64", storage:{path:$s}, registry:{listen:$l}, upstream:{url:$u}, state:{interval:"1h"}, proxy:$p, sync:$y}' > "$CFG.tmp"
    mv "$CFG.tmp" "$CFG"
}
start_satellite() { # COMMAND LOG: `satellite-lite COMMAND --config $CFG`, up and answering
    SAT_LOG=$2
    "$BIN" "$1" --config "$CFG" > "$SAT_LOG" 2>&1 &
    SAT_PID=$!
    on_exit "kill_wait $SAT_PID"
    WAIT_HTTP_PID=$SAT_PID WAIT_HTTP_LOG="$SAT_LOG" wait_http "http://$SAT/v2/" 20
    reloads=0
}
hup() { # SIGHUP, then wait until the log says the reload succeeded or failed
    reloads=$(( reloads + 1 ))
    kill -HUP "$SAT_PID"
    wait_until 20 "reload $reloads" "test \"\$(grep -c -e 'configuration reloaded' -e 'configuration reload failed' '$SAT_LOG')\" -ge $reloads" "$SAT_LOG"
}
config '{"enabled":false}'
start_satellite run "$T/sat.log"
ACCEPT='application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json'
get() { curl -s -o "$T/body" -w '%{http_code}' -H "Accept: $ACCEPT" "http://$SAT/v2/$1"; }

# 0. Disabled at start, then enabled by SIGHUP (no restart). (The pushes are in the access
#    logs too: count from here.)
pushed=$(asked up app)
code=$(get library/app/manifests/v1)
[[ "$code" == 404 ]] || fail "library/app:v1 with the proxy disabled at start answered $code, expected 404"
[[ "$(asked up app)" == "$pushed" ]] || fail "the upstream was asked with the proxy disabled at start"
config '{"enabled":true,"allow":["other/**"]}'
hup
grep -q 'pull-through proxy enabled' "$T/sat.log" || fail "enabling the proxy by SIGHUP did not take effect: $(tail -3 "$T/sat.log")"
! grep -q 'takes effect after a restart' "$T/sat.log" || fail "enabling the proxy by SIGHUP asked for a restart"
log "0. proxy disabled at start: 404, upstream not asked; SIGHUP enables it"

# 1. Outside proxy.allow.
code=$(get library/app/manifests/v1)
[[ "$code" == 404 ]] || fail "library/app:v1 outside proxy.allow answered $code, expected 404"
[[ "$(asked up app)" == "$pushed" ]] || fail "the upstream was asked for library/app outside proxy.allow"
log "1. outside proxy.allow: 404, upstream not asked"

# 2. Allow widened: proxied without a restart.
config '{"enabled":true,"allow":["library/**"]}'
hup
code=$(get library/app/manifests/v1)
[[ "$code" == 200 ]] || fail "library/app:v1 after widening proxy.allow answered $code: $(head -c 300 "$T/body")"
[[ "sha256:$(sha256sum < "$T/body" | cut -d' ' -f1)" == "$APP1" ]] || fail "the proxied manifest does not hash to $APP1"
code=$(get "library/app/blobs/$LAYER")
[[ "$code" == 200 && "sha256:$(sha256sum < "$T/body" | cut -d' ' -f1)" == "$LAYER" ]] || fail "the proxied layer answered $code or does not hash to $LAYER"
(( $(asked up app) > pushed )) || fail "the upstream's log shows no request for library/app"
log "2. proxy.allow widened + SIGHUP: library/app:v1 proxied (manifest and layer verified)"

# 3. A mirror added: ?ns= reaches it.
config "$(jq -cn --arg m "http://$MIRROR" '{enabled:true, allow:["library/**","mirror.example/**"], mirrors:[{registry:"mirror.example", url:$m}]}')"
hup
pushed=$(asked mirror tool)
code=$(get "library/tool/manifests/v1?ns=mirror.example")
[[ "$code" == 200 ]] || fail "library/tool:v1 from the added mirror answered $code: $(head -c 300 "$T/body")"
[[ "sha256:$(sha256sum < "$T/body" | cut -d' ' -f1)" == "$TOOL" ]] || fail "the mirror's manifest does not hash to $TOOL"
(( $(asked mirror tool) > pushed )) || fail "the mirror's log shows no request for library/tool"
[[ -d "$T/store/repositories/mirror.example/library/tool" ]] || fail "the mirror's content is not stored under mirror.example/"
log "3. mirror added + SIGHUP: ?ns=mirror.example pulled from it"

# 4. Outside the WAN window: misses fail at once with a clear error; the cache is served.
now=$(date +%s)
echo "$(( now - now % 86400 + 3600 - now ))" > "$SATELLITE_LITE_CLOCK_OFFSET_FILE" # 01:00 UTC today
config '{"enabled":true,"allow":["library/**"],"tagRecheck":"0s"}' '{"windows":["02:00-03:00"]}'
hup
sleep 1.2 # the clock's offset file is re-read at most once a second
before=$(asked up app)
APP2_LAYER=$(jq -r '.layers[0].digest' "$T/img-22/blobs/sha256/${APP2#sha256:}")
for path in library/app/manifests/v2 "library/app/blobs/$APP2_LAYER"; do
    read -r code took < <(curl -s -o "$T/body" -D "$T/headers" -w '%{http_code} %{time_total}\n' -H "Accept: $ACCEPT" --max-time 20 "http://$SAT/v2/$path")
    [[ "$code" == 503 ]] || fail "GET $path outside the window answered $code, expected 503: $(head -c 300 "$T/body")"
    jq -e '.errors[0].code == "UNAVAILABLE"' "$T/body" >/dev/null || fail "GET $path outside the window: no UNAVAILABLE error: $(head -c 300 "$T/body")"
    grep -qi '^retry-after: [0-9]' "$T/headers" || fail "GET $path outside the window: no Retry-After header"
    awk -v t="$took" 'BEGIN{exit !(t < 2)}' || fail "GET $path outside the window took ${took}s: not answered at once"
done
[[ "$(asked up app)" == "$before" ]] || fail "the upstream was asked outside the window"
code=$(get library/app/manifests/v1)
[[ "$code" == 200 && "sha256:$(sha256sum < "$T/body" | cut -d' ' -f1)" == "$APP1" ]] || fail "the cached library/app:v1 answered $code outside the window"
code=$(get "library/app/blobs/$LAYER")
[[ "$code" == 200 ]] || fail "the cached layer answered $code outside the window"
log "4. outside sync.windows: misses 503 UNAVAILABLE + Retry-After at once, upstream not asked; cached image served"
echo 0 > "$SATELLITE_LITE_CLOCK_OFFSET_FILE"

# 5. Proxy disabled: nothing new goes upstream; the cache is still served.
config '{"enabled":false}'
hup
before=$(asked up app)
code=$(get library/app/manifests/v2)
[[ "$code" == 404 ]] || fail "library/app:v2 with the proxy disabled answered $code, expected 404"
[[ "$(asked up app)" == "$before" ]] || fail "the upstream was asked with the proxy disabled"
code=$(get library/app/manifests/v1)
[[ "$code" == 200 ]] || fail "the cached library/app:v1 answered $code with the proxy disabled"
log "5. proxy.enabled false + SIGHUP: uncached 404 without asking upstream; cached still served"

# 6. A broken config is refused; the settings in effect stay (proxy still disabled).
printf '{"proxy": {"allow": [""]}' > "$CFG"
hup
grep -q 'configuration reload failed' "$T/sat.log" || fail "a broken config was not refused"
code=$(get library/app/manifests/v2)
[[ "$code" == 404 && "$(asked up app)" == "$before" ]] || fail "after a refused reload the proxy settings changed (HTTP $code)"
kill -0 "$SAT_PID" || fail "satellite-lite exited"
log "6. a broken config + SIGHUP is refused; the settings in effect stay"
kill_wait "$SAT_PID"

# 7. `serve`: disabled at start, enabled by SIGHUP, disabled again.
SAT=127.0.0.1:$(free_port)
CFG=$T/serve.json STORE=$T/serve-store
config '{"enabled":false}'
start_satellite serve "$T/serve.log"
before=$(asked up app)
code=$(get library/app/manifests/v2)
[[ "$code" == 404 && "$(asked up app)" == "$before" ]] || fail "serve with the proxy disabled answered $code or asked the upstream"
config '{"enabled":true,"allow":["library/**"]}'
hup
code=$(get library/app/manifests/v2)
[[ "$code" == 200 ]] || fail "serve after SIGHUP enabling the proxy answered $code: $(head -c 300 "$T/body")"
[[ "sha256:$(sha256sum < "$T/body" | cut -d' ' -f1)" == "$APP2" ]] || fail "serve's proxied manifest does not hash to $APP2"
code=$(get "library/app/blobs/$APP2_LAYER")
[[ "$code" == 200 && "sha256:$(sha256sum < "$T/body" | cut -d' ' -f1)" == "$APP2_LAYER" ]] || fail "serve's proxied layer answered $code or does not hash to $APP2_LAYER"
config '{"enabled":false}'
hup
before=$(asked up app)
code=$(get library/app/manifests/v1)
[[ "$code" == 404 && "$(asked up app)" == "$before" ]] || fail "serve after SIGHUP disabling the proxy answered $code or asked the upstream"
kill -0 "$SAT_PID" || fail "satellite-lite serve exited"
log "7. serve: proxy disabled at start (404), enabled by SIGHUP (library/app:v2 proxied, verified), disabled again (404)"
log "PASS"
