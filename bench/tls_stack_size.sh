#!/usr/bin/env bash
# bench/tls_stack_size.sh: what swift-nio-ssl (BoringSSL) would add to the static edge
# binary. Builds bench/tls-probe twice as fully static -Osize executables (the flags of
# scripts/build-static): the same SwiftNIO HTTP/1 server without TLS and with
# NIOSSLServerHandler, and prints both sizes and the difference. The alternative, an
# mbedTLS-backed handler, reuses the mbedTLS SSL code the static binary already links for
# libcurl (`mbedtls_ssl_handshake` is checked present by scripts/build-static), so its cost
# is the glue only. Takes about 12 minutes on 2 cores (BoringSSL compiles from source).
set -euo pipefail
cd "$(dirname "$0")/tls-probe"
scratch=${TLS_PROBE_SCRATCH:-/tmp/satellite-tls-probe}
swift build -c release -j "${JOBS:-1}" --scratch-path "$scratch" --static-swift-stdlib \
    -Xswiftc -static-executable -Xswiftc -Osize -Xlinker --icf=safe -Xlinker -s >/dev/null
without=$(stat -c %s "$scratch/release/nossl")
with=$(stat -c %s "$scratch/release/withssl")
echo "static NIO HTTP server without TLS:   $without bytes"
echo "same with swift-nio-ssl (BoringSSL): $with bytes"
echo "swift-nio-ssl adds:                  $((with - without)) bytes"
