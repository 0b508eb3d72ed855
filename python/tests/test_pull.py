"""StreamClient.pull (PULL, type 28) against three real nodes, each a
plasma-store-server with a plasma-stream-server in front of it, plus the
wire layout and reply handling against a fake server."""

from __future__ import annotations

import json
import os
import struct

import pytest

import plasmastream as ps
from plasmastream import _streamwire as sw
from plasmastream import stream
from plasmastream.stream import PullOutcome, PullSource, RequestRejected, SourceStat, StreamError
from test_stream import FakeServer, Node, _free_port


@pytest.fixture(scope="module")
def abc(go_bins):
    """Nodes A, B and C, shared by the module's tests (each uses fresh ids)."""
    made = []
    try:
        for name in ("a", "b", "c"):
            made.append(Node(go_bins, name))
        yield tuple(made)
    finally:
        for n in made:
            n.stop()


@pytest.fixture
def b_client(abc):
    with abc[1].connect() as c:
        yield c


def _put_same(nodes, data: bytes, meta: bytes = b"") -> ps.ObjectID:
    oid = ps.ObjectID.from_random()
    for n in nodes:
        n.plasma.put(data, object_id=oid, metadata=meta)
    return oid


def _assert_has(node: Node, oid, data: bytes, meta: bytes) -> None:
    (m, d), = node.plasma.get_buffers([oid], timeout_ms=0, with_meta=True)
    assert d is not None, f"{node.name} does not have {oid.hex()}"
    assert bytes(d) == data and bytes(m) == meta
    del m, d


# -- against real nodes -------------------------------------------------------


def test_pull_from_two_holders(abc, b_client):
    a, b, c = abc
    data, meta = os.urandom(12 << 20), b"application/octet-stream"
    oid = _put_same((a, c), data, meta)
    assert not b.plasma.contains(oid)

    out = b_client.pull(oid, [("a", a.addr), f"c={c.addr}"])
    assert isinstance(out, PullOutcome)
    assert out.ok and out.status == "ok" and out.code == sw.OK and out.message == ""
    assert out.node == "b" and out.bytes == len(data) + len(meta) and out.resumed == 0
    assert out.duration > 0
    assert [(s.node, s.address, s.failed) for s in out.sources] == [("a", a.addr, ""), ("c", c.addr, "")]
    assert all(isinstance(s, SourceStat) for s in out.sources)
    # Source bytes count the data: between them the holders sent it once.
    # (Both usually send a part, but the server hands out 4 MiB ranges to
    # whichever source asks first, so that is not asserted here; the slices
    # test below makes each source's share certain.)
    assert sum(s.bytes for s in out.sources) == len(data)
    _assert_has(b, oid, data, meta)
    assert a.plasma.contains(oid) and c.plasma.contains(oid)  # the holders keep theirs

    # Again: already present is a success, nothing is sent.
    again = b_client.pull(oid.hex(), [{"node": "a", "address": a.addr}])
    assert again.ok and again.status == "already present" and again.code == sw.ALREADY_PRESENT
    assert [s.bytes for s in again.sources] == [0]
    assert b_client.error is None


def test_pull_slices_take_one_from_a_partial_source(abc, b_client):
    """slices=2: B takes its own slice from the full source A and the other
    from C, given as a partial source, so both send part of the object:
    this only happens if the full flags, own and slices reach the server
    as given."""
    a, b, c = abc
    data = os.urandom(8 << 20)
    for own in (0, 1):
        oid = _put_same((a, c), data)
        out = b_client.pull(oid, [PullSource("a", a.addr), ("c", c.addr, False)], own=own, slices=2)
        assert out.ok and out.status == "ok" and out.bytes == len(data)
        sent = {s.node: s.bytes for s in out.sources}
        assert sent["a"] > 0 and sent["c"] > 0, sent
        assert sent["a"] + sent["c"] == len(data)
        # Each sent about its half (a slice boundary falls on a 16 KiB group).
        assert abs(sent["a"] - sent["c"]) <= 2 * 16384, sent
        _assert_has(b, oid, data, b"")


def test_pull_from_a_dead_source_raises(abc, b_client):
    dead = f"127.0.0.1:{_free_port()}"
    oid = ps.ObjectID.from_random()
    with pytest.raises(StreamError) as ei:
        b_client.pull(oid, [("ghost", dead)])
    e = ei.value
    assert not isinstance(e, RequestRejected)
    assert e.status == "peer unreachable" and e.code == sw.PEER_UNREACHABLE
    assert "ghost" in str(e) and dead in str(e) and oid.hex() in str(e)
    out = e.result
    assert isinstance(out, PullOutcome) and not out.ok and out.status == "peer unreachable"
    (src,) = out.sources
    assert (src.node, src.address, src.bytes) == ("ghost", dead, 0) and src.failed
    # A failed pull is a reply like any other: the connection stays usable.
    assert b_client.error is None
    b_client.ping()
    assert not abc[1].plasma.contains(oid)


def test_pull_from_dead_sources_given_as_addresses(abc, b_client):
    dead = [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]
    oid = ps.ObjectID.from_random()
    with pytest.raises(StreamError) as ei:
        b_client.pull(oid, dead)  # "host:port": a full source named after its address
    e = ei.value
    assert e.status == "peer unreachable"
    assert [(s.node, s.address) for s in e.result.sources] == [(d, d) for d in dead]
    assert all(s.failed for s in e.result.sources)
    assert all(d in str(e) for d in dead)  # every source that failed, and why
    b_client.ping()


def test_pull_arguments_rejected_client_side(abc, b_client):
    a, b, _ = abc
    oid = ps.ObjectID.from_random()
    src = [("a", a.addr)]
    cases = [
        (dict(sources=[]), "malformed request", "at least one source"),
        (dict(sources=[("a", a.addr)] * 4097), "malformed request", "4097 sources"),
        (dict(sources=src, own=1, slices=1), "malformed request", "slice 1 of 1"),
        (dict(sources=src, own=0, slices=0), "malformed request", "slice 0 of 0"),
        (dict(sources=src, own=-1, slices=2), "malformed request", "slice -1 of 2"),
        (dict(sources=src, own=0, slices=4098), "malformed request", "slice 0 of 4098"),
        (dict(sources=[("n" * 256, a.addr)]), "malformed request", "node name of 256 bytes"),
        (dict(sources=[("a", "h" * 1020 + ":2021")]), "malformed request", "address of 1025 bytes"),
        (dict(sources=["localhost"]), "bad peer address", "source 1"),
        (dict(sources=[("a", a.addr), "b=localhost:http"]), "bad peer address", "source 2 (b)"),
        (dict(sources=[{"node": "x", "address": ":2021"}]), "bad peer address", '":2021"'),
    ]
    # A closed client would fail anything that reaches the wire with
    # "connection lost": these never get that far.
    closed = b.connect()
    closed.close()
    for kw, status, text in cases:
        for c in (b_client, closed):
            with pytest.raises(RequestRejected) as ei:
                c.pull(oid, **kw)
            e = ei.value
            assert isinstance(e, ValueError) and isinstance(e, StreamError)
            assert e.status == status, (kw, str(e))
            assert str(e).startswith("PULL rejected: ") and text in str(e), str(e)
            assert e.result is None
    # Sources and ids of the wrong shape.
    for bad in ([42], [("a",)], [("a", a.addr, True, 1)], [{"node": "a"}], [{"address": a.addr, "fast": 1}],
                [(1, a.addr)], [("a", a.addr, "yes")]):
        with pytest.raises(TypeError):
            b_client.pull(oid, bad)
    with pytest.raises(TypeError):
        b_client.pull(b"\0" * 19, src)
    with pytest.raises(ValueError):
        b_client.pull("xyz", src)
    with pytest.raises(TypeError):
        b_client.pull(oid, src, own=0.5)
    assert b_client.error is None
    b_client.ping()


def test_pull_source_forms():
    parse = stream._pull_sources
    assert parse(["a=10.0.0.1:2021", "10.0.0.2:2021", ("c", "[::1]:2021"), ("d", "h:1", False),
                  {"node": "e", "address": "h:2"}, {"address": "h:3", "full": False}, PullSource("g", "h:4", False)]) == [
        PullSource("a", "10.0.0.1:2021", True), PullSource("10.0.0.2:2021", "10.0.0.2:2021", True),
        PullSource("c", "[::1]:2021", True), PullSource("d", "h:1", False), PullSource("e", "h:2", True),
        PullSource("h:3", "h:3", False), PullSource("g", "h:4", False)]
    assert parse("a=h:1") == [PullSource("a", "h:1")]  # one source on its own
    # The limits themselves are allowed.
    many = [PullSource(f"n{i}", f"h:{i}") for i in range(4096)]
    assert stream._validate_pull(many, 4096, 4097) == (sw.OK, "")
    assert stream._validate_pull([PullSource("n" * 255, "h" * 1019 + ":2021")], 0, 1) == (sw.OK, "")


# -- against a fake server ----------------------------------------------------


def _pull_reply(outcome: dict) -> bytes:
    return sw.frame(0x801C, sw.bytes32(json.dumps(outcome).encode()))


def test_pull_wire_layout_and_replies():
    oid = os.urandom(20)
    ok = {"node": "fake", "status": "ok", "code": 0, "ok": True, "bytes": 1000, "resumed": 24,
          "sources": [{"node": "a", "address": "10.0.0.1:2021", "bytes": 600},
                      {"node": "p", "address": "10.0.0.2:2021", "bytes": 376, "failed": "dial: refused"}],
          "duration": 1_500_000_000}
    failed = {"node": "fake", "status": "integrity failure", "code": sw.INTEGRITY_FAILURE, "ok": False,
              "message": "object xx: a (10.0.0.1:2021): integrity failure: group 3", "bytes": 0,
              "resumed": 0, "sources": [{"node": "a", "address": "10.0.0.1:2021", "bytes": 0,
                                         "failed": "integrity failure: group 3"}], "duration": 1000}
    # The layout of docs/stream-protocol.md, built by hand.
    want = (oid + struct.pack("<I", 2) +
            struct.pack("<I", 1) + b"a" + struct.pack("<I", 13) + b"10.0.0.1:2021" + b"\x01" +
            struct.pack("<I", 1) + b"p" + struct.pack("<I", 13) + b"10.0.0.2:2021" + b"\x00" +
            struct.pack("<II", 1, 2))

    def script(conn):
        t, p = FakeServer.read(conn)
        assert (t, p) == (28, want)
        conn.sendall(_pull_reply(ok))
        FakeServer.read(conn)  # -> the outcome of a failed pull
        conn.sendall(_pull_reply(failed))
        FakeServer.read(conn)  # -> an Error frame: the connection stays in step
        conn.sendall(sw.frame(sw.ERROR, struct.pack("<H", sw.STORE_ERROR) + sw.bytes32(b"store on fire")))
        FakeServer.read(conn)  # -> a reply of another type
        conn.sendall(sw.frame(sw.PING | sw.REPLY_BIT, b"\0" * 8))

    srv = FakeServer(script)
    srcs = [("a", "10.0.0.1:2021"), ("p", "10.0.0.2:2021", False)]
    with stream.connect(srv.addr, timeout=5) as c:
        out = c.pull(ps.ObjectID(oid), srcs, own=1, slices=2)
        assert out == PullOutcome("fake", "ok", 0, True, "", 1000, 24,
                                  [SourceStat("a", "10.0.0.1:2021", 600, ""),
                                   SourceStat("p", "10.0.0.2:2021", 376, "dial: refused")], 1.5)

        with pytest.raises(StreamError) as ei:
            c.pull(oid, srcs, own=1, slices=2)
        e = ei.value
        assert e.status == "integrity failure" and e.code == sw.INTEGRITY_FAILURE
        assert str(e) == failed["message"] and e.result.sources[0].failed == "integrity failure: group 3"
        assert c.error is None

        with pytest.raises(StreamError) as ei:
            c.pull(oid, srcs)
        assert ei.value.status == "store error" and "store on fire" in str(ei.value)
        assert ei.value.result is None and c.error is None

        with pytest.raises(StreamError) as ei:
            c.pull(oid, srcs)
        assert ei.value.status == "protocol error" and "PULL-REPLY" in str(ei.value)
        assert c.error is not None  # out of step: unusable
    srv.close()


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"status": "ok"}', b'{"code": 0, "sources": [1]}'])
def test_pull_undecodable_reply(body):
    def script(conn):
        FakeServer.read(conn)
        conn.sendall(sw.frame(0x801C, sw.bytes32(body)))

    srv = FakeServer(script)
    with stream.connect(srv.addr, timeout=5) as c:
        with pytest.raises(StreamError) as ei:
            c.pull(ps.ObjectID.from_random(), ["h:1"])
        assert ei.value.status == "protocol error" and "PULL-REPLY" in str(ei.value)
        assert c.error is not None
    srv.close()
