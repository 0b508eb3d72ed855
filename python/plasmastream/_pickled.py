"""The layout of an object stored by ``plasmastream.plasma``'s ``put``: a
Python value pickled with protocol 5, its out-of-band buffers (numpy arrays'
data, anything that exports ``PickleBuffer``s) laid out beside the pickle so
that ``get`` hands them to ``pickle.loads`` as zero-copy views of shared
memory.

Layout of the object's data (all integers little-endian; the metadata stays
empty, as with pyarrow's ``put``)::

    magic "PSPKL5\\0\\1" (8) | count u32 | reserved u32 (0) | pickle_len u64
    count x (offset u64, length u64)      -- each out-of-band buffer
    the pickle (pickle_len bytes)
    the buffers, each at its offset: a multiple of 64 from the data start

Objects start at 64-byte offsets in the arena, so every buffer is 64-byte
aligned in memory (numpy's and SIMD code's preference).
"""

from __future__ import annotations

import pickle
import struct

from .errors import PlasmaError
from .objectid import as_id_bytes

__all__ = ["Plan", "plan", "loads", "NotPickled", "MAGIC"]

MAGIC = b"PSPKL5\x00\x01"
_HEAD = struct.Struct("<8sIIQ")
_ENTRY = struct.Struct("<QQ")
_ALIGN = 64


class NotPickled(PlasmaError, ValueError):
    """The object's data is not a value stored by ``put`` (it lacks the
    header, or the header does not fit the data)."""


def _align(n: int) -> int:
    return (n + _ALIGN - 1) & ~(_ALIGN - 1)


class Plan:
    """A value pickled and placed: ``size`` bytes of object data, written by
    ``write_into(dst, base)`` into ``dst[base:base+size]`` (one copy of each
    buffer, straight from its owner)."""

    __slots__ = ("size", "_head", "_body", "_bufs")

    def __init__(self, body: bytes, bufs: list):
        self._body = body
        self._bufs = bufs
        end = _HEAD.size + len(bufs) * _ENTRY.size + len(body)
        entries = []
        for b in bufs:
            off = _align(end)
            entries.append(_ENTRY.pack(off, b.nbytes))
            end = off + b.nbytes
        self.size = end
        self._head = _HEAD.pack(MAGIC, len(bufs), 0, len(body)) + b"".join(entries)

    def write_into(self, dst, base: int = 0) -> None:
        head = self._head
        dst[base:base + len(head)] = head
        p = base + len(head)
        dst[p:p + len(self._body)] = self._body
        for i, b in enumerate(self._bufs):
            off, n = _ENTRY.unpack_from(head, _HEAD.size + i * _ENTRY.size)
            dst[base + off:base + off + n] = b

    def to_bytes(self) -> bytearray:
        out = bytearray(self.size)
        self.write_into(out)
        return out


def plan(value) -> Plan:
    """Pickle ``value`` (protocol 5) with its buffers kept out of band."""
    pbs: list = []
    body = pickle.dumps(value, protocol=5, buffer_callback=pbs.append)
    bufs = []
    for pb in pbs:
        try:
            bufs.append(pb.raw())  # contiguous bytes, no copy
        except BufferError:
            bufs.append(memoryview(memoryview(pb).tobytes()))  # non-contiguous: one copy here
    return Plan(body, bufs)


def _name(what) -> str:
    """``what`` as errors name it: a string as it is, an id (anything
    ``as_id_bytes`` takes) as ``object <hex>``."""
    if isinstance(what, str):
        return what
    try:
        return f"object {as_id_bytes(what).hex()}"
    except (TypeError, ValueError):
        return f"object {what!r}"


def loads(view, what="object"):
    """The value stored in ``view`` (the object's data); its out-of-band
    buffers become slices of ``view`` (no copy). ``what`` names the object
    in errors: a string, or its id (formatted only when there is an
    error)."""
    n = len(view)
    if n < _HEAD.size:
        raise NotPickled(f"{_name(what)} was not stored by plasmastream.plasma put(): {n} bytes of data "
                         f"is too short for its header; read it with get_buffers()")
    magic, count, _, body_len = _HEAD.unpack_from(view)
    if magic != MAGIC:
        raise NotPickled(f"{_name(what)} was not stored by plasmastream.plasma put() (its data does not start "
                         f"with the put header); read it with get_buffers()")
    start = _HEAD.size + count * _ENTRY.size
    if start + body_len > n:
        raise NotPickled(f"{_name(what)}: header of a put() object promises {count} buffers and a "
                         f"{body_len}-byte pickle, more than the {n} bytes of data")
    bufs = []
    for i in range(count):
        off, length = _ENTRY.unpack_from(view, _HEAD.size + i * _ENTRY.size)
        if off < start + body_len or off + length > n:
            raise NotPickled(f"{_name(what)}: buffer {i} of a put() object at [{off}, +{length}) lies "
                             f"outside its {n} bytes of data")
        bufs.append(pickle.PickleBuffer(view[off:off + length]))
    return pickle.loads(view[start:start + body_len], buffers=bufs)
