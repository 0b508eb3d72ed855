"""plasmastream: pure-Python client of the Plasma Stream shared-memory
object store (plasma-store-server).

The API follows ``pyarrow.plasma``::

    import plasmastream as plasma

    client = plasma.connect("/tmp/plasma")
    oid = client.put(b"hello")
    view = client.get(oid)          # zero-copy, read-only memoryview

See README.md in the python/ directory of the repository.
"""

from .client import DEFAULT_SOCKET, PlasmaClient, connect
from .errors import (
    AlreadySealed,
    ConnectionClosed,
    DeleteDeferred,
    IntegrityError,
    InternalError,
    InvalidRequest,
    NotCreator,
    NotReferenced,
    ObjectExists,
    ObjectNotFound,
    ObjectNotSealed,
    OutOfMemory,
    PlasmaError,
    PlasmaObjectExists,
    PlasmaObjectNotFound,
    PlasmaStoreFull,
    ProtocolError,
    ProtocolVersion,
    SocketOwnerError,
    StoreBusy,
    StoreFull,
    TooLarge,
)
from .objectid import ObjectID
from .subscribe import Notification, Subscription
from . import errors, stream
from .stream import StreamError

__version__ = "0.1.0"

__all__ = [
    "connect",
    "PlasmaClient",
    "ObjectID",
    "Subscription",
    "Notification",
    "stream",
    "StreamError",
    "DEFAULT_SOCKET",
] + [n for n in errors.__all__ if n not in ("error_for_code", "ERROR_CLASSES")]
