"""The store client: a connection to plasma-store-server with the store's
arena mapped into this process.

The API follows ``pyarrow.plasma`` so that code ports with an import change.
Buffers are zero-copy ``memoryview``s over shared memory. Each buffer holds
one store reference to its object; the reference is released (Release is sent
to the store) when the buffer and everything made from it (slices, numpy
arrays) are garbage-collected, or when the view is used as a context manager
(``with client.get(id) as view: ...``) and that was the last view.
"""

from __future__ import annotations

import collections
import contextlib
import mmap
import os
import threading
import time
import weakref

from . import _wire as w
from ._blake3 import blake3
from ._buffers import buffer_address, make_view
from ._conn import Conn
from .errors import (
    ConnectionClosed,
    IntegrityError,
    NotReferenced,
    ObjectNotFound,
    PlasmaError,
    ProtocolError,
    TooLarge,
    error_for_code,
)
from .objectid import ObjectID, as_id_bytes

__all__ = ["PlasmaClient", "connect", "DEFAULT_SOCKET"]

DEFAULT_SOCKET = "/tmp/plasma"

# Up to this size put() sends the data inside the request (one round trip,
# CreateAndSeal); above it, it creates the object and copies into shared
# memory. Same threshold as the Go client.
INLINE_THRESHOLD = 64 << 10
# Large creates prefault the pages of this client's writable mapping with
# one madvise call, which is cheaper than a page fault per 4 KiB during the
# copy (3.7 vs 2.6 GB/s for 256 MiB on the development VM) -- but only pages
# never populated before: on populated pages the call is pure overhead. The
# client remembers populated chunks of _POPULATE_CHUNK bytes.
_POPULATE_MIN = 1 << 20
_POPULATE_CHUNK = 2 << 20
_MADV_POPULATE_WRITE = 23  # Linux 5.14+
# Fire-and-forget Release replies allowed to pile up unread before the
# client stops sending and reads them (so that neither side blocks forever
# on a full socket buffer).
_MAX_UNREAD_RELEASES = 256

_RELEASE_ORPHAN = object()  # orphan marker: the reply of a fire-and-forget Release


def connect(store_socket_name: str = DEFAULT_SOCKET, num_retries: int = -1, socket_owner=None,
            **_ignored) -> "PlasmaClient":
    """Connect to the store listening on ``store_socket_name``.

    The socket must be owned by this user or root, or by ``socket_owner`` (a
    user name or uid, or a list of them): the default socket is in /tmp,
    where another user could have created it first; any other owner raises
    :class:`~plasmastream.errors.SocketOwnerError`.

    ``num_retries`` > 0 retries a refused connection that many times, 100 ms
    apart (for a store that is still starting); other pyarrow arguments
    (``manager_socket_name``, ``release_delay``) are accepted and ignored.
    """
    attempts = max(1, num_retries + 1 if num_retries > 0 else 1)
    for i in range(attempts):
        try:
            return PlasmaClient(store_socket_name, socket_owner=socket_owner)
        except ConnectionClosed:
            if i == attempts - 1:
                raise
            time.sleep(0.1)
    raise AssertionError("unreachable")


class _Ref:
    """One store reference held by one buffer (its exporter)."""

    __slots__ = ("oid", "fin", "cancelled")

    def __init__(self, oid: bytes):
        self.oid = oid
        self.fin = None
        self.cancelled = False


class PlasmaClient:
    """A connection to a plasma-store-server. Use :func:`connect`.

    Thread-safe: one lock serialises requests (a blocking ``get`` holds it
    until it returns). Not fork-safe: connect again in a child process.
    """

    def __init__(self, socket_path: str = DEFAULT_SOCKET, *, socket_owner=None, _version: int = w.VERSION):
        self._closed = True
        self._socket = os.fspath(socket_path)
        self._socket_owner = socket_owner
        self._conn = Conn(self._socket, _version, socket_owner=socket_owner)
        try:
            fd, size = self._conn.arena_fd, self._conn.arena_size
            # Two mappings of the arena: writable for objects this client
            # creates, read-only for sealed objects returned by get.
            self._rw = mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)
            self._ro = mmap.mmap(fd, size, access=mmap.ACCESS_READ)
            self._rw_base = buffer_address(self._rw)
            self._ro_base = buffer_address(self._ro)
        except BaseException:
            self._conn.close()
            raise
        finally:
            # The mappings hold their own descriptors.
            if self._conn.arena_fd >= 0:
                os.close(self._conn.arena_fd)
                self._conn.arena_fd = -1
        self._arena_size = size
        self._capacity = self._conn.capacity
        self._lock = threading.Lock()
        self._next_id = 0
        self._waiting: set[int] = set()
        self._stash: dict[int, collections.deque] = {}
        self._orphans: dict[int, object] = {}
        self._unread_releases = 0
        self._outbox: list[bytes] = []  # frames to send before the next request
        self._releases: list[bytes] = []  # ids whose fire-and-forget Release is due
        self._live: dict[bytes, list[_Ref]] = {}
        self._dead = collections.deque()
        self._pid = os.getpid()
        self._subscription = None
        self._populate = True
        self._populated = bytearray(-(-size // _POPULATE_CHUNK))  # 1: chunk prefaulted
        self._closed = False

    # ------------------------------------------------------------------
    # Plumbing: request ids, frames, orphans and deferred releases.

    def _check_usable(self) -> None:
        if self._closed:
            raise ConnectionClosed(f"client of store {self._socket} is disconnected")
        if os.getpid() != self._pid:
            raise PlasmaError(
                f"this client was connected in process {self._pid}; connect again in process {os.getpid()}")

    def _new_id(self) -> int:
        self._next_id = (self._next_id + 1) & 0xFFFFFFFF or 1
        return self._next_id

    def _pump_locked(self) -> None:
        """Read one frame and route it: to the stash of a waiting call, to an
        orphan handler (a reply nobody waits for), or drop it (events)."""
        t, rid, p = self._conn.read_frame()
        if rid in self._waiting:
            self._stash.setdefault(rid, collections.deque()).append((t, p))
            return
        if rid == 0:
            return  # an event on a connection that did not subscribe
        handler = self._orphans.get(rid)
        more_pages = t == w.LIST | w.REPLY_BIT and p[:1] == b"\x01"
        if not more_pages:
            self._orphans.pop(rid, None)
        if handler is _RELEASE_ORPHAN:
            self._unread_releases -= 1
        elif handler is not None:
            handler(t, p)

    def _wait_locked(self, rid: int) -> tuple[int, bytes]:
        """Wait for the next frame carrying request id rid."""
        while True:
            q = self._stash.get(rid)
            if q:
                item = q.popleft()
                if not q:
                    del self._stash[rid]
                return item
            self._pump_locked()

    def _fail(self) -> None:
        """The connection is unusable (closed by the store, desynchronised)."""
        self._closed = True
        self._conn.shutdown()

    def _request_locked(self, t: int, payload: bytes, on_abandon=None) -> bytes:
        """Send a request and wait for its (first) reply frame; returns the
        payload. An Error reply raises its exception."""
        rid = self._new_id()
        frame = w.frame(t, rid, payload)
        if self._outbox or self._releases:
            frame = self._take_outbox_locked() + frame
        self._waiting.add(rid)
        try:
            self._conn.send(frame)
            rt, p = self._wait_locked(rid)
        except (ConnectionClosed, ProtocolError):
            self._fail()
            raise
        except BaseException:
            # Interrupted while waiting (KeyboardInterrupt): the reply will
            # still come; whoever reads it hands it to on_abandon.
            self._orphans[rid] = on_abandon
            raise
        finally:
            self._waiting.discard(rid)
            self._stash.pop(rid, None)
        return self._check_reply(t, rt, p)

    def _exchange_locked(self, rid: int, frame: bytes) -> tuple[int, bytes]:
        """Send a prepared frame (with the queued ones) and wait for its reply."""
        self._waiting.add(rid)
        try:
            self._conn.send(self._take_outbox_locked() + frame)
            return self._wait_locked(rid)
        except (ConnectionClosed, ProtocolError):
            self._fail()
            raise
        except BaseException:
            self._orphans[rid] = None
            raise
        finally:
            self._waiting.discard(rid)
            self._stash.pop(rid, None)

    def _check_reply(self, t: int, rt: int, p: bytes) -> bytes:
        if rt == w.ERROR:
            code, msg = w.decode_error(p)
            raise error_for_code(code, msg)
        if rt != t | w.REPLY_BIT:
            raise ProtocolError(f"{w.type_name(t)}: unexpected reply {w.type_name(rt)}")
        return p

    @contextlib.contextmanager
    def _session(self):
        """Hold the lock for one call: send the Releases of collected buffers
        first and those queued meanwhile before letting go."""
        self._check_usable()
        self._lock.acquire()
        ok = False
        try:
            self._drain_dead_locked()
            yield
            ok = True
        finally:
            try:
                self._send_outbox_locked()
            except PlasmaError:
                if ok:
                    raise
            finally:
                self._lock.release()
                if self._dead:
                    self._flush_dead()

    def _call(self, t: int, payload: bytes = b"", on_abandon=None) -> bytes:
        with self._session():
            return self._request_locked(t, payload, on_abandon)

    # Release of buffers that were garbage-collected. The finalizer may run
    # in any thread at any moment, including inside a call of this client in
    # the same thread, so it only queues the reference and sends Release if
    # it can take the lock without waiting; otherwise the lock holder sends
    # it before it lets go.

    def _track_locked(self, oid: bytes, exporter) -> None:
        ref = _Ref(oid)
        fin = weakref.finalize(exporter, self._buffer_collected, ref)
        fin.atexit = False
        ref.fin = fin
        self._live.setdefault(oid, []).append(ref)

    def _buffer_collected(self, ref: _Ref) -> None:
        if self._closed or os.getpid() != self._pid:
            return
        self._dead.append(ref)
        self._flush_dead()

    def _flush_dead(self) -> None:
        while self._dead and not self._closed:
            if not self._lock.acquire(blocking=False):
                return  # the holder flushes before it releases the lock
            try:
                self._drain_dead_locked()
                self._send_outbox_locked()
            except PlasmaError:
                pass  # the connection is gone: the store dropped the references
            finally:
                self._lock.release()

    def _drain_dead_locked(self) -> None:
        while self._dead:
            ref = self._dead.popleft()
            refs = self._live.get(ref.oid)
            if refs is not None:
                try:
                    refs.remove(ref)
                except ValueError:
                    pass
                if not refs:
                    del self._live[ref.oid]
            ref.fin = None
            if not ref.cancelled:
                self._queue_release_locked(ref.oid)

    def _queue_release_locked(self, oid: bytes) -> None:
        self._releases.append(oid)
        if len(self._releases) >= w.MAX_IDS_PER_REQUEST:
            self._send_outbox_locked()

    def _release_frames(self, oids) -> list[tuple[int, bytes]]:
        """(request id, frame) of the Release requests dropping one reference
        to each of oids (one request per 65,536 ids)."""
        out = []
        for i in range(0, len(oids), w.MAX_IDS_PER_REQUEST):
            rid = self._new_id()
            out.append((rid, w.frame(w.RELEASE, rid, w.id_list(0, oids[i:i + w.MAX_IDS_PER_REQUEST]))))
        return out

    def _check_release(self, oid: bytes, t: int, p: bytes) -> None:
        """Raise the error of a one-id Release reply, if any."""
        (code,) = w.decode_codes(self._check_reply(w.RELEASE, t, p))
        if code != w.CODE_OK:
            raise error_for_code(code, f"release: this client holds no reference to object {oid.hex()}"
                                 if code == NotReferenced.code else f"release {oid.hex()}: status {code}")

    def _take_outbox_locked(self) -> bytes:
        """The queued frames and the due fire-and-forget Releases, as bytes to
        send; their replies become orphans."""
        frames = self._outbox
        self._outbox = []
        if self._releases:
            for rid, f in self._release_frames(self._releases):
                self._orphans[rid] = _RELEASE_ORPHAN
                self._unread_releases += 1
                frames.append(f)
            self._releases = []
        return b"".join(frames)

    def _send_outbox_locked(self) -> None:
        """Send queued fire-and-forget Releases; read their replies when too
        many are unread."""
        if self._closed:
            self._outbox.clear()
            self._releases.clear()
            return
        try:
            if self._outbox or self._releases:
                self._conn.send(self._take_outbox_locked())
            while self._unread_releases > _MAX_UNREAD_RELEASES:
                self._pump_locked()
        except (ConnectionClosed, ProtocolError):
            self._fail()
            raise
        # Releases queued by finalizers that ran meanwhile.
        if self._dead:
            self._drain_dead_locked()
            if self._outbox or self._releases:
                self._send_outbox_locked()

    # ------------------------------------------------------------------
    # Views.

    def _view_locked(self, oid: bytes, offset: int, size: int, writable: bool):
        if offset + size > self._arena_size:
            self._fail()
            raise ProtocolError(
                f"store returned the range [{offset}, +{size}) outside the arena of {self._arena_size} bytes")
        if writable:
            exporter, view = make_view(self._rw, self._rw_base, offset, size, False)
        else:
            exporter, view = make_view(self._ro, self._ro_base, offset, size, True)
        self._track_locked(oid, exporter)
        return view

    # ------------------------------------------------------------------
    # Objects.

    def create(self, object_id, data_size: int, metadata: bytes = b"") -> memoryview:
        """Create an object of ``data_size`` bytes and return a writable view
        of its data. The object is invisible to others until :meth:`seal`.
        The view holds this client's reference (kept after seal); it is
        released when the view is garbage-collected."""
        oid = as_id_bytes(object_id)
        metadata = bytes(metadata or b"")
        if len(metadata) > w.MAX_METADATA:
            raise TooLarge(
                f"create {oid.hex()}: metadata of {len(metadata)} bytes exceeds {w.MAX_METADATA}")
        if data_size < 0:
            raise ValueError(f"create {oid.hex()}: negative data size {data_size}")
        payload = oid + w.U64.pack(data_size) + w.bytes32(metadata)
        with self._session():
            p = self._request_locked(w.CREATE, payload, self._abandoned_create(oid))
            offset, size, _ = w.LOCATION.unpack(p)
            view = self._view_locked(oid, offset, size, True)
            self._prefault(offset, size)
            return view

    def _abandoned_create(self, oid: bytes):
        def handler(t, p):
            if t == w.CREATE | w.REPLY_BIT:
                self._outbox.append(w.frame(w.ABORT, self._orphan_id(), oid))
        return handler

    def _orphan_id(self) -> int:
        rid = self._new_id()
        self._orphans[rid] = None
        return rid

    def seal(self, object_id) -> None:
        """Make an object this client created immutable and visible. The
        creator keeps its reference (its writable view stays valid)."""
        self._call(w.SEAL, as_id_bytes(object_id) + w.NO_DIGEST)

    def abort(self, object_id) -> None:
        """Discard an unsealed object this client created. Its writable view
        must not be used any more."""
        oid = as_id_bytes(object_id)
        with self._session():
            self._request_locked(w.ABORT, oid)
            # The store dropped the creator's reference with the object.
            for ref in self._live.pop(oid, ()):
                ref.cancelled = True
                if ref.fin is not None:
                    ref.fin.detach()

    def release(self, object_id) -> None:
        """Drop one reference to an object now instead of when its buffer is
        collected. The buffer must not be used afterwards."""
        oid = as_id_bytes(object_id)
        with self._session():
            refs = self._live.get(oid)
            while refs:
                ref = refs.pop()
                if ref.fin is not None and ref.fin.detach() is not None:
                    break  # this buffer's finalizer will not release again
            if refs is not None and not refs:
                del self._live[oid]
            ((rid, frame),) = self._release_frames([oid])
            self._check_release(oid, *self._exchange_locked(rid, frame))

    def create_and_seal(self, object_id, data, metadata: bytes = b"") -> None:
        """Store ``data`` (any bytes-like object) as a sealed object in one
        call. The client keeps no reference."""
        self._put(as_id_bytes(object_id), data, metadata)

    def create_and_seal_batch(self, objects) -> list:
        """Store many small objects in few requests (about a megabyte each).

        ``objects`` is an iterable of ``(object_id, data)`` or ``(object_id,
        data, metadata)``, ``data`` any bytes-like object of at most 4 MiB.
        Each object is stored on its own and sealed at once; the client keeps
        no reference. Returns one entry per object, in order: ``None`` when
        stored, else the exception for that object alone (``ObjectExists``
        for an id already in the store or earlier in the batch,
        ``OutOfMemory`` when the store has no room left for it, ``TooLarge``
        beyond the limits: not sent). A failure of the connection raises.
        """
        results, chunk, size = [], [], 4
        for entry in objects:
            oid, data, meta = (tuple(entry) + (b"",))[:3]
            oid = as_id_bytes(oid)
            src = memoryview(data)
            if not src.c_contiguous:
                src = memoryview(src.tobytes())
            meta = bytes(meta or b"")
            i = len(results)
            results.append(None)
            if src.nbytes > w.MAX_INLINE_DATA or len(meta) > w.MAX_METADATA:
                results[i] = TooLarge(
                    f"create-and-seal {oid.hex()}: {src.nbytes} bytes of data, {len(meta)} of metadata "
                    f"exceed {w.MAX_INLINE_DATA} and {w.MAX_METADATA}")
                continue
            n = len(oid) + 8 + src.nbytes + len(meta) + len(w.NO_DIGEST)
            if chunk and (size + n > w.BATCH_CHUNK_BYTES or len(chunk) == w.MAX_IDS_PER_REQUEST):
                self._batch_request(chunk, results)
                chunk, size = [], 4
            chunk.append((i, oid, src, meta))
            size += n
        if chunk:
            self._batch_request(chunk, results)
        return results

    def _batch_request(self, chunk, results) -> None:
        """Send one CreateAndSealBatch request and record each outcome."""
        parts = [w.U32.pack(len(chunk))]
        for _, oid, src, meta in chunk:
            parts += (oid, w.U32.pack(src.nbytes), src, w.U32.pack(len(meta)), meta, w.NO_DIGEST)
        p = self._call(w.CREATE_AND_SEAL_BATCH, b"".join(parts))
        try:
            outcomes = w.decode_batch_results(p)
        except ValueError as e:
            raise ProtocolError(f"CreateAndSealBatch: {e}") from None
        if len(outcomes) != len(chunk):
            raise ProtocolError(f"CreateAndSealBatch: {len(outcomes)} results for {len(chunk)} objects")
        for (i, _, _, _), (code, msg) in zip(chunk, outcomes):
            if code != w.CODE_OK:
                results[i] = error_for_code(code, msg)

    def put(self, data, object_id=None, metadata: bytes = b"") -> ObjectID:
        """Store ``data`` (any bytes-like object, copied once into shared
        memory) and return its id.

        Without ``object_id`` the id is random (``ObjectID.from_random()``):
        BLAKE3 is not in Python's standard library, so the content addressing
        of the Go client's and the CLI's ``put`` (id = first 20 bytes of the
        BLAKE3 of the data) is not reproduced here; pass an id to choose it.
        """
        oid = ObjectID.from_random() if object_id is None else ObjectID(as_id_bytes(object_id))
        self._put(oid.binary(), data, metadata)
        return oid

    def put_raw_buffer(self, value, object_id=None, metadata: bytes = b"", memcopy_threads: int = 6) -> ObjectID:
        """pyarrow.plasma's name for :meth:`put` of a bytes-like object."""
        return self.put(value, object_id, metadata)

    def _put(self, oid: bytes, data, metadata) -> None:
        src = memoryview(data)
        if not src.c_contiguous:
            src = memoryview(src.tobytes())
        n = src.nbytes
        metadata = bytes(metadata or b"")
        if len(metadata) > w.MAX_METADATA:
            raise TooLarge(f"put {oid.hex()}: metadata of {len(metadata)} bytes exceeds {w.MAX_METADATA}")
        if n <= INLINE_THRESHOLD:
            self._call(w.CREATE_AND_SEAL, oid + w.U32.pack(n) + src + w.bytes32(metadata) + w.NO_DIGEST)
            return
        self._put_large(oid, n, metadata, lambda rw, off: rw.__setitem__(slice(off, off + n), src))

    def _put_large(self, oid: bytes, n: int, metadata: bytes, fill) -> None:
        """Create, fill(rw_mapping, offset), seal and release; abort on failure."""
        with self._session():
            p = self._request_locked(
                w.CREATE, oid + w.U64.pack(n) + w.bytes32(metadata), self._abandoned_create(oid))
            offset, size, _ = w.LOCATION.unpack(p)
            if offset + size > self._arena_size:
                self._fail()
                raise ProtocolError(f"store returned the range [{offset}, +{size}) outside the arena")
            try:
                self._prefault(offset, size)
                fill(self._rw, offset)
            except BaseException:
                try:
                    self._request_locked(w.ABORT, oid)
                except PlasmaError:
                    pass
                raise
            # Seal and Release in one write, then both replies.
            seal_id = self._new_id()
            ((rel_id, rel_frame),) = self._release_frames([oid])
            self._waiting.update((seal_id, rel_id))
            try:
                self._conn.send(w.frame(w.SEAL, seal_id, oid + w.NO_DIGEST) + rel_frame)
                seal_reply = self._wait_locked(seal_id)
                rel_reply = self._wait_locked(rel_id)
            except (ConnectionClosed, ProtocolError):
                self._fail()
                raise
            except BaseException:
                self._orphans[seal_id] = self._orphans[rel_id] = None
                raise
            finally:
                self._waiting.difference_update((seal_id, rel_id))
                self._stash.pop(seal_id, None)
                self._stash.pop(rel_id, None)
            self._check_reply(w.SEAL, *seal_reply)
            self._check_release(oid, *rel_reply)

    def _prefault(self, offset: int, size: int) -> None:
        """Populate the page tables of the writable mapping over [offset,
        offset+size) where this client has not done so before. Touches no
        data (MADV_POPULATE_WRITE), so neighbouring objects are unaffected."""
        if not self._populate or size < _POPULATE_MIN:
            return
        done = self._populated
        i, last = offset // _POPULATE_CHUNK, (offset + size - 1) // _POPULATE_CHUNK + 1
        while True:
            i = done.find(0, i, last)
            if i < 0:
                return
            j = done.find(1, i, last)
            if j < 0:
                j = last
            start = i * _POPULATE_CHUNK
            try:
                self._rw.madvise(_MADV_POPULATE_WRITE, start, min(j * _POPULATE_CHUNK, self._arena_size) - start)
            except (OSError, ValueError, AttributeError):
                self._populate = False  # kernel before 5.14: fault page by page
                return
            done[i:j] = b"\x01" * (j - i)
            i = j

    def get_buffers(self, object_ids, timeout_ms: int = -1, with_meta: bool = False):
        """Get sealed objects, waiting up to ``timeout_ms`` (-1: forever, 0:
        not at all) for those not sealed yet. Returns one read-only
        memoryview per id, ``None`` for an object that did not become
        available; with ``with_meta``, ``(metadata, data)`` pairs (``(None,
        None)`` when unavailable), as pyarrow."""
        results = self._get(object_ids, timeout_ms)
        if with_meta:
            out = []
            for r in results:
                if r is None:
                    out.append((None, None))
                else:
                    view, ds = r[0], r[1]
                    out.append((view[ds:], view[:ds]))
            return out
        return [None if r is None else r[0][: r[1]] for r in results]

    def get_metadata(self, object_ids, timeout_ms: int = -1):
        """Like :meth:`get_buffers` but returns the metadata views."""
        return [None if r is None else r[0][r[1]:] for r in self._get(object_ids, timeout_ms)]

    def get(self, object_id, timeout_ms: int = -1, verify: bool = False):
        """The data of one object as a read-only memoryview, waiting up to
        ``timeout_ms`` for it to be sealed; :class:`ObjectNotFound` if it does
        not become available. A list of ids returns a list (``None`` for
        unavailable objects), as :meth:`get_buffers`.

        Every client of a store maps its arena writable and can overwrite
        sealed objects: with ``verify``, the data is first checked against
        its BLAKE3 digest (the store's, asked for with Outboard when the Get
        reply has none) and :class:`~plasmastream.errors.IntegrityError`
        raised on a mismatch. Without the ``blake3`` package the hash is
        computed in pure Python (a few MB/s)."""
        if isinstance(object_id, (list, tuple)):
            if not verify:
                return self.get_buffers(object_id, timeout_ms)
            results = self._get(object_id, timeout_ms)
            return [None if r is None else self._verified(oid, *r)
                    for oid, r in zip(object_id, results)]
        (r,) = self._get([object_id], timeout_ms)
        view = None
        if r is not None:
            view = self._verified(object_id, *r) if verify else r[0][: r[1]]
        if view is None:
            oid = as_id_bytes(object_id)
            raise ObjectNotFound(
                f"object {oid.hex()} not available in store {self._socket}"
                + (f" within {timeout_ms} ms" if timeout_ms > 0 else ""), ObjectNotFound.code)
        return view

    def _verified(self, object_id, view, data_size: int, digest):
        """The data of view if it hashes to its digest; IntegrityError if not."""
        oid = as_id_bytes(object_id)
        data = view[:data_size]
        if digest is None:
            digest = self._store_digest(oid)
        got = blake3(data)
        if got != digest:
            raise IntegrityError(
                f"integrity check failed: object {oid.hex()} in store {self._socket} does not match its "
                f"BLAKE3 digest {digest.hex()} (its data hashes to {got.hex()}): its bytes were changed "
                f"in shared memory after Seal, which any client of the store can do")
        return data

    def _store_digest(self, oid: bytes) -> bytes:
        """The BLAKE3 digest of a sealed object's data as the store knows it
        (Outboard: the store hashes the object now if its background hasher
        has not yet)."""
        p = self._call(w.OUTBOARD, oid)
        if len(p) < w.DIGEST_SIZE:
            raise ProtocolError(f"outboard {oid.hex()}: malformed reply of {len(p)} bytes")
        return bytes(p[:w.DIGEST_SIZE])

    def _get(self, object_ids, timeout_ms: int):
        """Get: for each id, (view over data+metadata, data_size, digest or
        None) or None."""
        oids = [as_id_bytes(i) for i in object_ids]
        if len(oids) > w.MAX_IDS_PER_REQUEST:
            raise TooLarge(f"get: {len(oids)} ids exceed {w.MAX_IDS_PER_REQUEST}")
        timeout_ms = int(timeout_ms)
        if timeout_ms < 0:
            timeout_ms = -1
        payload = w.id_list(timeout_ms, oids)
        with self._session():
            p = self._request_locked(w.GET, payload, self._abandoned_get(oids))
            try:
                entries = w.decode_get(p)
            except Exception as e:
                self._fail()
                raise ProtocolError(f"get: malformed reply: {e}") from e
            if len(entries) != len(oids):
                self._fail()
                raise ProtocolError(f"get: {len(entries)} results for {len(oids)} ids")
            out = []
            for oid, e in zip(oids, entries):
                if not e[0]:
                    out.append(None)
                else:
                    ds = e[2]
                    out.append((self._view_locked(oid, e[1], ds + e[3], False), ds, bytes(e[5]) if e[4] else None))
            return out

    def _abandoned_get(self, oids):
        def handler(t, p):
            if t != w.GET | w.REPLY_BIT:
                return
            try:
                entries = w.decode_get(p)
            except Exception:
                return
            for oid, e in zip(oids, entries):
                if e[0]:
                    self._queue_release_locked(oid)
        return handler

    def contains(self, object_id) -> bool:
        """Whether the object is sealed in the store (and not pending deletion)."""
        p = self._call(w.CONTAINS, as_id_bytes(object_id))
        n, code = w.CONTAINS_REPLY.unpack(p)
        return code == 1

    def delete(self, object_ids, strict: bool = False):
        """Delete objects. An object in use is deleted at its last release
        (and is invisible to get and contains meanwhile).

        Returns one entry per id: ``None`` when deleted (now or deferred), or
        the exception saying why not (:class:`ObjectNotFound`,
        :class:`ObjectNotSealed`). With ``strict=True`` the first such
        exception is raised instead."""
        if isinstance(object_ids, (ObjectID, bytes)):
            object_ids = [object_ids]
        oids = [as_id_bytes(i) for i in object_ids]
        if len(oids) > w.MAX_IDS_PER_REQUEST:
            raise TooLarge(f"delete: {len(oids)} ids exceed {w.MAX_IDS_PER_REQUEST}")
        codes = w.decode_codes(self._call(w.DELETE, w.id_list(0, oids)))
        out = []
        for oid, code in zip(oids, codes):
            if code in (w.CODE_OK, w.CODE_DELETE_DEFERRED):
                out.append(None)
            else:
                what = {w.CODE_OBJECT_NOT_FOUND: "not found", w.CODE_OBJECT_NOT_SEALED: "not sealed"}.get(
                    code, f"status {code}")
                err = error_for_code(code, f"delete {oid.hex()}: object {what}")
                if strict:
                    raise err
                out.append(err)
        return out

    def list(self) -> dict:
        """Every object in the store, sealed or not: ``{ObjectID: info}``
        where info is a dict with ``data_size``, ``metadata_size``,
        ``ref_count``, ``create_time`` (unix seconds), ``construct_duration``
        (seconds, -1 while unsealed), ``state`` ("created" or "sealed"),
        ``creator_pid``, ``delete_pending``, ``last_use`` (unix seconds or
        None), ``offset`` and ``digest`` (BLAKE3 hex or None)."""
        out = {}
        with self._session():
            rid = self._new_id()
            self._waiting.add(rid)
            try:
                self._conn.send(self._take_outbox_locked() + w.frame(w.LIST, rid))
                while True:
                    rt, p = self._wait_locked(rid)
                    p = self._check_reply(w.LIST, rt, p)
                    more, n = w.LIST_HEAD.unpack_from(p)
                    if len(p) != w.LIST_HEAD.size + n * w.INFO.size:
                        raise ProtocolError(f"list: page of {n} entries in {len(p)} bytes")
                    for info in w.INFO.iter_unpack(memoryview(p)[w.LIST_HEAD.size:]):
                        oid, entry = _info_dict(info)
                        out[oid] = entry
                    if not more:
                        break
            except (ConnectionClosed, ProtocolError):
                self._fail()
                raise
            except PlasmaError:
                raise  # an Error reply: nothing more comes for this request
            except BaseException:
                self._orphans[rid] = None  # interrupted: drop the pages still to come
                raise
            finally:
                self._waiting.discard(rid)
                self._stash.pop(rid, None)
        return out

    def stats(self) -> dict:
        """The store's accounting: capacity, used, objects, sealed, pinned,
        largest_free, free_blocks, evictions, evicted_bytes, compactions,
        moved_bytes, clients (all ints, bytes where sizes)."""
        p = self._call(w.STATS)
        return dict(zip(w.STATS_FIELDS, w.STATS_REPLY.unpack(p)))

    def store_capacity(self) -> int:
        """The number of bytes the store can hold."""
        return self._capacity

    def evict(self, num_bytes: int) -> int:
        """Ask the store to free at least ``num_bytes`` by evicting least
        recently used unreferenced objects; returns the bytes freed."""
        (freed,) = w.U64.unpack(self._call(w.EVICT, w.U64.pack(num_bytes)))
        return freed

    # ------------------------------------------------------------------
    # numpy (optional).

    def put_array(self, array, object_id=None) -> ObjectID:
        """Store a numpy array (copied once into shared memory); dtype and
        shape go into the metadata (see plasmastream.arrays)."""
        from .arrays import put_array

        return put_array(self, array, object_id)

    def get_array(self, object_id, timeout_ms: int = -1):
        """A read-only numpy array viewing the object in shared memory
        (zero-copy); holds a reference until the array is collected."""
        from .arrays import get_array

        return get_array(self, object_id, timeout_ms)

    # ------------------------------------------------------------------
    # Notifications.

    def subscribe(self):
        """Subscribe to seal, delete and eviction events (on a separate
        connection). Returns the :class:`~plasmastream.subscribe.Subscription`,
        which is also what :meth:`get_next_notification` reads."""
        from .subscribe import Subscription

        self._check_usable()
        if self._subscription is None or self._subscription.closed:
            self._subscription = Subscription(self._socket, socket_owner=self._socket_owner)
        return self._subscription

    def get_next_notification(self, timeout: float | None = None):
        """The next event as pyarrow returns it: ``(object_id, data_size,
        metadata_size)``, sizes -1 for a deletion or eviction. Use the
        subscription's iterator for the event kind and time."""
        if self._subscription is None:
            raise PlasmaError("get_next_notification: call subscribe() first")
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ev = self._subscription.get(left)
            if ev.kind == "sealed":
                return ev.object_id, ev.data_size, ev.metadata_size
            if ev.kind in ("deleted", "evicted"):
                return ev.object_id, -1, -1
            # Any other kind (one newer than this client) is no seal or
            # deletion: pyarrow's notifications have no word for it.

    # ------------------------------------------------------------------
    # Lifetime.

    @property
    def socket_name(self) -> str:
        return self._socket

    @property
    def closed(self) -> bool:
        return self._closed

    def disconnect(self) -> None:
        """Close the connection. The store drops every reference this client
        held and frees its unsealed objects. Views stay mapped (reading them
        does not crash) but are no longer protected: the store may reuse the
        memory."""
        if self._closed and self._conn.sock.fileno() < 0:
            return
        self._closed = True
        self._conn.shutdown()  # wakes a call blocked in another thread
        with self._lock:
            self._conn.close()
            for refs in self._live.values():
                for ref in refs:
                    if ref.fin is not None:
                        ref.fin.detach()
            self._live.clear()
            self._dead.clear()
            self._outbox.clear()
            self._releases.clear()
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None

    close = disconnect

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.disconnect()

    def __del__(self):
        try:
            if not self._closed or self._conn.sock.fileno() >= 0:
                self._closed = True
                self._conn.close()
        except Exception:
            pass

    def __repr__(self):
        state = "disconnected" if self._closed else f"capacity={self._capacity}"
        return f"<PlasmaClient {self._socket} {state}>"


def _info_dict(info) -> tuple[ObjectID, dict]:
    (oid, data_size, meta_size, refs, create_ns, construct_ns, pid, state,
     delete_pending, has_digest, digest, last_use_ns, offset) = info
    return ObjectID(oid), {
        "data_size": data_size,
        "metadata_size": meta_size,
        "ref_count": refs,
        "create_time": create_ns / 1e9,
        "construct_duration": construct_ns / 1e9 if construct_ns >= 0 else -1,
        "state": "sealed" if state == w.STATE_SEALED else "created",
        "creator_pid": pid,
        "delete_pending": bool(delete_pending),
        "last_use": last_use_ns / 1e9 if last_use_ns else None,
        "offset": offset,
        "digest": digest.hex() if has_digest else None,
    }
