#!/usr/bin/env bash
# readme_fleet.sh SATELLITE_BIN GROUND_CONTROL_BIN
# Runs README.md's "A fleet on one machine" block as written, with only what a machine
# without internet access and a shared CI host need changed (each change fails the test if
# README no longer has the text it replaces):
#   - `swift build -c release && export PATH=…` -> the binaries' directory on PATH
#   - /tmp/fleet -> a private directory; ports 8080/5001/5000 -> free ports
#   - the `skopeo copy` from docker.io -> the same copy from a local OCI layout
#   - docker-registry without lib.sh's REGISTRY_AUTH_FILE (see start_docker_registry)
#   - `sleep 20; ground-control status` -> wait (at most 90 s) until `status` says in_sync,
#     then `ground-control status`: the same end, without betting on a loaded machine.
# Then checks what the README promises: `status` lists edge-01 in_sync, and the fleet page,
# signed in through its form as admin, shows edge-01 "in sync" with its heartbeats.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

SAT=${1:-}
GC=${2:-}
[[ -n "$SAT" && -x "$SAT" ]] || fail "usage: $0 /path/to/satellite-lite /path/to/ground-control (got '${SAT:-}')"
[[ -n "$GC" && -x "$GC" ]] || fail "usage: $0 /path/to/satellite-lite /path/to/ground-control (got '${GC:-}')"
SAT_DIR=$(cd "$(dirname "$SAT")" && pwd)
GC_DIR=$(cd "$(dirname "$GC")" && pwd)
need_tools docker-registry skopeo python3 curl
T=$E2E_TMP
README="$E2E_DIR/../../README.md"
GC_PORT=$(free_port)
REG_PORT=$(free_port)
SAT_PORT=$(free_port)

python3 "$MKIMAGE" single "oci:$T/alpine:3.20" --platform linux/amd64 --layers 2 --size 65536 >/dev/null \
    || fail "mkimage.py failed"

python3 - "$README" "$T/walkthrough.sh" <<PY
import sys
readme, out = sys.argv[1], sys.argv[2]
text = open(readme).read()
start = text.index("## A fleet on one machine")
block = text[text.index("\`\`\`sh\n", start) + 6:]
block = block[:block.index("\`\`\`\n")]
def replace(old, new):
    global block
    if old not in block:
        sys.exit("README's fleet quick start no longer contains: " + old)
    block = block.replace(old, new)
replace("swift build -c release && export PATH=\$PWD/.build/release:\$PATH",
        "export PATH=$SAT_DIR:$GC_DIR:\$PATH")
replace("docker://docker.io/library/alpine:3.20 ", "oci:$T/alpine:3.20 ")
replace("sleep 20; ground-control status",
        "for i in \$(seq 180); do ground-control status | grep -qE '^edge-01 +in_sync' && break; sleep 0.5; done; ground-control status")
replace("/tmp/fleet", "$T/fleet")
replace("127.0.0.1:8080", "127.0.0.1:$GC_PORT")
replace("127.0.0.1:5001", "127.0.0.1:$REG_PORT")
replace("127.0.0.1:5000", "127.0.0.1:$SAT_PORT")
prelude = '''set -euo pipefail
# lib.sh exports REGISTRY_AUTH_FILE for skopeo; docker-registry would read it as a config
# override (every REGISTRY_* variable is one).
docker-registry() { env -u REGISTRY_AUTH_FILE docker-registry "\$@"; }
'''
epilogue = '''
echo "WALKTHROUGH DONE"
'''
open(out, "w").write(prelude + block + epilogue)
PY
# The block leaves its three servers running (as a person would); their process group is
# stopped at exit.
(cd "$T" && exec setsid timeout 200 bash "$T/walkthrough.sh") >"$T/out.log" 2>&1 &
WALK=$!
on_exit "kill -TERM -- -$WALK 2>/dev/null; sleep 1; kill -KILL -- -$WALK 2>/dev/null"
wait_until 190 "the walk-through to finish" 'grep -q "WALKTHROUGH DONE" "$T/out.log" || ! kill -0 $WALK' "$T/out.log"
show() { tail -n 15 "$T/out.log" | tr '\n' ' ' | cut -c1-1500; }
grep -q "WALKTHROUGH DONE" "$T/out.log" || fail "the walk-through stopped early: $(show)"
grep -qE '^edge-01 +in_sync' "$T/out.log" || fail "ground-control status does not list edge-01 in_sync: $(show)"

# The fleet page, signed in through its form.
GC_URL="http://127.0.0.1:$GC_PORT"
PW=$(grep -o 'GC_ADMIN_PASSWORD=[^ ]*' "$T/walkthrough.sh" | head -n 1 | cut -d= -f2)
curl -s -c "$T/jar" -o /dev/null "$GC_URL/ui/login"
CSRF=$(awk '$6 == "gc_csrf" {print $7}' "$T/jar")
curl -s -b "$T/jar" -c "$T/jar" -o /dev/null -H "Origin: $GC_URL" --data-urlencode "csrf=$CSRF" \
    --data-urlencode username=admin --data-urlencode "password=$PW" "$GC_URL/ui/login"
curl -s -b "$T/jar" "$GC_URL/ui/" > "$T/overview.html"
grep -q 'data-satellite="edge-01".*data-state="in_sync">in sync<' "$T/overview.html" \
    || fail "the fleet page does not show edge-01 in sync: $(grep -o 'data-satellite=.*' "$T/overview.html" | head -c 400)"
curl -s -b "$T/jar" "$GC_URL/ui/satellites/edge-01" > "$T/detail.html"
grep -q '<table id="heartbeats">' "$T/detail.html" || fail "the detail page shows no heartbeats"
log "PASS: README's fleet quick start ends with edge-01 in sync on the fleet page"
