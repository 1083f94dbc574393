#!/usr/bin/env bash
# deb_package.sh STATIC_BIN
# The .deb of scripts/build-deb from the static binary, installed with dpkg into a private
# root (dpkg --root, as when building a board image; nothing on this system changes):
#   1. fields: Package satellite-lite, this machine's Architecture, no Depends (static);
#      conffiles: /etc/satellite-lite/config.json; the install layout of docs/flashing.md.
#   2. dpkg -i: files in place; the installed binary validates the installed config
#      (`config check`), and is byte-identical to STATIC_BIN.
#   3. the config edited, the package installed again (an upgrade): the edit stays.
#   4. dpkg -r: binary, unit and docs gone, the edited config stays; dpkg --purge: gone too.
#   5. the maintainer scripts parse (sh -n) and leave systemd alone under DPKG_ROOT.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

BIN=${1:-}
[[ -n "$BIN" && -x "$BIN" ]] || fail "usage: $0 /path/to/static/satellite-lite (got '${BIN:-}')"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
need_tools dpkg dpkg-deb
T=$E2E_TMP
REPO=$(cd "$E2E_DIR/../.." && pwd)
ARCH=$(dpkg --print-architecture)

deb=$(cd "$REPO" && scripts/build-deb --binary "$BIN" --version 1.2.3 --out "$T" 2>"$T/build.err") \
    || fail "scripts/build-deb failed: $(tr '\n' ' ' <"$T/build.err")"
[[ -f $deb ]] || fail "scripts/build-deb printed '$deb', which is not a file"
[[ $(basename "$deb") == "satellite-lite_1.2.3_$ARCH.deb" ]] || fail "unexpected file name $(basename "$deb")"

# ---- 1. fields, conffiles, layout
field() { dpkg-deb -f "$deb" "$1"; }
[[ $(field Package) == satellite-lite ]] || fail "Package: $(field Package)"
[[ $(field Version) == 1.2.3 ]] || fail "Version: $(field Version)"
[[ $(field Architecture) == "$ARCH" ]] || fail "Architecture: $(field Architecture)"
[[ -z $(field Depends) ]] || fail "a static binary needs no Depends, got: $(field Depends)"
mkdir -p "$T/control"
dpkg-deb -e "$deb" "$T/control"
[[ $(cat "$T/control/conffiles") == /etc/satellite-lite/config.json ]] \
    || fail "conffiles: $(tr '\n' ' ' <"$T/control/conffiles")"
contents=$(dpkg-deb -c "$deb")
for path in ./usr/bin/satellite-lite ./etc/satellite-lite/config.json ./lib/systemd/system/satellite-lite.service \
    ./var/lib/satellite-lite/ ./usr/share/doc/satellite-lite/README.md ./usr/share/doc/satellite-lite/flashing.md; do
    grep -q " $path\$" <<<"$contents" || fail "$path is not in the package"
done
grep -E ' \./usr/bin/satellite-lite$' <<<"$contents" | grep -q '^-rwxr-xr-x root/root' \
    || fail "/usr/bin/satellite-lite is not 0755 root:root: $(grep usr/bin <<<"$contents")"
for script in postinst prerm; do
    sh -n "$T/control/$script" || fail "$script does not parse"
    grep -q 'DPKG_ROOT' "$T/control/$script" || fail "$script ignores DPKG_ROOT"
done
log "ok: fields, conffiles, layout and maintainer scripts"

# ---- 2. install into a private root
R=$T/root
mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates" "$R/var/lib/dpkg/triggers"
touch "$R/var/lib/dpkg/status"
DPKG=(dpkg "--root=$R" --force-script-chrootless --force-not-root --log=/dev/null --force-confold)
run_dpkg() { timeout 120 "${DPKG[@]}" "$@" >"$T/dpkg.log" 2>&1 || fail "dpkg $*: $(tail -n 5 "$T/dpkg.log" | tr '\n' ' ')"; }
run_dpkg -i "$deb"
for path in usr/bin/satellite-lite etc/satellite-lite/config.json lib/systemd/system/satellite-lite.service; do
    [[ -f "$R/$path" ]] || fail "/$path missing after dpkg -i"
done
[[ -d "$R/var/lib/satellite-lite" ]] || fail "/var/lib/satellite-lite missing after dpkg -i"
cmp -s "$BIN" "$R/usr/bin/satellite-lite" || fail "the installed binary differs from $BIN"
status=$(dpkg-query "--admindir=$R/var/lib/dpkg" -W -f='${Status} ${Version}' satellite-lite)
[[ $status == "install ok installed 1.2.3" ]] || fail "dpkg-query: $status"
out=$("$R/usr/bin/satellite-lite" config check --config "$R/etc/satellite-lite/config.json" 2>&1) \
    || fail "the installed binary rejects the installed config: $out"
grep -q "storage: /var/lib/satellite-lite" <<<"$out" || fail "config check: $out"
log "ok: installed; the installed binary accepts the installed config"

# ---- 3. upgrade over an edited config
sed -i 's/127.0.0.1:5000/127.0.0.1:5055/' "$R/etc/satellite-lite/config.json"
run_dpkg -i "$deb"
grep -q '127.0.0.1:5055' "$R/etc/satellite-lite/config.json" || fail "reinstalling replaced the edited config"
log "ok: reinstall keeps the edited conffile"

# ---- 4. remove, purge
run_dpkg -r satellite-lite
[[ ! -e "$R/usr/bin/satellite-lite" && ! -e "$R/lib/systemd/system/satellite-lite.service" ]] \
    || fail "dpkg -r left the binary or the unit"
grep -q '127.0.0.1:5055' "$R/etc/satellite-lite/config.json" 2>/dev/null || fail "dpkg -r removed the config"
run_dpkg --purge satellite-lite
[[ ! -e "$R/etc/satellite-lite/config.json" ]] || fail "dpkg --purge left the config"
log "ok: remove keeps the config, purge removes it"
log "PASS"
