"""Benchmark: the store against pickling through shared memory and a pipe.

    python -m plasmastream.bench [--socket /tmp/plasma | --start-store BYTES] [--size-mib 256]

Measures, for one numpy array of --size-mib MiB (float64):

- plasma_put_GBps, plasma_get_p50_us / plasma_get_p99_us:
  ``plasmastream.plasma`` (the pyarrow.plasma replacement) ``put`` of the
  array (pickle protocol 5, the array's data copied once, out of band,
  into shared memory) and ``get`` (unpickled as a zero-copy read-only view);
  raw_get_p50_us is the plain buffer ``get`` of the same object (a
  memoryview, no unpickling), get_vs_raw the ratio of the p50s;
  plasma_pickle_e2e_GBps: ``put`` here, ``get`` in another process;

- put_GBps: ``client.put_array`` throughput (one copy into shared memory,
  create + seal + release), median of --repeat runs;
- get_p50_us_large / get_p99_us_large: latency of ``client.get_array`` of
  that array (get + zero-copy read-only ndarray view), and the same for a
  1 KiB object (get_p50_us_small);
- plasma_e2e_GBps: put in this process, get_array in another process (sent
  the id through a pipe, answers when it has the array);
- pickle_shm_GBps: ``pickle.dumps`` (protocol 5, in band), copy into a
  ``multiprocessing.shared_memory`` block, the other process
  ``pickle.loads`` from it;
- pickle_pipe_GBps: ``Connection.send`` of the array through a
  ``multiprocessing.Pipe`` (os.pipe) to the other process, which receives
  (unpickles) it.

GB/s are 10^9 bytes of the array per second, end to end (until the other
process has the array). Prints the three paths side by side (put, get p50,
end to end), the ratio of the plasma get p50 to the raw buffer get p50, the
details, then as the last line one JSON object with all the figures. With
neither --socket nor --start-store and no store at the default socket, it
runs a store of 1.5x the array plus 64 MiB for the run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import pickle
import statistics
import sys
import time

import numpy as np

import plasmastream
from plasmastream import ObjectID


def _plasma_pickle_child(sock: str, conn_in, conn_out) -> None:
    from plasmastream import plasma

    client = plasma.connect(sock)
    conn_out.send("ready")
    while True:
        msg = conn_in.recv()
        if msg is None:
            break
        conn_out.send(_length_released(client.get, msg))
    client.disconnect()


def _length_released(get, msg: str) -> int:
    """The length of the array ``get`` returns for the id ``msg`` (hex),
    once its reference is released: the parent deletes the object and
    puts the next one as soon as it has the answer, and a store of 1.5x
    the array has no room for both."""
    arr = get(ObjectID.from_hex(msg))
    n = arr.shape[0]
    del arr
    return n


def _plasma_child(sock: str, conn_in, conn_out) -> None:
    client = plasmastream.connect(sock)
    conn_out.send("ready")
    while True:
        msg = conn_in.recv()
        if msg is None:
            break
        conn_out.send(_length_released(client.get_array, msg))
    client.disconnect()


def _shm_child(name: str, conn_in, conn_out) -> None:
    from multiprocessing import shared_memory

    # A spawned child shares the parent's resource tracker; the parent
    # unlinks the block.
    shm = shared_memory.SharedMemory(name=name)
    conn_out.send("ready")
    while True:
        n = conn_in.recv()
        if n is None:
            break
        arr = pickle.loads(shm.buf[:n])
        conn_out.send(arr.shape[0])
        del arr
    shm.close()


def _pipe_child(conn_in, conn_out) -> None:
    conn_out.send("ready")
    while True:
        arr = conn_in.recv()
        if arr is None:
            break
        conn_out.send(arr.shape[0])
        del arr


class _Peer:
    """Another process with a pipe each way, ready (connected, its block
    attached) when the constructor returns, so that no timing includes its
    start."""

    def __init__(self, ctx, target, *args):
        self.to_child_r, self.to_child = ctx.Pipe(duplex=False)
        self.from_child, self.from_child_w = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=target, args=args + (self.to_child_r, self.from_child_w), daemon=True)
        self.proc.start()
        try:
            ready = self.from_child.poll(120) and self.from_child.recv() == "ready"
        except EOFError:  # it died (its error is on standard error)
            ready = False
        if not ready:
            self.stop()
            raise RuntimeError(f"the benchmark's {target.__name__} process did not start")

    def stop(self):
        try:
            self.to_child.send(None)
        except OSError:
            pass
        self.proc.join(30)
        if self.proc.is_alive():
            self.proc.kill()


def _pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def _latency(fn, n: int) -> list:
    """Seconds per call of fn() (its result dropped at once), n calls."""
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = fn()
        lat.append(time.perf_counter() - t0)
        del r
    return lat


def run_plasma_pickle(sock: str, arr, repeat: int, gets: int, ctx) -> dict:
    """plasmastream.plasma put/get of arr (pickle 5, out-of-band buffers)
    beside the raw buffer get of the same object."""
    from plasmastream import plasma

    res: dict = {}
    client = plasma.connect(sock, num_retries=0)
    try:
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            oid = client.put(arr)
            times.append(time.perf_counter() - t0)
            client.delete([oid])
        res["plasma_put_GBps"] = arr.nbytes / statistics.median(times) / 1e9
        oid = client.put(arr)
        got = client.get(oid)
        if not np.array_equal(got[:: 1 << 16], arr[:: 1 << 16]) or got.flags.writeable:
            raise AssertionError("plasma.get returned something other than a read-only view of the array")
        del got
        lat = _latency(lambda: client.get(oid), gets)
        res["plasma_get_p50_us"] = _pct(lat, 50) * 1e6
        res["plasma_get_p99_us"] = _pct(lat, 99) * 1e6
        lat = _latency(lambda: plasmastream.PlasmaClient.get(client, oid), gets)
        res["raw_get_p50_us"] = _pct(lat, 50) * 1e6
        res["get_vs_raw"] = res["plasma_get_p50_us"] / res["raw_get_p50_us"]
        client.delete([oid])
        peer = _Peer(ctx, _plasma_pickle_child, sock)
        try:
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                oid = client.put(arr)
                peer.to_child.send(oid.hex())
                peer.from_child.recv()
                times.append(time.perf_counter() - t0)
                client.delete([oid])
            res["plasma_pickle_e2e_GBps"] = arr.nbytes / statistics.median(times) / 1e9
        finally:
            peer.stop()
    finally:
        client.disconnect()
    return res


def run(sock: str, size_mib: int = 256, repeat: int = 5, gets: int = 1000) -> dict:
    nbytes = size_mib << 20
    arr = np.random.default_rng(1).random(nbytes // 8)
    res: dict = {"size_bytes": arr.nbytes}
    ctx = mp.get_context("spawn")
    res.update(run_plasma_pickle(sock, arr, repeat, gets, ctx))
    client = plasmastream.connect(sock)
    try:
        # put throughput
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            oid = client.put_array(arr)
            times.append(time.perf_counter() - t0)
            client.delete([oid])
        res["put_GBps"] = arr.nbytes / statistics.median(times) / 1e9
        res["put_GBps_best"] = arr.nbytes / min(times) / 1e9

        # get + view latency, large and small
        oid = client.put_array(arr)
        lat = []
        for _ in range(gets):
            t0 = time.perf_counter()
            view = client.get_array(oid)
            lat.append(time.perf_counter() - t0)
            del view
        res["get_p50_us_large"] = _pct(lat, 50) * 1e6
        res["get_p99_us_large"] = _pct(lat, 99) * 1e6
        small = client.put_array(np.arange(128, dtype=np.float64))
        lat = []
        for _ in range(gets):
            t0 = time.perf_counter()
            view = client.get_array(small)
            lat.append(time.perf_counter() - t0)
            del view
        res["get_p50_us_small"] = _pct(lat, 50) * 1e6
        client.delete([oid, small])

        # plasma to another process
        peer = _Peer(ctx, _plasma_child, sock)
        try:
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                oid = client.put_array(arr)
                peer.to_child.send(oid.hex())
                peer.from_child.recv()
                times.append(time.perf_counter() - t0)
                client.delete([oid])
            res["plasma_e2e_GBps"] = arr.nbytes / statistics.median(times) / 1e9
        finally:
            peer.stop()
    finally:
        client.disconnect()

    # pickle through multiprocessing.shared_memory
    from multiprocessing import shared_memory

    size = len(pickle.dumps(arr, protocol=5))
    shm = shared_memory.SharedMemory(create=True, size=size)
    try:
        times, lat = [], []
        for _ in range(repeat):
            t0 = time.perf_counter()
            payload = pickle.dumps(arr, protocol=5)
            shm.buf[: len(payload)] = payload
            times.append(time.perf_counter() - t0)
            del payload
            t0 = time.perf_counter()
            back = pickle.loads(shm.buf[:size])
            lat.append(time.perf_counter() - t0)
            del back
        res["pickle_shm_put_GBps"] = arr.nbytes / statistics.median(times) / 1e9
        res["pickle_shm_get_p50_us"] = _pct(lat, 50) * 1e6
        peer = _Peer(ctx, _shm_child, shm.name)
        try:
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                payload = pickle.dumps(arr, protocol=5)
                shm.buf[: len(payload)] = payload
                peer.to_child.send(len(payload))
                peer.from_child.recv()
                times.append(time.perf_counter() - t0)
                del payload
            res["pickle_shm_GBps"] = arr.nbytes / statistics.median(times) / 1e9
        finally:
            peer.stop()
    finally:
        shm.close()
        shm.unlink()

    # pickle through a pipe
    peer = _Peer(ctx, _pipe_child)
    try:
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            peer.to_child.send(arr)
            peer.from_child.recv()
            times.append(time.perf_counter() - t0)
        res["pickle_pipe_GBps"] = arr.nbytes / statistics.median(times) / 1e9
    finally:
        peer.stop()
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in res.items()}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown cpu"


def _store_listening(path: str) -> bool:
    import socket

    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(path)
        return True
    except OSError:
        return False


def _fmt(v, unit: str) -> str:
    return "—" if v is None else f"{v:.2f} {unit}" if unit == "GB/s" else f"{v:.1f} {unit}"


def side_by_side(res: dict) -> list:
    """The three ways to hand the array to another process, one row each:
    (path, put, get p50, put here -> value there)."""
    return [
        ("plasmastream.plasma put/get (pickle 5, zero copy)", _fmt(res["plasma_put_GBps"], "GB/s"),
         _fmt(res["plasma_get_p50_us"], "µs"), _fmt(res["plasma_pickle_e2e_GBps"], "GB/s")),
        ("multiprocessing.shared_memory + pickle", _fmt(res["pickle_shm_put_GBps"], "GB/s"),
         _fmt(res["pickle_shm_get_p50_us"], "µs"), _fmt(res["pickle_shm_GBps"], "GB/s")),
        ("multiprocessing pipe (pickle)", _fmt(None, ""), _fmt(None, ""), _fmt(res["pickle_pipe_GBps"], "GB/s")),
    ]


def _table(rows, head=None) -> None:
    rows = ([head] if head else []) + rows
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        cells = [f"{r[0]:<{widths[0]}}"] + [f"{c:>{w}}" for c, w in zip(r[1:], widths[1:])]
        print("  " + "  ".join(cells).rstrip())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m plasmastream.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--socket", "-s", default=None,
                    help=f"socket of a running store (default {plasmastream.DEFAULT_SOCKET}; when nothing listens "
                         "there and --socket is not given, a store is started for the run)")
    ap.add_argument("--size-mib", type=int, default=256, help="array size in MiB (default 256)")
    ap.add_argument("--repeat", type=int, default=5, help="runs per throughput figure (median)")
    ap.add_argument("--gets", type=int, default=1000, help="gets per latency figure")
    ap.add_argument("--start-store", metavar="BYTES", type=int, default=0,
                    help="run a plasma-store-server of BYTES for the benchmark (plasma.start_plasma_store) "
                         "instead of using --socket; needs about 1.5x the array")
    args = ap.parse_args(argv)
    start = args.start_store
    sock = args.socket or plasmastream.DEFAULT_SOCKET
    if not start and not _store_listening(sock):
        if args.socket:
            print(f"python -m plasmastream.bench: no store listens at {sock}: start plasma-store-server -s {sock} "
                  f"-m BYTES, or give --start-store BYTES to run one for the benchmark", file=sys.stderr)
            return 2
        start = (args.size_mib << 20) * 3 // 2 + (64 << 20)
        print(f"no store at {sock}: starting a plasma-store-server of {start} bytes for the run", file=sys.stderr)
    try:
        if start:
            from plasmastream.plasma import start_plasma_store

            with start_plasma_store(start) as (name, _):
                res = run(name, args.size_mib, args.repeat, args.gets)
        else:
            res = run(sock, args.size_mib, args.repeat, args.gets)
    except (plasmastream.PlasmaError, FileNotFoundError, RuntimeError) as e:
        print(f"python -m plasmastream.bench: {e}", file=sys.stderr)
        return 1
    print(f"array: {res['size_bytes'] / 2**20:.0f} MiB float64, python {sys.version.split()[0]}, "
          f"numpy {np.__version__}, {os.cpu_count()} cpus ({_cpu_model()})")
    print("side by side (put: into the store or shared memory; get: p50 in this process; "
          "end to end: put here, the value in another process):")
    _table(side_by_side(res), ("path", "put", "get p50", "end to end"))
    print(f"plasma.get p50 / raw buffer get p50: {res['get_vs_raw']:.2f}x "
          f"({res['plasma_get_p50_us']:.1f} µs / {res['raw_get_p50_us']:.1f} µs; the target is within 2x)")
    print("details:")
    _table([
        ("plasma.get p99", f"{res['plasma_get_p99_us']:.1f} µs", ""),
        ("raw buffer get (memoryview)", f"{res['raw_get_p50_us']:.1f} µs p50", "no unpickling"),
        ("plasmastream put_array", f"{res['put_GBps']:.2f} GB/s", f"best {res['put_GBps_best']:.2f} GB/s"),
        ("plasmastream get_array, large", f"{res['get_p50_us_large']:.1f} µs p50", f"{res['get_p99_us_large']:.1f} µs p99"),
        ("plasmastream get_array, 1 KiB", f"{res['get_p50_us_small']:.1f} µs p50", ""),
        ("plasmastream put -> other process", f"{res['plasma_e2e_GBps']:.2f} GB/s", "put_array + get_array there"),
        ("pickle.loads from shared_memory", f"{res['pickle_shm_get_p50_us']:.1f} µs p50", "a copy"),
    ])
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
