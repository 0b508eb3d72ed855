"""One-process behaviour of the client against a real store."""

import gc
import threading
import time

import pytest

import plasmastream as ps
from conftest import wait_until

MiB = 1 << 20


def refcount(client, oid):
    info = client.list().get(oid)
    return None if info is None else info["ref_count"]


# -- ObjectID -----------------------------------------------------------------


def test_object_id():
    a = ps.ObjectID.from_random()
    assert len(a.binary()) == 20
    assert ps.ObjectID(a.binary()) == a
    assert ps.ObjectID.from_hex(a.hex()) == a
    assert len(a.hex()) == 40 and a.hex() == a.hex().lower()
    assert hash(ps.ObjectID(a.binary())) == hash(a)
    assert a != ps.ObjectID.from_random()
    assert {a: 1}[ps.ObjectID(a.binary())] == 1
    assert repr(a) == f"ObjectID({a.hex()})"
    import pickle

    assert pickle.loads(pickle.dumps(a)) == a
    with pytest.raises(ValueError):
        ps.ObjectID(b"short")
    with pytest.raises(ValueError):
        ps.ObjectID.from_hex("abc")


# -- put / get ----------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 100, 64 << 10, (64 << 10) + 1, MiB, 5 * MiB])
def test_put_get_roundtrip(client, size):
    data = bytes((i * 7 + 3) % 251 for i in range(min(size, 4096))) * (size // 4096 + 1)
    data = data[:size]
    oid = client.put(data)
    assert isinstance(oid, ps.ObjectID)
    view = client.get(oid)
    assert isinstance(view, memoryview)
    assert view.readonly
    assert len(view) == size
    assert bytes(view) == data
    assert client.contains(oid)
    info = client.list()[oid]
    assert info["data_size"] == size and info["state"] == "sealed"


def test_put_with_id_and_buffer_types(client):
    oid = ps.ObjectID.from_random()
    assert client.put(bytearray(b"abc"), oid) == oid
    assert bytes(client.get(oid)) == b"abc"
    oid2 = client.put(memoryview(b"0123456789")[::2])  # non-contiguous
    assert bytes(client.get(oid2)) == b"02468"
    oid3 = ps.ObjectID.from_random()
    client.create_and_seal(oid3, b"x" * (2 * MiB), b"meta")
    assert bytes(client.get(oid3)) == b"x" * (2 * MiB)
    assert client.put_raw_buffer(b"raw") is not None


def test_metadata(client):
    oid = client.put(b"data", metadata=b"some metadata")
    (meta,) = client.get_metadata([oid])
    assert bytes(meta) == b"some metadata"
    ((m, d),) = client.get_buffers([oid], with_meta=True)
    assert bytes(m) == b"some metadata" and bytes(d) == b"data"
    big = ps.ObjectID.from_random()
    buf = client.create(big, 2 * MiB, b"M" * 65536)  # the largest metadata
    buf[:4] = b"head"
    client.seal(big)
    ((m, d),) = client.get_buffers([big], with_meta=True)
    assert bytes(m) == b"M" * 65536 and bytes(d[:4]) == b"head" and len(d) == 2 * MiB
    assert client.list()[big]["metadata_size"] == 65536
    missing = ps.ObjectID.from_random()
    assert client.get_buffers([missing], timeout_ms=0, with_meta=True) == [(None, None)]
    assert client.get_metadata([missing], timeout_ms=0) == [None]


def test_create_seal_abort(client):
    oid = ps.ObjectID.from_random()
    buf = client.create(oid, 10, b"md")
    assert not buf.readonly and len(buf) == 10
    buf[:] = b"0123456789"
    assert not client.contains(oid)
    assert client.get_buffers([oid], timeout_ms=0) == [None]
    info = client.list()[oid]
    assert info["state"] == "created" and info["construct_duration"] == -1
    client.seal(oid)
    assert client.contains(oid)
    assert bytes(client.get(oid)) == b"0123456789"
    info = client.list()[oid]
    assert info["state"] == "sealed" and info["construct_duration"] >= 0

    # abort frees the object and the id can be used again
    oid2 = ps.ObjectID.from_random()
    b2 = client.create(oid2, MiB)
    client.abort(oid2)
    assert oid2 not in client.list()
    del b2
    gc.collect()
    b3 = client.create(oid2, 5)
    b3[:] = b"again"
    client.seal(oid2)
    assert refcount(client, oid2) == 1  # the old view's collection released nothing
    del b3
    assert refcount(client, oid2) == 0
    assert bytes(client.get(oid2)) == b"again"


def test_create_zero_size(client):
    oid = ps.ObjectID.from_random()
    buf = client.create(oid, 0)
    assert len(buf) == 0
    client.seal(oid)
    assert bytes(client.get(oid)) == b""


def test_get_missing_and_timeout(client):
    missing = ps.ObjectID.from_random()
    assert client.get_buffers([missing], timeout_ms=0) == [None]
    t0 = time.monotonic()
    assert client.get_buffers([missing], timeout_ms=200) == [None]
    assert 0.15 < time.monotonic() - t0 < 5
    with pytest.raises(ps.ObjectNotFound):
        client.get(missing, timeout_ms=0)
    have = client.put(b"x")
    res = client.get_buffers([have, missing], timeout_ms=50)
    assert bytes(res[0]) == b"x" and res[1] is None
    assert [bytes(v) for v in client.get([have])] == [b"x"]


def test_blocking_get_other_thread(store, client):
    oid = ps.ObjectID.from_random()
    other = store.connect()
    try:
        def later():
            time.sleep(0.3)
            other.create_and_seal(oid, b"late", b"")
        t = threading.Thread(target=later)
        t.start()
        t0 = time.monotonic()
        (view,) = client.get_buffers([oid], timeout_ms=-1)
        assert time.monotonic() - t0 >= 0.25
        assert bytes(view) == b"late"
        t.join()
    finally:
        other.disconnect()


# -- references ---------------------------------------------------------------


def test_buffer_released_on_gc(client):
    oid = client.put(b"x" * MiB)
    assert refcount(client, oid) == 0
    view = client.get(oid)
    assert refcount(client, oid) == 1
    view2 = client.get(oid)
    assert refcount(client, oid) == 2
    del view2
    assert refcount(client, oid) == 1

    # a slice keeps the reference alive, the original view does not need to
    part = view[10:20]
    del view
    gc.collect()
    assert refcount(client, oid) == 1
    assert bytes(part) == b"x" * 10
    del part
    assert refcount(client, oid) == 0

    # a cycle: released when the collector runs
    view = client.get(oid)
    holder = {"v": view}
    holder["self"] = holder
    del view, holder
    gc.collect()
    assert refcount(client, oid) == 0

    # the creator's reference: held by the writable view, also after seal
    oid2 = ps.ObjectID.from_random()
    buf = client.create(oid2, 100)
    client.seal(oid2)
    assert refcount(client, oid2) == 1
    del buf
    assert refcount(client, oid2) == 0


def test_buffer_released_without_further_calls(store, client):
    """A collected buffer's Release is sent at once, not with the next call."""
    oid = client.put(b"y" * 100)
    view = client.get(oid)
    with store.connect() as other:
        assert refcount(other, oid) == 1
        del view
        # another connection: the store serves it independently, so wait
        wait_until(lambda: refcount(other, oid) == 0, timeout=5)


def test_context_manager_release(store):
    with store.connect() as client:
        oid = client.put(b"z" * 1000)
        with client.get(oid) as view:
            assert bytes(view[:3]) == b"zzz"
            assert refcount(client, oid) == 1
        assert refcount(client, oid) == 0
        oid2 = ps.ObjectID.from_random()
        with client.create(oid2, 4) as buf:
            buf[:] = b"abcd"
            client.seal(oid2)
        assert refcount(client, oid2) == 0
    assert client.closed
    with pytest.raises(ps.ConnectionClosed):
        client.contains(oid)


def test_explicit_release(client):
    oid = client.put(b"r" * 10)
    view = client.get(oid)
    client.release(oid)
    assert refcount(client, oid) == 0
    del view  # must not release a second time
    assert refcount(client, oid) == 0
    with pytest.raises(ps.NotReferenced):
        client.release(oid)


def test_many_buffers_released_at_once(client):
    oid = client.put(b"m" * 64)
    views = client.get_buffers([oid] * 3000)
    assert refcount(client, oid) == 3000
    views += [client.get(oid) for _ in range(1000)]
    assert refcount(client, oid) == 4000
    del views
    assert refcount(client, oid) == 0
    assert client.contains(oid)


def test_disconnect_drops_references(store):
    client = store.connect()
    oid = client.put(b"d" * 100)
    view = client.get(oid)
    unsealed = ps.ObjectID.from_random()
    client.create(unsealed, 1000)
    with store.connect() as other:
        assert refcount(other, oid) == 1
        client.disconnect()
        wait_until(lambda: refcount(other, oid) == 0 and unsealed not in other.list())
    assert bytes(view[:1]) == b"d"  # still mapped
    del view


# -- delete, list, evict, stats, capacity -------------------------------------


def test_delete(client):
    a = client.put(b"a")
    assert client.delete([a]) == [None]
    assert not client.contains(a)
    b = client.put(b"b")
    view = client.get(b)
    assert client.delete([b]) == [None]  # deferred: in use
    assert not client.contains(b)
    assert client.list()[b]["delete_pending"]
    del view
    assert b not in client.list()
    unsealed = ps.ObjectID.from_random()
    keep = client.create(unsealed, 10)
    res = client.delete([ps.ObjectID.from_random(), unsealed])
    assert isinstance(res[0], ps.ObjectNotFound) and isinstance(res[1], ps.ObjectNotSealed)
    with pytest.raises(ps.ObjectNotFound):
        client.delete([ps.ObjectID.from_random()], strict=True)
    del keep


def test_list_fields(client):
    import os

    oid = client.put(b"hello", metadata=b"meta")
    info = client.list()[oid]
    assert info["data_size"] == 5 and info["metadata_size"] == 4
    assert info["ref_count"] == 0 and info["state"] == "sealed"
    assert info["creator_pid"] == os.getpid()
    assert abs(info["create_time"] - time.time()) < 60
    assert info["construct_duration"] >= 0
    assert info["offset"] % 64 == 0
    assert not info["delete_pending"]
    assert set(info) >= {"data_size", "metadata_size", "ref_count", "create_time",
                         "construct_duration", "state", "creator_pid"}


def test_capacity_stats_evict(client):
    assert client.store_capacity() == 64 * MiB
    st = client.stats()
    assert st["capacity"] == 64 * MiB and st["used"] == 0 and st["clients"] >= 1
    ids = [client.put(bytes(MiB)) for _ in range(4)]
    st = client.stats()
    assert st["objects"] == 4 and st["sealed"] == 4 and st["used"] >= 4 * MiB
    held = client.get(ids[3])
    freed = client.evict(2 * MiB)
    assert freed >= 2 * MiB
    remaining = client.list()
    assert ids[3] in remaining and len(remaining) == 2
    assert client.evict(100 * MiB) == freed // 2  # only the unreferenced one left
    assert list(client.list()) == [ids[3]]
    del held


def test_store_full_evicts_then_fails(client):
    ids = [client.put(bytes(8 * MiB)) for _ in range(7)]
    # creating more than fits evicts least recently used objects
    big = client.put(bytes(32 * MiB))
    assert client.contains(big)
    assert sum(client.contains(i) for i in ids) < 7
    # pinned objects leave no room
    pins = [client.get(big)]
    pins.append(client.create(ps.ObjectID.from_random(), 24 * MiB))
    with pytest.raises(ps.OutOfMemory) as e:
        client.create(ps.ObjectID.from_random(), 16 * MiB)
    assert "needs" in str(e.value)
    assert ps.StoreFull is ps.OutOfMemory is ps.PlasmaStoreFull
    del pins


def test_create_and_seal_batch(client):
    taken = client.put(b"first")
    objs = [(ps.ObjectID.from_random(), bytes([i % 256]) * 1024, bytes([i % 7])) for i in range(3000)]
    objs[10] = (taken, b"second", b"")
    objs[2000] = (objs[1999][0], b"again", b"")
    objs[500] = (objs[500][0], bytes((4 << 20) + 1), b"")
    objs.append((ps.ObjectID.from_random(), bytearray(b"no metadata")))
    results = client.create_and_seal_batch(objs)
    assert len(results) == len(objs)
    for i, r in enumerate(results):
        if i in (10, 2000):
            assert isinstance(r, ps.ObjectExists) and objs[i][0].hex() in str(r), (i, r)
        elif i == 500:
            assert isinstance(r, ps.TooLarge), (i, r)
        else:
            assert r is None, (i, r)
    assert bytes(client.get(taken)) == b"first"
    assert not client.contains(objs[500][0])
    for oid, data, *meta in objs[:10] + objs[1990:2000] + objs[-1:]:
        [(md, view)] = client.get_buffers([oid], with_meta=True)
        assert bytes(view) == bytes(data) and bytes(md) == (meta[0] if meta else b"")
    assert refcount(client, objs[0][0]) == 0  # no reference kept


def test_create_and_seal_batch_store_full(client):
    # A pinned object leaves room for the small objects of the batch (they
    # evict each other) but not for the large ones: each of those fails
    # alone with OutOfMemory and is not in the store.
    pin = client.create(ps.ObjectID.from_random(), 62 * MiB)
    objs = [(ps.ObjectID.from_random(), bytes((3 * MiB) if i % 10 == 5 else (64 << 10))) for i in range(100)]
    results = client.create_and_seal_batch(objs)
    for (oid, data), r in zip(objs, results):
        if len(data) > MiB:
            assert isinstance(r, ps.OutOfMemory) and oid.hex() in str(r), r
            assert not client.contains(oid)
        else:
            assert r is None, r
    del pin


# -- notifications ------------------------------------------------------------


def test_subscribe(client):
    client.subscribe()
    a = client.put(b"abc", metadata=b"m")
    oid, ds, ms = client.get_next_notification()
    assert (oid, ds, ms) == (a, 3, 1)
    client.delete([a])
    assert client.get_next_notification() == (a, -1, -1)
    b = client.put(bytes(1000))
    client.evict(1)
    sub = client.subscribe()
    ev = sub.get(timeout=5)
    assert ev.kind == "sealed" and ev.object_id == b and ev.data_size == 1000
    ev = sub.get(timeout=5)
    assert ev.kind == "evicted" and ev.object_id == b and abs(ev.time - time.time()) < 60
    with pytest.raises(TimeoutError):
        sub.get(timeout=0.05)


def test_subscription_digest_events(store, client):
    # Only a subscription that asks gets the store's digest events; the
    # pyarrow-style notifications never see them.
    with ps.subscribe.subscribe(store.socket, digests=True) as sub:
        client.subscribe()
        a = client.put(bytes(range(256)) * 100)  # no digest at Seal: hashed later
        ev = sub.get(timeout=5)
        assert ev.kind == "sealed" and ev.object_id == a and ev.digest is None
        ev = sub.get(timeout=10)
        assert ev.kind == "digest" and ev.object_id == a and ev.data_size == 25600
        assert ev.digest.hex() == client.list()[a]["digest"]
        client.delete([a])
        assert client.get_next_notification(timeout=5) == (a, 25600, 0)
        assert client.get_next_notification(timeout=5) == (a, -1, -1)
        assert sub.get(timeout=5).kind == "deleted"


def test_subscription_iterator(store, client):
    sub = ps.subscribe.subscribe(store.socket)
    ids = [client.put(bytes([i])) for i in range(5)]
    got = []
    for ev in sub:
        got.append(ev.object_id)
        if len(got) == 5:
            break
    assert got == ids
    sub.close()


# -- concurrency, misuse --------------------------------------------------------


def test_threads_share_a_client(client):
    errors = []

    def work(k):
        try:
            for i in range(200):
                data = bytes([k, i % 256]) * (1 + i * 37 % 5000)
                oid = client.put(data)
                assert bytes(client.get(oid)) == data
                client.delete([oid])
        except Exception as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert client.list() == {}


def test_disconnect_wakes_blocked_get(store):
    client = store.connect()
    out = []

    def blocked():
        try:
            client.get_buffers([ps.ObjectID.from_random()], timeout_ms=-1)
        except ps.ConnectionClosed as e:
            out.append(e)

    t = threading.Thread(target=blocked)
    t.start()
    time.sleep(0.2)
    client.disconnect()
    t.join(5)
    assert not t.is_alive() and len(out) == 1


def test_connect_errors(tmp_path):
    with pytest.raises(ps.ConnectionClosed) as e:
        ps.connect(str(tmp_path / "nothing.sock"))
    assert "is plasma-store-server running?" in str(e.value)
    assert isinstance(e.value, ConnectionError)
