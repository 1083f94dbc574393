#!/usr/bin/env bash
# gc_openapi.sh BIN (the ground-control binary)
# Checks a running ground-control against its own OpenAPI document (served at /openapi.json,
# the same bytes as docs/ground-control.openapi.json) with schemathesis from PyPI, on SQLite
# and on PostgreSQL (a temporary cluster this script starts): every response must conform to
# the document (status code, content type, JSON schema, headers) and no request may get a
# 5xx; schema-violating bodies must be refused with a 4xx, undocumented methods with 405,
# requests without credentials with 401; deleted resources must be gone (stateful phase).
# Also with registry.kind = harbor, against harbor_standin.py (see gc_harbor.sh).
# Runs as the people and the satellites who use it: the admin API with a Bearer session, the satellite routes with a satellite's
# registry credential from ZTR, /auth/token with a user's Basic credentials. Logout, setting
# a password and the secret rotation end what they authenticate with: they run last.
# schemathesis goes into a venv in the cache dir ($GC_OPENAPI_VENV or
# ~/.cache/satellite-lite/schemathesis-VERSION), installed only when missing.
# Cost: 97 s wall at load average 13 on the shared 2-core machine, 51 s of CPU, with the
# venv present (max 8 examples per operation, fixed seed); the first install of the venv adds the pip
# download and install (20 s here, with pip's download cache warm).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

BIN=${1:-}
[[ -n "$BIN" && -x "$BIN" ]] || fail "usage: $0 /path/to/ground-control (got '${BIN:-}')"
need_tools python3 curl jq
T=$E2E_TMP
VERSION=4.32.5
VENV=${GC_OPENAPI_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/satellite-lite/schemathesis-$VERSION}
EXAMPLES=${GC_OPENAPI_EXAMPLES:-8}
SEED=${GC_OPENAPI_SEED:-20261205}

if ! "$VENV/bin/st" --version 2>/dev/null | grep -q "$VERSION"; then
    log "installing schemathesis $VERSION into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV" || fail "python3 -m venv failed (Debian: apt-get install python3-venv)"
    "$VENV/bin/pip" install -q "schemathesis==$VERSION" || fail "pip install schemathesis==$VERSION failed"
fi
ST=$VENV/bin/st

# st run with every check but positive_data_acceptance (valid by the schema is not always
# valid by the rules: a repository name, a member that must exist); $1 names the run, $2 the
# phases, the rest are st options.
st_run() {
    local name=$1 phases=$2 start=$SECONDS; shift 2
    # From $T: schemathesis keeps a .schemathesis cache in its working directory.
    if ! (cd "$T" && "$ST" run "$GC/openapi.json" --checks all --exclude-checks positive_data_acceptance \
        -n "$EXAMPLES" --seed "$SEED" --no-color --phases "$phases" --workers 1 --request-timeout 20 "$@") >"$T/st-$name.txt" 2>&1; then
        tail -n 80 "$T/st-$name.txt" >&2
        grep -v "state publishing failed" "$T/gc-$DB.log" | tail -n 20 >&2
        fail "schemathesis ($DB, $name) found responses that do not conform to the document, or 5xx"
    fi
    log "$DB $name: $(grep -E "generated" "$T/st-$name.txt" | tail -n 1 | sed 's/^ *//') ($((SECONDS - start)) s)"
}

run_against() {  # $1: sqlite|postgres|harbor (a name), $2: database URL, $3: the registry (JSON)
    DB=$1
    local registry=${3:-'{ "url": "http://127.0.0.1:9", "kind": "distribution" }'}
    local port; port=$(free_port)
    GC=http://127.0.0.1:$port
    mkdir -p "$T/$DB"
    cat >"$T/$DB/config.json" <<JSON
{ "listen": "127.0.0.1:$port", "database": "$2", "dataDirectory": "$T/$DB",
  "registry": $registry,
  "satelliteRequestsPerMinute": 1000000 }
JSON
    GC_ADMIN_PASSWORD=openapi-admin-pw "$BIN" serve --config "$T/$DB/config.json" >"$T/gc-$DB.log" 2>&1 &
    local pid=$!
    on_exit "kill_wait $pid"
    WAIT_HTTP_PID=$pid WAIT_HTTP_LOG="$T/gc-$DB.log" wait_http "$GC/ping" 30

    # The served document is the one in docs/.
    curl -sf "$GC/openapi.json" -o "$T/served.json" || fail "no /openapi.json"
    cmp -s "$T/served.json" "$E2E_DIR/../../docs/ground-control.openapi.json" \
        || fail "/openapi.json differs from docs/ground-control.openapi.json (rebuild ground-control)"

    login() { curl -sf -X POST -d '{"username":"admin","password":"openapi-admin-pw"}' "$GC/login" | jq -r .token; }
    local session; session=$(login)
    [[ ${#session} -ge 32 ]] || fail "login gave no session"
    local auth=(-H "Authorization: Bearer $session" -H "Content-Type: application/json")
    # Something to find: a group with an image, a config, a satellite onboarded by ZTR.
    curl -sf "${auth[@]}" -X POST "$GC/api/groups/sync" \
        -d '{"group":"ships","artifacts":[{"repository":"library/nginx","tag":["1.27"],"type":"IMAGE"}]}' >/dev/null
    curl -sf "${auth[@]}" -X POST "$GC/api/configs" -d '{"config_name":"edge","config":{"app_config":{}}}' >/dev/null
    local token; token=$(curl -sf "${auth[@]}" -X POST "$GC/api/satellites" \
        -d '{"name":"edge-01","groups":["ships"],"config_name":"edge"}' | jq -r .token)
    curl -sf -X POST -d "{\"token\":\"$token\"}" "$GC/satellites/ztr" >"$T/ztr.json" || fail "ZTR refused"
    local robot secret
    robot=$(jq -r .auth.username "$T/ztr.json"); secret=$(jq -r .auth.password "$T/ztr.json")
    curl -sf -u "$robot:$secret" -X POST "$GC/satellites/sync" \
        -d '{"name":"edge-01","cached_images":[{"reference":"library/nginx:1.27","size_bytes":1}]}' >/dev/null \
        || fail "heartbeat refused"

    # Random fuzzing and the stateful phase (create, read, delete chains) on SQLite; on
    # PostgreSQL the coverage phase (every boundary and invalid value of every parameter,
    # deterministic), where a dialect difference would show. Keeps the test near 60 s.
    local quick=examples,coverage,fuzzing admin=examples,coverage,fuzzing,stateful
    [[ $DB != sqlite ]] && quick=examples,coverage admin=examples,coverage
    st_run admin $admin -H "Authorization: Bearer $session" --exclude-tag satellite --exclude-tag registry --exclude-tag ui \
        --exclude-path /logout --exclude-path /api/logout --exclude-path '/api/users/{username}/password'
    st_run satellite $quick --auth "$robot:$secret" --include-tag satellite \
        --exclude-path /satellites/refresh --exclude-path /sat/refresh
    # /auth/token is served for registry.kind = distribution only.
    [[ $DB != harbor ]] && st_run registry $quick --auth admin:openapi-admin-pw --include-tag registry
    st_run refresh $quick --auth "$robot:$secret" --include-path /satellites/refresh --include-path /sat/refresh
    [[ $DB == harbor ]] || st_run logout $quick -H "Authorization: Bearer $(login)" --include-path /logout --include-path /api/logout \
        --include-path '/api/users/{username}/password'

    # The server is still healthy and its log holds no crash.
    curl -sf "$GC/health" >/dev/null || fail "ground-control unhealthy after the run"
    kill_wait "$pid"
    if grep -qiE "fatal error|panic|Segmentation" "$T/gc-$DB.log"; then fail "ground-control crashed ($DB)"; fi
}

log "SQLite"
run_against sqlite "sqlite://$T/sqlite/gc.sqlite"

if [[ "${GC_OPENAPI_SKIP_POSTGRES:-0}" != 1 ]]; then
    PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [[ -x "$PG_BIN/initdb" ]] || fail "PostgreSQL is not installed (apt-get install postgresql)"
    PG=$T/pg; PG_PORT=$(free_port)
    mkdir -p "$PG"
    as_pg=()
    if [[ $(id -u) == 0 ]]; then chown postgres:postgres "$PG"; chmod 755 "$T"; as_pg=(runuser -u postgres --); fi
    "${as_pg[@]}" "$PG_BIN/initdb" -D "$PG/data" -A trust -U postgres --no-sync >"$T/initdb.log" 2>&1 \
        || { cat "$T/initdb.log" >&2; fail "initdb failed"; }
    "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$PG/data" -l "$PG/log" -w \
        -o "-p $PG_PORT -k $PG -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null \
        || { cat "$PG/log" >&2; fail "PostgreSQL did not start"; }
    on_exit "${as_pg[*]} $PG_BIN/pg_ctl -D $PG/data -m immediate stop >/dev/null 2>&1"
    log "PostgreSQL (port $PG_PORT)"
    run_against postgres "postgres://postgres@127.0.0.1:$PG_PORT/postgres?sslmode=disable"
fi
# registry.kind = harbor (its own code paths: robots, 502 when Harbor refuses) against the
# Harbor stand-in of gc_harbor.sh, on SQLite, deterministic phases only.
log "registry.kind = harbor (harbor_standin.py)"
H_PORT=$(free_port)
python3 "$E2E_DIR/harbor_standin.py" --listen "127.0.0.1:$H_PORT" --admin admin:Harbor12345 \
    --upstream http://127.0.0.1:9 --log "$T/harbor-calls.jsonl" --project library >"$T/harbor.log" 2>&1 &
H_PID=$!
on_exit "kill_wait $H_PID"
WAIT_HTTP_PID=$H_PID WAIT_HTTP_LOG="$T/harbor.log" wait_http "http://127.0.0.1:$H_PORT/v2/" 20
printf 'Harbor12345\n' >"$T/harbor.password"
run_against harbor "sqlite://$T/harbor/gc.sqlite" \
    "{ \"url\": \"http://127.0.0.1:$H_PORT\", \"kind\": \"harbor\", \"username\": \"admin\", \"passwordFile\": \"$T/harbor.password\" }"

log "PASS: ground-control conforms to its OpenAPI document (no 5xx)"
