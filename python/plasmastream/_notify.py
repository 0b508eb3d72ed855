"""pyarrow.plasma's notification socket over a plasmastream subscription.

pyarrow handed out the subscription's socket itself: users ``recv`` an
8-byte native length, then that many bytes, and pass them to
``decode_notifications``. Our subscription speaks the store protocol, so a
relay thread reads its events and writes them, one message per event, into
one end of a socketpair; the user reads the other end, and so does
``get_next_notification`` once the socket exists (both consume the same
stream, as in pyarrow).

A message body is one record per object: id (20 bytes), data_size i64,
metadata_size i64 (little-endian; both -1 for a deletion or eviction).
"""

from __future__ import annotations

import socket
import struct
import threading

from .errors import PlasmaError, ProtocolError
from .objectid import ObjectID

__all__ = ["Relay", "decode", "encode_event"]

_LEN = struct.Struct("L")  # native unsigned long: what pyarrow users unpack
_RECORD = struct.Struct("<20sqq")


def encode_event(ev):
    """The record of a subscription event, or None for a kind pyarrow had
    no word for (digest events)."""
    if ev.kind == "sealed":
        return _RECORD.pack(ev.object_id.binary(), ev.data_size, ev.metadata_size)
    if ev.kind in ("deleted", "evicted"):
        return _RECORD.pack(ev.object_id.binary(), -1, -1)
    return None


def decode(buf):
    """(object ids, data sizes, metadata sizes) of a message body."""
    view = memoryview(buf).cast("B")
    if len(view) % _RECORD.size:
        raise ProtocolError(f"notification of {len(view)} bytes: not a whole number of "
                            f"{_RECORD.size}-byte records")
    ids, data_sizes, meta_sizes = [], [], []
    for oid, ds, ms in _RECORD.iter_unpack(view):
        ids.append(ObjectID(oid))
        data_sizes.append(ds)
        meta_sizes.append(ms)
    return ids, data_sizes, meta_sizes


class Relay:
    """Copies a Subscription's events into a socketpair; ``reader`` is the
    end users and ``next()`` read. Stops when the subscription or the
    reader is closed."""

    def __init__(self, subscription):
        self._sub = subscription
        self._writer, self.reader = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._thread = threading.Thread(target=self._run, name="plasma-notifications", daemon=True)
        self._thread.start()

    def _run(self):
        try:
            while True:
                body = encode_event(self._sub.get())
                if body is not None:
                    self._writer.sendall(_LEN.pack(len(body)) + body)
        except (PlasmaError, OSError):
            pass  # the subscription or the reader is closed
        finally:
            self._writer.close()

    def _recv_exactly(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            chunk = self.reader.recv(n - len(out))
            if not chunk:
                raise ConnectionError("the notification stream ended (subscription closed or store gone)")
            out += chunk
        return bytes(out)

    def next(self):
        """The next (object id, data size, metadata size) from the socket."""
        (n,) = _LEN.unpack(self._recv_exactly(_LEN.size))
        ids, ds, ms = decode(self._recv_exactly(n))
        return ids[0], ds[0], ms[0]

    def close(self):
        try:
            self.reader.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.reader.close()
