"""The stream protocol, version 1: frames, message payloads, statuses and
limits of the client side (HELLO, PING, SYNC, STAT, LIST and their replies).

docs/stream-protocol.md is the authoritative description; this module and
the Go package internal/streamwire implement the same byte layout. All
integers are little-endian. Decoders are strict, as Go's: a short payload,
a count the remaining bytes cannot hold, a bytes32 over its maximum or
trailing bytes raise :class:`Malformed`.
"""

from __future__ import annotations

import re
import struct

from . import _wire

MAGIC = b"PLSS"
VERSION = 1
ROLE_CLIENT = 1
ROLE_PEER = 2

HEADER = struct.Struct("<IHHI")  # payload length, type, flags, request id
HEADER_SIZE = HEADER.size  # 12

ID_SIZE = 20
MAX_OBJECTS_PER_PEER_REQUEST = 65536
MAX_PEER_REQUESTS = 1024
MAX_CONTROL_FRAME = 64 << 20  # every frame a client reads
MAX_ADDR_LEN = 1024
MAX_NAME_LEN = 255
MAX_MESSAGE_LEN = 4096
MAX_OBJECT_MESSAGE_LEN = 512
READ_STEP = 4 << 20  # payloads are read in steps of at most 4 MiB

# Message types.
HELLO = 1
PING = 2
SYNC = 3
STAT = 6
LIST = 7
PROGRESS = 10
SYNC_DONE = 11
PEER_RESULT = 12
ERROR = 0xFFFF
REPLY_BIT = 0x8000

TYPE_NAMES = {
    HELLO: "HELLO", PING: "PING", SYNC: "SYNC", 4: "COPY", 5: "TAKE", STAT: "STAT", LIST: "LIST",
    PROGRESS: "PROGRESS", SYNC_DONE: "SYNC-RESULT", PEER_RESULT: "PEER-RESULT", ERROR: "ERROR",
}


def type_name(t: int) -> str:
    return _wire.name_type(TYPE_NAMES, t, "-REPLY", "TYPE")


# Peer request kinds.
KIND_COPY = 1
KIND_TAKE = 2
KIND_RELAY = 3
KIND_NAMES = {KIND_COPY: "COPY", KIND_TAKE: "TAKE", KIND_RELAY: "RELAY"}


def kind_name(k: int) -> str:
    return KIND_NAMES.get(k, f"KIND({k})")


# Statuses (internal/streamwire/status.go): one u16 space for requests,
# peer requests and objects. Only OK and ALREADY_PRESENT are successes.
OK = 0
ALREADY_PRESENT = 1
NOT_FOUND = 2
STORE_FULL = 3
PEER_UNREACHABLE = 4
INTEGRITY_FAILURE = 5
NO_OBJECTS = 6
TOO_MANY_OBJECTS = 7
NO_PEER_REQUESTS = 8
TOO_MANY_PEER_REQUESTS = 9
DUPLICATE_ID = 10
DATA_TOO_LARGE = 11
METADATA_TOO_LARGE = 12
STORE_ERROR = 13
PEER_STORE_ERROR = 14
SERVER_BUSY = 15
VERSION_MISMATCH = 16
MALFORMED = 17
TIMEOUT = 18
CONNECTION_LOST = 19
BAD_ADDRESS = 20
NOT_ATTEMPTED = 21
PROTOCOL_ERROR = 22
INTERNAL = 23
CANCELLED = 24
NOT_CLUSTERED = 25
CLUSTER_UNAVAILABLE = 26  # etcd did not answer within --etcd-timeout
STORE_UNAVAILABLE = 27  # the server's store is down; it reconnects by itself
REQUEST_TOO_LARGE = 28  # the request does not fit in the server's --request-memory
NOT_PERMITTED = 29  # the server does not serve this peer (no keys, --bind default: loopback only)

STATUS_NAMES = {
    OK: "ok", ALREADY_PRESENT: "already present", NOT_FOUND: "not found",
    STORE_FULL: "store full", PEER_UNREACHABLE: "peer unreachable",
    INTEGRITY_FAILURE: "integrity failure", NO_OBJECTS: "no objects requested",
    TOO_MANY_OBJECTS: "too many objects", NO_PEER_REQUESTS: "no peer requests",
    TOO_MANY_PEER_REQUESTS: "too many peer requests", DUPLICATE_ID: "duplicate object id",
    DATA_TOO_LARGE: "data too large", METADATA_TOO_LARGE: "metadata too large",
    STORE_ERROR: "store error", PEER_STORE_ERROR: "peer store error",
    SERVER_BUSY: "server busy", VERSION_MISMATCH: "protocol version mismatch",
    MALFORMED: "malformed request", TIMEOUT: "timed out",
    CONNECTION_LOST: "connection lost", BAD_ADDRESS: "bad peer address",
    NOT_ATTEMPTED: "not attempted", PROTOCOL_ERROR: "protocol error",
    INTERNAL: "internal error", CANCELLED: "cancelled",
    NOT_CLUSTERED: "not in a cluster", CLUSTER_UNAVAILABLE: "cluster directory unavailable",
    STORE_UNAVAILABLE: "store unavailable",
    REQUEST_TOO_LARGE: "request memory exceeded",
    NOT_PERMITTED: "not permitted",
}


def status_name(code: int) -> str:
    """Go's ``Status.String``: ``"ok"``, ``"not found"``, ... or ``"status N"``."""
    return STATUS_NAMES.get(code, f"status {code}")


def success(code: int) -> bool:
    return code in (OK, ALREADY_PRESENT)


class Malformed(ValueError):
    """A payload that does not decode."""


_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")
PROGRESS_BODY = struct.Struct("<QQII")  # bytes_done, bytes_total, objects_done, objects_total
STATS_FIELDS = (
    "capacity", "used", "objects", "sealed", "pinned", "largest_free", "free_blocks",
    "evictions", "evicted_bytes", "compactions", "moved_bytes", "clients",
)
_STATS = struct.Struct("<12Q")


class Dec:
    """Strict little-endian decoder of one payload (Go's wire.Dec)."""

    __slots__ = ("b", "off")

    def __init__(self, payload):
        self.b = memoryview(payload)
        self.off = 0

    def _take(self, what: str, n: int) -> memoryview:
        if n > len(self.b) - self.off:
            raise Malformed(f"{what}: need {n} bytes, {len(self.b) - self.off} left")
        v = self.b[self.off:self.off + n]
        self.off += n
        return v

    def _fixed(self, s: struct.Struct, what: str) -> int:
        return s.unpack(self._take(what, s.size))[0]

    def u8(self, what):
        return self._fixed(_U8, what)

    def u16(self, what):
        return self._fixed(_U16, what)

    def u32(self, what):
        return self._fixed(_U32, what)

    def u64(self, what):
        return self._fixed(_U64, what)

    def i64(self, what):
        return self._fixed(_I64, what)

    def raw(self, what: str, n: int) -> bytes:
        return bytes(self._take(what, n))

    def bytes32(self, what: str, limit: int) -> bytes:
        n = self.u32(what + " length")
        if n > limit:
            raise Malformed(f"{what}: {n} bytes exceed {limit}")
        return bytes(self._take(what, n))

    def text(self, what: str, limit: int) -> str:
        return self.bytes32(what, limit).decode("utf-8", "replace")

    def count(self, what: str, elem: int, limit: int) -> int:
        n = self.u32(what)
        if n > limit:
            raise Malformed(f"{what} {n} exceeds {limit}")
        if n * elem > len(self.b) - self.off:
            raise Malformed(f"{what} {n}: need {n * elem} bytes, {len(self.b) - self.off} left")
        return n

    def done(self) -> None:
        if self.off != len(self.b):
            raise Malformed(f"{len(self.b) - self.off} trailing bytes")


# -- encoding --------------------------------------------------------------


def frame(t: int, payload: bytes = b"") -> bytes:
    """One frame: header (flags 0, request id 0) followed by payload."""
    return HEADER.pack(len(payload), t, 0, 0) + payload


def bytes32(b: bytes) -> bytes:
    return _U32.pack(len(b)) + b


def hello(name: str, role: int = ROLE_CLIENT, version: int = VERSION) -> bytes:
    n = name.encode("utf-8")[:MAX_NAME_LEN]
    return MAGIC + _U16.pack(version) + _U8.pack(role) + bytes32(n)


def ping(nonce: int) -> bytes:
    return _U64.pack(nonce)


def sync(peers) -> bytes:
    """SYNC payload from ``[(kind int, addr str, [20-byte ids])]``."""
    parts = [_U32.pack(len(peers))]
    for kind, addr, ids in peers:
        parts.append(_U8.pack(kind))
        parts.append(bytes32(addr.encode("utf-8")))
        parts.append(_U32.pack(len(ids)))
        parts.extend(ids)
    return b"".join(parts)


# -- decoding --------------------------------------------------------------


def decode_error(p) -> tuple[int, str]:
    """An Error frame (status, message); tolerant, as the Go client."""
    d = Dec(p)
    try:
        st = d.u16("status")
    except Malformed:
        return MALFORMED, f"undecodable error reply ({len(p)} bytes)"
    try:
        msg = d.text("message", MAX_MESSAGE_LEN)
    except Malformed:
        msg = bytes(p[6:6 + MAX_MESSAGE_LEN]).decode("utf-8", "replace")
    return st, msg


def decode_hello_reply(p) -> tuple[int, str]:
    d = Dec(p)
    version = d.u16("version")
    node = d.text("node", MAX_NAME_LEN)
    d.done()
    return version, node


def decode_ping(p) -> int:
    """The nonce of a PING reply (its store state follows: see decode_stat)."""
    d = Dec(p)
    nonce = d.u64("nonce")
    d.u8("store up")
    d.i64("store since")
    d.done()
    return nonce


def decode_progress(p) -> tuple[int, int, int, int]:
    if len(p) != PROGRESS_BODY.size:
        raise Malformed(f"progress of {len(p)} bytes, want {PROGRESS_BODY.size}")
    return PROGRESS_BODY.unpack(p)


def decode_peer_result(p) -> dict:
    d = Dec(p)
    r = {
        "kind": d.u8("kind"),
        "addr": d.text("peer address", MAX_ADDR_LEN),
        "status": d.u16("status"),
        "message": d.text("message", MAX_MESSAGE_LEN),
        "bytes": d.u64("bytes"),
        "duration_ns": d.i64("duration"),
    }
    n = d.count("object count", ID_SIZE + 2 + 8 + 1 + 4, MAX_OBJECTS_PER_PEER_REQUEST)
    objs = []
    for _ in range(n):
        oid = d.raw("id", ID_SIZE)
        st = d.u16("status")
        nbytes = d.u64("bytes")
        deleted = d.u8("deleted at source") != 0
        msg = d.text("message", MAX_OBJECT_MESSAGE_LEN)
        objs.append((oid, st, nbytes, deleted, msg))
    d.done()
    r["objects"] = objs
    return r


def decode_sync_done(p) -> tuple[int, str, int, int, int]:
    d = Dec(p)
    out = (d.u16("status"), d.text("message", MAX_MESSAGE_LEN), d.u64("bytes"),
           d.u64("objects"), d.i64("duration"))
    d.done()
    return out


def decode_stat(p) -> dict:
    d = Dec(p)
    node = d.text("node", MAX_NAME_LEN)
    version = d.text("version", MAX_NAME_LEN)
    uptime_ns = d.i64("uptime")
    conns = d.u32("connections")
    stats = _STATS.unpack(d.raw("store stats", _STATS.size))
    store_up = d.u8("store up") != 0
    store_since_ns = d.i64("store since")
    d.done()
    return {"node": node, "version": version, "uptime_ns": uptime_ns, "connections": conns,
            "store": dict(zip(STATS_FIELDS, stats)), "store_up": store_up, "store_since_ns": store_since_ns}


# -- validation (streamwire.Sync.Validate) ---------------------------------

_PORT = re.compile(r"[0-9]+\Z", re.ASCII)


def split_host_port(addr: str) -> tuple[str, str]:
    """Go's net.SplitHostPort: ``host:port``, an IPv6 host in brackets.
    Raises ValueError."""
    i = addr.rfind(":")
    if i < 0:
        raise ValueError("missing port in address")
    if addr.startswith("["):
        end = addr.find("]")
        if end < 0:
            raise ValueError("missing ']' in address")
        if end + 1 == len(addr):
            raise ValueError("missing port in address")
        if end + 1 != i:
            if addr[end + 1] == ":":
                raise ValueError("too many colons in address")
            raise ValueError("missing port in address")
        host, j, k = addr[1:end], 1, end + 1
    else:
        host, j, k = addr[:i], 0, 0
        if ":" in host:
            raise ValueError("too many colons in address")
    if "[" in addr[j:]:
        raise ValueError("unexpected '[' in address")
    if "]" in addr[k:]:
        raise ValueError("unexpected ']' in address")
    return host, addr[i + 1:]


def validate_addr(addr: str) -> tuple[int, str]:
    """(OK, "") or (BAD_ADDRESS, sentence): host:port with a non-empty host
    and a decimal port 0-65535."""
    try:
        host, port = split_host_port(addr)
        good = host != "" and _PORT.match(port) is not None and int(port) <= 65535
    except ValueError:
        good = False
    if not good:
        return BAD_ADDRESS, f"peer address {_go_quote(addr)} is not host:port (IPv6 as [::1]:2021)"
    return OK, ""


def validate_ids(ids, seen: set | None) -> tuple[int, str]:
    """The object limits of one peer request; ``seen`` holds the ids of
    earlier peer requests of the same SYNC."""
    if len(ids) == 0:
        return NO_OBJECTS, "at least one object must be requested"
    if len(ids) > MAX_OBJECTS_PER_PEER_REQUEST:
        return TOO_MANY_OBJECTS, (f"{len(ids)} objects requested; at most "
                                  f"{MAX_OBJECTS_PER_PEER_REQUEST} are allowed")
    if seen is None:
        seen = set()
    for oid in ids:
        if oid in seen:
            return DUPLICATE_ID, f"object {oid.hex()} is requested more than once"
        seen.add(oid)
    return OK, ""


def validate_sync(peers) -> tuple[int, str]:
    """streamwire.Sync.Validate over ``[(kind int, addr, [20-byte ids])]``:
    the first violation, in the server's order, as (status, sentence)."""
    if len(peers) == 0:
        return NO_PEER_REQUESTS, "SYNC needs at least one peer request"
    if len(peers) > MAX_PEER_REQUESTS:
        return TOO_MANY_PEER_REQUESTS, (f"SYNC has {len(peers)} peer requests; at most "
                                        f"{MAX_PEER_REQUESTS} are allowed")
    seen: set = set()
    for i, (kind, addr, ids) in enumerate(peers, 1):
        if kind not in KIND_NAMES:
            return MALFORMED, f"peer request {i}: unknown kind {kind}"
        st, msg = validate_addr(addr)
        if st != OK:
            return st, f"peer request {i}: {msg}"
        st, msg = validate_ids(ids, seen)
        if st != OK:
            return st, f"peer request {i} ({kind_name(kind)} {addr}): {msg}"
    return OK, ""


def _go_quote(s: str) -> str:
    """Roughly Go's %q for printable text."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
