"""Exceptions raised by the plasmastream client.

Every error code of the store protocol (docs/store-protocol.md, "Error
codes") has its own subclass of :class:`PlasmaError`. An exception raised
for a store reply carries the store's own message (one sentence naming the
object and the figures) as ``str(exc)`` and ``exc.message``, and the wire
code as ``exc.code``.
"""

from __future__ import annotations

__all__ = [
    "PlasmaError",
    "ObjectExists",
    "ObjectNotFound",
    "OutOfMemory",
    "StoreFull",
    "ObjectNotSealed",
    "AlreadySealed",
    "NotCreator",
    "InvalidRequest",
    "TooLarge",
    "ProtocolVersion",
    "InternalError",
    "DeleteDeferred",
    "NotReferenced",
    "StoreBusy",
    "ConnectionClosed",
    "ProtocolError",
    "SocketOwnerError",
    "IntegrityError",
    "PlasmaObjectExists",
    "PlasmaObjectNotFound",
    "PlasmaStoreFull",
    "error_for_code",
    "ERROR_CLASSES",
]


class PlasmaError(Exception):
    """Base class of every error of this package.

    ``code`` is the store's error code (``None`` for errors detected by the
    client itself, such as a closed connection), ``message`` its message.
    """

    code: int | None = None

    def __init__(self, message: str = "", code: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class ObjectExists(PlasmaError):
    """Code 1: the id is taken (being created, sealed or pending deletion)."""

    code = 1


class ObjectNotFound(PlasmaError):
    """Code 2: no such object (or it is pending deletion)."""

    code = 2


class OutOfMemory(PlasmaError):
    """Code 3: the store is full; pinned objects leave no room."""

    code = 3


StoreFull = OutOfMemory


class ObjectNotSealed(PlasmaError):
    """Code 4: the operation needs a sealed object."""

    code = 4


class AlreadySealed(PlasmaError):
    """Code 5: Seal or Abort of an object that is already sealed."""

    code = 5


class NotCreator(PlasmaError):
    """Code 6: Seal or Abort by a client that did not create the object."""

    code = 6


class InvalidRequest(PlasmaError):
    """Code 7: malformed payload, unknown message type, too many blocked gets."""

    code = 7


class TooLarge(PlasmaError, ValueError):
    """Code 8: a size limit of the protocol was exceeded."""

    code = 8


class ProtocolVersion(PlasmaError):
    """Code 9: the store does not speak this client's protocol version."""

    code = 9


class InternalError(PlasmaError):
    """Code 10: a bug in the store (the store keeps running)."""

    code = 10


class DeleteDeferred(PlasmaError):
    """Code 11: a Delete status, not a failure: the object is in use and is
    deleted at its last release. :meth:`PlasmaClient.delete` reports it as
    ``"deferred"``; the class exists so that every code has one."""

    code = 11


class NotReferenced(PlasmaError):
    """Code 12: Release of an object this client holds no reference to."""

    code = 12


class StoreBusy(PlasmaError):
    """Code 13: a store-wide limit is reached (connected clients, memory of
    blocked gets); retry later."""

    code = 13


class ConnectionClosed(PlasmaError, ConnectionError):
    """The connection to the store is closed (disconnect() or the store went away)."""


class ProtocolError(PlasmaError):
    """The store sent something this client does not understand."""


class SocketOwnerError(PlasmaError, PermissionError):
    """The store socket is owned by another user than this one or root (one
    who created the default /tmp/plasma first?): pass ``socket_owner=`` to
    trust that user."""


class IntegrityError(PlasmaError):
    """An object's bytes do not match its BLAKE3 digest: a client of the
    store overwrote them in shared memory after Seal (``get(..., verify=True)``)."""


# pyarrow.plasma names, so that ``except plasma.PlasmaStoreFull`` ports.
PlasmaObjectExists = ObjectExists
PlasmaObjectNotFound = ObjectNotFound
PlasmaStoreFull = OutOfMemory

ERROR_CLASSES: dict[int, type[PlasmaError]] = {
    cls.code: cls
    for cls in (
        ObjectExists,
        ObjectNotFound,
        OutOfMemory,
        ObjectNotSealed,
        AlreadySealed,
        NotCreator,
        InvalidRequest,
        TooLarge,
        ProtocolVersion,
        InternalError,
        DeleteDeferred,
        NotReferenced,
        StoreBusy,
    )
}


def error_for_code(code: int, message: str) -> PlasmaError:
    """The exception for a store error code and message."""
    cls = ERROR_CLASSES.get(code)
    if cls is None:
        return PlasmaError(f"{message} (unknown store error code {code})", code)
    return cls(message, code)
