"""python -m plasmastream.bench, run tiny: it prints the three paths side by
side, the plasma get's p50 against the raw buffer get's, and every figure in
its JSON line. No time is asserted (the machine may be busy)."""

from __future__ import annotations

import json
import os

import pytest

import plasmastream
from plasmastream import bench

FIELDS = ("size_bytes", "plasma_put_GBps", "plasma_get_p50_us", "plasma_get_p99_us", "raw_get_p50_us",
          "get_vs_raw", "plasma_pickle_e2e_GBps", "put_GBps", "put_GBps_best", "get_p50_us_large",
          "get_p99_us_large", "get_p50_us_small", "plasma_e2e_GBps", "pickle_shm_put_GBps",
          "pickle_shm_get_p50_us", "pickle_shm_GBps", "pickle_pipe_GBps")


def _check_output(out: str) -> dict:
    lines = out.splitlines()
    res = json.loads(lines[-1])
    assert set(FIELDS) <= set(res), set(FIELDS) - set(res)
    assert res["size_bytes"] == 1 << 20
    assert all(res[k] >= 0 for k in FIELDS), res  # GB/s are rounded to 3 places: a busy machine may give 0.0
    assert all(res[k] > 0 for k in FIELDS if k.endswith("_us")), res
    assert res["get_vs_raw"] == pytest.approx(res["plasma_get_p50_us"] / res["raw_get_p50_us"], rel=0.01)
    # The side-by-side table: one row per path, in one run.
    head = lines.index(next(line for line in lines if line.strip().startswith("path")))
    rows = lines[head + 1:head + 4]
    assert "plasmastream.plasma" in rows[0] and f"{res['plasma_put_GBps']:.2f} GB/s" in rows[0]
    assert f"{res['plasma_get_p50_us']:.1f} µs" in rows[0]
    assert "shared_memory" in rows[1] and f"{res['pickle_shm_GBps']:.2f} GB/s" in rows[1]
    assert "pipe" in rows[2] and f"{res['pickle_pipe_GBps']:.2f} GB/s" in rows[2]
    assert any(f"{res['get_vs_raw']:.2f}x" in line and "raw buffer get" in line for line in lines)
    return res


def test_bench_prints_three_paths_side_by_side(go_bins, monkeypatch, capsys):
    monkeypatch.setenv("PLASMASTREAM_STORE_SERVER", os.path.join(go_bins, "plasma-store-server"))
    assert bench.main(["--start-store", str(32 << 20), "--size-mib", "1", "--repeat", "1", "--gets", "5"]) == 0
    _check_output(capsys.readouterr().out)


def test_bench_starts_a_store_when_none_listens(go_bins, monkeypatch, capsys, tmp_path):
    """`python -m plasmastream.bench` with no store at the default socket runs one."""
    monkeypatch.setenv("PLASMASTREAM_STORE_SERVER", os.path.join(go_bins, "plasma-store-server"))
    monkeypatch.setattr(plasmastream, "DEFAULT_SOCKET", str(tmp_path / "none.sock"))
    assert bench.main(["--size-mib", "1", "--repeat", "1", "--gets", "5"]) == 0
    cap = capsys.readouterr()
    assert "starting a plasma-store-server" in cap.err
    _check_output(cap.out)


def test_bench_without_a_store_at_socket_says_what_to_do(tmp_path, capsys):
    sock = str(tmp_path / "none.sock")
    assert bench.main(["--socket", sock, "--size-mib", "1"]) == 2
    err = capsys.readouterr().err
    assert sock in err and "--start-store" in err and "plasma-store-server" in err



@pytest.mark.parametrize("child", ["_plasma_pickle_child", "_plasma_child"])
def test_other_process_releases_before_it_answers(go_bins, store, monkeypatch, child):
    """The benchmark's other process answers only once its reference to the
    object is gone: the parent deletes the object and puts the next one as
    soon as it has the answer, and a store of 1.5x the array had no room
    for both. The child's loop runs here, and at the moment it answers its
    own connection lists the object with no reference."""
    import numpy as np
    from plasmastream import plasma

    parent = plasma.connect(store.socket, num_retries=0)
    oid = parent.put(np.arange(1000)) if child == "_plasma_pickle_child" else parent.put_array(np.arange(1000))
    clients = []
    real_connect, real_plasma_connect = plasmastream.connect, plasma.connect
    monkeypatch.setattr(plasmastream, "connect", lambda *a, **k: clients.append(real_connect(*a, **k)) or clients[-1])
    monkeypatch.setattr(plasma, "connect", lambda *a, **k: clients.append(real_plasma_connect(*a, **k)) or clients[-1])
    answers = []

    class In:
        msgs = [oid.binary().hex(), None]

        def recv(self):
            return self.msgs.pop(0)

    class Out:
        def send(self, v):
            if v != "ready":
                refs = {o.binary() if hasattr(o, "binary") else o: i["ref_count"]
                        for o, i in plasmastream.PlasmaClient.list(clients[0]).items()}
                answers.append((v, refs[oid.binary()]))

    try:
        getattr(bench, child)(store.socket, In(), Out())
        assert answers == [(1000, 0)], "the child answered while it still held the object"
    finally:
        parent.disconnect()
