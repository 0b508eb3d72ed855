"""numpy arrays: put_array / get_array."""

import gc
import json

import numpy as np
import pytest

import plasmastream as ps
from plasmastream.arrays import array_metadata, parse_array_metadata

DTYPES = [np.float32, np.float64, np.int64, np.uint8, np.int16, np.bool_, np.complex64, np.complex128]
SHAPES = [(), (1,), (17,), (2, 3, 4), (0,), (3, 0, 2), (300, 700)]


def make(dtype, shape):
    n = int(np.prod(shape)) if shape else 1
    rng = np.random.default_rng(n)
    if dtype == np.bool_:
        a = rng.random(n) > 0.5
    elif np.issubdtype(dtype, np.complexfloating):
        a = rng.random(n) + 1j * rng.random(n)
    else:
        a = rng.random(n) * 100
    return a.astype(dtype).reshape(shape)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_roundtrip(client, dtype, shape):
    a = make(dtype, shape)
    oid = client.put_array(a)
    b = client.get_array(oid)
    assert b.dtype == a.dtype and b.shape == a.shape
    np.testing.assert_array_equal(a, b)
    assert not b.flags.writeable
    with pytest.raises(ValueError):
        b.setflags(write=True)


def test_zero_copy_view(client):
    a = np.arange(1 << 20, dtype=np.int64).reshape(1024, 1024)
    oid = client.put_array(a)
    b1 = client.get_array(oid)
    b2 = client.get_array(oid)
    addr = b1.__array_interface__["data"][0]
    assert addr == b2.__array_interface__["data"][0]  # same shared memory
    info = client.list()[oid]
    assert info["ref_count"] == 2 and info["data_size"] == a.nbytes
    # the view points into the client's read-only mapping of the arena
    assert addr - client._ro_base == info["offset"]
    del b1, b2
    gc.collect()
    assert client.list()[oid]["ref_count"] == 0


def test_views_of_views_keep_reference(client):
    oid = client.put_array(np.arange(1000.0))
    a = client.get_array(oid)
    part = a[10:20].reshape(2, 5).T
    del a
    gc.collect()
    assert client.list()[oid]["ref_count"] == 1
    np.testing.assert_array_equal(part.T.ravel(), np.arange(10.0, 20.0))
    del part
    assert client.list()[oid]["ref_count"] == 0


def test_non_contiguous_and_explicit_id(client):
    a = np.arange(24.0).reshape(4, 6)[:, ::2]
    assert not a.flags.c_contiguous
    oid = ps.ObjectID.from_random()
    assert client.put_array(a, oid) == oid
    np.testing.assert_array_equal(client.get_array(oid), a)
    big = np.arange(4 << 20, dtype=np.uint8).reshape(2048, 2048)[::2, ::2]
    np.testing.assert_array_equal(client.get_array(client.put_array(big)), big)
    f = np.asfortranarray(np.arange(12).reshape(3, 4))
    np.testing.assert_array_equal(client.get_array(client.put_array(f)), f)


def test_metadata_format(client):
    oid = client.put_array(np.zeros((2, 3), dtype="<f4"))
    (meta,) = client.get_metadata([oid])
    head = json.loads(bytes(meta))
    assert head == {"plasmastream": "ndarray", "version": 1, "dtype": "<f4", "shape": [2, 3]}
    assert bytes(meta) == b'{"dtype":"<f4","plasmastream":"ndarray","shape":[2,3],"version":1}'
    assert json.loads(array_metadata(np.bool_, ()))["dtype"] == "|b1"
    assert json.loads(array_metadata(np.complex128, (0,)))["dtype"] == "<c16"


def test_other_dtypes(client):
    for a in [np.array(["ab", "cde"]), np.array([1, 2], dtype=">i4"),
              np.array(["2024-01-01", "2025-06-01"], dtype="datetime64[ns]"),
              np.zeros(3, dtype=[("x", "<f8"), ("y", "<i4", (2,))])]:
        b = client.get_array(client.put_array(a))
        assert b.dtype == a.dtype
        np.testing.assert_array_equal(a, b)
    dt, shape = parse_array_metadata(array_metadata(np.dtype([("a", "u1"), ("b", [("c", "<f4")])]), (5,)))
    assert dt == np.dtype([("a", "u1"), ("b", [("c", "<f4")])]) and shape == (5,)
    with pytest.raises(ValueError):
        client.put_array(np.array([object()], dtype=object))


def test_get_array_errors(client):
    with pytest.raises(ps.ObjectNotFound):
        client.get_array(ps.ObjectID.from_random(), timeout_ms=0)
    plain = client.put(b"not an array", metadata=b"whatever")
    with pytest.raises(ValueError):
        client.get_array(plain)
    bad = client.put(b"12345", metadata=array_metadata(np.float64, (1,)))
    with pytest.raises(ValueError):
        client.get_array(bad)
    gc.collect()
    assert all(info["ref_count"] == 0 for info in client.list().values())
