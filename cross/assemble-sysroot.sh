#!/usr/bin/env bash
# cross/assemble-sysroot.sh ARCH [--force]        ARCH = arm64 | armhf
#
# Assembles a target sysroot for ARCH in .build-cross-ARCH/sysroot from Debian's own
# packages for that architecture: the C library, kernel headers, libgcc/libstdc++ (needed
# to link Swift programs), libcurl (OpenSSL flavour, the dynamic build's dependency),
# mbedTLS and zlib dev packages, and their whole dependency closure.
#
# No `dpkg --add-architecture` and no change to the system's apt or dpkg state: apt runs
# with a private configuration (.build-cross-ARCH/apt) whose only architecture is ARCH,
# with an empty dpkg status (so the closure is complete, not "what the host already has"),
# and sources generated from the system's Debian mirror. `apt-get -s install` resolves the
# closure (alternatives chosen as apt would), `apt-get download` fetches the exact versions,
# `dpkg -x` unpacks each .deb. Then the tree is /usr-merged (lib -> usr/lib, as on a
# Debian 12 system), absolute symlinks are made relative, and docs/binaries are dropped.
#
# Environment: DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR (override the mirrors),
# SYSROOT_EXTRA_PACKAGES (more packages to include).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ARCH=${1:-}
FORCE=${2:-}
case $ARCH in
  arm64) TRIPLE=aarch64-linux-gnu ;;
  armhf) TRIPLE=arm-linux-gnueabihf ;;
  *) echo "usage: cross/assemble-sysroot.sh arm64|armhf [--force]" >&2; exit 64 ;;
esac
OUT=$ROOT/.build-cross-$ARCH
SYSROOT=$OUT/sysroot
APTDIR=$OUT/apt
DEBS=$OUT/debs
log() { printf '[sysroot %s] %s\n' "$ARCH" "$*" >&2; }
die() { printf 'error [sysroot %s]: %s\n' "$ARCH" "$*" >&2; exit 1; }
for tool in apt-get dpkg timeout python3; do command -v "$tool" >/dev/null || die "$tool not found"; done

# shellcheck disable=SC2206  # SYSROOT_EXTRA_PACKAGES is a space-separated list
PACKAGES=(
  libc6-dev linux-libc-dev libgcc-12-dev libstdc++-12-dev
  libcurl4-openssl-dev libmbedtls-dev zlib1g-dev
  ${SYSROOT_EXTRA_PACKAGES:-}
)

system_mirror() {
  local files=() uri f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
    [[ -f $f ]] && files+=("$f")
  done
  uri=$( ( ((${#files[@]})) && grep -hoE "https?://[^ ]+/$1/?( |\$)" "${files[@]}" ) 2>/dev/null | head -n1 | tr -d ' ' || true)
  echo "${uri:-http://deb.debian.org/$1}"
}

mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial" "$DEBS"
: >"$APTDIR/status"
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
mirror=${DEBIAN_MIRROR:-$(system_mirror debian)}
security=${DEBIAN_SECURITY_MIRROR:-$(system_mirror debian-security)}
cat >"$APTDIR/sources.list" <<EOF
deb [arch=$ARCH] ${mirror%/} $suite main
deb [arch=$ARCH] ${mirror%/} $suite-updates main
deb [arch=$ARCH] ${security%/} $suite-security main
EOF
APT=(apt-get
  -o "Dir::Etc::SourceList=$APTDIR/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::Etc::Preferences=/dev/null" -o "Dir::Etc::PreferencesParts=/dev/null"
  -o "Dir::State::Lists=$APTDIR/lists" -o "Dir::Cache=$APTDIR/cache"
  -o "Dir::State::status=$APTDIR/status" -o "Debug::NoLocking=1"
  -o "APT::Architecture=$ARCH" -o "APT::Architectures::=$ARCH"
  -o "APT::Sandbox::User=root" -o "Acquire::Retries=3" -o "Acquire::http::Timeout=30")

if [[ $FORCE == --force || -z $(find "$APTDIR/lists" -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -n1) ]]; then
  log "apt-get update ($ARCH lists from ${mirror%/} $suite, $suite-updates, $suite-security)"
  # Retried: a mirror in the middle of a sync serves index files that fail their hashes.
  for attempt in 1 2 3; do
    # apt-get update exits 0 even when some index failed: treat "E:"/"W: Failed" lines as failure.
    if timeout --kill-after=10 300 "${APT[@]}" update >"$APTDIR/update.log" 2>&1 \
      && ! grep -qE '^(E:|W: Failed|Err:)' "$APTDIR/update.log"; then
      break
    fi
    if ((attempt == 3)); then
      # Without the main suite there is nothing to build from; without -updates/-security
      # (a stale mirror or proxy) the sysroot is still coherent, only older: go on, loudly.
      compgen -G "$APTDIR/lists/*_dists_${suite}_main_binary-${ARCH}_Packages*" >/dev/null \
        || { tail -n 15 "$APTDIR/update.log" >&2; die "apt-get update failed 3 times"; }
      log "WARNING: apt-get update failed 3 times for: $(grep -oE '^Err:[0-9]+ [^ ]+ [^ ]+' "$APTDIR/update.log" | cut -d' ' -f3 | sort -u | paste -sd' ' -);" \
        "building the sysroot from the suites that did update (see $APTDIR/update.log)"
      break
    fi
    log "apt-get update failed (attempt $attempt), retrying in 20s"
    sleep 20
  done
fi

# The dependency closure, as apt would install it on an empty $ARCH system.
timeout 120 "${APT[@]}" -s install --no-install-recommends "${PACKAGES[@]}" >"$APTDIR/resolve.log" 2>&1 \
  || { tail -n 15 "$APTDIR/resolve.log" >&2; die "cannot resolve ${PACKAGES[*]} for $ARCH"; }
mapfile -t CLOSURE < <(awk '/^Inst / {v=$3; gsub(/[()\[\]]/, "", v); print $2 "=" v}' "$APTDIR/resolve.log" | sort)
((${#CLOSURE[@]} > 0)) || die "empty dependency closure (see $APTDIR/resolve.log)"
stamp=$(printf '%s\n' "${CLOSURE[@]}")
if [[ $FORCE != --force && -f $SYSROOT/.assembled && "$(cat "$SYSROOT/.assembled")" == "$stamp" ]]; then
  log "up to date: $SYSROOT (${#CLOSURE[@]} packages)"
  exit 0
fi

# Download what is not cached yet (file names: name_version_arch.deb, ':' as %3a).
missing=()
for pv in "${CLOSURE[@]}"; do
  name=${pv%%=*} version=${pv#*=}
  compgen -G "$DEBS/${name}_${version/:/%3a}_*.deb" >/dev/null || missing+=("$pv")
done
if ((${#missing[@]})); then
  log "downloading ${#missing[@]} of ${#CLOSURE[@]} packages"
  (cd "$DEBS" && timeout --kill-after=10 900 "${APT[@]}" download "${missing[@]}" >"$APTDIR/download.log" 2>&1) \
    || { tail -n 15 "$APTDIR/download.log" >&2; die "apt-get download failed"; }
fi

log "unpacking ${#CLOSURE[@]} packages into $SYSROOT"
rm -rf "$SYSROOT" "$SYSROOT.tmp"
mkdir -p "$SYSROOT.tmp"
for pv in "${CLOSURE[@]}"; do
  name=${pv%%=*} version=${pv#*=}
  deb=$(compgen -G "$DEBS/${name}_${version/:/%3a}_*.deb" | head -n1)
  [[ -n $deb ]] || die "missing $name $version after download"
  dpkg -x "$deb" "$SYSROOT.tmp" || die "dpkg -x $deb failed"
done

# /usr-merge, drop what a sysroot does not need, make absolute symlinks relative.
python3 - "$SYSROOT.tmp" <<'PY'
import os, shutil, sys
root = sys.argv[1]
def merge(src, dst):
    for entry in os.listdir(src):
        s, d = os.path.join(src, entry), os.path.join(dst, entry)
        if os.path.isdir(s) and not os.path.islink(s) and os.path.isdir(d) and not os.path.islink(d):
            merge(s, d)
        else:
            if os.path.lexists(d):
                os.remove(d) if not os.path.isdir(d) or os.path.islink(d) else shutil.rmtree(d)
            os.rename(s, d)
    os.rmdir(src)
for top in ("lib", "lib64", "bin", "sbin"):
    src = os.path.join(root, top)
    if os.path.isdir(src) and not os.path.islink(src):
        dst = os.path.join(root, "usr", top)
        os.makedirs(dst, exist_ok=True)
        merge(src, dst)
        os.symlink(os.path.join("usr", top), src)
for junk in ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale",
             "usr/share/lintian", "usr/share/bug", "usr/bin", "usr/sbin", "usr/libexec",
             "etc", "var", "usr/lib/" + "gconv"):
    p = os.path.join(root, junk)
    if os.path.islink(p):
        os.remove(p)
    elif os.path.isdir(p):
        shutil.rmtree(p)
for top in ("bin", "sbin"):  # their targets are gone
    p = os.path.join(root, top)
    if os.path.islink(p):
        os.remove(p)
fixed = 0
for dirpath, dirnames, filenames in os.walk(root):
    for name in dirnames + filenames:
        p = os.path.join(dirpath, name)
        if os.path.islink(p):
            target = os.readlink(p)
            if target.startswith("/"):
                os.remove(p)
                os.symlink(os.path.relpath(root + target, dirpath), p)
                fixed += 1
print(f"[sysroot] made {fixed} absolute symlinks relative", file=sys.stderr)
PY
mv "$SYSROOT.tmp" "$SYSROOT"

# Sanity: the files the C build, the static curl and a Swift SDK rely on.
for f in "usr/include/$TRIPLE/curl/curl.h" usr/include/mbedtls/sha256.h usr/include/zlib.h \
  "usr/include/$TRIPLE/bits/types.h" "usr/lib/$TRIPLE/crt1.o" "usr/lib/$TRIPLE/libc.a" \
  "usr/lib/$TRIPLE/libc.so" "usr/lib/$TRIPLE/libcurl.so" "usr/lib/$TRIPLE/libmbedtls.a" \
  "usr/lib/$TRIPLE/libmbedx509.a" "usr/lib/$TRIPLE/libmbedcrypto.a" "usr/lib/$TRIPLE/libz.a" \
  "usr/lib/$TRIPLE/libstdc++.so.6" "usr/lib/gcc/$TRIPLE/12/crtbegin.o" "usr/lib/gcc/$TRIPLE/12/libgcc.a"; do
  [[ -e $SYSROOT/$f ]] || die "sysroot lacks $f"
done
absolute=$(find "$SYSROOT" -type l -lname '/*' | head -n3)
[[ -z $absolute ]] || die "absolute symlinks left: $absolute"
dangling=$(find "$SYSROOT/usr/lib" -xtype l -name '*.so*' | head -n3)
[[ -z $dangling ]] || die "dangling library symlinks: $dangling"
printf '%s\n' "$stamp" >"$SYSROOT/.assembled"
log "done: $SYSROOT (${#CLOSURE[@]} packages, $(du -sm "$SYSROOT" | cut -f1) MB)"
