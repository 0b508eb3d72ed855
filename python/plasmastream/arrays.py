"""numpy arrays in the store (numpy is optional: imported on first use).

An array is stored as its raw bytes in C order; its dtype and shape go into
the object's metadata as one compact UTF-8 JSON object::

    {"dtype":"<f4","plasmastream":"ndarray","shape":[2,3],"version":1}

- ``plasmastream``: always ``"ndarray"`` (marks the format);
- ``version``: 1;
- ``dtype``: the numpy array-protocol descriptor of the dtype
  (``numpy.lib.format.dtype_to_descr``): a type string with byte order such
  as ``"<f4"``, ``"|b1"``, ``"<c16"``, ``"<M8[ns]"``, or for a structured
  dtype a list of ``[name, descr]`` / ``[name, descr, shape]`` entries;
- ``shape``: list of ints (``[]`` for a 0-d array).

The data size is ``prod(shape) * itemsize``. Any program that can read JSON
can interpret such an object (e.g. Go with encoding/json). Object dtypes
are refused.
"""

from __future__ import annotations

import json

from . import _wire as w
from .errors import ObjectNotFound
from .objectid import ObjectID, as_id_bytes

__all__ = ["put_array", "get_array", "array_metadata", "parse_array_metadata", "FORMAT"]

FORMAT = "ndarray"
VERSION = 1


def _np():
    try:
        import numpy
    except ImportError as e:  # pragma: no cover
        raise ImportError("plasmastream array helpers need numpy (pip install numpy)") from e
    return numpy


def array_metadata(dtype, shape) -> bytes:
    """The metadata header for an array of this dtype and shape."""
    np = _np()
    dtype = np.dtype(dtype)
    if dtype.hasobject:
        raise ValueError(f"cannot store an array of dtype {dtype}: it holds Python object references")
    head = {
        "plasmastream": FORMAT,
        "version": VERSION,
        "dtype": np.lib.format.dtype_to_descr(dtype),
        "shape": [int(d) for d in shape],
    }
    return json.dumps(head, separators=(",", ":"), sort_keys=True).encode()


def _tuples(descr):
    # JSON turns the tuples of a structured descr into lists.
    if isinstance(descr, list):
        return [tuple(_tuples(x) if isinstance(x, list) and i == 1 else
                      (tuple(x) if isinstance(x, list) else x)
                      for i, x in enumerate(f)) for f in descr]
    return descr


_parsed: dict = {}  # metadata bytes -> (dtype, shape); headers repeat


def parse_array_metadata(metadata) -> tuple:
    """``(dtype, shape)`` from an array metadata header; ValueError if the
    metadata is not one."""
    key = bytes(metadata)
    hit = _parsed.get(key)
    if hit is not None:
        return hit
    np = _np()
    try:
        head = json.loads(key.decode())
        if not isinstance(head, dict) or head.get("plasmastream") != FORMAT:
            raise ValueError("not a plasmastream ndarray header")
        if head.get("version") != VERSION:
            raise ValueError(f"ndarray header version {head.get('version')} not supported")
        dtype = np.lib.format.descr_to_dtype(_tuples(head["dtype"]))
        shape = tuple(int(d) for d in head["shape"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise ValueError(f"object metadata is not a plasmastream ndarray header ({e}): {key[:80]!r}") from None
    if len(_parsed) >= 1024:
        _parsed.clear()
    _parsed[key] = (dtype, shape)
    return dtype, shape


def put_array(client, array, object_id=None) -> ObjectID:
    """Store a numpy array (copied once, in C order) and return its id
    (random when not given)."""
    np = _np()
    arr = np.asarray(array)
    meta = array_metadata(arr.dtype, arr.shape)
    oid = ObjectID.from_random() if object_id is None else ObjectID(as_id_bytes(object_id))
    n = arr.nbytes
    if n <= w.MAX_INLINE_DATA and n <= 64 << 10:
        client.create_and_seal(oid, arr.tobytes(order="C"), meta)
        return oid

    def fill(rw, off):
        if arr.flags.c_contiguous:
            rw[off:off + n] = arr  # one memcpy
        else:
            dst = np.ndarray(arr.shape, arr.dtype, buffer=rw, offset=off)
            np.copyto(dst, arr)
            del dst

    client._put_large(oid.binary(), n, meta, fill)
    return oid


def get_array(client, object_id, timeout_ms: int = -1):
    """A read-only array viewing the object in shared memory (no copy). It
    holds a store reference until it (and every view of it) is collected."""
    np = _np()
    ((meta, data),) = client.get_buffers([object_id], timeout_ms, with_meta=True)
    if data is None:
        raise ObjectNotFound(
            f"object {as_id_bytes(object_id).hex()} not available in store {client.socket_name}",
            ObjectNotFound.code)
    dtype, shape = parse_array_metadata(meta)
    del meta
    count = 1
    for d in shape:
        count *= d
    if count * dtype.itemsize != len(data):
        raise ValueError(
            f"object {as_id_bytes(object_id).hex()}: {len(data)} bytes of data for shape {shape} of {dtype}")
    if dtype.itemsize == 0:
        return np.empty(shape, dtype)
    return np.frombuffer(data, dtype=dtype).reshape(shape)
