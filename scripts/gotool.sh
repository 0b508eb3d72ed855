#!/bin/sh
# gotool.sh NAME PACKAGE VERSION WHAT: installs the Go command PACKAGE@VERSION
# as NAME into $PLASMA_TOOLS_BIN (default ~/.cache/plasma-tools/bin), outside
# the clone, once, and prints its path. Later runs find it and return at once.
set -eu
NAME=$1 PACKAGE=$2 VERSION=$3 WHAT=$4
BIN_DIR="${PLASMA_TOOLS_BIN:-$HOME/.cache/plasma-tools/bin}"
BIN="$BIN_DIR/$NAME"
if [ ! -x "$BIN" ]; then
	mkdir -p "$BIN_DIR"
	echo "installing $WHAT $VERSION into $BIN_DIR (first time only; takes minutes)" >&2
	GOBIN="$BIN_DIR" go install "$PACKAGE@$VERSION"
fi
echo "$BIN"
