"""The store protocol, version 1: frames and message payloads.

docs/store-protocol.md is the authoritative description; this module and
the Go package internal/storewire implement the same byte layout. All
integers are little-endian.
"""

from __future__ import annotations

import struct

MAGIC = b"PLSM"
VERSION = 1

HEADER = struct.Struct("<IHHI")  # payload length, type, flags, request id
HEADER_SIZE = HEADER.size  # 12

MAX_REQUEST_PAYLOAD = 8 << 20
MAX_REPLY_PAYLOAD = 64 << 20
MAX_METADATA = 64 << 10
MAX_INLINE_DATA = 4 << 20
MAX_IDS_PER_REQUEST = 65536
DIGEST_SIZE = 32

# Message types.
HELLO = 1
CREATE = 2
CREATE_AND_SEAL = 3
SEAL = 4
ABORT = 5
GET = 6
RELEASE = 7
CONTAINS = 8
DELETE = 9
LIST = 10
EVICT = 11
SUBSCRIBE = 12
EVENT = 13
STATS = 14
OUTBOARD = 15
CREATE_AND_SEAL_BATCH = 18
REPLY_BIT = 0x8000
ERROR = 0xFFFF

TYPE_NAMES = {
    HELLO: "Hello", CREATE: "Create", CREATE_AND_SEAL: "CreateAndSeal", SEAL: "Seal",
    ABORT: "Abort", GET: "Get", RELEASE: "Release", CONTAINS: "Contains",
    DELETE: "Delete", LIST: "List", EVICT: "Evict", SUBSCRIBE: "Subscribe",
    EVENT: "Event", STATS: "Stats", OUTBOARD: "Outboard",
    CREATE_AND_SEAL_BATCH: "CreateAndSealBatch", ERROR: "Error",
}


def name_type(names: dict, t: int, reply_suffix: str, unknown: str) -> str:
    """The name of message type t in names; replies (REPLY_BIT) get reply_suffix."""
    if t in names:
        return names[t]
    if t & REPLY_BIT and (t & ~REPLY_BIT) in names:
        return names[t & ~REPLY_BIT] + reply_suffix
    return f"{unknown}({t})"


def type_name(t: int) -> str:
    return name_type(TYPE_NAMES, t, "Reply", "Type")


# Result codes that travel as per-object statuses (Delete, Release).
CODE_OK = 0
CODE_OBJECT_NOT_FOUND = 2
CODE_OBJECT_NOT_SEALED = 4
CODE_DELETE_DEFERRED = 11

# Object states (List).
STATE_CREATED = 1
STATE_SEALED = 2

# Event kinds.
EVENT_SEALED = 1
EVENT_DELETED = 2
EVENT_EVICTED = 3
EVENT_DIGEST = 4  # the store learned a digest after the seal (subscribers with SUBSCRIBE_DIGESTS only)
EVENT_KINDS = {EVENT_SEALED: "sealed", EVENT_DELETED: "deleted", EVENT_EVICTED: "evicted", EVENT_DIGEST: "digest"}
SUBSCRIBE_DIGESTS = 1  # Subscribe flag: digest events too

U16 = struct.Struct("<H")
U32 = struct.Struct("<I")
U64 = struct.Struct("<Q")
I64_U32 = struct.Struct("<qI")  # Get/Delete: timeout_ms, count
HELLO_REPLY = struct.Struct("<HQQ")  # version, arena_size, capacity
LOCATION = struct.Struct("<QQI")  # offset, data_size, metadata_size
# found, offset, data_size, metadata_size, has_digest, digest
GET_RESULT = struct.Struct("<BQQIB32s")
CONTAINS_REPLY = struct.Struct("<IH")  # count (=1), code
ERROR_HEAD = struct.Struct("<HI")  # code, message length
# id, data_size, metadata_size, ref_count, create_time_ns, construct_ns,
# creator_pid, state, delete_pending, has_digest, digest, last_use_ns, offset
INFO = struct.Struct("<20sQIIqqIBBB32sqQ")
LIST_HEAD = struct.Struct("<BI")  # more, count
EVENT_BODY = struct.Struct("<B20sQIqB32s")  # kind, id, data_size, metadata_size, time_ns, has_digest, digest
STATS_REPLY = struct.Struct("<12Q")
STATS_FIELDS = (
    "capacity", "used", "objects", "sealed", "pinned", "largest_free", "free_blocks",
    "evictions", "evicted_bytes", "compactions", "moved_bytes", "clients",
)
NO_DIGEST = bytes(1 + DIGEST_SIZE)  # Seal, CreateAndSeal: has_digest=0, zero digest

assert INFO.size == 107 and EVENT_BODY.size == 74 and GET_RESULT.size == 54


def frame(t: int, req_id: int, payload: bytes = b"") -> bytes:
    """One frame: header followed by payload."""
    return HEADER.pack(len(payload), t, 0, req_id) + payload


def bytes32(b) -> bytes:
    """A u32 length followed by the bytes."""
    b = bytes(b)
    return U32.pack(len(b)) + b


def hello(version: int = VERSION) -> bytes:
    return MAGIC + U16.pack(version)


def id_list(timeout_ms: int, ids) -> bytes:
    return I64_U32.pack(timeout_ms, len(ids)) + b"".join(ids)


def decode_error(payload: bytes) -> tuple[int, str]:
    if len(payload) < ERROR_HEAD.size:
        return 10, f"undecodable error reply ({len(payload)} bytes)"
    code, n = ERROR_HEAD.unpack_from(payload)
    msg = bytes(payload[ERROR_HEAD.size:ERROR_HEAD.size + n]).decode("utf-8", "replace")
    return code, msg


def decode_codes(payload: bytes) -> list[int]:
    (n,) = U32.unpack_from(payload)
    if len(payload) != 4 + 2 * n:
        raise ValueError(f"code list of {n} entries in {len(payload)} bytes")
    return list(struct.unpack_from(f"<{n}H", payload, 4))


BATCH_RESULT = struct.Struct("<HI")  # code, message length
MAX_BATCH_MESSAGE = 512
BATCH_CHUNK_BYTES = 1 << 20  # a batch is sent in requests of about this size


def decode_batch_results(payload: bytes) -> list[tuple[int, str]]:
    """CreateAndSealBatch reply: (code, message) per object, in order."""
    if len(payload) < 4:
        raise ValueError(f"batch reply of {len(payload)} bytes")
    (n,) = U32.unpack_from(payload)
    if n > MAX_IDS_PER_REQUEST:
        raise ValueError(f"batch reply of {n} results, at most {MAX_IDS_PER_REQUEST}")
    out, off = [], 4
    for _ in range(n):
        if off + BATCH_RESULT.size > len(payload):
            raise ValueError(f"batch reply of {n} results cut at byte {off}")
        code, k = BATCH_RESULT.unpack_from(payload, off)
        off += BATCH_RESULT.size
        if k > MAX_BATCH_MESSAGE or off + k > len(payload) or (code == CODE_OK and k):
            raise ValueError(f"batch reply: bad message of {k} bytes for code {code}")
        out.append((code, bytes(payload[off:off + k]).decode("utf-8", "replace")))
        off += k
    if off != len(payload):
        raise ValueError(f"batch reply: {len(payload) - off} trailing bytes")
    return out


def decode_get(payload: bytes) -> list[tuple]:
    """Get reply entries: (found, offset, data_size, metadata_size, has_digest, digest)."""
    (n,) = U32.unpack_from(payload)
    if len(payload) != 4 + GET_RESULT.size * n:
        raise ValueError(f"get reply of {n} entries in {len(payload)} bytes")
    return list(GET_RESULT.iter_unpack(memoryview(payload)[4:]))
