#!/bin/sh
# Installs versitygw (an Apache-2.0 S3 server used by the cold-tier tests) once,
# outside the clone, and prints its path. The first build takes minutes; later
# runs find the binary and return at once.
set -eu
VERSION=v1.8.0
BIN_DIR="${PLASMA_TOOLS_BIN:-$HOME/.cache/plasma-tools/bin}"
BIN="$BIN_DIR/versitygw"
if [ ! -x "$BIN" ]; then
	mkdir -p "$BIN_DIR"
	echo "installing versitygw $VERSION into $BIN_DIR (first time only; takes minutes)" >&2
	GOBIN="$BIN_DIR" go install "github.com/versity/versitygw/cmd/versitygw@$VERSION"
fi
echo "$BIN"
