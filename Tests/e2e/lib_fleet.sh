# Tests/e2e/lib_fleet.sh: ground-control with a central docker-registry that takes its tokens,
# for the fleet scripts. Sourced after lib.sh; needs GC (the ground-control binary), T and
# ADMIN_PW.
#   fleet_up [JQ]   writes $T/gc/config.json (SQLite, heartbeatInterval 2s, registry kind
#                   distribution, then the jq filter JQ applied), starts ground-control once
#                   so it creates its token certificate, starts docker-registry trusting it and
#                   restarts ground-control with the registry's address. Sets REG.
#   start_gc, stop_gc               ground-control on GC_URL (GC_PID), log in $T/gc/gc.log
#   push SRC REPO:TAG               the admin pushes through ground-control's token endpoint
#   remote_digest REPO:TAG          digest of what the registry holds
#   api METHOD PATH [JSON]          admin API call; prints the body; fails on a non-2xx status
#   art REPO TAG DIGEST             one group-state artifact entry
#   group_sync ARTIFACT_JSON...     sets group site-a's images

GC_PORT=$(free_port)
GC_URL="http://127.0.0.1:$GC_PORT"
GC_PID=
start_gc() {
    GC_ADMIN_PASSWORD=$ADMIN_PW "$GC" serve --config "$T/gc/config.json" >>"$T/gc/gc.log" 2>&1 &
    GC_PID=$!
    WAIT_HTTP_PID=$GC_PID WAIT_HTTP_LOG="$T/gc/gc.log" wait_http "$GC_URL/ping" 60
}
stop_gc() { [[ -n "$GC_PID" ]] && kill_wait "$GC_PID"; GC_PID=; }
on_exit 'stop_gc'

fleet_up() {
    local extra=${1:-.}
    mkdir -p "$T/gc"
    _fleet_gc_config() { # REGISTRY_URL
        jq -n --arg listen "127.0.0.1:$GC_PORT" --arg db "sqlite://$T/gc/gc.sqlite" --arg reg "$1" --arg data "$T/gc" \
            '{listen:$listen, database:$db, dataDirectory:$data, heartbeatInterval:"2s",
              registry:{url:$reg, kind:"distribution"}} | '"$extra" > "$T/gc/config.json" \
            || fail "cannot write ground-control's config (jq filter: $extra)"
    }
    _fleet_gc_config "http://127.0.0.1:9"
    start_gc
    [[ -s "$T/gc/token-signing.crt" ]] || fail "ground-control did not create its token certificate $T/gc/token-signing.crt"
    stop_gc
    start_docker_registry "$T/reg" "auth:
  token:
    realm: $GC_URL/auth/token
    service: central-registry
    issuer: ground-control
    rootcertbundle: $T/gc/token-signing.crt"
    REG=$DOCKER_REGISTRY_ADDR
    _fleet_gc_config "http://$REG"
    start_gc
}

push() {
    local out
    out=$(e2e_skopeo copy -q --all --preserve-digests --dest-tls-verify=false \
        --dest-creds "admin:$ADMIN_PW" "$1" "docker://$REG/$2" 2>&1) \
        || fail "push of $1 to $2 failed: $(tail -n 2 <<<"$out" | tr '\n' ' ')"
}
remote_digest() {
    e2e_skopeo inspect --tls-verify=false --creds "admin:$ADMIN_PW" --raw "docker://$REG/$1" | sha256sum | sed 's/^/sha256:/; s/ .*//'
}
api() {
    local code
    code=$(curl -s -o "$T/api.out" -w '%{http_code}' -u "admin:$ADMIN_PW" -X "$1" \
        -H 'Content-Type: application/json' ${3:+--data "$3"} "$GC_URL$2") || true
    [[ "$code" == 2* ]] || fail "$1 $2 answered ${code:-nothing}: $(head -c 300 "$T/api.out")"
    cat "$T/api.out"
}
art() { jq -cn --arg r "$1" --arg t "$2" --arg d "$3" '{repository:$r, tag:[$t], digest:$d, type:"IMAGE", deleted:false}'; }
group_sync() {
    api POST /api/groups/sync "$(printf '%s\n' "$@" | jq -cs --arg reg "http://$REG" '{group:"site-a", registry:$reg, artifacts:.}')" >/dev/null
}
