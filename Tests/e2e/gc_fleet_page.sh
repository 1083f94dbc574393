#!/usr/bin/env bash
# gc_fleet_page.sh SATELLITE_BIN GROUND_CONTROL_BIN
# ground-control's fleet page in a real headless browser, over a real fleet: ground-control
# (SQLite), Debian's docker-registry as the central registry with ground-control as its
# token issuer, and a running satellite-lite. Steps:
#  1. an operator creates group site-a (proj/app:v1), satellites edge-01 (joined by a real
#     satellite-lite) and edge-02 (never joins); edge-01 syncs and reports in sync;
#  2. the fleet page (headless Chromium via fleet_page_browser.py): /ui/ without a session
#     lands on the login form; a wrong password is refused on the form; signing in shows the
#     counters (2 satellites, 1 in sync, 1 never seen, 1 group), each satellite's state text,
#     the group's image; the overview is screenshot (a real PNG with content); edge-01's
#     detail page shows its heartbeats (state digest, storage), desired and reported images;
#     the session cookie is HttpOnly and SameSite=Strict; logout closes the page again;
#     edge-01 has sync.budget set: the API's `link` and the detail page show its WAN/LAN
#     bytes, window and budget left (checked in step 4);
#  3. a cross-site login form (foreign Origin, or no anti-forgery token) is refused (403)
#     and starts no session;
#  4. group change -> new state artifact -> drift visible until the satellite reports the
#     new digests: proj/web:v1 (not yet in the registry) added to site-a: the group state
#     artifact gets a new digest naming it, ground-control shows edge-01 drifting with
#     proj/web missing while heartbeats keep arriving (on the page too); once the image is
#     pushed, the satellite's next pass and heartbeat make it in sync;
#  5. removal from its last group: edge-01's own state artifact gets a new digest with no
#     group in it, the satellite applies it and reports that digest, nothing is desired.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

SAT=${1:-}
GC=${2:-}
[[ -n "$SAT" && -x "$SAT" ]] || fail "usage: $0 /path/to/satellite-lite /path/to/ground-control (got '${SAT:-}')"
[[ -n "$GC" && -x "$GC" ]] || fail "usage: $0 /path/to/satellite-lite /path/to/ground-control (got '${GC:-}')"
SAT=$(cd "$(dirname "$SAT")" && pwd)/$(basename "$SAT")
GC=$(cd "$(dirname "$GC")" && pwd)/$(basename "$GC")
for t in docker-registry skopeo jq python3 curl tar chromium chromedriver; do
    command -v "$t" >/dev/null || fail "$t is not installed"
done
# Debian's python3-selenium lives in the system interpreter, which a pyenv/venv python3
# on PATH may not see.
PY=
for p in python3 /usr/bin/python3; do
    if "$p" -c 'import selenium' 2>/dev/null; then PY=$p; break; fi
done
[[ -n "$PY" ]] || fail "python3-selenium is not installed"
T=$E2E_TMP
export E2E_CMD_TIMEOUT=${E2E_CMD_TIMEOUT:-60}
ADMIN_PW="admin-$RANDOM-$RANDOM-pw"

# ---------------------------------------------------------------- central registry + ground-control
. "$(dirname "$0")/lib_fleet.sh"
fleet_up

artifacts_json() { # REPO:TAG -> the state artifact's artifacts.json
    rm -rf "$T/art"
    e2e_skopeo copy -q --src-tls-verify=false --src-creds "admin:$ADMIN_PW" "docker://$REG/$1" "dir:$T/art" >/dev/null 2>&1 \
        || fail "cannot copy $1 from the registry"
    tar -xzf "$T/art/$(jq -r '.layers[0].digest' "$T/art/manifest.json" | cut -d: -f2)" -O artifacts.json
}
APP=$(python3 "$MKIMAGE" single --platform linux/amd64 --seed app "oci:$T/img/app:v1" --layers 2 --size 16384) || fail "mkimage failed"
WEB=$(python3 "$MKIMAGE" single --platform linux/amd64 --seed web "oci:$T/img/web:v1" --layers 1 --size 16384) || fail "mkimage failed"
push "oci:$T/img/app:v1" proj/app:v1

# ---------------------------------------------------------------- 1. the operator, the satellite
group_sync "$(art proj/app v1 "$APP")"
api POST /api/configs "$(jq -cn '{config_name:"edge-cfg",
    config:{app_config:{state_replication_interval:"@every 00h00m02s", heartbeat_interval:"@every 00h00m05s", log_level:"info"}}}')" >/dev/null
api POST /api/satellites '{"name":"edge-01","groups":["site-a"],"config_name":"edge-cfg"}' | jq -r '.token // empty' > "$T/join.token"
[[ -s "$T/join.token" ]] || fail "POST /api/satellites returned no token"
api POST /api/satellites '{"name":"edge-02","groups":["site-a"]}' >/dev/null

STORE=$T/store
SAT_ADDR="127.0.0.1:$(free_port)"
jq -n --arg store "$STORE" --arg listen "$SAT_ADDR" --arg gc "$GC_URL" --arg tok "$T/join.token" \
    '{storage:{path:$store}, registry:{listen:$listen}, groundControl:{url:$gc, tokenFile:$tok, heartbeat:"5s"},
      sync:{budget:{perDay:"1GB", perMonth:"30GB"}}}' > "$T/sat.json"
"$SAT" run --config "$T/sat.json" >>"$T/sat.log" 2>&1 &
SAT_PID=$!
on_exit "kill_wait $SAT_PID"
WAIT_HTTP_PID=$SAT_PID WAIT_HTTP_LOG="$T/sat.log" wait_http "http://$SAT_ADDR/v2/" 20
gc_status() { curl -s -u "admin:$ADMIN_PW" "$GC_URL/api/satellites/edge-01/status"; }
wait_for() { wait_until "$1" "$2" "$3" "$T/sat.log"; }
wait_for 60 "ground-control to report edge-01 in sync" '[[ "$(gc_status | jq -r .state)" == in_sync ]]'
log "step 1 ok: edge-01 joined, synced proj/app:v1, in sync"

# ---------------------------------------------------------------- 2. the fleet page in Chromium
browse() { # OUT_DIR: runs the browser, prints its JSON to OUT_DIR/seen.json
    mkdir -p "$1"
    # Its own process group (chromedriver, chromium and its helpers), stopped whatever happens.
    setsid timeout --kill-after=5 90 "$PY" "$E2E_DIR/fleet_page_browser.py" "$GC_URL" admin "$ADMIN_PW" "$1" edge-01 \
        >"$1/seen.json" 2>"$1/browser.err" &
    local pid=$!
    on_exit "kill -KILL -- -$pid 2>/dev/null"
    wait "$pid" || fail "the browser run failed: $(tail -n 4 "$1/browser.err" | tr '\n' ' ' | cut -c1-800)"
}
check() { # FILE JQ_EXPR WHAT
    jq -e "$2" "$1" >/dev/null || fail "the page does not show $3: $(jq -c . "$1" | cut -c1-1500)"
}
png_ok() { # FILE: a PNG of a real page: signature, size from IHDR, and pixels that differ
    python3 - "$1" <<'PY'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
if data[:8] != b"\x89PNG\r\n\x1a\n":
    sys.exit("not a PNG")
width, height = struct.unpack(">II", data[16:24])
pos, idat = 8, b""
while pos < len(data):
    length, kind = struct.unpack(">I4s", data[pos:pos + 8])
    if kind == b"IDAT":
        idat += data[pos + 8:pos + 8 + length]
    pos += 12 + length
raw = zlib.decompress(idat)
if width < 800 or height < 600 or len(set(raw)) < 16:
    sys.exit(f"an empty image: {width}x{height}, {len(set(raw))} distinct byte values")
print(f"{width}x{height}, {len(data)} bytes")
PY
}
B=$T/browser1
browse "$B"
check "$B/seen.json" '.unauthenticated_url | endswith("/ui/login")' "the login form to a visitor without a session"
check "$B/seen.json" '.login_form' "a password field on the login form"
check "$B/seen.json" '.wrong_password_message | test("invalid username or password")' "a refusal of a wrong password"
check "$B/seen.json" '.after_login_url | endswith("/ui/")' "the overview after signing in"
check "$B/seen.json" '.cookies | map(select(.name == "gc_session")) | length == 1 and (.[0].httpOnly == true) and (.[0].sameSite == "Strict")' \
    "an HttpOnly, SameSite=Strict session cookie"
check "$B/seen.json" '.counters == {"total":"2","in_sync":"1","drifting":"0","stale":"0","never_seen":"1","groups":"1","budget_spent":"0"}' \
    "the counters (2 satellites, 1 in sync, 1 never seen, 1 group)"
check "$B/seen.json" '.satellites == {"edge-01":"in sync","edge-02":"never seen"}' "each satellite's state"
check "$B/seen.json" '.groups["site-a"] | length == 1 and (.[0] | startswith("proj/app:v1"))' "site-a's image proj/app:v1"
check "$B/seen.json" '.detail.url | endswith("/ui/satellites/edge-01")' "edge-01's detail page"
check "$B/seen.json" '.detail.heading | test("edge-01.*in sync")' "edge-01 in sync on its detail page"
check "$B/seen.json" '.detail.heartbeats | length >= 1 and (.[0][1] | startswith("sha256:"))' "heartbeats with the state digest"
check "$B/seen.json" '.detail.summary["Storage used"] | test("KiB|MiB")' "the storage used"
check "$B/seen.json" '.detail.summary["State artifact"] | test("applied")' "the applied state artifact"
check "$B/seen.json" '.detail.images | any(test("proj/app:v1"))' "the images edge-01 reported"
check "$B/seen.json" '.detail.desired | any(test("proj/app@sha256:.*present"))' "the desired image as present"
check "$B/seen.json" '(.after_logout_url | endswith("/ui/login")) and (.after_logout_overview_url | endswith("/ui/login"))' \
    "the login form again after logging out"
PNG=$(png_ok "$B/overview.png") || fail "overview screenshot: $PNG"
png_ok "$B/detail.png" >/dev/null || fail "detail screenshot is not a real image"
log "step 2 ok: login form, counters, states, group images, detail, logout; screenshot $PNG"

# ---------------------------------------------------------------- 3. cross-site login forms
sessions() { python3 -c '
import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM gc_sessions").fetchone()[0])' "$T/gc/gc.sqlite"; }
BEFORE=$(sessions)
curl -s -c "$T/jar" -o /dev/null "$GC_URL/ui/login"
CSRF=$(awk '$6 == "gc_csrf" {print $7}' "$T/jar")
[[ ${#CSRF} == 32 ]] || fail "the login page set no anti-forgery cookie"
grep -q '#HttpOnly_127.0.0.1.*gc_csrf' "$T/jar" || fail "the anti-forgery cookie is not HttpOnly"
login_code() { # ORIGIN CSRF_FIELD
    curl -s -b "$T/jar" -o "$T/login.out" -w '%{http_code}' -H "Origin: $1" \
        --data-urlencode "csrf=$2" --data-urlencode username=admin --data-urlencode "password=$ADMIN_PW" "$GC_URL/ui/login"
}
code=$(login_code http://evil.example "$CSRF")
[[ $code == 403 ]] || fail "a login form posted from another origin answered $code, not 403"
code=$(login_code "$GC_URL" "")
[[ $code == 403 ]] || fail "a login form without the anti-forgery token answered $code, not 403"
[[ "$(sessions)" == "$BEFORE" ]] || fail "a refused cross-site login started a session"
curl -s -b "$T/jar" -c "$T/jar" -D "$T/login.head" -o /dev/null -H "Origin: $GC_URL" --data-urlencode "csrf=$CSRF" \
    --data-urlencode username=admin --data-urlencode "password=$ADMIN_PW" "$GC_URL/ui/login"
grep -qi '^set-cookie: gc_session=.*HttpOnly' "$T/login.head" && grep -qi '^set-cookie: gc_session=.*SameSite=Strict' "$T/login.head" \
    || fail "a same-origin login set no HttpOnly SameSite=Strict session: $(grep -i set-cookie "$T/login.head" | tr '\n' ' ')"
grep -qi '^set-cookie: gc_session=.*Secure' "$T/login.head" && fail "the session cookie is Secure over plain HTTP (it would never come back)"
code=$(curl -s -o /dev/null -w '%{http_code}' "$GC_URL/ui/satellites/edge-01")
[[ $code == 303 ]] || fail "the detail page without a session answered $code, not a redirect to the login form"
log "step 3 ok: cross-site logins refused (Origin, token), no session started"

# ---------------------------------------------------------------- 4. group change -> drift -> in sync
GROUP_STATE=satellite/group-state/site-a/state:latest
GROUP_BEFORE=$(remote_digest $GROUP_STATE)
HB_BEFORE=$(gc_status | jq -r '.heartbeat.received_at')
group_sync "$(art proj/app v1 "$APP")" "$(art proj/web v1 "$WEB")"
GROUP_AFTER=$(remote_digest $GROUP_STATE)
[[ "$GROUP_AFTER" != "$GROUP_BEFORE" ]] || fail "the group change did not publish a new group state artifact"
artifacts_json $GROUP_STATE | jq -e --arg d "$WEB" 'any(.artifacts[]; .repository | endswith("proj/web")) and any(.artifacts[]; .digest == $d)' >/dev/null \
    || fail "the new group state does not name proj/web: $(artifacts_json $GROUP_STATE | head -c 400)"
gc_status > "$T/drift.json"
jq -e --arg d "proj/web@$WEB" '.state == "drifting" and .in_sync == false and (.missing == [$d])' "$T/drift.json" >/dev/null \
    || fail "ground-control does not show the drift at once: $(jq -c '{state, in_sync, missing}' "$T/drift.json")"
# The satellite keeps reporting (it cannot pull proj/web yet): still drifting, heartbeats fresh.
wait_for 20 "a heartbeat after the group change" '[[ "$(gc_status | jq -r .heartbeat.received_at)" != "$HB_BEFORE" ]]'
sleep 2
gc_status > "$T/drift.json"
jq -e '.state == "drifting" and (.missing | length == 1)' "$T/drift.json" >/dev/null \
    || fail "the drift is not visible while the satellite lacks proj/web: $(jq -c '{state, missing}' "$T/drift.json")"
curl -s -b "$T/jar" -c "$T/jar" "$GC_URL/ui/" > "$T/overview-drift.html"
grep -q 'data-satellite="edge-01".*data-state="drifting"' "$T/overview-drift.html" || fail "the fleet page does not show edge-01 drifting"
grep -q 'id="count-drifting" href="[^"]*"><b>1</b>' "$T/overview-drift.html" || fail "the drifting counter is not 1"
curl -s -b "$T/jar" "$GC_URL/ui/satellites/edge-01" > "$T/detail-drift.html"
grep -q "data-missing=\"true\"><code>proj/web@$WEB</code>" "$T/detail-drift.html" || fail "the detail page does not show proj/web missing"
# The link figures the heartbeat's activity carries (sync.budget set on edge-01): parsed into
# the API's `link` object and the page's WAN/LAN and budget rows.
jq -e '.link | .wan_bytes > 0 and .lan_bytes >= 0 and .window == "open" and .day_used > 0 and .day_left > 0
       and .month_used > 0 and .month_left > .day_left and .budget_spent == false' "$T/drift.json" >/dev/null \
    || fail "the status API has no link figures for edge-01: $(jq -c '{link, activity: .heartbeat.report.activity}' "$T/drift.json")"
grep -q 'id="wan-bytes">[0-9.]* [KMG]iB</dd>' "$T/detail-drift.html" && grep -q 'id="wan-window">open</dd>' "$T/detail-drift.html" \
    && grep -q 'id="budget-day">[0-9.]* [KMG]*i*B used, [0-9.]* [KMG]iB left</dd>' "$T/detail-drift.html" \
    || fail "the detail page does not show edge-01's WAN bytes, window and budget: $(grep -o '<dt>WAN.*' "$T/detail-drift.html" | head -c 400)"
grep -q 'id="count-budget_spent" href="[^"]*"><b>0</b>' "$T/overview-drift.html" || fail "the budget-spent counter is not 0"
log "link figures: $(jq -c .link "$T/drift.json")"
push "oci:$T/img/web:v1" proj/web:v1
wait_for 60 "edge-01 in sync after it pulled proj/web" '[[ "$(gc_status | jq -r .state)" == in_sync ]]'
gc_status | jq -e --arg w "$WEB" '.missing == [] and any(.heartbeat.report.cached_images[]; .reference | contains($w) or endswith("proj/web:v1"))' >/dev/null \
    || fail "in sync without proj/web reported: $(gc_status | jq -c '{missing, images: .heartbeat.report.cached_images}')"
log "step 4 ok: group state $GROUP_BEFORE -> $GROUP_AFTER; drifting (proj/web missing) until the satellite reported it"

# ---------------------------------------------------------------- 5. removal from the last group
SAT_STATE=satellite/satellite-state/edge-01/state:latest
STATE_BEFORE=$(remote_digest $SAT_STATE)
artifacts_json $SAT_STATE | jq -e '.states | length == 1' >/dev/null || fail "edge-01's state does not name its group"
api DELETE /api/groups/satellite '{"satellite":"edge-01","group":"site-a"}' >/dev/null
STATE_AFTER=$(remote_digest $SAT_STATE)
[[ "$STATE_AFTER" != "$STATE_BEFORE" ]] || fail "removal from the last group did not publish a new satellite state"
artifacts_json $SAT_STATE | jq -e '(.states // []) == []' >/dev/null \
    || fail "edge-01's state still names a group: $(artifacts_json $SAT_STATE | head -c 300)"
wait_for 30 "edge-01 to report the new state digest" \
    '[[ "$(gc_status | jq -r .heartbeat.report.latest_state_digest)" == "$STATE_AFTER" ]]'
gc_status | jq -e '.desired == [] and .missing == [] and .state == "in_sync"' >/dev/null \
    || fail "after removal from its last group: $(gc_status | jq -c '{state, desired, missing}')"
curl -s -b "$T/jar" "$GC_URL/ui/satellites/edge-01" | grep -q 'None: the satellite is in no group' \
    || fail "the detail page still shows desired images"
log "step 5 ok: removed from its last group: state $STATE_BEFORE -> $STATE_AFTER (no groups), applied and reported"
log "PASS"
