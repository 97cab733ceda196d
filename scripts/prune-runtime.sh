#!/usr/bin/env bash
# Prune a production node_modules (from `npm ci --omit=dev`) down to what `faceopt` loads at run time on
# ONE platform, for the container images (Dockerfile, Dockerfile.gpu) and for test/deploy.
#
# Usage: scripts/prune-runtime.sh [NODE_MODULES_DIR]      (default: ./node_modules)
#   PRUNE_ARCH  node's arch to keep (default: `node -p process.arch`, e.g. x64 or arm64)
#   PRUNE_LIBC  glibc or musl (default: glibc, musl when /etc/alpine-release exists)
#
# What goes (measured on onnxruntime-node 1.30 / sharp 0.35 / echarts 6, linux x64: 409 MB -> 77 MB, apparent size):
#   - onnxruntime-node's bindings for other platforms and arches (darwin, win32, linux/<other arch>):
#     245 MB; the CUDA/TensorRT provider libraries installed for linux/x64 are kept.
#   - sharp's @img/* prebuilt packages for other platforms, arches or libcs.
#   - echarts' and zrender's bundled dist/ builds (faceopt imports the ES modules: echarts/core,
#     echarts/charts, ... which resolve to lib/), their TypeScript sources, protobufjs' pbjs/pbts CLI,
#     @jsquash/jpeg's encoder (faceopt only decodes with it).
#   - type declarations, source maps, TypeScript sources, Markdown, docs/tests/examples folders.
# Licence files (LICENSE*, NOTICE*, COPYING*) always stay.
set -euo pipefail

NM="${1:-node_modules}"
if [ ! -d "$NM" ]; then
  echo "prune-runtime: no such folder: $NM (run npm ci --omit=dev first)" >&2
  exit 2
fi
ARCH="${PRUNE_ARCH:-$(node -p process.arch)}"
LIBC="${PRUNE_LIBC:-$([ -f /etc/alpine-release ] && echo musl || echo glibc)}"
before=$(du -sk "$NM" | cut -f1)

# 1. onnxruntime-node: keep bin/napi-v*/linux/<arch> only
for napi in "$NM"/onnxruntime-node/bin/napi-v*; do
  [ -d "$napi" ] || continue
  for platform in "$napi"/*; do
    [ "$(basename "$platform")" = linux ] || rm -rf "$platform"
  done
  for arch in "$napi"/linux/*; do
    [ -e "$arch" ] || continue
    [ "$(basename "$arch")" = "$ARCH" ] || rm -rf "$arch"
  done
done
if ! ls "$NM"/onnxruntime-node/bin/napi-v*/linux/"$ARCH"/onnxruntime_binding.node >/dev/null 2>&1; then
  echo "prune-runtime: onnxruntime-node has no binding for linux/$ARCH" >&2
  exit 3
fi

# 2. sharp: keep @img/sharp-<os>-<arch> and @img/sharp-libvips-<os>-<arch> for this platform (plus helpers)
os_tag=linux; [ "$LIBC" = musl ] && os_tag=linuxmusl
for pkg in "$NM"/@img/sharp-*; do
  [ -e "$pkg" ] || continue
  case "$(basename "$pkg")" in
    "sharp-$os_tag-$ARCH" | "sharp-libvips-$os_tag-$ARCH") ;;
    *) rm -rf "$pkg" ;;
  esac
done

# 3. bundles and tools nothing loads at run time
rm -rf "$NM"/echarts/dist "$NM"/echarts/types "$NM"/echarts/ssr/client/dist "$NM"/echarts/src \
  "$NM"/zrender/dist "$NM"/zrender/src "$NM"/zrender/build \
  "$NM"/protobufjs/cli "$NM"/protobufjs/dist "$NM"/@types \
  "$NM"/onnxruntime-node/lib "$NM"/@jsquash/jpeg/codec/enc

# 4. files no runtime reads: declarations, maps, TS sources, docs; folders of docs, tests, examples
find "$NM" -type f \( -name '*.d.ts' -o -name '*.d.cts' -o -name '*.d.mts' -o -name '*.map' -o -name '*.ts' \
  -o -name '*.mts' -o -name '*.cts' -o -name '*.md' -o -name '*.markdown' -o -name '.eslintrc*' -o -name '.prettierrc*' \
  -o -name '.editorconfig' -o -name '.npmignore' -o -name 'tsconfig*.json' -o -name '*.tsbuildinfo' \) \
  ! -iname 'LICENSE*' ! -iname 'NOTICE*' ! -iname 'COPYING*' -delete
find "$NM" -depth -type d \( -name test -o -name tests -o -name __tests__ -o -name docs -o -name example \
  -o -name examples -o -name .github -o -name benchmark -o -name benchmarks -o -name coverage \) \
  -exec rm -rf {} +

after=$(du -sk "$NM" | cut -f1)
echo "prune-runtime: $NM linux/$ARCH ($LIBC): $((before / 1024)) MB -> $((after / 1024)) MB"
