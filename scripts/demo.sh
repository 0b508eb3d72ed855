#!/usr/bin/env bash
# The local demo: builds the binaries, starts a store, puts a file, reads it
# back zero-copy, lists and stats the store, and stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o bin/ ./cmd/...
export PATH="$PWD/bin:$PATH"
work=$(mktemp -d /tmp/plasma-demo.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

wait_socket() { for _ in $(seq 200); do [ -S "$1" ] && return 0; sleep 0.05; done; echo "no socket $1" >&2; exit 1; }

echo "== starting a store with 256 MiB of shared memory"
plasma-store-server -m 256MiB -s "$work/store.sock" --log-level warn &
pids+=($!)
wait_socket "$work/store.sock"
P="plasma -s $work/store.sock"

head -c 50000000 /dev/urandom > "$work/input"
echo "== putting a 50 MB file (the id is its BLAKE3 content address)"
id=$($P put --metadata "demo file" "$work/input")
echo "   id: $id"
echo "== reading it back"
$P get -o "$work/output" "$id"
cmp "$work/input" "$work/output" && echo "   identical: $(stat -c %s "$work/output") bytes"
echo "== the store"
$P ls
$P stat
