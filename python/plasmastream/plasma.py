"""A drop-in replacement for ``pyarrow.plasma`` (removed from Arrow in 12)::

    import plasmastream.plasma as plasma      # was: import pyarrow.plasma as plasma

    with plasma.start_plasma_store(10**9) as (name, proc):
        client = plasma.connect(name)
        oid = client.put(np.arange(10**6))     # pickle 5, buffers out of band
        arr = client.get(oid)                  # zero-copy, read-only view of the store

The same names and signatures as Arrow 11's ``pyarrow.plasma``. Values given
to ``put`` are pickled with protocol 5 and their out-of-band buffers (numpy
arrays' data) are copied once, straight into shared memory; ``get`` unpickles
them as views of the store's memory (see ``_pickled``). This replaces
pyarrow's removed serialization. The differences that remain are listed in
docs/pyarrow-plasma-migration.md. Needs numpy (as pyarrow did).
"""

from __future__ import annotations

import hashlib
import time
import warnings
import weakref
from collections.abc import Sequence

import numpy as np

from . import _pickled
from . import _wire as w
from . import client as _base
from ._notify import Relay, decode
from ._storeproc import start_plasma_store
from .errors import (
    ConnectionClosed,
    OutOfMemory,
    PlasmaError,
    PlasmaObjectExists,
    PlasmaObjectNotFound,
    PlasmaStoreFull,
    TooLarge,
)
from .objectid import ObjectID, as_id_bytes

__all__ = [
    "ArrowException", "MetadataTooLarge", "ObjectID", "ObjectNotAvailable", "PlasmaBuffer",
    "PlasmaClient", "PlasmaObjectExists", "PlasmaObjectNotFound", "PlasmaStoreFull",
    "connect", "deserialize", "start_plasma_store",
]

# The base of every exception here, under the name pyarrow users caught
# (``pa.lib.ArrowException``): PlasmaObjectExists, PlasmaObjectNotFound and
# PlasmaStoreFull derive from it, as in pyarrow.
ArrowException = PlasmaError

MAX_METADATA = w.MAX_METADATA
# connect(num_retries=-1) retries this often, this far apart: what Arrow 11's
# C++ client did (kNumConnectAttempts and kConnectTimeoutMs, 8 s in all; its
# Python docstring said 50).
DEFAULT_CONNECT_RETRIES = 80
CONNECT_RETRY_DELAY = 0.1


class MetadataTooLarge(OutOfMemory, TooLarge):
    """Metadata over plasmastream's 64 KiB limit. A ``PlasmaStoreFull`` (what
    pyarrow raised when an object did not fit) and a ``ValueError``."""

    code = TooLarge.code


class ObjectNotAvailable:
    """Placeholder ``get`` returns (the class itself) for an object that was
    not available within the timeout."""


def _check_metadata(op: str, oid: bytes, metadata) -> bytes:
    metadata = bytes(metadata or b"")
    if len(metadata) > MAX_METADATA:
        raise MetadataTooLarge(
            f"{op} {oid.hex()}: metadata of {len(metadata)} bytes exceeds plasmastream's limit of "
            f"{MAX_METADATA} bytes (the stream protocol carries metadata in one frame with the object's "
            f"location); store large metadata as an object of its own")
    return metadata


def _no_context(serialization_context) -> None:
    if serialization_context is not None:
        raise TypeError(
            "serialization_context is pyarrow's removed serialization; plasmastream.plasma pickles "
            "values (protocol 5): make a type picklable with __reduce__ or copyreg instead")


class PlasmaBuffer(np.ndarray):
    """A buffer of store memory (what pyarrow's ``PlasmaBuffer`` was): a
    one-dimensional uint8 numpy array viewing shared memory, without a copy.
    It exports the buffer protocol (``np.frombuffer``, ``memoryview``,
    ``bytes``), and has pyarrow's ``size``, ``to_pybytes()``,
    ``equals()``, ``is_mutable``, ``address`` and ``hex()``; ``==`` compares
    bytes. Buffers of sealed objects are read-only; the buffer ``create``
    returned becomes read-only at ``seal``. It holds the store reference to
    its object until it and every view made from it are collected."""

    def to_pybytes(self) -> bytes:
        return self.tobytes()

    def equals(self, other) -> bool:
        """Whether ``other`` (any bytes-like object) holds the same bytes."""
        theirs = np.frombuffer(other, dtype=np.uint8)
        return len(theirs) == len(self) and bool(np.array_equal(self.view(np.ndarray), theirs))

    @property
    def is_mutable(self) -> bool:
        return bool(self.flags.writeable)

    @property
    def address(self) -> int:
        return self.__array_interface__["data"][0]

    def hex(self) -> bytes:
        return self.tobytes().hex().encode()

    def __eq__(self, other):
        if other is None:
            return False
        try:
            return self.equals(other)
        except (TypeError, ValueError):
            return NotImplemented

    def __ne__(self, other):
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    __hash__ = None

    def __bool__(self) -> bool:
        return len(self) > 0

    def __repr__(self) -> str:
        return f"<PlasmaBuffer address={self.address:#x} size={len(self)} is_mutable={self.is_mutable}>"


def _wrap(view) -> PlasmaBuffer:
    return np.frombuffer(view, dtype=np.uint8).view(PlasmaBuffer)


def deserialize(buffer):
    """The value in the data of an object stored by :meth:`PlasmaClient.put`
    (e.g. a ``get_buffers`` result): where pyarrow users called
    ``pa.deserialize``."""
    return _pickled.loads(memoryview(buffer).cast("B"))


class PlasmaClient(_base.PlasmaClient):
    """A connection to a plasma-store-server with pyarrow.plasma's methods.
    Use :func:`connect`. Everything of :class:`plasmastream.PlasmaClient`
    that pyarrow did not have (``stats``, ``release``, ``get_array``, ...)
    is here too."""

    def __init__(self, store_socket_name, *, socket_owner=None):
        super().__init__(store_socket_name, socket_owner=socket_owner)
        self._unsealed: dict[bytes, weakref.ref] = {}  # create buffers, made read-only at seal
        self._relay = None
        self._client_name = ""

    @property
    def store_socket_name(self) -> str:
        return self._socket

    # -- objects ------------------------------------------------------------

    def create(self, object_id, data_size, metadata=b"") -> PlasmaBuffer:
        """A writable buffer for a new object of ``data_size`` bytes, invisible
        to others until :meth:`seal`. ``PlasmaObjectExists`` if the id is taken,
        ``PlasmaStoreFull`` if it does not fit."""
        oid = as_id_bytes(object_id)
        metadata = _check_metadata("create", oid, metadata)
        buf = _wrap(super().create(oid, data_size, metadata))
        self._unsealed[oid] = weakref.ref(buf)
        return buf

    def seal(self, object_id) -> None:
        oid = as_id_bytes(object_id)
        super().seal(oid)
        ref = self._unsealed.pop(oid, None)
        buf = ref() if ref is not None else None
        if buf is not None:
            buf.flags.writeable = False

    def abort(self, object_id) -> None:
        oid = as_id_bytes(object_id)
        super().abort(oid)
        self._unsealed.pop(oid, None)

    def create_and_seal(self, object_id, data, metadata=b"") -> None:
        oid = as_id_bytes(object_id)
        super().create_and_seal(oid, data, _check_metadata("create_and_seal", oid, metadata))

    def put_raw_buffer(self, value, object_id=None, metadata=b"", memcopy_threads=6) -> ObjectID:
        """Store a bytes-like object as it is (one copy); returns its id."""
        oid = ObjectID.from_random() if object_id is None else ObjectID(as_id_bytes(object_id))
        metadata = _check_metadata("put_raw_buffer", oid.binary(), metadata)
        return _base.PlasmaClient.put(self, value, oid, metadata)

    def put(self, value, object_id=None, memcopy_threads=6, serialization_context=None) -> ObjectID:
        """Store any picklable value; returns its id. Buffers the value
        exposes to pickle protocol 5 (numpy arrays) are copied once, straight
        into shared memory."""
        _no_context(serialization_context)
        oid = ObjectID.from_random() if object_id is None else ObjectID(as_id_bytes(object_id))
        plan = _pickled.plan(value)
        if plan.size <= _base.INLINE_THRESHOLD:
            self._put(oid.binary(), plan.to_bytes(), b"")
        else:
            self._put_large(oid.binary(), plan.size, b"", plan.write_into)
        return oid

    def get(self, object_ids, timeout_ms=-1, serialization_context=None):
        """The value stored by :meth:`put` under an id, or a list of them for
        a list of ids; ``ObjectNotAvailable`` for one not sealed within
        ``timeout_ms`` (-1: wait forever). Arrays come back as read-only
        views of the store's memory, holding the object until collected."""
        _no_context(serialization_context)
        if not isinstance(object_ids, Sequence):
            # One id: the common case, without the list's machinery.
            (r,) = self._get([object_ids], timeout_ms)
            return ObjectNotAvailable if r is None else _pickled.loads(r[0][:r[1]], object_ids)
        ids = list(object_ids)
        out = []
        for oid, r in zip(ids, self._get(ids, timeout_ms)):
            if r is None:
                out.append(ObjectNotAvailable)
            else:
                out.append(_pickled.loads(r[0][:r[1]], oid))
        return out

    def get_buffers(self, object_ids, timeout_ms=-1, with_meta=False):
        """A :class:`PlasmaBuffer` of each object's data (``None`` if not
        sealed within ``timeout_ms``); with ``with_meta``, ``(metadata bytes,
        buffer)`` pairs (``(None, None)``), as pyarrow."""
        out = []
        for r in self._get(list(object_ids), timeout_ms):
            if r is None:
                out.append((None, None) if with_meta else None)
                continue
            view, ds = r[0], r[1]
            out.append((bytes(view[ds:]), _wrap(view[:ds])) if with_meta else _wrap(view[:ds]))
        return out

    def get_metadata(self, object_ids, timeout_ms=-1):
        """A :class:`PlasmaBuffer` of each object's metadata, or ``None``."""
        return [None if r is None else _wrap(r[0][r[1]:]) for r in self._get(list(object_ids), timeout_ms)]

    def hash(self, object_id) -> bytes:
        """8 bytes that are equal for objects with equal data and metadata
        (and differ otherwise, up to 64-bit collisions): BLAKE2b of the
        store's BLAKE3 digest of the data and the metadata.
        ``PlasmaObjectNotFound`` if the object is not sealed in the store."""
        oid = as_id_bytes(object_id)
        (r,) = self._get([oid], 0)
        if r is None:
            raise PlasmaObjectNotFound(f"hash: object {oid.hex()} is not a sealed object of store {self._socket}",
                                       PlasmaObjectNotFound.code)
        view, ds, digest = r
        meta = bytes(view[ds:])
        del view, r
        if digest is None:
            digest = self._store_digest(oid)
        return hashlib.blake2b(digest + meta, digest_size=8).digest()

    def delete(self, object_ids) -> None:
        """Delete objects; one in use goes at its last release. Ids that are
        not (sealed) in the store are ignored, as in pyarrow."""
        super().delete(object_ids)

    # -- notifications ------------------------------------------------------

    def subscribe(self) -> None:
        """Subscribe to seal, deletion and eviction notifications."""
        super().subscribe()

    def get_notification_socket(self):
        """A socket carrying the notifications as pyarrow's did: an 8-byte
        native length, then a message for :meth:`decode_notifications`. Once
        it exists, :meth:`get_next_notification` reads the same stream."""
        if self._subscription is None:
            raise PlasmaError("get_notification_socket: call subscribe() first")
        if self._relay is None:
            self._relay = Relay(self._subscription)
        return self._relay.reader.dup()

    def get_next_notification(self):
        """``(object_id, data_size, metadata_size)`` of the next seal; sizes
        are -1 for a deletion or eviction."""
        if self._relay is not None:
            return self._relay.next()
        return super().get_next_notification()

    def decode_notifications(self, buf):
        """``(object ids, data sizes, metadata sizes)`` of a message read
        from the notification socket."""
        return decode(buf)

    # -- the rest -----------------------------------------------------------

    def set_client_options(self, client_name, limit_output_memory) -> None:
        """Name this client (shown by :meth:`debug_string`). plasmastream
        has no per-client memory quota: a positive ``limit_output_memory``
        is ignored with a ``RuntimeWarning``."""
        self._client_name = str(client_name)
        if int(limit_output_memory) > 0:
            warnings.warn(
                f"set_client_options: plasmastream has no per-client memory quota; limit_output_memory="
                f"{limit_output_memory} is ignored (the store evicts the least recently used objects of all "
                f"clients when it needs room)", RuntimeWarning, stacklevel=2)

    def debug_string(self) -> str:
        """A human-readable summary of the store's state."""
        st = self.stats()
        head = f"plasmastream store {self._socket}" + (f" (client {self._client_name})" if self._client_name else "")
        return "\n".join([head] + [f"{k}: {v}" for k, v in st.items()]) + "\n"

    def disconnect(self) -> None:
        relay, self._relay = self._relay, None
        if relay is not None:
            relay.close()
        super().disconnect()

    close = disconnect

    def __repr__(self):
        return "<plasma." + super().__repr__()[1:]


def connect(store_socket_name, num_retries=-1, *, socket_owner=None) -> PlasmaClient:
    """Connect to the store at ``store_socket_name``, retrying a failed
    connection ``num_retries`` times 100 ms apart (-1: 80 times, as
    pyarrow did). Raises ``ConnectionClosed`` (an ``IOError``) if it never
    answers. ``socket_owner`` as for :func:`plasmastream.connect`."""
    retries = DEFAULT_CONNECT_RETRIES if num_retries < 0 else int(num_retries)
    for attempt in range(retries + 1):
        try:
            return PlasmaClient(store_socket_name, socket_owner=socket_owner)
        except ConnectionClosed:
            if attempt == retries:
                raise
            time.sleep(CONNECT_RETRY_DELAY)
    raise AssertionError("unreachable")
