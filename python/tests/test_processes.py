"""Behaviour across Python processes sharing one store."""

import os
import signal
import time

import plasmastream as ps
from conftest import wait_until

MiB = 1 << 20


def test_blocking_get_released_by_seal_in_other_process(client, store, child):
    oid = ps.ObjectID.from_random()
    c = child("""
c = ps.connect(SOCKET)
oid = ps.ObjectID.from_hex(sys.argv[1] if len(sys.argv) > 1 else os.environ['OID'])
buf = c.create(oid, 1 << 20, b'late')
buf[:] = b'\\xab' * (1 << 20)
print('created', flush=True)
sys.stdin.readline()
c.seal(oid)
print('sealed', flush=True)
sys.stdin.readline()
""", store.socket, OID=oid.hex())
    c.expect("created")
    assert client.get_buffers([oid], timeout_ms=0) == [None]  # not sealed yet
    # Seal in the child while this process is blocked in get.
    import threading

    threading.Timer(0.3, c.send).start()
    t0 = time.monotonic()
    ((meta, view),) = client.get_buffers([oid], timeout_ms=-1, with_meta=True)
    assert time.monotonic() - t0 >= 0.25
    c.expect("sealed")
    assert bytes(meta) == b"late"
    assert len(view) == MiB and view[0] == 0xAB and view[-1] == 0xAB
    assert client.list()[oid]["creator_pid"] == c.proc.pid
    c.send()


def test_zero_copy_between_processes(client, store, child):
    """The creator keeps its writable view after seal and writes into it;
    this process's view shows the new byte without getting it again."""
    oid = ps.ObjectID.from_random()
    c = child("""
c = ps.connect(SOCKET)
oid = ps.ObjectID.from_hex(os.environ['OID'])
buf = c.create(oid, 4096)
buf[:] = b'A' * 4096
c.seal(oid)
print('sealed', flush=True)
for line in sys.stdin:
    i, v = map(int, line.split())
    buf[i] = v
    print('written', flush=True)
""", store.socket, OID=oid.hex())
    c.expect("sealed")
    view = client.get(oid)
    assert view.readonly and bytes(view) == b"A" * 4096
    c.send("0 66")
    c.expect("written")
    assert view[0] == ord("B")
    c.send("4095 67")
    c.expect("written")
    assert view[4095] == ord("C")
    assert bytes(view[1:4095]) == b"A" * 4094
    # a numpy view sees it too
    import numpy as np

    arr = np.frombuffer(view, dtype=np.uint8)
    c.send("100 200")
    c.expect("written")
    assert arr[100] == 200


def test_killed_client_unsealed_object_reclaimed(client, store, child):
    base = client.stats()["used"]
    oid = ps.ObjectID.from_random()
    sealed = client.put(bytes(MiB))
    c = child("""
c = ps.connect(SOCKET)
buf = c.create(ps.ObjectID.from_hex(os.environ['OID']), 8 << 20)
buf[:] = b'x' * (8 << 20)
held = c.get(ps.ObjectID.from_hex(os.environ['SEALED']))
print('created', flush=True)
sys.stdin.readline()
""", store.socket, OID=oid.hex(), SEALED=sealed.hex())
    c.expect("created")
    infos = client.list()
    assert infos[oid]["state"] == "created" and infos[oid]["creator_pid"] == c.proc.pid
    assert infos[sealed]["ref_count"] == 1
    assert client.stats()["used"] >= base + 9 * MiB
    os.kill(c.proc.pid, signal.SIGKILL)
    c.proc.wait(10)
    wait_until(lambda: oid not in client.list())
    wait_until(lambda: client.stats()["used"] == base + MiB)
    assert client.list()[sealed]["ref_count"] == 0
    assert client.stats()["pinned"] == 0


def test_get_in_other_process_then_collected(client, store, child):
    oid = client.put(b"q" * 1000)
    c = child("""
import gc
c = ps.connect(SOCKET)
v = c.get(ps.ObjectID.from_hex(os.environ['OID']))
print('got', bytes(v[:3]).decode(), flush=True)
sys.stdin.readline()
del v
gc.collect()
print('released', flush=True)
sys.stdin.readline()
""", store.socket, OID=oid.hex())
    assert c.expect("got") == "qqq"
    assert client.list()[oid]["ref_count"] == 1
    c.send()
    c.expect("released")
    wait_until(lambda: client.list()[oid]["ref_count"] == 0)
    c.send()


def test_fork_guard(client):
    pid = os.fork()
    if pid == 0:  # child: the parent's client must refuse
        try:
            client.contains(ps.ObjectID.from_random())
            os._exit(1)
        except ps.PlasmaError as e:
            os._exit(0 if "connect again" in str(e) else 2)
        except BaseException:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert not client.contains(ps.ObjectID.from_random())
