"""Notifications: every seal, delete and eviction in the store, in order
(and, if asked, every digest the store learns after a seal)."""

from __future__ import annotations

import os
import select
import threading
import time
from typing import NamedTuple

from . import _wire as w
from ._conn import Conn
from .errors import ConnectionClosed, PlasmaError, ProtocolError, error_for_code
from .objectid import ObjectID

__all__ = ["Notification", "Subscription", "subscribe"]


class Notification(NamedTuple):
    """One event: ``kind`` is "sealed", "deleted", "evicted" or, for a
    subscription opened with ``digests=True``, "digest" (the store hashed an
    object sealed without a digest). A kind newer than this client reads
    "kind<N>". ``digest`` is the BLAKE3 digest (32 bytes) when the store
    knows it."""

    kind: str
    object_id: ObjectID
    data_size: int
    metadata_size: int
    time_ns: int  # unix nanoseconds, when it happened in the store
    digest: bytes | None = None

    @property
    def time(self) -> float:
        """Unix seconds."""
        return self.time_ns / 1e9


class Subscription:
    """A subscription on its own connection to the store.

    ``get(timeout=None)`` returns the next :class:`Notification` (raising
    ``TimeoutError`` when none comes in time); iterating yields them until
    the subscription is closed. ``fileno()`` can be polled. A subscriber
    more than 65,536 events behind is disconnected by the store (so that it
    cannot stall it): ``get`` then raises :class:`ConnectionClosed`.
    """

    def __init__(self, socket_path: str, digests: bool = False, socket_owner=None):
        self._conn = Conn(socket_path, spin_s=0, socket_owner=socket_owner)  # events are sporadic: never poll
        # A subscriber needs no shared memory.
        os.close(self._conn.arena_fd)
        self._conn.arena_fd = -1
        self._lock = threading.Lock()
        self.closed = False
        try:
            # No flags is the empty payload every store knows.
            flags = w.U32.pack(w.SUBSCRIBE_DIGESTS) if digests else b""
            self._conn.send(w.frame(w.SUBSCRIBE, 1, flags))
            while True:
                t, rid, p = self._conn.read_frame()
                if rid != 1:
                    continue
                if t == w.ERROR:
                    code, msg = w.decode_error(p)
                    raise error_for_code(code, msg)
                if t != w.SUBSCRIBE | w.REPLY_BIT:
                    raise ProtocolError(f"subscribe: unexpected reply {w.type_name(t)}")
                break
        except BaseException:
            self.close()
            raise

    def get(self, timeout: float | None = None) -> Notification:
        """The next notification, waiting up to ``timeout`` seconds (None:
        forever)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while True:
                if self.closed:
                    raise ConnectionClosed("subscription is closed")
                if not self._conn.buffered_frame() and deadline is not None:
                    left = max(0.0, deadline - time.monotonic())
                    r, _, _ = select.select([self._conn.sock], [], [], left)
                    if not r:
                        raise TimeoutError(f"no notification within {timeout} s")
                t, rid, p = self._conn.read_frame()
                if rid != 0 or t != w.EVENT:
                    continue
                if len(p) != w.EVENT_BODY.size:
                    raise ProtocolError(f"event of {len(p)} bytes")
                kind, oid, ds, ms, tns, has_digest, digest = w.EVENT_BODY.unpack(p)
                return Notification(w.EVENT_KINDS.get(kind, f"kind{kind}"), ObjectID(oid), ds, ms, tns,
                                    digest if has_digest else None)

    def __iter__(self):
        while True:
            try:
                yield self.get()
            except ConnectionClosed:
                if self.closed:
                    return
                raise

    def fileno(self) -> int:
        return self._conn.fileno()

    def close(self) -> None:
        self.closed = True
        self._conn.shutdown()
        self._conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def subscribe(socket_path: str, digests: bool = False, socket_owner=None) -> Subscription:
    """Open a subscription to the store at ``socket_path`` (with digest
    events too if ``digests``); ``socket_owner`` as for :func:`connect`."""
    return Subscription(socket_path, digests, socket_owner)
