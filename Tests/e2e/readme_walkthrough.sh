#!/usr/bin/env bash
# readme_walkthrough.sh BIN
# Runs README.md's "Five minutes on one machine" block as written, with only what a
# machine without internet access and a shared CI host need changed (each change fails
# the test if README no longer has the line it replaces):
#   - `swift build -c release && export PATH=…`  -> BIN's directory on PATH (already built)
#   - /tmp/demo -> a private directory; ports 5001/5000 -> free ports
#   - the `skopeo copy` from docker.io -> the same copy from a local OCI layout
#   - `podman` -> podman with a throw-away storage (as podman_pull.sh); docker-registry
#     without lib.sh's REGISTRY_AUTH_FILE
#   - `sleep 5; kill %1` -> wait (at most 60 s) until `status` says the image is present,
#     then `kill %1`: the same state, without betting on a loaded machine's speed.
# Then checks what the walk-through promises: config check OK, the pull through
# satellite-lite succeeds with the upstream stopped, `status` lists the image as present,
# and the hook wrote "updated library/alpine:3.20 to sha256:…" to hooks.log.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

e2e_binary "${1:-}"
need_tools docker-registry skopeo podman python3 curl
T=$E2E_TMP
README="$E2E_DIR/../../README.md"
UP_PORT=$(free_port)
PORT=$(free_port)
[[ $UP_PORT != "$PORT" ]] || PORT=$(free_port)

# The image the walk-through copies from docker.io, made locally.
python3 "$MKIMAGE" single "oci:$T/alpine:3.20" --platform linux/amd64 --layers 2 --size 65536 >/dev/null \
    || fail "mkimage.py failed"

# Podman with a private storage (see podman_pull.sh).
P="$T/podman"
mkdir -p "$P/root" "$P/runroot" "$P/tmp" "$P/networks"
on_exit "grep -F ' $P/' /proc/mounts | cut -d' ' -f2 | sort -r | xargs -r -n1 umount -l"

python3 - "$README" "$T/walkthrough.sh" <<PY
import sys
readme, out = sys.argv[1], sys.argv[2]
text = open(readme).read()
start = text.index("## Five minutes on one machine")
block = text[text.index("\`\`\`sh\n", start) + 6:]
block = block[:block.index("\`\`\`\n")]
def replace(old, new):
    global block
    if old not in block:
        sys.exit("README's walk-through no longer contains: " + old)
    block = block.replace(old, new)
replace("swift build -c release && export PATH=\$PWD/.build/release:\$PATH", "export PATH=$(dirname "$BIN"):\$PATH")
replace("skopeo copy --dest-tls-verify=false docker://docker.io/library/alpine:3.20 \\\\\n",
        "skopeo copy --dest-tls-verify=false oci:$T/alpine:3.20 \\\\\n")
replace("sleep 5; kill %1",
        "for i in \$(seq 120); do satellite-lite status --config config.json | grep -q 'alpine:3.20: present' && break; sleep 0.5; done; kill %1")
replace("/tmp/demo", "$T/demo")
replace("127.0.0.1:5001", "127.0.0.1:$UP_PORT")
replace("127.0.0.1:5000", "127.0.0.1:$PORT")
prelude = '''set -euo pipefail
# lib.sh exports REGISTRY_AUTH_FILE for skopeo and podman; docker-registry would read it
# as a config override (every REGISTRY_* variable is one).
docker-registry() { env -u REGISTRY_AUTH_FILE docker-registry "\$@"; }
podman() {
    command podman --root "$P/root" --runroot "$P/runroot" --storage-driver vfs --tmpdir "$P/tmp" \\\\
        --cgroup-manager cgroupfs --events-backend none --registries-conf "\$CONTAINERS_REGISTRIES_CONF" "\$@"
}
'''
epilogue = '''
echo "WALKTHROUGH DONE"
kill \$(jobs -p) 2>/dev/null || true
wait || true
'''
open(out, "w").write(prelude + block + epilogue)
PY
# The README starts docker-registry in the background through a shell function (env -u ...):
# `kill $(jobs -p)` ends the function's subshell, not the registry. Stop what runs in the demo.
on_exit "for p in \$(pgrep -x docker-registry); do [[ \$(readlink /proc/\$p/cwd) == '$T/demo'* ]] && kill \$p; done; true"
rc=0
(cd "$T" && timeout 300 bash "$T/walkthrough.sh") >"$T/out.log" 2>&1 || rc=$?
show() { tail -n 15 "$T/out.log" | tr '\n' ' ' | cut -c1-1500; }
((rc == 0)) || fail "the walk-through failed (exit $rc): $(show)"
grep -q "WALKTHROUGH DONE" "$T/out.log" || fail "the walk-through stopped early: $(show)"
grep -q "^config: config.json: OK" "$T/out.log" || fail "config check did not say OK: $(show)"
grep -q "Writing manifest to image destination" "$T/out.log" || fail "podman pull did not complete: $(show)"
grep -q "library/alpine:3.20: present" "$T/out.log" || fail "status does not list the image as present: $(show)"
# The pass ended long before (the interval is 30 s): status must not say a sync runs.
! grep -q "^sync: running" "$T/out.log" || fail "status says a sync is running after the pass finished: $(show)"
grep -qE "^updated library/alpine:3.20 to sha256:[0-9a-f]{64}$" "$T/demo/hooks.log" \
    || fail "hooks.log: '$(cat "$T/demo/hooks.log" 2>/dev/null)'"
log "PASS: README walk-through: synced, pulled with the upstream stopped, status present, hook fired"
