#!/usr/bin/env bash
# cross/build-c.sh ARCH        ARCH = arm64 | armhf | host
#
# Cross-compiles the C side of satellite-lite for ARCH with Debian's cross gcc and runs it
# under qemu-user-static:
#   - the package's C targets, Sources/C*/*.c (CSHA256, CSatelliteSystem), as SwiftPM
#     would (-D_FILE_OFFSET_BITS=64 -D_TIME_BITS=64), also compile-checked with the Swift
#     toolchain's clang for the target (SwiftPM builds C targets with that clang);
#   - cross/test/shim_test.c, which includes the CCurl, CMbedTLS and CZlib shim headers,
#     csha256.h and csatellite_system.h (see that file for the checks), linked two ways:
#       shim_test-static   fully static: the static libcurl of cross/build-curl.sh ARCH
#                          (mbedTLS, zlib) + the sysroot's libmbed*.a, libz.a, libc.a
#       shim_test-dynamic  against the sysroot's shared libcurl4 (OpenSSL) and glibc, run
#                          with qemu -L SYSROOT: checks the sysroot the Swift SDK would use.
#   - armhf only: csha256.c once more for ARMv8 in AArch32 mode (-march=armv8-a+crc
#     -mfpu=crypto-neon-fp-armv8) under `qemu-arm -cpu max`, the hardware SHA-256 path
#     of 32-bit Raspberry Pi OS on a Pi 3/4 class CPU.
# Every run must print "0 failures". Needs cross/assemble-sysroot.sh ARCH and
# cross/build-curl.sh ARCH first (cross/ci-check.sh runs all three).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ARCH=${1:-}
log() { printf '[build-c %s] %s\n' "$ARCH" "$*" >&2; }
die() { printf 'error [build-c %s]: %s\n' "$ARCH" "$*" >&2; exit 1; }
RUN_TIMEOUT=${RUN_TIMEOUT:-180}

case $ARCH in
  arm64)
    TRIPLE=aarch64-linux-gnu QEMU=qemu-aarch64-static CLANG_TARGET=aarch64-unknown-linux-gnu
    EXPECT_SHA=armv8-ce ;;
  armhf)
    TRIPLE=arm-linux-gnueabihf QEMU=qemu-arm-static CLANG_TARGET=armv7-unknown-linux-gnueabihf
    EXPECT_SHA=none ;;  # armv7-a code: the ARMv8 path is compiled out (see the armv8 variant)
  host)
    TRIPLE=$(gcc -dumpmachine) QEMU="" CLANG_TARGET=""
    if grep -qw sha_ni /proc/cpuinfo; then EXPECT_SHA="sha-ni"; else EXPECT_SHA=none; fi ;;
  *) echo "usage: cross/build-c.sh arm64|armhf|host" >&2; exit 64 ;;
esac

if [[ $ARCH == host ]]; then
  OUT=$ROOT/.build-static/c-test
  CURL_PREFIX=$ROOT/.build-static/prefix
  SYSROOT=""
  CC=(gcc)
else
  OUT=$ROOT/.build-cross-$ARCH/c-test
  CURL_PREFIX=$ROOT/.build-cross-$ARCH/curl-prefix
  SYSROOT=$ROOT/.build-cross-$ARCH/sysroot
  [[ -f $SYSROOT/.assembled ]] || die "no sysroot: run cross/assemble-sysroot.sh $ARCH"
  command -v "$TRIPLE-gcc" >/dev/null || die "$TRIPLE-gcc not found: apt-get install gcc-$TRIPLE"
  command -v "$QEMU" >/dev/null || die "$QEMU not found: apt-get install qemu-user-static"
  CC=("$TRIPLE-gcc" "--sysroot=$SYSROOT")
fi
[[ -f $CURL_PREFIX/lib/libcurl.a ]] || die "no static libcurl in $CURL_PREFIX: run cross/build-curl.sh $ARCH"
mkdir -p "$OUT"

# gcc has no clang nullability qualifiers (the headers are written for Swift's clang).
CFLAGS=(-O2 -Wall -Wextra -Werror=implicit-function-declaration -Wno-unknown-pragmas
  -D_FILE_OFFSET_BITS=64 -D_TIME_BITS=64 -D_Nonnull= -D_Nullable= -D_Null_unspecified=
  -I"$ROOT/Sources")
# Every C target of the package (Sources/C*/ with .c files) and its public headers.
C_SOURCES=()
for dir in "$ROOT"/Sources/C*/; do
  [[ -d $dir/include ]] && CFLAGS+=(-I"${dir}include")
  for c in "$dir"*.c; do [[ -f $c ]] && C_SOURCES+=("$c"); done
done
((${#C_SOURCES[@]})) || die "no C sources under Sources/C*/"

compile() {  # compile LOG CMD...: run a compiler command, show its output on failure
  local logfile=$1; shift
  timeout --kill-after=5 300 "$@" >"$logfile" 2>&1 || { cat "$logfile" >&2; die "compile failed: ${*: -3}"; }
  show_warnings "$logfile"
}
# Compiler warnings (not glibc's static-linking notes about getaddrinfo and friends).
show_warnings() {
  grep -E 'warning:' "$1" | grep -v 'in statically linked applications' | sed 's/^/    /' >&2 || true
}

# compile_csha256 OBJ EXTRA_FLAGS...: csha256.c as it is; if gcc rejects the ARMv8 function
# attribute target("+sha2") (GCC 12's arm_neon.h gates the SHA-256 intrinsics on "+crypto",
# and 32-bit ARM gcc has no "sha2" feature at all), compile a copy with target("+crypto"),
# which clang and gcc both accept on aarch64 and AArch32, and report it.
notes=()
compile_csha256() {
  local obj=$1; shift
  if "${CC[@]}" "${CFLAGS[@]}" "$@" -O3 -c "$ROOT/Sources/CSHA256/csha256.c" -o "$obj" >"$obj.log" 2>&1; then
    show_warnings "$obj.log"
    return 0
  fi
  if grep -qE "target specific option mismatch|does not support feature .sha2." "$obj.log" \
    && grep -q 'target("+sha2")' "$ROOT/Sources/CSHA256/csha256.c"; then
    local reason
    reason=$(grep -m1 -oE "target specific option mismatch|does not support feature .sha2." "$obj.log")
    sed 's/target("+sha2")/target("+crypto")/' "$ROOT/Sources/CSHA256/csha256.c" >"$OUT/csha256-crypto.c"
    compile "$obj.log" "${CC[@]}" "${CFLAGS[@]}" "$@" -O3 -c "$OUT/csha256-crypto.c" -o "$obj"
    notes+=("csha256.c: ${CC[0]} rejects __attribute__((target(\"+sha2\"))) ($reason); built with target(\"+crypto\") instead (clang accepts both)")
    return 0
  fi
  cat "$obj.log" >&2
  die "compile failed: csha256.c $*"
}

names=()
for c in "${C_SOURCES[@]}"; do names+=("${c#"$ROOT"/}"); done
log "compiling ${names[*]} and cross/test/shim_test.c with ${CC[0]}"
OBJS=()      # C targets other than csha256.c
for c in "${C_SOURCES[@]}"; do
  [[ $(basename "$c") == csha256.c ]] && continue
  obj=$OUT/$(basename "$c" .c).o
  compile "$obj.log" "${CC[@]}" "${CFLAGS[@]}" -c "$c" -o "$obj"
  OBJS+=("$obj")
done
compile_csha256 "$OUT/csha256.o"
compile "$OUT/shim_test-static.log" "${CC[@]}" "${CFLAGS[@]}" -I"$CURL_PREFIX/include" \
  "$ROOT/cross/test/shim_test.c" "$OUT/csha256.o" "${OBJS[@]}" -o "$OUT/shim_test-static" -static \
  -L"$CURL_PREFIX/lib" -lcurl -lmbedtls -lmbedx509 -lmbedcrypto -lz -lcrypt -lpthread
# The dynamic variant must see the sysroot's (or system's) curl headers, not the static build's.
compile "$OUT/shim_test-dynamic.log" "${CC[@]}" "${CFLAGS[@]}" \
  "$ROOT/cross/test/shim_test.c" "$OUT/csha256.o" "${OBJS[@]}" -o "$OUT/shim_test-dynamic" \
  -lcurl -lmbedtls -lmbedx509 -lmbedcrypto -lz -lcrypt -lpthread
file -b "$OUT/shim_test-static" | grep -q 'statically linked' || die "shim_test-static is not static: $(file -b "$OUT/shim_test-static")"

# SwiftPM compiles C targets with the toolchain's clang: check csha256.c compiles there too.
clang_note=""
if [[ -n $CLANG_TARGET ]]; then
  swift_clang=$(dirname "$(readlink -f "$(command -v swift 2>/dev/null || echo /opt/swift/usr/bin/swift)")")/clang
  if [[ -x $swift_clang ]]; then
    for c in "${C_SOURCES[@]}"; do
      compile "$OUT/$(basename "$c" .c)-clang.log" "$swift_clang" --target="$CLANG_TARGET" --sysroot="$SYSROOT" \
        -O3 -Wall -D_FILE_OFFSET_BITS=64 -D_TIME_BITS=64 -I"$(dirname "$c")/include" \
        -c "$c" -o "$OUT/$(basename "$c" .c)-clang.o"
    done
    clang_note=", clang --target=$CLANG_TARGET ok"
  fi
fi

# run NAME EXPECT_TLS EXPECT_SHA [ENV=VALUE...] -- CMD...: run one test binary, bounded in time.
results=()
run() {
  local name=$1 tls=$2 sha=$3; shift 3
  local envs=()
  while [[ $1 != -- ]]; do envs+=("$1"); shift; done
  shift
  local out rc=0
  out=$(env "${envs[@]}" timeout --kill-after=5 "$RUN_TIMEOUT" "$@" --expect-tls "$tls" --expect-sha "$sha" 2>&1) || rc=$?
  printf '%s\n' "$out" >"$OUT/$name.out"
  # The whole output with VERBOSE=1 or on failure, else only the informational lines.
  if [[ -n ${VERBOSE:-} || $rc != 0 ]] || ! grep -q '^shim_test: .* 0 failures' "$OUT/$name.out"; then
    sed "s/^/    [$name] /" "$OUT/$name.out" >&2
  else
    grep -E '^(info|skip)' "$OUT/$name.out" | sed "s/^/    [$name] /" >&2 || true
  fi
  local summary
  summary=$(printf '%s\n' "$out" | grep '^shim_test:' || true)
  if ((rc == 124)); then die "$name timed out after ${RUN_TIMEOUT}s"; fi
  [[ $rc == 0 && $summary == *" 0 failures" ]] || die "$name failed (exit $rc): ${summary:-no summary line}"
  results+=("$name: ${summary#shim_test: }")
}

qemu=()
qemu_dyn=()
if [[ -n $QEMU ]]; then
  qemu=("$QEMU")
  qemu_dyn=("$QEMU" -L "$SYSROOT")
fi
log "running under ${QEMU:-the host CPU}"
run static mbedTLS "$EXPECT_SHA" -- "${qemu[@]}" "$OUT/shim_test-static"
run static-sha-mbedtls mbedTLS none SATELLITE_SHA256=mbedtls -- "${qemu[@]}" "$OUT/shim_test-static"
run dynamic OpenSSL "$EXPECT_SHA" -- "${qemu_dyn[@]}" "$OUT/shim_test-dynamic"

if [[ $ARCH == armhf ]]; then
  # ARMv8 CPU running 32-bit code: the AArch32 crypto-extension path of csha256.c.
  v8flags=(-march=armv8-a+crc -mfpu=crypto-neon-fp-armv8 -mfloat-abi=hard)
  if compile_csha256 "$OUT/csha256-armv8.o" "${v8flags[@]}"; then
    compile "$OUT/shim_test-armv8.log" "${CC[@]}" "${CFLAGS[@]}" "${v8flags[@]}" -I"$CURL_PREFIX/include" \
      "$ROOT/cross/test/shim_test.c" "$OUT/csha256-armv8.o" "${OBJS[@]}" -o "$OUT/shim_test-armv8" -static \
      -L"$CURL_PREFIX/lib" -lcurl -lmbedtls -lmbedx509 -lmbedcrypto -lz -lcrypt -lpthread
    run static-armv8-aarch32 mbedTLS armv8-ce -- "$QEMU" -cpu max "$OUT/shim_test-armv8"
  fi
fi
log "ok: $ARCH ($TRIPLE$clang_note)"
for r in "${results[@]}"; do log "  $r"; done
for n in "${notes[@]}"; do log "  note: $n"; done
