#!/bin/sh
# Installs the standard NATS command-line tool (natscli, Apache-2.0), which
# the bridge's tests use as a process of a cluster would ("nats request
# plasma.import PATH"), once, outside the clone, and prints its path.
set -eu
VERSION=v0.5.0
BIN_DIR="${PLASMA_TOOLS_BIN:-$HOME/.cache/plasma-tools/bin}"
BIN="$BIN_DIR/nats"
if [ ! -x "$BIN" ]; then
	mkdir -p "$BIN_DIR"
	echo "installing natscli $VERSION into $BIN_DIR (first time only; takes a few minutes)" >&2
	GOBIN="$BIN_DIR" go install "github.com/nats-io/natscli/nats@$VERSION"
fi
echo "$BIN"
