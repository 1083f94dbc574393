#!/usr/bin/env bash
# cross/build-curl.sh TARGET        TARGET = host | arm64 | armhf
#
# Builds a static libcurl (libcurl.a + headers + libcurl.pc) from Debian's own curl source
# package, with mbedTLS for TLS and zlib, HTTP and HTTPS only:
#   host   native gcc                         -> .build-static/prefix
#   arm64  aarch64-linux-gnu-gcc + sysroot    -> .build-cross-arm64/curl-prefix
#   armhf  arm-linux-gnueabihf-gcc + sysroot  -> .build-cross-armhf/curl-prefix
# (arm64/armhf need the sysroot of cross/assemble-sysroot.sh ARCH, which provides the
# target's libmbedtls/libmbedx509/libmbedcrypto/libz archives and headers.)
#
# Source: `apt-get source curl` (the version the configured Debian mirror serves, e.g.
# 7.88.1-10+deb12u15), fetched with a private apt configuration (deb-src lines generated
# from the system's Debian mirror, lists under .build-static/apt) so the system's apt setup
# is not changed and no deb-src line is needed. Debian's patch series is applied exactly as
# debian/rules does for the OpenSSL flavour: every patch except the last two (90_gnutls,
# 99_nss, which only rename the library), then autoreconf. The prepared tree is cached in
# .build-static/src and shared by all targets; each target builds out of tree.
#
# Environment: JOBS (default: nproc), CURL_SOURCE_DIR (use this unpacked, patched tree
# instead of fetching), DEBIAN_MIRROR / DEBIAN_SECURITY_MIRROR (override the mirrors).
# Every step is bounded with timeout(1); a failure prints the step and the log's tail.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${1:-}
JOBS=${JOBS:-$(nproc)}
CACHE=$ROOT/.build-static
log() { printf '[build-curl %s] %s\n' "$TARGET" "$*" >&2; }
die() { printf 'error [build-curl %s]: %s\n' "$TARGET" "$*" >&2; exit 1; }

# run_step NAME SECONDS LOGFILE CMD...: run CMD bounded in time, output to LOGFILE; on
# failure say which step failed and show the end of its log.
run_step() {
  local name=$1 secs=$2 logfile=$3 rc=0; shift 3
  timeout --kill-after=10 "$secs" "$@" >"$logfile" 2>&1 || rc=$?
  if ((rc)); then
    ((rc == 124)) && printf 'error [build-curl %s]: %s timed out after %ss\n' "$TARGET" "$name" "$secs" >&2 \
      || printf 'error [build-curl %s]: %s failed (exit %s)\n' "$TARGET" "$name" "$rc" >&2
    tail -n 25 "$logfile" | sed 's/^/    /' >&2
    printf '    (full log: %s)\n' "$logfile" >&2
    exit 1
  fi
}

case $TARGET in
  host)
    TRIPLE=$(gcc -dumpmachine)
    OUT=$CACHE
    PREFIX=$CACHE/prefix
    CC_CMD=(gcc)
    CONFIG_HOST=()
    SYSROOT=""
    EXTRA_CPPFLAGS="-D_FILE_OFFSET_BITS=64"
    ;;
  arm64 | armhf)
    [[ $TARGET == arm64 ]] && TRIPLE=aarch64-linux-gnu || TRIPLE=arm-linux-gnueabihf
    OUT=$ROOT/.build-cross-$TARGET
    PREFIX=$OUT/curl-prefix
    SYSROOT=$OUT/sysroot
    [[ -f $SYSROOT/.assembled ]] || die "no sysroot at $SYSROOT: run cross/assemble-sysroot.sh $TARGET first"
    command -v "$TRIPLE-gcc" >/dev/null || die "$TRIPLE-gcc not found: apt-get install gcc-$TRIPLE"
    CC_CMD=("$TRIPLE-gcc" "--sysroot=$SYSROOT")
    CONFIG_HOST=(--host="$TRIPLE" --build="$(gcc -dumpmachine)")
    # 64-bit file offsets and time on the 32-bit target (no-ops on aarch64).
    EXTRA_CPPFLAGS="-D_FILE_OFFSET_BITS=64 -D_TIME_BITS=64"
    ;;
  *) echo "usage: cross/build-curl.sh host|arm64|armhf" >&2; exit 64 ;;
esac
for tool in timeout make autoreconf libtoolize dpkg-source patch pkg-config "${CC_CMD[0]}"; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install make autoconf automake libtool dpkg-dev patch pkg-config gcc)"
done
mkdir -p "$CACHE" "$OUT"

# ------------------------------------------------------------------ source
# system_mirror debian|debian-security: the first such URI in the system's apt sources.
system_mirror() {
  local files=() uri
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
    [[ -f $f ]] && files+=("$f")
  done
  uri=$( ( ((${#files[@]})) && grep -hoE "https?://[^ ]+/$1/?( |\$)" "${files[@]}" ) 2>/dev/null | head -n1 | tr -d ' ' || true)
  echo "${uri:-http://deb.debian.org/$1}"
}

# Private apt configuration with deb-src lines for the system's Debian mirror.
apt_private() {
  local dir=$CACHE/apt mirror security suite
  mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
  suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
  mirror=${DEBIAN_MIRROR:-$(system_mirror debian)}
  security=${DEBIAN_SECURITY_MIRROR:-$(system_mirror debian-security)}
  cat >"$dir/sources.list" <<EOF
deb-src ${mirror%/} $suite main
deb-src ${mirror%/} $suite-updates main
deb-src ${security%/} $suite-security main
EOF
  APT_OPTS=(-o "Dir::Etc::SourceList=$dir/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir/cache" -o "APT::Sandbox::User=root"
    -o "Acquire::Retries=3" -o "Acquire::http::Timeout=30")
  # Refresh the source lists at most once a day.
  if [[ -z $(find "$dir/lists" -maxdepth 1 -name '*Sources*' -mmin -1440 2>/dev/null | head -n1) ]]; then
    log "apt-get update (deb-src: ${mirror%/} $suite, $suite-updates, $suite-security)"
    # Retried: a mirror in the middle of a sync serves index files that fail their hashes.
    local attempt
    for attempt in 1 2 3; do
      if timeout --kill-after=10 300 apt-get "${APT_OPTS[@]}" update >"$dir/update.log" 2>&1 \
        && ! grep -qE '^(E:|W: Failed|Err:)' "$dir/update.log"; then
        break
      fi
      ((attempt < 3)) || { tail -n 15 "$dir/update.log" >&2; die "apt-get update failed 3 times"; }
      log "apt-get update failed (attempt $attempt), retrying in 20s"
      sleep 20
    done
  fi
}

prepare_source() {
  if [[ -n ${CURL_SOURCE_DIR:-} ]]; then
    SRC=$CURL_SOURCE_DIR
    [[ -x $SRC/configure ]] || die "CURL_SOURCE_DIR=$SRC has no configure script"
    return
  fi
  apt_private
  local version dl=$CACHE/src/download
  version=$(apt-get "${APT_OPTS[@]}" source --print-uris curl 2>/dev/null | awk '$2 ~ /^curl_.*\.dsc$/ {print $2; exit}' | sed 's/^curl_//; s/\.dsc$//')
  [[ -n $version ]] || die "apt-get source --print-uris curl found no curl source package"
  SRC=$CACHE/src/curl-$version
  if [[ -f $SRC/.satellite-prepared ]]; then
    log "using cached Debian curl $version source ($SRC)"
    return
  fi
  log "fetching Debian curl $version source"
  rm -rf "$dl" "$SRC" "$SRC.tmp"
  mkdir -p "$dl"
  (cd "$dl" && run_step "apt-get source curl" 600 "$dl/fetch.log" \
    apt-get "${APT_OPTS[@]}" source --download-only curl)
  run_step "dpkg-source -x" 300 "$dl/unpack.log" \
    dpkg-source --no-check --skip-patches -x "$dl/curl_$version.dsc" "$SRC.tmp"
  # Debian's patch series minus the flavour patches, in order (what debian/rules builds
  # the OpenSSL flavour from).
  local p applied=0
  while read -r p; do
    p=${p%%#*}; p=${p//[[:space:]]/}
    [[ -z $p || $p == 90_gnutls.patch || $p == 99_nss.patch ]] && continue
    patch -d "$SRC.tmp" -p1 --batch --forward --silent <"$SRC.tmp/debian/patches/$p" >>"$dl/patch.log" 2>&1 \
      || { tail -n 20 "$dl/patch.log" >&2; die "Debian patch $p did not apply"; }
    applied=$((applied + 1))
  done <"$SRC.tmp/debian/patches/series"
  log "applied $applied Debian patches (skipped the gnutls/nss flavour patches); autoreconf"
  (cd "$SRC.tmp" && run_step "autoreconf" 600 "$dl/autoreconf.log" autoreconf -fi)
  echo "$version" >"$SRC.tmp/.satellite-prepared"
  mv "$SRC.tmp" "$SRC"
}

# ------------------------------------------------------------------ configure + build
# HTTP and HTTPS only: every other protocol and every optional library off.
CONFIGURE_ARGS=(
  --disable-shared --enable-static --with-pic
  --disable-dependency-tracking --disable-silent-rules --enable-optimize --disable-debug
  --disable-curldebug --enable-symbol-hiding
  --with-mbedtls --with-zlib
  --enable-http --disable-ftp --disable-file --disable-ldap --disable-ldaps --disable-rtsp
  --disable-dict --disable-telnet --disable-tftp --disable-pop3 --disable-imap --disable-smb
  --disable-smtp --disable-gopher --disable-mqtt --disable-websockets
  --disable-manual --disable-libcurl-option --disable-alt-svc --disable-hsts --disable-doh
  --disable-ntlm --disable-ntlm-wb --disable-tls-srp --disable-cookies --disable-mime
  --disable-netrc --disable-unix-sockets --disable-dnsshuffle --disable-progress-meter
  --disable-get-easy-options --disable-ares
  --enable-threaded-resolver --enable-pthreads --enable-ipv6 --enable-proxy --enable-http-auth
  --without-libpsl --without-brotli --without-zstd --without-nghttp2 --without-ngtcp2
  --without-nghttp3 --without-quiche --without-msh3 --without-hyper --without-libidn2
  --without-librtmp --without-libssh2 --without-libssh --without-wolfssh --without-libgsasl
  --without-gssapi --without-zsh-functions-dir --without-fish-functions-dir
  # Debian's CA bundle (ca-certificates); `upstream.caFile` overrides it per request.
  --with-ca-bundle=/etc/ssl/certs/ca-certificates.crt --without-ca-path --without-ca-fallback
)

prepare_source
BUILD=$OUT/curl-build
stamp_text="$(cat "$SRC/.satellite-prepared" 2>/dev/null || echo custom) ${CC_CMD[*]} ${CONFIG_HOST[*]} $EXTRA_CPPFLAGS ${CONFIGURE_ARGS[*]}"
if [[ -f $PREFIX/lib/libcurl.a && -f $PREFIX/.stamp && "$(cat "$PREFIX/.stamp")" == "$stamp_text" ]]; then
  log "up to date: $PREFIX/lib/libcurl.a"
  exit 0
fi
rm -rf "$BUILD" "$PREFIX"
mkdir -p "$BUILD"
env_vars=(CC="${CC_CMD[*]}" CPPFLAGS="$EXTRA_CPPFLAGS" CFLAGS="-ffunction-sections -fdata-sections")
if [[ -n $SYSROOT ]]; then
  env_vars+=(PKG_CONFIG_LIBDIR="$SYSROOT/usr/lib/$TRIPLE/pkgconfig:$SYSROOT/usr/share/pkgconfig"
    PKG_CONFIG_SYSROOT_DIR="$SYSROOT" PKG_CONFIG_PATH="")
fi
log "configure ($TRIPLE, HTTP/HTTPS, mbedTLS, zlib)"
(cd "$BUILD" && run_step configure 900 "$BUILD/configure.log" \
  env "${env_vars[@]}" "$SRC/configure" --prefix="$PREFIX" "${CONFIG_HOST[@]}" "${CONFIGURE_ARGS[@]}")
# configure must have picked exactly mbedTLS and zlib.
grep -q '^#define USE_MBEDTLS 1' "$BUILD/lib/curl_config.h" || die "configure did not enable mbedTLS (see $BUILD/configure.log)"
grep -q '^#define HAVE_LIBZ 1' "$BUILD/lib/curl_config.h" || die "configure did not enable zlib (see $BUILD/configure.log)"
for bad in USE_OPENSSL USE_GNUTLS USE_NGHTTP2 USE_LIBPSL HAVE_BROTLI HAVE_ZSTD USE_LIBIDN2 USE_LIBSSH2 USE_LIBRTMP; do
  ! grep -q "^#define $bad 1" "$BUILD/lib/curl_config.h" || die "configure enabled $bad"
done
log "make -j$JOBS (libcurl only)"
run_step "make" 1800 "$BUILD/make.log" make -C "$BUILD/lib" -j"$JOBS"
run_step "make install" 300 "$BUILD/install.log" sh -c \
  "make -C '$BUILD/lib' install && make -C '$BUILD/include' install && make -C '$BUILD' install-pkgconfigDATA"
protocols=$(sed -n 's/^supported_protocols="\(.*\)"/\1/p' "$PREFIX/lib/pkgconfig/libcurl.pc")
[[ $protocols == "HTTP HTTPS" ]] || die "libcurl supports '$protocols', expected 'HTTP HTTPS'"
echo "$stamp_text" >"$PREFIX/.stamp"
log "done: $PREFIX/lib/libcurl.a ($(stat -c %s "$PREFIX/lib/libcurl.a") bytes), protocols: $protocols;" \
  "libs: $(sed -n 's/^Libs: //p' "$PREFIX/lib/pkgconfig/libcurl.pc")"
