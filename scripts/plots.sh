#!/usr/bin/env bash
# Regenerates docs/plots/: runs `plasma bench sweep` (object size 1 KiB to
# MAX_SIZE, objects per COPY 1 to 65,536, broadcast to groups of 2 to 16
# nodes when run as root) into docs/plots/sweep.jsonl, headed by the CPU it
# ran on, then draws the SVG plots from it with scripts/plots.py.
#   scripts/plots.sh                 # measure and plot (root for the broadcast part)
#   scripts/plots.sh --replot        # plot docs/plots/sweep.jsonl again
#   MAX_SIZE=4294967296 scripts/plots.sh   # sizes up to 4 GiB (two stores of 4 GiB + 64 MiB)
# Extra arguments go to plasma bench sweep.
set -euo pipefail
cd "$(dirname "$0")/.."
out=docs/plots
mkdir -p "$out"
if [ "${1:-}" != "--replot" ]; then
  go build -o bin/ ./cmd/...
  args=(--max-size "${MAX_SIZE:-1073741824}")
  [ "$(id -u)" = 0 ] || args+=(--no-broadcast)
  tmp=$(mktemp)
  trap 'rm -f "$tmp"' EXIT
  {
    printf '{"sweep":"machine","cpu":"%s","avx512":"%s","cores":%d,"date":"%s"}\n' \
      "$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')" \
      "$(grep -o 'avx512[a-z]*' /proc/cpuinfo | sort -u | tr '\n' ' ' | sed 's/ $//')" \
      "$(nproc)" "$(date -u +%F)"
    bin/plasma bench sweep "${args[@]}" "$@" | tee /dev/stderr
  } > "$tmp"
  chmod 644 "$tmp"
  mv "$tmp" "$out/sweep.jsonl"
fi
python=/usr/bin/python3
"$python" -c 'import matplotlib' 2>/dev/null || { echo "needs matplotlib: apt-get install python3-matplotlib" >&2; exit 1; }
"$python" scripts/plots.py "$out/sweep.jsonl" "$out"
echo "wrote $(ls "$out"/*.svg | tr '\n' ' ')"
