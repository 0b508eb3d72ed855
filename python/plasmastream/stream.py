"""Client of plasma-stream-server: ask a server to pull objects from other
servers into its store (SYNC, PULL), and inspect it (PING, STAT, LIST).

The semantics are the Go client's (``stream.Connect``, ``Client.Sync``,
``Client.Pull``)::

    from plasmastream import stream

    with stream.connect("127.0.0.1:2021") as c:
        res = c.sync([stream.PeerRequest(stream.COPY, "127.0.0.1:2022", [oid])])
        print(res.status, res.objects, res.bytes)

``sync`` returns a :class:`SyncResult` when every peer request and object
succeeded, and raises :class:`StreamError` (its ``.result`` holding the
SyncResult) exactly when the Go client returns an error. ``pull``
(``Client.Pull``) fetches one object as verified ranges from several
sources at once and returns a :class:`PullOutcome`, raising
:class:`StreamError` (``.result`` the outcome) when the pull failed. The
protocol is in docs/stream-protocol.md.
"""

from __future__ import annotations

import errno
import json
import operator
import os
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, List, Optional, Sequence, Union

from . import _streamwire as sw
from . import _tls
from . import _wire as w
from .errors import PlasmaError
from .objectid import ObjectID

__all__ = [
    "connect", "StreamClient", "PeerRequest", "SyncResult", "PeerResult", "ObjectResult",
    "Progress", "ServerStat", "StreamError", "RequestRejected", "PullSource", "PullOutcome",
    "SourceStat", "COPY", "TAKE", "RELAY", "DEFAULT_PORT", "DEFAULT_TIMEOUT", "MAX_PEER_REQUESTS",
    "MAX_OBJECTS_PER_PEER_REQUEST", "MAX_PULL_SOURCES", "status_name",
]

DEFAULT_PORT = 2021
DEFAULT_TIMEOUT = 30.0

COPY = "COPY"    # the source keeps its objects
TAKE = "TAKE"    # the source deletes each object once the receiver sealed it (best effort)
RELAY = "RELAY"  # a COPY the source may serve while still receiving the object itself

MAX_PEER_REQUESTS = sw.MAX_PEER_REQUESTS
MAX_OBJECTS_PER_PEER_REQUEST = sw.MAX_OBJECTS_PER_PEER_REQUEST
MAX_PULL_SOURCES = 4096  # streamwire.MaxPullSources

# PULL (docs/stream-protocol.md, "PULL (28)"); its reply is a JSON message.
_PULL = 28
_PULL_REPLY = _PULL | sw.REPLY_BIT  # 0x801C

status_name = sw.status_name

_KINDS = {"COPY": sw.KIND_COPY, "TAKE": sw.KIND_TAKE, "RELAY": sw.KIND_RELAY}


class StreamError(PlasmaError):
    """A failure with a stream-protocol status.

    ``status`` is the status name as the Go client prints it (``"not
    found"``, ``"too many objects"``, ``"connection lost"``...), ``code``
    the numeric status of docs/stream-protocol.md ("Status codes"),
    ``message`` (and ``str(e)``) the sentence, and ``result`` the
    :class:`SyncResult` for a failed or rejected ``sync``, the
    :class:`PullOutcome` for a failed ``pull`` (``None`` otherwise).
    """

    def __init__(self, code: int, message: str, result: "Optional[Union[SyncResult, PullOutcome]]" = None):
        super().__init__(message, code)
        self.status = sw.status_name(code)
        self.result = result

    def __repr__(self):
        return f"{type(self).__name__}({self.status!r}, {self.message!r})"


class RequestRejected(StreamError, ValueError):
    """A request this client refused to send because its arguments break
    the protocol's limits; ``status`` is the one the server would answer
    (``"malformed request"``, ``"bad peer address"``). Also a ValueError.
    Raised by :meth:`StreamClient.pull`."""


def _id_bytes(obj) -> bytes:
    if isinstance(obj, ObjectID):
        return obj.binary()
    if isinstance(obj, str):
        return ObjectID.from_hex(obj).binary()
    if isinstance(obj, (bytes, bytearray, memoryview)) and len(obj) == sw.ID_SIZE:
        return bytes(obj)
    raise TypeError(f"object id must be an ObjectID or 40 hex digits, got {obj!r}")


@dataclass
class PeerRequest:
    """Pull ``objects`` (ObjectIDs or 40-hex strings) from the stream server
    at ``from_addr`` (``host:port``, IPv6 as ``[::1]:2021``); ``kind`` is
    ``COPY``, ``TAKE`` or ``RELAY`` (the strings, any case, or 1, 2, 3)."""

    kind: Union[str, int]
    from_addr: str
    objects: Sequence[Union[ObjectID, str]]


@dataclass
class ObjectResult:
    """What became of one object: ``ok`` when it is at the destination
    (status ``"ok"``, or ``"already present"``)."""

    id: ObjectID
    status: str
    bytes: int
    deleted_at_source: bool
    message: str
    ok: bool
    code: int


@dataclass
class PeerResult:
    """What became of one peer request (``status`` ``"ok"`` when every object
    succeeded); ``duration`` in seconds."""

    kind: str
    from_addr: str
    status: str
    message: str
    bytes: int
    duration: float
    objects: List[ObjectResult]
    code: int

    @property
    def ok(self) -> bool:
        return self.code == sw.OK


@dataclass
class SyncResult:
    """The whole outcome of a SYNC: request-level ``status`` and
    ``message``, ``bytes`` received, ``objects`` now at the destination,
    ``duration`` (seconds, the server's) and one PeerResult per peer
    request, in request order."""

    status: str = "ok"
    message: str = ""
    bytes: int = 0
    objects: int = 0
    duration: float = 0.0
    peers: List[PeerResult] = field(default_factory=list)
    code: int = sw.OK

    @property
    def ok(self) -> bool:
        return self.code == sw.OK

    def failed(self) -> List[ObjectResult]:
        """Every object that did not arrive, across peer requests."""
        return [o for p in self.peers for o in p.objects if not o.ok]

    def _set_status(self, code: int, message: str) -> None:
        self.code, self.status, self.message = code, sw.status_name(code), message


@dataclass
class Progress:
    """A running SYNC: object bytes received so far, objects finished
    (whatever their outcome) and the SYNC's total of objects."""

    bytes: int
    objects: int
    objects_total: int


@dataclass
class ServerStat:
    """A server and its store: ``uptime`` in seconds, ``connections`` served
    (this one included), ``store`` the store's stats dict (capacity, used,
    objects, ...; zero while the store is down), ``store_up`` whether the
    store is reachable and ``store_since`` since when (Unix seconds)."""

    node: str
    version: str
    uptime: float
    connections: int
    store: dict
    store_up: bool = True
    store_since: float = 0.0


@dataclass
class PullSource:
    """A node a ``pull`` may take ranges from: its ``node`` name (for
    messages, at most 255 bytes), the ``address`` (``host:port``) of its
    stream server, and ``full``: True when it holds the whole object, False
    for a node that is receiving it too (it serves what it has verified so
    far; see ``own`` and ``slices`` of :meth:`StreamClient.pull`)."""

    node: str
    address: str
    full: bool = True


@dataclass
class SourceStat:
    """What one source contributed to a pull: the data ``bytes`` it sent,
    and ``failed``, why it was dropped ("" if it was not)."""

    node: str
    address: str
    bytes: int
    failed: str = ""


@dataclass
class PullOutcome:
    """What a PULL did (Go's ``stream.PullOutcome``): the server's ``node``,
    the outcome ``status`` (``"ok"``, ``"already present"``, ``"peer
    unreachable"``, ...) and ``code``, ``ok``, ``message`` (on failure,
    every source that failed and why), ``bytes`` (the object's data and
    metadata), ``resumed`` (bytes already verified there by an earlier
    attempt), one :class:`SourceStat` per source in request order, and
    ``duration`` (seconds, the server's)."""

    node: str
    status: str
    code: int
    ok: bool
    message: str
    bytes: int
    resumed: int
    sources: List[SourceStat]
    duration: float


class _Broken(Exception):
    """A failure that leaves the connection out of step: (status, message)."""

    def __init__(self, code: int, message: str, partial: bytes = b""):
        super().__init__(message)
        self.code = code
        self.message = message
        self.partial = partial  # what arrived before an unexpected EOF


def _classify(e: BaseException) -> int:
    """transfer.ErrStatus for the errors a Python socket raises."""
    if isinstance(e, socket.timeout):
        return sw.TIMEOUT
    if isinstance(e, ConnectionRefusedError) or getattr(e, "errno", None) in (
            errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH):
        return sw.PEER_UNREACHABLE
    return sw.CONNECTION_LOST


def _split_addr(addr: str) -> tuple[str, int]:
    try:
        host, port = sw.split_host_port(addr)
        if not sw._PORT.match(port) or int(port) > 65535:
            raise ValueError(f"bad port {port!r}")
    except ValueError as e:
        raise StreamError(sw.BAD_ADDRESS, f"stream server {addr}: {e}") from None
    return host, int(port)


# A TLS alert record (content type 21, version 3.x): what a keyed server
# answers, at most, to a plain HELLO.
_TLS_ALERT = b"\x15\x03"


def _tls_config(key, server_key, tls_cert=None, tls_key=None, tls_ca=None):
    """(client config, pinned server key) for key= and server_key=, or None
    without them. Both or neither: the server checks this client's key,
    and this client the server's. In CA mode (tls_cert=, tls_key=, tls_ca=,
    all three) the pinned key is None: the context checks the chain."""
    files = (tls_cert, tls_key, tls_ca)
    if any(f is not None for f in files):
        if key is not None or server_key is not None:
            raise ValueError("tls_cert=/tls_key=/tls_ca= (CA mode) and key=/server_key= (pinned keys) exclude "
                             "each other: use the kind the server runs")
        if any(f is None for f in files):
            raise ValueError("tls_cert=, tls_key= and tls_ca= go together: this client's certificate, its key, "
                             "and the CA the server's certificate must chain to")
        return _tls.ca_client_config(*files), None
    if key is None and server_key is None:
        return None
    if key is None or server_key is None:
        raise ValueError("key= and server_key= go together: the server checks this client's key, and this "
                         "client the server's (plasma key show FILE prints a node's public key)")
    pinned = _tls.parse_public_key(server_key)
    return _tls.client_config(key), pinned


def _hello_refused(addr: str, e: BaseException, tls) -> Optional[StreamError]:
    """The refusal a failed HELLO exchange means, or None. A keyed server
    drops a plain HELLO, at most with a TLS alert; under TLS 1.3 it checks
    this client's certificate after the client's handshake returned, so
    its refusal (an alert, or the connection closed) comes here."""
    partial = getattr(e, "partial", b"")
    if isinstance(e, _Broken):
        lost = e.code == sw.CONNECTION_LOST and not partial
    else:
        lost = isinstance(e, (ssl.SSLError, ConnectionResetError, BrokenPipeError))
    if tls is not None:
        if not lost:
            return None
        why = (e.reason or str(e)) if isinstance(e, ssl.SSLError) else "connection closed"
        if tls[0].ca:
            return StreamError(sw.NOT_PERMITTED, f"stream server {addr} refused this client's {tls[0].describe()} "
                                                 f"({why}): did the server's CA issue it, with a role?")
        return StreamError(sw.NOT_PERMITTED, f"stream server {addr} refused this client's key {tls[0].public} "
                                             f"({why}): is it in the server's trust file?")
    if isinstance(e, _Broken) and partial.startswith(_TLS_ALERT):
        return StreamError(sw.NOT_PERMITTED, f"stream server {addr} answered HELLO with a TLS alert: it serves "
                                             f"only clients with a key (connect with key= and server_key=, or in CA "
                                             f"mode tls_cert=, tls_key= and tls_ca=)")
    if lost:
        return StreamError(sw.CONNECTION_LOST, f"stream server {addr} closed the connection without answering "
                                               f"HELLO: if it runs with a key (-k), connect with key= and "
                                               f"server_key= (in CA mode, --tls-cert: tls_cert=, tls_key= and tls_ca=)")
    return None


class StreamClient:
    """One connection to a plasma-stream-server, running one request at a
    time; thread-safe (requests queue). ``timeout`` bounds each network step
    (the Go client's ``WithTimeout``); a SYNC may run longer, as the server
    sends Progress every 250 ms while it works."""

    def __init__(self, addr: str, timeout: float = DEFAULT_TIMEOUT, name: Optional[str] = None,
                 key: Optional[str] = None, server_key: Optional[str] = None,
                 tls_cert: Optional[str] = None, tls_key: Optional[str] = None, tls_ca: Optional[str] = None):
        self.addr = addr
        self.timeout = timeout if timeout and timeout > 0 else DEFAULT_TIMEOUT
        self._lock = threading.Lock()
        self._dead: Optional[str] = None
        self._closed = False
        self.server_key: Optional[str] = None  # the server's proved key (hex), with TLS
        if name is None:
            name = f"{socket.gethostname()}/{os.getpid()}"
        tls = _tls_config(key, server_key, tls_cert, tls_key, tls_ca)
        host, port = _split_addr(addr)
        try:
            self._sock = socket.create_connection((host, port), timeout=min(self.timeout, 10.0))
        except OSError as e:
            raise StreamError(_classify(e), f"stream server {addr}: dial: {e}") from e
        try:
            self._sock.settimeout(self.timeout)
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if tls is not None:
                self._secure(*tls)
            try:
                self._send(sw.HELLO, sw.hello(name))
                t, p = self._read_frame()
            except (_Broken, OSError) as e:
                refused = _hello_refused(addr, e, tls)
                if refused is None:
                    raise
                raise refused from None
            if t == sw.ERROR:
                code, msg = sw.decode_error(p)
                raise StreamError(code, f"{addr}: {msg}")
            if t != sw.HELLO | sw.REPLY_BIT:
                raise _Broken(sw.PROTOCOL_ERROR, f"got {sw.type_name(t)}, want HELLO-REPLY")
            try:
                _, self.node = sw.decode_hello_reply(p)
            except sw.Malformed as e:
                raise _Broken(sw.PROTOCOL_ERROR, f"HELLO-REPLY: {e}") from None
        except _Broken as e:
            self._sock.close()
            raise StreamError(e.code, f"stream server {addr}: {e.message}") from None
        except OSError as e:
            self._sock.close()
            raise StreamError(_classify(e), f"stream server {addr}: {e}") from e
        except BaseException:
            self._sock.close()
            raise

    def _secure(self, cfg: "_tls.ClientConfig", pinned: Optional[bytes]) -> None:
        """The TLS 1.3 handshake, then the pinned key's check, before any
        protocol byte is sent (see _tls for why checking after the
        handshake is safe). Replaces self._sock with the TLS socket."""
        self._sock = cfg.context.wrap_socket(self._sock, do_handshake_on_connect=False)
        try:
            self._sock.do_handshake()
        except ssl.SSLError as e:
            if cfg.ca:
                raise _Broken(sw.PEER_UNREACHABLE, f"TLS handshake failed ({e.reason or e}): a plasma-stream-server "
                                                   f"with a certificate of the CA in tls_ca= must answer") from None
            raise _Broken(sw.PEER_UNREACHABLE, f"TLS handshake failed ({e.reason or e}): a keyed "
                                               f"plasma-stream-server must answer (plasma-stream-server -k)") from None
        if pinned is None:
            return  # CA mode: the handshake verified the server's chain
        der = self._sock.getpeercert(binary_form=True)
        if not der:
            raise _Broken(sw.PEER_UNREACHABLE, "TLS handshake: the server presented no certificate")
        try:
            got = _tls.server_key(der)
        except ValueError as e:
            raise _Broken(sw.PEER_UNREACHABLE, f"the server does not prove a node key: {e}") from None
        if got != pinned:
            raise StreamError(sw.PEER_UNREACHABLE, f"server at {self.addr} proved key {got.hex()}, "
                                                   f"not the pinned {pinned.hex()}")
        self.server_key = got.hex()

    # -- framing ---------------------------------------------------------

    def _send(self, t: int, payload: bytes = b"") -> None:
        self._sock.sendall(sw.frame(t, payload))

    def _recv_exact(self, n: int) -> bytes:
        parts = []
        while n > 0:
            chunk = self._sock.recv(min(n, sw.READ_STEP))
            if not chunk:
                raise _Broken(sw.CONNECTION_LOST, "connection closed by the server (unexpected EOF)",
                              b"".join(parts))
            parts.append(chunk)
            n -= len(chunk)
        return b"".join(parts)

    def _read_frame(self) -> tuple[int, bytes]:
        length, t, flags, _ = sw.HEADER.unpack(self._recv_exact(sw.HEADER_SIZE))
        if flags != 0:
            raise _Broken(sw.CONNECTION_LOST, f"frame flags {flags:#x}: must be 0")
        if length > sw.MAX_CONTROL_FRAME:
            raise _Broken(sw.CONNECTION_LOST, f"frame payload exceeds limit: {length} bytes announced, "
                                              f"{sw.MAX_CONTROL_FRAME} allowed")
        return t, self._recv_exact(length)

    def _error_reply(self, p) -> StreamError:
        code, msg = sw.decode_error(p)
        return StreamError(code, f"{self.addr}: {msg}")

    def _do(self, f):
        """Run one request exclusively. An Error reply raises StreamError and
        keeps the connection; any other failure makes the client unusable."""
        with self._lock:
            if self._closed:
                raise StreamError(sw.CONNECTION_LOST, f"connection to {self.addr} is closed")
            if self._dead is not None:
                raise StreamError(sw.CONNECTION_LOST, self._dead)
            try:
                return f()
            except StreamError:
                raise
            except (_Broken, OSError) as e:
                code = e.code if isinstance(e, _Broken) else _classify(e)
                msg = e.message if isinstance(e, _Broken) else str(e) or type(e).__name__
                self._kill(f"connection to {self.addr} unusable after: {msg}")
                raise StreamError(code, f"stream server {self.addr}: {msg}") from None
            except BaseException as e:  # interrupted mid-request: out of step
                self._kill(f"connection to {self.addr} unusable after: {type(e).__name__}")
                raise

    def _kill(self, why: str) -> None:
        self._dead = why
        try:
            self._sock.close()
        except OSError:
            pass

    # -- requests --------------------------------------------------------

    def ping(self) -> float:
        """The round trip to the server, in seconds."""

        def run():
            start = time.monotonic()
            nonce = time.time_ns() & 0xFFFFFFFFFFFFFFFF
            self._send(sw.PING, sw.ping(nonce))
            t, p = self._read_frame()
            got = self._expect(t, p, sw.PING | sw.REPLY_BIT, sw.decode_ping)
            if got != nonce:
                raise _Broken(sw.PROTOCOL_ERROR, "PING answered with another nonce")
            return time.monotonic() - start

        return self._do(run)

    def stat(self) -> ServerStat:
        """The server's identity and its store's figures."""

        def run():
            self._send(sw.STAT)
            t, p = self._read_frame()
            r = self._expect(t, p, sw.STAT | sw.REPLY_BIT, sw.decode_stat)
            return ServerStat(r["node"], r["version"], r["uptime_ns"] / 1e9, r["connections"], r["store"],
                              r["store_up"], r["store_since_ns"] / 1e9)

        return self._do(run)

    def list(self) -> dict:
        """Every object in the server's store: ``{ObjectID: info}``, info as
        ``PlasmaClient.list()``."""
        from .client import _info_dict

        def run():
            self._send(sw.LIST)
            out = {}
            while True:
                t, p = self._read_frame()
                if t == sw.ERROR:
                    raise self._error_reply(p)
                if t != sw.LIST | sw.REPLY_BIT:
                    raise _Broken(sw.PROTOCOL_ERROR, f"got {sw.type_name(t)} in a LIST reply")
                if len(p) < w.LIST_HEAD.size:
                    raise _Broken(sw.PROTOCOL_ERROR, f"LIST page of {len(p)} bytes")
                more, n = w.LIST_HEAD.unpack_from(p)
                if n > sw.MAX_OBJECTS_PER_PEER_REQUEST or len(p) != w.LIST_HEAD.size + n * w.INFO.size:
                    raise _Broken(sw.PROTOCOL_ERROR, f"LIST page of {n} entries in {len(p)} bytes")
                for info in w.INFO.iter_unpack(memoryview(p)[w.LIST_HEAD.size:]):
                    oid, entry = _info_dict(info)
                    out[oid] = entry
                if not more:
                    return out

        return self._do(run)

    def sync(self, peer_requests: Sequence[PeerRequest],
             progress: Optional[Callable[[Progress], None]] = None) -> SyncResult:
        """Ask the server to fetch the objects of every peer request into its
        store (the peer requests run concurrently on the server). Returns the
        SyncResult when all went well; raises :class:`StreamError` (with
        ``.result``) when the SYNC was rejected (limits are checked here
        first, costing no round trip) or any peer request or object failed.
        ``progress`` is called with a :class:`Progress` as the server reports
        it (every 250 ms while transfers run)."""
        peers = []
        for r in peer_requests:
            kind = r.kind
            if isinstance(kind, str):
                kind = _KINDS.get(kind.upper(), kind)
            peers.append((kind, r.from_addr, [_id_bytes(o) for o in r.objects]))
        code, msg = sw.validate_sync(peers)
        if code != sw.OK:
            res = SyncResult()
            res._set_status(code, msg)
            raise StreamError(code, "SYNC rejected: " + msg, res)

        res = SyncResult()
        payload = sw.sync(peers)

        def run():
            self._send(sw.SYNC, payload)
            while True:
                # Progress comes every 250 ms, so a silent server is dead.
                t, p = self._read_frame()
                if t == sw.PROGRESS:
                    try:
                        done, _total, n, n_total = sw.decode_progress(p)
                    except sw.Malformed as e:
                        raise _Broken(sw.PROTOCOL_ERROR, str(e)) from None
                    if progress is not None:
                        progress(Progress(done, n, n_total))
                elif t == sw.PEER_RESULT:
                    try:
                        pr = sw.decode_peer_result(p)
                    except sw.Malformed as e:
                        raise _Broken(sw.PROTOCOL_ERROR, str(e)) from None
                    res.peers.append(_peer_result(pr))
                elif t == sw.SYNC_DONE:
                    try:
                        st, m, nbytes, nobj, dur = sw.decode_sync_done(p)
                    except sw.Malformed as e:
                        raise _Broken(sw.PROTOCOL_ERROR, str(e)) from None
                    res._set_status(st, m)
                    res.bytes, res.objects, res.duration = nbytes, nobj, dur / 1e9
                    return
                elif t == sw.ERROR:
                    raise self._error_reply(p)
                else:
                    raise _Broken(sw.PROTOCOL_ERROR, f"got {sw.type_name(t)} in a SYNC reply")

        try:
            self._do(run)
        except StreamError as e:
            if res.code == sw.OK:
                res._set_status(e.code, e.message)
            e.result = res
            raise
        if res.code != sw.OK:
            msg = res.message
            failed = res.failed()
            if failed:
                msg += "; first: " + failed[0].message
            raise StreamError(res.code, msg, res)
        return res

    def pull(self, object_id, sources: Iterable[Any], own: int = 0, slices: int = 1) -> PullOutcome:
        """Ask the server to fetch one object into its store as verified
        16 KiB groups taken from several sources at once (Go's
        ``Client.Pull``; no cluster needed). A source is a
        :class:`PullSource`, a ``(node, address)`` or ``(node, address,
        full)`` tuple, a ``"node=host:port"`` or ``"host:port"`` string
        (the node then named after its address), or a dict with
        ``address`` and optionally ``node`` and ``full``; a source is full
        (it holds the whole object) unless given ``full=False``. A single
        string, dict or PullSource may stand for a list of one. The
        object's groups are cut into ``slices`` slices: the
        server takes slice ``own`` from the full sources and each other
        slice from the partial source that owns it, in order; ``slices=1``
        spreads everything over the full sources.

        Returns the :class:`PullOutcome` when the object is there (status
        ``"ok"`` or ``"already present"``); raises :class:`StreamError`
        (``.result`` the outcome, the message naming every source that
        failed) when the pull failed, or for an Error reply. Arguments
        that break the protocol's limits raise :class:`RequestRejected`
        (a StreamError and a ValueError) before anything is sent. The
        reply comes when the fetch has ended, so the client's ``timeout``
        bounds the whole pull, as the Go client's ``WithTimeout`` does."""
        oid = _id_bytes(object_id)
        srcs = _pull_sources(sources)
        own, slices = operator.index(own), operator.index(slices)
        code, msg = _validate_pull(srcs, own, slices)
        if code != sw.OK:
            raise RequestRejected(code, "PULL rejected: " + msg)
        payload = _pull_payload(oid, srcs, own, slices)

        def run():
            self._send(_PULL, payload)
            t, p = self._read_frame()
            if t == sw.ERROR:
                raise self._error_reply(p)
            if t != _PULL_REPLY:
                raise _Broken(sw.PROTOCOL_ERROR, f"got {sw.type_name(t)}, want PULL-REPLY")
            try:
                d = sw.Dec(p)
                body = d.bytes32("json", sw.MAX_CONTROL_FRAME)
                d.done()
                return _pull_outcome(json.loads(body))
            except (sw.Malformed, ValueError, TypeError, KeyError, AttributeError) as e:
                raise _Broken(sw.PROTOCOL_ERROR, f"PULL-REPLY: {e}") from None

        out = self._do(run)
        if not out.ok:
            msg = out.message or f"PULL of object {oid.hex()}: {out.status}"
            raise StreamError(out.code, msg, out)
        return out

    # -- lifetime --------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def error(self) -> Optional[str]:
        """Why the connection can no longer be used (a request failed in a
        way that left it out of step), or None while it can (Go's ``Err``)."""
        return self._dead

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._sock.close()
            except OSError:
                pass

    def __enter__(self) -> "StreamClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self):
        return f"StreamClient({self.addr!r}, node={getattr(self, 'node', None)!r})"

    def _expect(self, t: int, p, want: int, decode):
        if t == sw.ERROR:
            raise self._error_reply(p)
        if t != want:
            raise _Broken(sw.PROTOCOL_ERROR, f"got {sw.type_name(t)}, want {sw.type_name(want)}")
        try:
            return decode(p)
        except sw.Malformed as e:
            raise _Broken(sw.PROTOCOL_ERROR, f"{sw.type_name(t)}: {e}") from None


def _peer_result(pr: dict) -> PeerResult:
    objs = [ObjectResult(ObjectID(oid), sw.status_name(st), nbytes, deleted, msg, sw.success(st), st)
            for oid, st, nbytes, deleted, msg in pr["objects"]]
    return PeerResult(sw.kind_name(pr["kind"]), pr["addr"], sw.status_name(pr["status"]), pr["message"],
                      pr["bytes"], pr["duration_ns"] / 1e9, objs, pr["status"])


def _pull_source(s) -> PullSource:
    """One source of a pull, in any of the forms ``pull`` accepts."""
    if isinstance(s, PullSource):
        return PullSource(s.node, s.address, s.full)
    if isinstance(s, str):
        node, sep, addr = s.partition("=")
        return PullSource(node, addr, True) if sep else PullSource(s, s, True)
    if isinstance(s, dict):
        extra = set(s) - {"node", "address", "full"}
        if extra or "address" not in s:
            raise TypeError(f"pull source {s!r}: want the keys address and optionally node and full")
        addr = s["address"]
        return PullSource(s.get("node", addr), addr, s.get("full", True))
    if isinstance(s, (tuple, list)) and len(s) in (2, 3):
        return PullSource(*s) if len(s) == 3 else PullSource(s[0], s[1], True)
    raise TypeError(f"pull source {s!r}: want \"node=host:port\", \"host:port\", (node, address), "
                    f"(node, address, full), a dict or a PullSource")


def _pull_sources(sources) -> List[PullSource]:
    if isinstance(sources, (str, dict, PullSource)):
        sources = [sources]  # one source given on its own
    out = [_pull_source(s) for s in sources]
    for s in out:
        if not isinstance(s.node, str) or not isinstance(s.address, str):
            raise TypeError(f"pull source {s!r}: node and address must be strings")
        if not isinstance(s.full, (bool, int)):
            raise TypeError(f"pull source {s!r}: full must be a bool")
        s.full = bool(s.full)
    return out


def _validate_pull(sources: List[PullSource], own: int, slices: int) -> tuple[int, str]:
    """What the server would refuse, in its order (the decoder's limits,
    then the slices, then each address) as (status, sentence)."""
    if not sources:
        return sw.MALFORMED, "at least one source is needed"
    if len(sources) > MAX_PULL_SOURCES:
        return sw.MALFORMED, f"{len(sources)} sources; at most {MAX_PULL_SOURCES} are allowed"
    for i, s in enumerate(sources, 1):
        if len(s.node.encode("utf-8")) > sw.MAX_NAME_LEN:
            return sw.MALFORMED, f"source {i}: node name of {len(s.node.encode('utf-8'))} bytes exceeds {sw.MAX_NAME_LEN}"
        if len(s.address.encode("utf-8")) > sw.MAX_ADDR_LEN:
            return sw.MALFORMED, f"source {i}: address of {len(s.address.encode('utf-8'))} bytes exceeds {sw.MAX_ADDR_LEN}"
    if slices < 1 or own < 0 or own >= slices or slices > MAX_PULL_SOURCES + 1:
        return sw.MALFORMED, (f"slice {own} of {slices}: want 0 <= own < slices <= {MAX_PULL_SOURCES + 1}")
    for i, s in enumerate(sources, 1):
        st, msg = sw.validate_addr(s.address)
        if st != sw.OK:
            return st, f"source {i} ({s.node}): {msg}"
    return sw.OK, ""


def _pull_payload(oid: bytes, sources: List[PullSource], own: int, slices: int) -> bytes:
    """streamwire.Pull: id, count u32, count x {node, address, full u8}, own u32, slices u32."""
    parts = [oid, struct.pack("<I", len(sources))]
    for s in sources:
        parts.append(sw.bytes32(s.node.encode("utf-8")))
        parts.append(sw.bytes32(s.address.encode("utf-8")))
        parts.append(b"\x01" if s.full else b"\x00")
    parts.append(struct.pack("<II", own, slices))
    return b"".join(parts)


def _pull_outcome(o: dict) -> PullOutcome:
    if not isinstance(o, dict):
        raise TypeError(f"want a JSON object, got {type(o).__name__}")
    code = int(o["code"])
    srcs = [SourceStat(str(s.get("node", "")), str(s.get("address", "")), int(s.get("bytes", 0)),
                       str(s.get("failed", ""))) for s in (o.get("sources") or [])]
    return PullOutcome(str(o.get("node", "")), str(o.get("status") or sw.status_name(code)), code,
                       bool(o.get("ok", sw.success(code))), str(o.get("message", "")), int(o.get("bytes", 0)),
                       int(o.get("resumed", 0)), srcs, int(o.get("duration", 0)) / 1e9)


def connect(addr: str, timeout: float = DEFAULT_TIMEOUT, name: Optional[str] = None,
            key: Optional[str] = None, server_key: Optional[str] = None,
            tls_cert: Optional[str] = None, tls_key: Optional[str] = None,
            tls_ca: Optional[str] = None) -> StreamClient:
    """Connect to the plasma-stream-server at ``addr`` (``host:port``, IPv6
    as ``[::1]:2021``) and perform the HELLO handshake. ``timeout`` bounds
    each network step (seconds; dialling at most 10 s). Raises
    :class:`StreamError` (e.g. ``"server busy"``, ``"peer unreachable"``).

    A server started with ``-k KEY --trusted-keys FILE`` needs ``key`` (the
    path of this client's private key file, written by ``plasma keygen``,
    mode 0600) and ``server_key`` (the server's public key, 64 hex digits,
    as ``plasma key show`` prints it): the connection then runs mutual TLS
    1.3, and a server proving another key is refused (status ``"peer
    unreachable"``) before anything is sent. Both or neither; a bad key
    file or public key raises ValueError. Needs the ``cryptography``
    package (Debian: python3-cryptography).

    A server in CA mode (``--tls-cert --tls-key --tls-ca``) needs
    ``tls_cert``, ``tls_key`` (mode 0600) and ``tls_ca`` instead (PEM files,
    e.g. from ``plasma ca issue``): mutual TLS 1.3, the server's certificate
    verified against the CA (host names are not checked)."""
    return StreamClient(addr, timeout, name, key, server_key, tls_cert, tls_key, tls_ca)
