"""plasmastream.plasma as a pyarrow.plasma user relies on it: the names and
signatures, the exception classes, buffers, pickle-5 put/get, hashes,
eviction accounting and notifications, against a real plasma-store-server."""

from __future__ import annotations

import os
import pickle
import random
import socket
import struct
import threading
import warnings

import numpy as np
import pytest

from conftest import Store

import plasmastream.plasma as plasma
from plasmastream import _pickled

MiB = 1 << 20


@pytest.fixture
def pc(store):
    c = plasma.connect(store.socket)
    try:
        yield c
    finally:
        c.disconnect()


def rid():
    return plasma.ObjectID.from_random()


def test_object_ids_behave_as_pyarrows():
    for bad in ("x" * 20, b"short", None, 20, bytearray(21)):
        with pytest.raises(ValueError):
            plasma.ObjectID(bad)
    a = plasma.ObjectID(b"a" * 20)
    assert a == plasma.ObjectID(b"a" * 20) and a != plasma.ObjectID(b"a" * 19 + b"b")
    assert a != "foo" and not (a == "foo")
    assert pickle.loads(pickle.dumps(a)) == a
    assert len({rid() for _ in range(100)}) == 100
    assert a.binary() == b"a" * 20


def test_connect_retries_until_the_store_listens(go_bins, tmp_path):
    sock = str(tmp_path / "late.sock")
    got = {}

    def connect():
        try:
            got["client"] = plasma.connect(sock)  # default: 80 retries 100 ms apart
        except Exception as e:  # reported below
            got["error"] = e

    t = threading.Thread(target=connect)
    t.start()
    store = None
    try:
        # The thread's first attempts fail: the store is not even started
        # yet, and nothing is at sock until the symlink below.
        store = Store(go_bins)
        os.symlink(store.socket, sock)
        t.join(30)
        assert "error" not in got, got.get("error")
        assert got["client"].store_capacity() > 0
        got["client"].disconnect()
    finally:
        t.join(30)
        if store is not None:
            store.stop()


def test_connect_to_nothing_raises_ioerror(tmp_path):
    with pytest.raises(IOError) as e:
        plasma.connect(str(tmp_path / "nothing.sock"), num_retries=1)
    assert "nothing.sock" in str(e.value)


def test_buffers_create_seal_get(pc):
    oid = rid()
    buf = pc.create(oid, 100, b"meta")
    assert isinstance(buf, plasma.PlasmaBuffer) and buf.is_mutable and buf.size == 100 and len(buf) == 100
    np.frombuffer(buf, dtype=np.uint8)[:] = np.arange(100, dtype=np.uint8)
    with pytest.raises(IndexError):
        buf[100]
    pc.seal(oid)
    assert not buf.is_mutable  # the creator's buffer is read-only after seal
    (data,) = pc.get_buffers([oid])
    assert data.to_pybytes() == bytes(range(100)) and bytes(data) == bytes(range(100))
    assert data.equals(buf) and data == bytes(range(100)) and data != b"other"
    assert not data.is_mutable
    with pytest.raises(ValueError):
        data[0] = 1
    # Zero-copy: a numpy view and a memoryview see the store's memory.
    arr = np.frombuffer(data, dtype=np.uint8)
    assert arr.__array_interface__["data"][0] == data.address
    # The same offset in the arena (through the read-only and the writable mapping).
    assert data.address - pc._ro_base == buf.address - pc._rw_base
    assert memoryview(data).readonly and not arr.flags.writeable
    ((meta, data2),) = pc.get_buffers([oid], with_meta=True)
    assert meta == b"meta" and isinstance(meta, bytes) and data2.equals(data)
    (m,) = pc.get_metadata([oid])
    assert m.to_pybytes() == b"meta"
    missing = rid()
    assert pc.get_buffers([missing], timeout_ms=0) == [None]
    assert pc.get_buffers([missing], timeout_ms=10, with_meta=True) == [(None, None)]
    assert pc.get_metadata([missing], timeout_ms=0) == [None]
    # An unsealed object is not available, even to its creator.
    pending = rid()
    pc.create(pending, 10)
    assert pc.get_buffers([pending], timeout_ms=0) == [None]
    pc.abort(pending)
    assert not pc.contains(pending)


def test_error_classes(pc, store):
    oid = rid()
    pc.create_and_seal(oid, b"data", b"meta")
    with pytest.raises(plasma.PlasmaObjectExists):
        pc.create_and_seal(oid, b"data")
    with pytest.raises(plasma.ArrowException):
        pc.create(oid, 10)
    with pytest.raises(plasma.PlasmaStoreFull):
        pc.create(rid(), pc.store_capacity() + 1)
    with pytest.raises(plasma.PlasmaObjectNotFound):
        pc.hash(rid())
    # seal and abort of an id this client did not create: pyarrow's
    # PlasmaObjectNotFound too (abort aborted the process there), naming the id.
    for call in (pc.seal, pc.abort):
        missing = rid()
        with pytest.raises(plasma.PlasmaObjectNotFound, match=missing.hex()):
            call(missing)
    for cls in (plasma.PlasmaObjectExists, plasma.PlasmaObjectNotFound, plasma.PlasmaStoreFull):
        assert issubclass(cls, plasma.ArrowException)
    # Metadata over our limit: what a pyarrow user catches when an object
    # does not fit, with the reason.
    for call in (lambda i: pc.create(i, 1, b"m" * (plasma.MAX_METADATA + 1)),
                 lambda i: pc.create_and_seal(i, b"d", b"m" * (plasma.MAX_METADATA + 1)),
                 lambda i: pc.put_raw_buffer(b"d", i, metadata=b"m" * (plasma.MAX_METADATA + 1))):
        big = rid()
        with pytest.raises(plasma.PlasmaStoreFull) as e:
            call(big)
        assert isinstance(e.value, ValueError)
        assert "65536" in str(e.value) and "limit" in str(e.value) and big.hex() in str(e.value)
        assert not pc.contains(big)
    pc.create_and_seal(rid(), b"d", b"m" * plasma.MAX_METADATA)  # at the limit: fine


def test_put_and_get_values(pc):
    values = [["hello", "world", 3, 1.0], None, "hello", {"a": (1, 2)}, 123, b"raw" * 50000]
    ids = [pc.put(v) for v in values]
    assert pc.get(ids) == values
    for oid, v in zip(ids, values):
        assert pc.get(oid) == v
    missing = rid()
    assert pc.get([missing], timeout_ms=0) == [plasma.ObjectNotAvailable]
    assert pc.get(missing, timeout_ms=0) is plasma.ObjectNotAvailable
    chosen = rid()
    assert pc.put(7, object_id=chosen) == chosen and pc.get(chosen) == 7
    raw = pc.put_raw_buffer(b"Bytes Test", metadata=b"RAW")
    ((meta, data),) = pc.get_buffers([raw], with_meta=True)
    assert meta == b"RAW" and data.to_pybytes() == b"Bytes Test"
    with pytest.raises(_pickled.NotPickled, match=f"object {raw.binary().hex()} was not stored by .*get_buffers"):
        pc.get(raw)
    with pytest.raises(_pickled.NotPickled, match=f"object {raw.binary().hex()} was not stored by"):
        pc.get([ids[0], raw])
    (data,) = pc.get_buffers([ids[0]])
    assert plasma.deserialize(data) == values[0]
    with pytest.raises(TypeError, match="pickle"):
        pc.put(1, serialization_context=object())
    with pytest.raises(TypeError, match="pickle"):
        pc.get(ids[0], serialization_context=object())


def test_put_get_256mib_array_is_zero_copy(go_bins):
    store = Store(go_bins, "300MiB")
    try:
        pc = plasma.connect(store.socket)
        arr = np.random.default_rng(7).integers(0, 1 << 62, size=(256 * MiB) // 8, dtype=np.int64)
        value = {"weights": arr, "step": 3}
        oid = pc.put(value)
        got = pc.get(oid)
        assert got["step"] == 3
        view = got["weights"]
        assert view.dtype == arr.dtype and view.shape == arr.shape and np.array_equal(view, arr)
        # The array is a read-only view of the store's shared memory, not a copy.
        addr = view.__array_interface__["data"][0]
        assert pc._ro_base <= addr and addr + view.nbytes <= pc._ro_base + pc._arena_size
        assert addr % 64 == 0 and not view.flags.writeable and not view.flags.owndata
        (data,) = pc.get_buffers([oid])
        assert data.address <= addr < data.address + len(data)
        del data
        # It holds the object's reference until it is collected.
        assert pc.list()[oid]["ref_count"] == 1
        del got, view
        assert pc.list()[oid]["ref_count"] == 0
        pc.disconnect()
    finally:
        store.stop()


def test_hash_depends_on_data_and_metadata(pc):
    def obj(data, meta):
        oid = rid()
        pc.create_and_seal(oid, data, meta)
        return oid

    data = bytes(range(256)) * 400  # 100 KiB: hashed by the store
    a, b = obj(data, b"m1"), obj(data, b"m1")
    h = pc.hash(a)
    assert isinstance(h, bytes) and len(h) == 8 and h == pc.hash(a) == pc.hash(b)
    assert pc.hash(obj(data, b"m2")) != h
    assert pc.hash(obj(data[:-1] + b"x", b"m1")) != h
    assert len({pc.hash(obj(bytes([i]) * 10, b"")) for i in range(50)} | {pc.hash(obj(b"", b""))}) == 51


def test_evict_counts_data_and_metadata(pc):
    sizes = [(1000, 0), (998, 2), (0, 0), (0, 0), (500, 7)]
    ids = []
    for ds, ms in sizes:
        oid = rid()
        buf = pc.create(oid, ds, b"m" * ms)
        pc.seal(oid)
        del buf  # releases the creator's reference
        ids.append(oid)
    pinned_id = rid()
    pinned = pc.create(pinned_id, 300)  # unsealed: never evicted
    assert pc.evict(1) == 1000 and not pc.contains(ids[0])
    assert pc.evict(1000) == 1000
    # Empty objects add nothing: eviction goes on past them.
    assert pc.evict(1) == 507
    assert not any(pc.contains(i) for i in ids)
    assert pc.evict(1 << 20) == 0
    pc.seal(pinned_id)
    assert pc.evict(1) == 0  # still referenced by its buffer
    del pinned
    assert pc.evict(1) == 300


def test_notifications(pc):
    pc.subscribe()
    made = []
    for ds, ms in [(10, 3), (0, 0), (2000, 100)]:
        oid = rid()
        pc.create_and_seal(oid, b"x" * ds, b"m" * ms)
        made.append((oid, ds, ms))
    for want in made:
        assert pc.get_next_notification() == want
    pc.delete([made[0][0]])
    assert pc.get_next_notification() == (made[0][0], -1, -1)
    # The socket carries pyarrow's framing; get_next_notification then
    # reads the same stream.
    sock = pc.get_notification_socket()
    assert isinstance(sock, socket.socket)
    more = []
    for i in range(3):
        oid = rid()
        pc.create_and_seal(oid, b"y" * (i + 1), b"")
        more.append(oid)
    for i, oid in enumerate(more[:2]):
        (n,) = struct.unpack("L", sock.recv(8))
        ids, ds, ms = pc.decode_notifications(sock.recv(n))
        assert (ids, ds, ms) == ([oid], [i + 1], [0])
    assert pc.get_next_notification() == (more[2], 3, 0)
    assert pc.evict(1 << 20) == 2100 + 6
    left = [made[1][0], made[2][0]] + more  # least recently used first
    assert [pc.get_next_notification() for _ in left] == [(o, -1, -1) for o in left]
    sock.close()


def test_decode_notifications_rejects_partial_records(pc):
    with pytest.raises(plasma.ArrowException, match="record"):
        pc.decode_notifications(b"x" * 37)
    assert pc.decode_notifications(b"") == ([], [], [])


def test_contains_delete_list_and_the_rest(pc, store):
    oid = rid()
    buf = pc.create(oid, 11, b"1234567")
    info = pc.list()[oid]
    assert (info["data_size"], info["metadata_size"], info["state"]) == (11, 7, "created")
    assert pc.contains(oid) is False
    pc.seal(oid)
    assert pc.contains(oid) is True and pc.list()[oid]["state"] == "sealed"
    assert pc.list()[oid]["ref_count"] == 1
    del buf
    assert pc.list()[oid]["ref_count"] == 0
    assert pc.delete([oid, rid()]) is None  # unknown ids are ignored, as in pyarrow
    assert not pc.contains(oid)
    assert pc.store_capacity() == 64 * MiB
    assert pc.store_socket_name == store.socket
    pc.set_client_options("worker-1", 0)
    with pytest.warns(RuntimeWarning, match="quota"):
        pc.set_client_options("worker-1", 1 << 20)
    text = pc.debug_string()
    assert "worker-1" in text and f"capacity: {64 * MiB}" in text
    pc.disconnect()
    with pytest.raises(IOError):
        pc.contains(oid)


def test_start_plasma_store(go_bins, monkeypatch):
    monkeypatch.setenv("PLASMASTREAM_STORE_SERVER", os.path.join(go_bins, "plasma-store-server"))
    with plasma.start_plasma_store(8 * MiB) as (name, proc):
        assert proc.poll() is None
        c = plasma.connect(name, num_retries=0)
        assert c.store_capacity() == 8 * MiB
        oid = c.put("hello")
        assert c.get(oid) == "hello"
        c.disconnect()
    assert proc.returncode == 0 and not os.path.exists(os.path.dirname(name))
    with pytest.raises(ValueError, match="external_store"):
        with plasma.start_plasma_store(8 * MiB, external_store="ftp://nowhere"):
            pass
    monkeypatch.setenv("PLASMASTREAM_STORE_SERVER", "/nonexistent/plasma-store-server")
    with pytest.raises(FileNotFoundError, match="PLASMASTREAM_STORE_SERVER"):
        with plasma.start_plasma_store(8 * MiB):
            pass


def test_external_store_evicts_and_restores(go_bins, monkeypatch):
    """external_store is the store's cold tier: twenty 100 KiB objects in a
    1000 KiB store all come back, byte for byte, though most were evicted."""
    monkeypatch.setenv("PLASMASTREAM_STORE_SERVER", os.path.join(go_bins, "plasma-store-server"))
    with plasma.start_plasma_store(1000 * 1024, external_store="hashtable://test") as (name, proc):
        c = plasma.connect(name, num_retries=0)
        ids = [plasma.ObjectID.from_random() for _ in range(20)]
        data = b"x" * 100 * 1024
        for oid in ids:
            assert not c.contains(oid)
            c.create_and_seal(oid, data, b"")
            assert c.contains(oid)
        for oid in ids:
            [buf] = c.get_buffers([oid])
            assert buf.to_pybytes() == data
            del buf
        c.disconnect()
        cold = os.path.join(os.path.dirname(name), "cold")
        assert os.listdir(cold), "nothing was written to the cold tier"


def test_put_layout_decoder_rejects_garbage():
    """Fuzz-style: the put() layout decoder meets random and mutated bytes
    (any store client can write an object's data) and either decodes or
    raises NotPickled or an unpickling error, never reads out of bounds."""
    rng = random.Random(16)
    good = _pickled.plan({"a": np.arange(100), "b": b"x" * 10}).to_bytes()
    assert _pickled.loads(memoryview(bytes(good)))["b"] == b"x" * 10
    seeds = [b"", b"PSPKL5", bytes(good[:20]), bytes(good)]
    for _ in range(2000):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            if data and rng.random() < 0.7:
                data[rng.randrange(len(data))] = rng.randrange(256)
            else:
                data += os.urandom(rng.randint(1, 16))
        if rng.random() < 0.3:
            data[:8] = _pickled.MAGIC
        try:
            _pickled.loads(memoryview(bytes(data)))
        except _pickled.NotPickled:
            pass
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, AttributeError,
                IndexError, ImportError, OverflowError, MemoryError, UnicodeDecodeError):
            pass  # the pickle itself is damaged: pickle.loads says so
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(_pickled.NotPickled, match="outside"):
            bad = bytearray(good)
            struct.pack_into("<QQ", bad, 24, len(good) - 8, 100)  # buffer 0 past the end
            _pickled.loads(memoryview(bytes(bad)))


# What pyarrow.plasma (Arrow 11) declared, written out here so that a drift
# in our names, parameter names or defaults fails: code calling with keywords
# or relying on a default must keep working.
_PYARROW_SIGNATURES = {
    "create": [("object_id", None), ("data_size", None), ("metadata", b"")],
    "create_and_seal": [("object_id", None), ("data", None), ("metadata", b"")],
    "seal": [("object_id", None)],
    "abort": [("object_id", None)],
    "get_buffers": [("object_ids", None), ("timeout_ms", -1), ("with_meta", False)],
    "get_metadata": [("object_ids", None), ("timeout_ms", -1)],
    "put_raw_buffer": [("value", None), ("object_id", None), ("metadata", b""), ("memcopy_threads", 6)],
    "put": [("value", None), ("object_id", None), ("memcopy_threads", 6), ("serialization_context", None)],
    "get": [("object_ids", None), ("timeout_ms", -1), ("serialization_context", None)],
    "contains": [("object_id", None)],
    "hash": [("object_id", None)],
    "evict": [("num_bytes", None)],
    "delete": [("object_ids", None)],
    "list": [],
    "store_capacity": [],
    "subscribe": [],
    "get_notification_socket": [],
    "get_next_notification": [],
    "decode_notifications": [("buf", None)],
    "disconnect": [],
    "debug_string": [],
    "set_client_options": [("client_name", None), ("limit_output_memory", None)],
}


def _params(fn, skip_self=True):
    import inspect

    out = []
    for p in list(inspect.signature(fn).parameters.values())[1 if skip_self else 0:]:
        if p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue  # our additions, never positional
        out.append((p.name, None if p.default is p.empty else p.default))
    return out


def test_names_and_signatures_are_pyarrows():
    for name in ("ObjectID", "ObjectNotAvailable", "PlasmaBuffer", "PlasmaClient", "PlasmaObjectExists",
                 "PlasmaObjectNotFound", "PlasmaStoreFull", "connect", "start_plasma_store"):
        assert hasattr(plasma, name), name
    for method, want in _PYARROW_SIGNATURES.items():
        assert _params(getattr(plasma.PlasmaClient, method)) == want, method
    assert isinstance(plasma.PlasmaClient.store_socket_name, property)
    assert _params(plasma.connect, False) == [("store_socket_name", None), ("num_retries", -1)]
    assert _params(plasma.start_plasma_store, False) == [
        ("plasma_store_memory", None), ("use_valgrind", False), ("use_profiler", False),
        ("plasma_directory", None), ("use_hugepages", False), ("external_store", None)]
    assert callable(plasma.ObjectID.from_random) and callable(plasma.ObjectID.binary)


def test_connect_retries_as_pyarrow_did(tmp_path, monkeypatch):
    """num_retries=-1 retries 80 times 100 ms apart (Arrow 11's C++ client),
    n retries n times, 0 tries once; then an IOError naming the socket."""
    import types

    sleeps = []
    # plasma's own name for the time module only (time.sleep stays as it is
    # for every other thread).
    monkeypatch.setattr(plasma, "time", types.SimpleNamespace(sleep=sleeps.append))
    for n, want in ((-1, 80), (3, 3), (0, 0)):
        sleeps.clear()
        with pytest.raises(IOError, match="gone.sock"):
            plasma.connect(str(tmp_path / "gone.sock"), n)
        assert sleeps == [0.1] * want, n


def test_object_ids_from_random_differ_across_processes():
    import subprocess
    import sys

    code = "import plasmastream.plasma as p; print(p.ObjectID.from_random().binary().hex())"
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    got = {subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip() for _ in range(2)}
    assert len(got) == 2 and all(len(h) == 40 for h in got)


def test_list_times_are_seconds(pc):
    """create_time is the unix time of create, construct_duration the
    seconds from create to seal (-1 before), as pyarrow's list()."""
    import time

    t1 = time.time()
    oid = rid()
    buf = pc.create(oid, 3)
    t2 = time.time()
    entry = pc.list()[oid]
    assert t1 - 1.5 <= entry["create_time"] <= t2 + 1.5
    assert entry["construct_duration"] == -1
    time.sleep(0.5)
    t3 = time.time()
    pc.seal(oid)
    t4 = time.time()
    d = pc.list()[oid]["construct_duration"]
    assert t3 - t2 - 0.25 <= d <= t4 - t1 + 1.5
    del buf


class _Blob:
    """Not numpy: a value that hands pickle 5 its buffer out of band."""

    def __init__(self, buf):
        self.buf = buf

    def __reduce_ex__(self, protocol):
        return _Blob, (pickle.PickleBuffer(self.buf),)


def test_put_any_buffer_exporter_is_zero_copy(pc):
    src = bytearray(os.urandom(1 << 20))
    oid = pc.put({"blob": _Blob(src), "n": 1})
    got = pc.get(oid)["blob"].buf
    view = memoryview(got)
    assert view.readonly and bytes(view) == bytes(src)
    addr = np.frombuffer(view, dtype=np.uint8).__array_interface__["data"][0]
    assert pc._ro_base <= addr and addr + len(src) <= pc._ro_base + pc._arena_size


def test_start_plasma_store_options(go_bins, monkeypatch, tmp_path):
    monkeypatch.setenv("PLASMASTREAM_STORE_SERVER", os.path.join(go_bins, "plasma-store-server"))
    shm = tmp_path / "shm"
    shm.mkdir()
    # plasma_directory: the store's shared-memory file lives there (-d).
    with plasma.start_plasma_store(4 * MiB, plasma_directory=str(shm)) as (name, proc):
        c = plasma.connect(name, num_retries=0)
        oid = c.put(b"x" * 1000)
        assert c.get(oid) == b"x" * 1000
        maps = open(f"/proc/{proc.pid}/maps").read()
        assert str(shm) in maps, "the arena is not mapped from plasma_directory"
        c.disconnect()
    for kw in ({"use_valgrind": True}, {"use_profiler": True}):
        with pytest.raises(NotImplementedError, match="pprof"):
            with plasma.start_plasma_store(4 * MiB, **kw):
                pass


def test_start_plasma_store_hugepages(go_bins, monkeypatch, capfd):
    """use_hugepages runs the store with --hugepages: where 2 MiB pages are
    reserved the arena is made of them; where none are, the start fails and
    the store says how to reserve them. The outcome decides which is checked
    (the machine's reserve is shared and may change while the test runs)."""
    monkeypatch.setenv("PLASMASTREAM_STORE_SERVER", os.path.join(go_bins, "plasma-store-server"))
    try:
        with plasma.start_plasma_store(8 * MiB, use_hugepages=True) as (name, proc):
            c = plasma.connect(name, num_retries=0)
            oid = c.put(np.arange(1000))
            assert np.array_equal(c.get(oid), np.arange(1000))
            c.disconnect()
            smaps = open(f"/proc/{proc.pid}/smaps").read()
            assert "KernelPageSize:     2048 kB" in smaps, "the store started, but none of its mappings is of huge pages"
    except RuntimeError as e:
        assert "exited unexpectedly" in str(e)
        assert "vm.nr_hugepages" in capfd.readouterr().err
