#!/usr/bin/env bash
# cross/ci-check.sh [ARCH...]        (default: arm64 armhf)
#
# The CI check of everything in the cross build that this x86-64 machine can verify
# (docs/cross.md): per ARCH
#   1. sysroot     cross/assemble-sysroot.sh ARCH   (Debian ARCH packages, apt-get download, dpkg -x)
#   2. curl        cross/build-curl.sh ARCH         (static libcurl, mbedTLS + zlib, cross gcc)
#   3. c           cross/build-c.sh ARCH            (C targets + shim_test, run under qemu-user-static)
#   4. swift-sdk   cross/make-swift-sdk.sh ARCH, then `swift build --swift-sdk TRIPLE --target`
#                  for each C target: SwiftPM accepts the SDK/toolset and compiles C through it
#                  (the Swift targets need the target's Swift runtime, which is not here).
# Missing Debian packages are installed with apt-get (only what is missing, like
# scripts/test). Every step is bounded in time; all ARCHes run even if one fails; the last
# line is the summary, and the exit status is 0 only if every step of every ARCH passed.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ARCHES=("$@")
((${#ARCHES[@]})) || ARCHES=(arm64 armhf)
for a in "${ARCHES[@]}"; do
  [[ $a == arm64 || $a == armhf ]] || { echo "usage: cross/ci-check.sh [arm64|armhf]..." >&2; exit 64; }
done
start=$SECONDS
say() { printf '[ci-check] %s\n' "$*" >&2; }

packages=(gcc make autoconf automake libtool dpkg-dev patch pkg-config python3 file qemu-user-static
  libmbedtls-dev zlib1g-dev)
for a in "${ARCHES[@]}"; do
  [[ $a == arm64 ]] && packages+=(gcc-aarch64-linux-gnu) || packages+=(gcc-arm-linux-gnueabihf)
done
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing: ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  if ! timeout 600 "${sudo_cmd[@]}" apt-get update -qq \
    || ! DEBIAN_FRONTEND=noninteractive timeout 1200 "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    say "FAILED: apt-get install ${missing[*]}"
    exit 1
  fi
fi

# step ARCH NAME SECONDS CMD...: run one step with a time limit, output to a log file.
summary=()
failed=0
step() {
  local arch=$1 name=$2 secs=$3 rc=0 t0=$SECONDS; shift 3
  local logfile=$ROOT/.build-cross-$arch/ci-$name.log
  mkdir -p "$(dirname "$logfile")"
  timeout --kill-after=15 "$secs" "$@" >"$logfile" 2>&1 || rc=$?
  if ((rc)); then
    if ((rc == 124)); then say "$arch: $name timed out after ${secs}s"; else say "$arch: $name failed (exit $rc)"; fi
    tail -n 30 "$logfile" | sed 's/^/    /' >&2
    say "    (full log: $logfile)"
    return 1
  fi
  say "$arch: $name ok ($((SECONDS - t0))s)"
}

# shellcheck disable=SC2317  # run through `bash -c` (timeout cannot run a function)
swift_sdk_check() {  # ARCH TRIPLE: the SDK bundle, and every C target built through it.
  local arch=$1 triple=$2 target
  "$ROOT/cross/make-swift-sdk.sh" "$arch" || return 1
  if ! command -v swift >/dev/null; then echo "swift not installed: skipped"; return 0; fi
  swift sdk list --swift-sdks-path "$ROOT/.build-cross-$arch/swift-sdks" | grep -qx "satellite-lite-$arch" || return 1
  for dir in "$ROOT"/Sources/C*/; do
    compgen -G "$dir*.c" >/dev/null || continue
    target=$(basename "$dir")
    # pkg-config answers from the sysroot (CTLSVerify uses CCurl's libcurl.pc), as in
    # docs/cross.md.
    local sysroot=$ROOT/.build-cross-$arch/sysroot multiarch
    [[ $arch == arm64 ]] && multiarch=aarch64-linux-gnu || multiarch=arm-linux-gnueabihf
    (cd "$ROOT" && PKG_CONFIG_PATH= PKG_CONFIG_SYSROOT_DIR=$sysroot \
      PKG_CONFIG_LIBDIR=$sysroot/usr/lib/$multiarch/pkgconfig:$sysroot/usr/share/pkgconfig \
      swift build -c release --scratch-path ".build-cross-$arch/swift" \
      --swift-sdks-path ".build-cross-$arch/swift-sdks" --swift-sdk "$triple" --target "$target") || return 1
    file "$ROOT/.build-cross-$arch/swift/$triple/release/$target.build/"*.o | grep -q "$([[ $arch == arm64 ]] && echo aarch64 || echo 'ARM, EABI5')" || return 1
  done
}

export ROOT
export -f swift_sdk_check

for arch in "${ARCHES[@]}"; do
  [[ $arch == arm64 ]] && triple=aarch64-unknown-linux-gnu || triple=armv7-unknown-linux-gnueabihf
  if step "$arch" sysroot 1800 "$ROOT/cross/assemble-sysroot.sh" "$arch" \
    && step "$arch" curl 1800 "$ROOT/cross/build-curl.sh" "$arch" \
    && step "$arch" c 900 "$ROOT/cross/build-c.sh" "$arch" \
    && step "$arch" swift-sdk 900 bash -c 'swift_sdk_check "$@"' swift_sdk_check "$arch" "$triple"; then
    runs=$(grep -oE '^\[build-c [a-z0-9]+\]   [a-z0-9-]+: [0-9]+ checks, 0 failures' "$ROOT/.build-cross-$arch/ci-c.log" \
      | sed -E 's/.*\]   ([a-z0-9-]+): ([0-9]+) checks.*/\1 \2\/\2/' | paste -sd, - | sed 's/,/, /g')
    grep -hE 'note:|WARNING' "$ROOT/.build-cross-$arch/ci-c.log" "$ROOT/.build-cross-$arch/ci-sysroot.log" | sed 's/^/    /' >&2 || true
    summary+=("$arch ok ($runs)")
  else
    summary+=("$arch FAILED")
    failed=1
  fi
done
result=$([[ $failed == 0 ]] && echo PASS || echo FAIL)
echo "cross/ci-check: $result: $(printf '%s; ' "${summary[@]}" | sed 's/; $//') [$((SECONDS - start))s]"
exit $failed
