"""The stream client (plasmastream.stream) against two real nodes, each a
plasma-store-server with a plasma-stream-server in front of it, and a few
protocol cases against a fake server."""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time

import pytest

import plasmastream as ps
from plasmastream import _streamwire as sw
from plasmastream import stream
from plasmastream.stream import COPY, TAKE, PeerRequest, StreamError
from conftest import Store, stop_process


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    """A plasma-store-server and a plasma-stream-server serving it."""

    def __init__(self, bins: str, name: str, args=()):
        self.name = name
        self.store = Store(bins)
        self.port = _free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.logdir = tempfile.mkdtemp(prefix="pss")
        self.log = open(os.path.join(self.logdir, "stream.log"), "w+")
        self.proc = subprocess.Popen(
            [os.path.join(bins, "plasma-stream-server"), "-s", self.store.socket, "-p", str(self.port),
             "--bind", "127.0.0.1", "--node-name", name, "--log-level", "warn", *args],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while True:
            if self.proc.poll() is not None:
                self.log.seek(0)
                out = self.log.read()
                self.stop()
                raise RuntimeError(f"plasma-stream-server exited: {out}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("plasma-stream-server did not start listening")
                time.sleep(0.01)
        self.plasma = self.store.connect()

    def connect(self, **kw) -> stream.StreamClient:
        return stream.connect(self.addr, **kw)

    def stop(self):
        if getattr(self, "plasma", None) is not None:
            self.plasma.disconnect()
            self.plasma = None
        stop_process(self.proc)
        self.log.close()
        shutil.rmtree(self.logdir, ignore_errors=True)
        self.store.stop()


@pytest.fixture(scope="module")
def nodes(go_bins):
    """Nodes A and B, shared by the module's tests (each uses fresh ids)."""
    made = []
    try:
        made.append(Node(go_bins, "a"))
        made.append(Node(go_bins, "b"))
        yield made[0], made[1]
    finally:
        for n in made:
            n.stop()


@pytest.fixture
def a_client(nodes):
    with nodes[0].connect() as c:
        yield c


def _put(node: Node, data: bytes, meta: bytes = b"") -> ps.ObjectID:
    return node.plasma.put(data, metadata=meta)


# -- against real nodes -------------------------------------------------------


def test_copy_seed_example(nodes, a_client):
    a, b = nodes
    data, meta = os.urandom(100_000), b"text/plain"
    oid = _put(b, data, meta)
    assert not a.plasma.contains(oid)

    seen = []
    res = a_client.sync([PeerRequest(COPY, b.addr, [oid])], progress=seen.append)
    assert res.ok and res.status == "ok" and res.code == 0 and res.message == ""
    assert res.objects == 1 and res.bytes == len(data) + len(meta)
    assert res.duration >= 0
    assert all(isinstance(p, stream.Progress) for p in seen)
    (peer,) = res.peers
    assert (peer.kind, peer.from_addr, peer.status, peer.ok) == ("COPY", b.addr, "ok", True)
    (o,) = peer.objects
    assert (o.id, o.status, o.ok, o.bytes, o.deleted_at_source, o.message) == \
        (oid, "ok", True, len(data) + len(meta), False, "")

    (m, d), = a.plasma.get_buffers([oid], timeout_ms=0, with_meta=True)
    assert bytes(d) == data and bytes(m) == meta
    del m, d
    assert b.plasma.contains(oid)  # COPY keeps the source's copy

    # Again: already present is a success; hex strings and lower-case kinds work.
    res = a_client.sync([PeerRequest("copy", b.addr, [oid.hex()])])
    assert res.ok and res.objects == 1 and res.bytes == 0
    assert res.peers[0].objects[0].status == "already present" and res.peers[0].objects[0].ok


def test_take_removes_from_source(nodes, a_client):
    a, b = nodes
    data = [os.urandom(n) for n in (0, 1, 5000)]
    ids = [_put(b, d) for d in data]
    res = a_client.sync([PeerRequest(TAKE, b.addr, ids)])
    assert res.ok and res.objects == 3 and res.bytes == sum(map(len, data))
    assert res.peers[0].kind == "TAKE"
    assert [o.deleted_at_source for o in res.peers[0].objects] == [True] * 3
    for oid, d in zip(ids, data):
        assert not b.plasma.contains(oid)
        assert bytes(a.plasma.get(oid, timeout_ms=0)) == d


def test_missing_object_fails_only_itself(nodes, a_client):
    a, b = nodes
    present = [_put(b, b"x" * 10), _put(b, b"y" * 20)]
    missing = ps.ObjectID.from_random()
    with pytest.raises(StreamError) as ei:
        a_client.sync([PeerRequest(COPY, b.addr, [present[0], missing.hex(), present[1]])])
    e = ei.value
    assert e.status == "not found" and e.code == sw.NOT_FOUND
    assert missing.hex() in str(e)  # "...; first: object <hex> from <addr>: not found"
    res = e.result
    assert not res.ok and res.status == "not found" and res.objects == 2 and res.bytes == 30
    (peer,) = res.peers
    assert peer.status == "not found" and not peer.ok
    assert [o.status for o in peer.objects] == ["ok", "not found", "ok"]
    assert [o.ok for o in peer.objects] == [True, False, True]
    assert peer.objects[1].id == missing and "not found" in peer.objects[1].message
    assert [o.id for o in res.failed()] == [missing]
    assert a.plasma.contains(present[0]) and a.plasma.contains(present[1])
    assert a_client.error is None
    a_client.ping()  # a failed SYNC leaves the connection usable


def test_unreachable_peer(nodes, a_client):
    dead = f"127.0.0.1:{_free_port()}"
    oid = ps.ObjectID.from_random()
    with pytest.raises(StreamError) as ei:
        a_client.sync([PeerRequest(COPY, dead, [oid])])
    assert ei.value.status == "peer unreachable"
    assert ei.value.result.peers[0].objects[0].status == "peer unreachable"


def test_limits_rejected_client_side(nodes, a_client):
    _, b = nodes
    oid = ps.ObjectID.from_random()
    cases = [
        ([PeerRequest(COPY, b.addr, [])], "no objects requested"),
        ([PeerRequest(COPY, b.addr, [ps.ObjectID.from_random() for _ in range(65_537)])], "too many objects"),
        ([PeerRequest(COPY, b.addr, [oid, oid.hex()])], "duplicate object id"),
        ([PeerRequest(COPY, b.addr, [oid]), PeerRequest(TAKE, b.addr, [oid])], "duplicate object id"),
        ([], "no peer requests"),
        ([PeerRequest(COPY, b.addr, [ps.ObjectID.from_random()]) for _ in range(1025)], "too many peer requests"),
        ([PeerRequest(COPY, "localhost", [oid])], "bad peer address"),
        ([PeerRequest(COPY, "localhost:http", [oid])], "bad peer address"),
        ([PeerRequest(COPY, "localhost:65536", [oid])], "bad peer address"),
        ([PeerRequest(COPY, ":2021", [oid])], "bad peer address"),
        ([PeerRequest(COPY, "::1:2021", [oid])], "bad peer address"),
        ([PeerRequest("MOVE", b.addr, [oid])], "malformed request"),
    ]
    # A closed client would fail any request that reaches the wire with
    # "connection lost": these never get that far.
    closed = b.connect()
    closed.close()
    for reqs, status in cases:
        for c in (a_client, closed):
            with pytest.raises(StreamError) as ei:
                c.sync(reqs)
            e = ei.value
            assert e.status == status, (status, str(e))
            assert str(e).startswith("SYNC rejected: ")
            assert e.result.status == status and e.result.peers == [] and e.result.objects == 0
    # The limits themselves are allowed.
    assert sw.validate_sync([(1, b.addr, [os.urandom(20) for _ in range(65_536)])]) == (sw.OK, "")
    assert sw.validate_sync([(1, "[::1]:0", [os.urandom(20)])] * 1) == (sw.OK, "")
    assert a_client.error is None
    a_client.ping()


def test_ping_stat_list(nodes):
    a, b = nodes
    oid = _put(b, b"z" * 1234, b"mm")
    with b.connect(timeout=5) as c:
        assert c.node == "b"
        rtt = c.ping()
        assert 0 < rtt < 5
        st = c.stat()
        assert st.node == "b" and st.version and st.uptime > 0 and st.connections >= 1
        assert st.store["capacity"] == 64 << 20 and st.store["objects"] >= 1
        infos = c.list()
        assert infos[oid]["data_size"] == 1234 and infos[oid]["metadata_size"] == 2
        assert infos[oid]["state"] == "sealed"
        assert set(infos) == set(b.plasma.list())
    assert c.closed
    with pytest.raises(StreamError):
        c.ping()


def test_connect_refused():
    with pytest.raises(StreamError) as ei:
        stream.connect(f"127.0.0.1:{_free_port()}", timeout=2)
    assert ei.value.status == "peer unreachable"
    with pytest.raises(StreamError) as ei:
        stream.connect("nohostport")
    assert ei.value.status == "bad peer address"


# -- against a fake server ----------------------------------------------------


class FakeServer:
    """Accepts one connection, answers HELLO, then runs ``script(conn)``."""

    def __init__(self, script, hello_reply=None):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.script, self.hello_reply = script, hello_reply
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @staticmethod
    def read(conn):
        h = conn.recv(12, socket.MSG_WAITALL)
        n, t, _, _ = sw.HEADER.unpack(h)
        return t, conn.recv(n, socket.MSG_WAITALL) if n else b""

    def _run(self):
        conn, _ = self.sock.accept()
        with conn:
            t, p = self.read(conn)
            assert t == sw.HELLO and p[:4] == b"PLSS" and p[6] == 1
            if self.hello_reply is not None:
                conn.sendall(self.hello_reply)
                conn.shutdown(socket.SHUT_WR)
                time.sleep(0.2)
                return
            conn.sendall(sw.frame(sw.HELLO | sw.REPLY_BIT, struct.pack("<HI", 1, 4) + b"fake"))
            self.script(conn)

    def close(self):
        self.thread.join(5)
        self.sock.close()


def _peer_result_frame(addr, status, objs):
    body = struct.pack("<B", 1) + sw.bytes32(addr.encode()) + struct.pack("<H", status) + sw.bytes32(b"")
    body += struct.pack("<QqI", 0, 1000, len(objs))
    for oid, st, nbytes, msg in objs:
        body += oid + struct.pack("<HQB", st, nbytes, 0) + sw.bytes32(msg.encode())
    return sw.frame(sw.PEER_RESULT, body)


def test_progress_frames_and_results_decoded():
    oid = os.urandom(20)

    def script(conn):
        t, p = FakeServer.read(conn)
        assert t == sw.SYNC and p == sw.sync([(1, "10.0.0.1:2021", [oid])])
        conn.sendall(sw.frame(sw.PROGRESS, sw.PROGRESS_BODY.pack(500, 0, 0, 1)) +
                     sw.frame(sw.PROGRESS, sw.PROGRESS_BODY.pack(1000, 0, 1, 1)) +
                     _peer_result_frame("10.0.0.1:2021", 0, [(oid, 0, 1000, "")]) +
                     sw.frame(sw.SYNC_DONE, struct.pack("<H", 0) + sw.bytes32(b"") +
                              struct.pack("<QQq", 1000, 1, 2_000_000_000)))
        FakeServer.read(conn)  # the PING that follows

    srv = FakeServer(script)
    seen = []
    with stream.connect(srv.addr, timeout=5) as c:
        assert c.node == "fake"
        res = c.sync([PeerRequest(COPY, "10.0.0.1:2021", [ps.ObjectID(oid)])], progress=seen.append)
        assert [(p.bytes, p.objects, p.objects_total) for p in seen] == [(500, 0, 1), (1000, 1, 1)]
        assert res.ok and res.bytes == 1000 and res.objects == 1 and res.duration == 2.0
        assert res.peers[0].duration == 1e-6 and res.peers[0].objects[0].bytes == 1000
        # The fake server closes after the PING request instead of answering.
        with pytest.raises(StreamError) as ei:
            c.ping()
        assert ei.value.status == "connection lost" and c.error
    srv.close()


def test_error_reply_and_protocol_error():
    def script(conn):
        FakeServer.read(conn)  # SYNC -> Error, the connection stays in step
        conn.sendall(sw.frame(sw.ERROR, struct.pack("<H", sw.STORE_ERROR) + sw.bytes32(b"store on fire")))
        FakeServer.read(conn)  # SYNC -> a PeerResult, then garbage
        conn.sendall(_peer_result_frame("10.0.0.1:2021", 0, []) + sw.frame(sw.PING | sw.REPLY_BIT, b"\0" * 8))
        time.sleep(0.2)

    srv = FakeServer(script)
    req = [PeerRequest(COPY, "10.0.0.1:2021", [ps.ObjectID.from_random()])]
    with stream.connect(srv.addr, timeout=5) as c:
        with pytest.raises(StreamError) as ei:
            c.sync(req)
        assert ei.value.status == "store error" and "store on fire" in str(ei.value)
        assert ei.value.result.status == "store error" and c.error is None
        with pytest.raises(StreamError) as ei:
            c.sync(req)
        assert ei.value.status == "protocol error"
        assert len(ei.value.result.peers) == 1  # results received before the failure are kept
        assert c.error is not None
    srv.close()


def test_server_busy_refusal():
    srv = FakeServer(None, hello_reply=sw.frame(sw.ERROR, struct.pack("<H", sw.SERVER_BUSY) + sw.bytes32(b"busy")))
    with pytest.raises(StreamError) as ei:
        stream.connect(srv.addr, timeout=5)
    assert ei.value.status == "server busy" and ei.value.code == 15
    srv.close()


def test_validate_addr_matches_go():
    good = ["h:0", "h:65535", "10.0.0.1:2021", "[::1]:2021", "[fe80::1%eth0]:1", "host.example:007"]
    bad = ["h", "h:", ":1", "h:-1", "h:+1", "h:65536", "h:1_0", "::1:2021", "[::1]", "[::1]2021",
           "[::1]:x", "[]:1", "a[b:1", "a]b:1", "h:１"]
    assert [a for a in good if sw.validate_addr(a)[0] != sw.OK] == []
    assert [a for a in bad if sw.validate_addr(a)[0] != sw.BAD_ADDRESS] == []
