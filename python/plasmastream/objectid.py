"""Object ids: 20 raw bytes, written as 40 lowercase hex digits."""

from __future__ import annotations

import os

__all__ = ["ObjectID", "ID_SIZE"]

ID_SIZE = 20


class ObjectID:
    """The name of an object in the store: 20 bytes.

    ``ObjectID(b)`` wraps 20 raw bytes (as ``pyarrow.plasma.ObjectID``);
    ``ObjectID.from_random()``, ``ObjectID.from_hex(s)``, ``.binary()``,
    ``.hex()``. Ids are hashable, comparable and picklable.
    """

    __slots__ = ("_b",)

    def __init__(self, object_id: bytes):
        if isinstance(object_id, ObjectID):
            b = object_id._b
        else:
            # Only bytes-like objects: bytes(20) would be 20 zero bytes.
            if not isinstance(object_id, (bytes, bytearray, memoryview)):
                hint = " (ObjectID.from_hex parses hex digits)" if isinstance(object_id, str) else ""
                raise ValueError(f"ObjectID needs {ID_SIZE} bytes, got {type(object_id).__name__} "
                                 f"{object_id!r:.60}{hint}")
            b = bytes(object_id)
            if len(b) != ID_SIZE:
                raise ValueError(f"ObjectID needs {ID_SIZE} bytes, got {len(b)}")
        self._b = b

    @classmethod
    def from_random(cls) -> "ObjectID":
        """A random id (from ``os.urandom``)."""
        return cls(os.urandom(ID_SIZE))

    @classmethod
    def from_hex(cls, s: str) -> "ObjectID":
        """Parse 40 hex digits."""
        if len(s) != 2 * ID_SIZE:
            raise ValueError(f"object id {s!r}: want {2 * ID_SIZE} hex digits, got {len(s)}")
        return cls(bytes.fromhex(s))

    @classmethod
    def nil(cls) -> "ObjectID":
        """The all-zero id."""
        return cls(bytes(ID_SIZE))

    def binary(self) -> bytes:
        """The 20 raw bytes."""
        return self._b

    def hex(self) -> str:
        """40 lowercase hex digits (the form the Go client and the CLI print)."""
        return self._b.hex()

    def __bytes__(self) -> bytes:
        return self._b

    def __eq__(self, other):
        if isinstance(other, ObjectID):
            return self._b == other._b
        return NotImplemented

    def __lt__(self, other):
        if isinstance(other, ObjectID):
            return self._b < other._b
        return NotImplemented

    def __hash__(self):
        return hash(self._b)

    def __repr__(self):
        return f"ObjectID({self._b.hex()})"

    __str__ = hex

    def __reduce__(self):
        return (ObjectID, (self._b,))


def as_id_bytes(object_id) -> bytes:
    """The 20 raw bytes of an ObjectID (or of 20 bytes given directly)."""
    if type(object_id) is ObjectID:
        return object_id._b
    if isinstance(object_id, ObjectID):
        return object_id._b
    if isinstance(object_id, (bytes, bytearray, memoryview)) and len(object_id) == ID_SIZE:
        return bytes(object_id)
    raise TypeError(f"expected an ObjectID, got {object_id!r}")
