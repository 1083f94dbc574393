#!/usr/bin/env bash
# bench/fleet_page.sh [--bin PATH/ground-control] [--satellites N] [--groups G] [--runs R]
# How long ground-control's fleet page takes as the fleet grows: one ground-control
# (SQLite, temp directory, no registry: state pushes fail fast and are counted) gets G
# groups of 5 images and N satellites, each onboarded (ZTR) and with one heartbeat of 5
# cached images; then GET /ui/ (signed in) and, for comparison, GET /api/satellites are
# timed R times each. Prints the medians. Nothing is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.build/release/ground-control
[[ -x $BIN ]] || BIN=.build/debug/ground-control
N=500 G=10 RUNS=5
while (($#)); do
    case $1 in
    --bin) BIN=$2; shift 2 ;;
    --satellites) N=$2; shift 2 ;;
    --groups) G=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
[[ -x $BIN ]] || { echo "no ground-control at $BIN (swift build -c release --product ground-control)" >&2; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/bench-fleet-page.XXXXXX")
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$T/config.json" <<JSON
{ "listen": "127.0.0.1:$PORT", "database": "sqlite://$T/gc.sqlite", "dataDirectory": "$T",
  "registry": { "url": "http://127.0.0.1:9", "kind": "harbor" }, "satelliteRequestsPerMinute": 1000000 }
JSON
GC_ADMIN_PASSWORD=bench-admin-password "$BIN" serve --config "$T/config.json" >"$T/gc.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$T"' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/ping" && break; sleep 0.2; done

python3 - "http://127.0.0.1:$PORT" "$N" "$G" "$RUNS" "$BIN" <<'PY'
import base64, json, statistics, sys, time, urllib.parse, urllib.request
base, n, g, runs, binary = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]

def call(method, path, body=None, headers=None, raw=False):
    data = json.dumps(body).encode() if body is not None and not raw else body
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers or {})
    if body is not None and not raw:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request) as response:
        return response.read()

session = json.loads(call("POST", "/login", {"username": "admin", "password": "bench-admin-password"}))["token"]
admin = {"Authorization": "Bearer " + session}
start = time.monotonic()
for i in range(g):
    call("POST", "/api/groups/sync", {"group": f"g{i}", "artifacts": [
        {"repository": f"proj/app{j}", "tag": ["1.0"], "type": "IMAGE"} for j in range(5)]}, admin)
for i in range(n):
    token = json.loads(call("POST", "/api/satellites", {"name": f"edge-{i:05d}", "groups": [f"g{i % g}"]}, admin))["token"]
    auth = json.loads(call("POST", "/satellites/ztr", {"token": token}))["auth"]
    basic = "Basic " + base64.b64encode(f"{auth['username']}:{auth['password']}".encode()).decode()
    images = [{"reference": f"proj/app{j}:1.0", "size_bytes": 1 << 20} for j in range(5 if i % 7 else 4)]
    call("POST", "/satellites/sync", {"name": f"edge-{i:05d}", "state_report_interval": "@every 00h30m00s",
         "cached_images": images, "image_count": len(images)}, {"Authorization": basic})
setup = time.monotonic() - start

# Sign in to the page through its form.
cookies = urllib.request.HTTPCookieProcessor()
opener = urllib.request.build_opener(cookies)
opener.open(base + "/ui/login").read()
csrf = next(c.value for c in cookies.cookiejar if c.name == "gc_csrf")
form = urllib.parse.urlencode({"csrf": csrf, "username": "admin", "password": "bench-admin-password"}).encode()
opener.open(urllib.request.Request(base + "/ui/login", data=form, headers={"Origin": base})).read()

def timed(fetch):
    samples = []
    size = 0
    for _ in range(runs):
        t = time.monotonic()
        size = len(fetch())
        samples.append(time.monotonic() - t)
    return statistics.median(samples), size

page, page_size = timed(lambda: opener.open(base + "/ui/").read())
api, api_size = timed(lambda: call("GET", "/api/satellites", headers=admin))
assert f"<b>{n}</b>satellites" in opener.open(base + "/ui/").read().decode(), "the page does not count every satellite"
print(f"ground-control {binary}: {n} satellites in {g} groups (set up in {setup:.1f} s)")
print(f"GET /ui/            median of {runs}: {page * 1000:8.1f} ms  ({page_size} bytes)")
print(f"GET /api/satellites median of {runs}: {api * 1000:8.1f} ms  ({api_size} bytes)")
PY
