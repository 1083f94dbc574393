#!/usr/bin/env bash
# cross/make-swift-sdk.sh ARCH [RUNTIME_LIB_DIR]        ARCH = arm64 | armhf
#
# Makes a Swift SDK artifact bundle for `swift build --swift-sdk` from the sysroot of
# cross/assemble-sysroot.sh ARCH and the JSON files in cross/swift-sdk/TRIPLE/:
#   .build-cross-ARCH/swift-sdks/satellite-lite-ARCH.artifactbundle/
#     info.json
#     satellite-lite-ARCH/TRIPLE/{swift-sdk.json, toolset.json, sysroot -> ../../../../sysroot}
# RUNTIME_LIB_DIR is the `usr/lib` directory of a Swift toolchain (or SDK) for the TARGET,
# of exactly the host compiler's version (`swift --version`); its `swift/` and
# `swift_static/` are copied into the sysroot's usr/lib (docs/cross.md says where to get
# one). Without it the bundle is complete except for the Swift runtime: SwiftPM accepts it
# and compiles the C targets, and the Swift targets fail with "no such module 'Swift'".
# Then:
#   swift build -c release --swift-sdks-path .build-cross-ARCH/swift-sdks --swift-sdk TRIPLE
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ARCH=${1:-}
RUNTIME=${2:-}
case $ARCH in
  arm64) TRIPLE=aarch64-unknown-linux-gnu RUNTIME_ARCH=aarch64 ;;
  armhf) TRIPLE=armv7-unknown-linux-gnueabihf RUNTIME_ARCH=armv7 ;;
  *) echo "usage: cross/make-swift-sdk.sh arm64|armhf [RUNTIME_LIB_DIR]" >&2; exit 64 ;;
esac
die() { printf 'error [swift-sdk %s]: %s\n' "$ARCH" "$*" >&2; exit 1; }
OUT=$ROOT/.build-cross-$ARCH
SYSROOT=$OUT/sysroot
[[ -f $SYSROOT/.assembled ]] || die "no sysroot: run cross/assemble-sysroot.sh $ARCH"
NAME=satellite-lite-$ARCH
BUNDLE=$OUT/swift-sdks/$NAME.artifactbundle
rm -rf "$BUNDLE"
mkdir -p "$BUNDLE/$NAME/$TRIPLE"
cp "$ROOT/cross/swift-sdk/$TRIPLE/swift-sdk.json" "$ROOT/cross/swift-sdk/$TRIPLE/toolset.json" "$BUNDLE/$NAME/$TRIPLE/"
ln -s ../../../../sysroot "$BUNDLE/$NAME/$TRIPLE/sysroot"
cat >"$BUNDLE/info.json" <<EOF
{
  "schemaVersion": "1.0",
  "artifacts": {
    "$NAME": {
      "type": "swiftSDK",
      "version": "0.1.0",
      "variants": [
        { "path": "$NAME/$TRIPLE", "supportedTriples": ["x86_64-unknown-linux-gnu"] }
      ]
    }
  }
}
EOF

if [[ -n $RUNTIME ]]; then
  [[ -d $RUNTIME/swift/linux ]] || die "$RUNTIME/swift/linux not found (expected a toolchain's usr/lib)"
  [[ -d $RUNTIME/swift/linux/$RUNTIME_ARCH ]] || die "$RUNTIME/swift/linux has no $RUNTIME_ARCH/ (runtime for another architecture?)"
  host_version=$(swift --version 2>&1 | sed -n 's/.*Swift version \([^ ]*\).*/\1/p' | head -n1)
  rm -rf "$SYSROOT/usr/lib/swift" "$SYSROOT/usr/lib/swift_static"
  cp -a "$RUNTIME/swift" "$SYSROOT/usr/lib/swift"
  [[ -d $RUNTIME/swift_static ]] && cp -a "$RUNTIME/swift_static" "$SYSROOT/usr/lib/swift_static"
  echo "runtime: copied from $RUNTIME (host compiler $host_version: the runtime must be the same version)"
fi
echo "$BUNDLE"
echo "swift build -c release --swift-sdks-path $OUT/swift-sdks --swift-sdk $TRIPLE"
