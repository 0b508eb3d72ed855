#!/usr/bin/python3
"""Turn the JSON lines of `plasma bench sweep` into the SVG plots of docs/plots/.

Usage: scripts/plots.py SWEEP.jsonl OUTDIR
Needs Debian's python3-matplotlib (apt-get install python3-matplotlib).
"""
import json
import sys

import matplotlib

matplotlib.use("svg")
matplotlib.rcParams["svg.hashsalt"] = "plasma-stream"  # the same input gives the same file
import matplotlib.pyplot as plt  # noqa: E402


def human(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:g} {unit}"
        n /= 1024


def save(fig, path):
    fig.tight_layout()
    fig.savefig(path, metadata={"Date": None})
    plt.close(fig)


def main(src, out):
    points = [json.loads(line) for line in open(src) if line.strip().startswith("{")]
    machine = next((p for p in points if p.get("sweep") == "machine"), {})
    note = machine.get("cpu", "unknown CPU")
    note += ", AVX-512" if "avx512f" in machine.get("avx512", "") else ", no AVX-512"
    if machine.get("cores"):
        note += f", {machine['cores']} cores"
    if machine.get("date"):
        note += ", " + machine["date"]
    by = lambda kind: [p for p in points if p.get("sweep") == kind]

    size = by("size")
    if size:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        x = [p["bytes"] for p in size]
        ax.plot(x, [p["GBps"] for p in size], "o-", color="tab:blue", label="throughput")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(x, [human(v) for v in x], rotation=45, fontsize=8)
        ax.set_xlabel("object size (one object per SYNC COPY, verified)")
        ax.set_ylabel("GB/s", color="tab:blue")
        cpu = ax.twinx()
        cpu.plot(x, [p["cpu_s_per_GB"] for p in size], "s--", color="tab:red", label="CPU")
        cpu.set_yscale("log")
        cpu.set_ylabel("CPU s per GB, both stream servers", color="tab:red")
        ax.set_title("SYNC COPY over loopback against object size\n" + note, fontsize=9)
        save(fig, f"{out}/size.svg")

    batch = by("batch")
    if batch:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        x = [p["objects"] for p in batch]
        ax.plot(x, [p["objects_per_s"] for p in batch], "o-")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(x, [str(v) for v in x], fontsize=8)
        ax.set_xlabel(f"objects per COPY ({human(batch[0]['bytes'])} each)")
        ax.set_ylabel("objects/s")
        ax.set_title("COPY of many small objects over loopback\n" + note, fontsize=9)
        save(fig, f"{out}/batch.svg")

    bcast = by("broadcast")
    if bcast:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        x = [p["nodes"] for p in bcast]
        ax.plot(x, [p["broadcast_s"] for p in bcast], "o-", label="to every node (prefetch group)")
        ax.plot(x, [p["single_s"] for p in bcast], "s--", label="to one node (SYNC COPY)")
        ax.set_xticks(x)
        ax.set_xlabel("nodes in the group (the source included)")
        ax.set_ylabel("seconds")
        ax.set_ylim(bottom=0)
        ax.legend()
        p0 = bcast[0]
        ax.set_title(f"Broadcast of {human(p0['bytes'])}, links of {p0['rate']} each way (network namespaces)\n" + note, fontsize=9)
        save(fig, f"{out}/broadcast.svg")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
