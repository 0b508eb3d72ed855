#!/usr/bin/env bash
# Builds the Plasma Stream container image from scratch:
#   deploy/container/build.sh [TAG]          binaries, then the image (docker or podman)
#   deploy/container/build.sh --binaries     the static binaries only, in deploy/container/bin/
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/../.."
version="$(git describe --tags --always --dirty 2>/dev/null || echo dev)"
out="${PLASMA_BIN_DIR:-$here/bin}"   # the image takes them from $here/bin
mkdir -p "$out"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/plasmastream/plasmastream/internal/cliutil.Version=$version" \
  -o "$out/" ./cmd/...
echo "static binaries in $out/ (version $version)"
[ "${1:-}" = --binaries ] && exit 0
tag="${1:-plasmastream:$version}"
engine="$(command -v docker || command -v podman || true)"
if [ -z "$engine" ]; then
  echo "no docker or podman here: the binaries are built; run '<engine> build -t $tag $here' where there is one" >&2
  exit 1
fi
"$engine" build -t "$tag" "$here"
echo "image $tag"
