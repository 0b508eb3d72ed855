"""Bytes written by the Go client are read by Python, and the reverse."""

import os
import subprocess

import pytest

import plasmastream as ps

MiB = 1 << 20


def gohelper(go_bins, *args):
    r = subprocess.run([os.path.join(go_bins, "gohelper"), *map(str, args)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def payload(n):
    return (bytes(range(256)) * (n // 256 + 1))[:n]


@pytest.mark.parametrize("size", [0, 1, 1000, MiB])
def test_go_writes_python_reads(client, store, go_bins, tmp_path, size):
    data = payload(size)
    f = tmp_path / "data"
    f.write_bytes(data)
    oid = ps.ObjectID.from_random()
    assert gohelper(go_bins, "put", store.socket, oid.hex(), f, b"go-meta".hex()) == oid.hex()
    ((meta, view),) = client.get_buffers([oid], with_meta=True)
    assert bytes(view) == data and bytes(meta) == b"go-meta"
    info = client.list()[oid]
    assert info["data_size"] == size and info["ref_count"] == 1


def test_go_content_addressed_put(client, store, go_bins, tmp_path):
    f = tmp_path / "data"
    f.write_bytes(b"content addressed")
    hexid = gohelper(go_bins, "put", store.socket, "-", f, "")
    assert len(hexid) == 40
    oid = ps.ObjectID.from_hex(hexid)
    assert bytes(client.get(oid)) == b"content addressed"
    # the id is the first 20 bytes of the BLAKE3 digest, which the Go client
    # passes to the store and list() returns
    digest = client.list()[oid]["digest"]
    assert len(digest) == 64 and digest[:40] == hexid
    assert gohelper(go_bins, "put", store.socket, "-", f, "") == hexid
    plain = client.put(b"no digest")  # Python's put passes no digest
    assert client.list()[plain]["digest"] is None


@pytest.mark.parametrize("size", [0, 1, 1000, MiB])
def test_python_writes_go_reads(client, store, go_bins, tmp_path, size):
    data = payload(size)
    oid = client.put(data, metadata=b"py-meta")
    out = tmp_path / "out"
    assert gohelper(go_bins, "get", store.socket, oid.hex(), 0, out) == b"py-meta".hex()
    assert out.read_bytes() == data


def test_go_reads_python_created_buffer(client, store, go_bins, tmp_path):
    oid = ps.ObjectID.from_random()
    buf = client.create(oid, 3 * MiB, b"")
    buf[:] = payload(3 * MiB)
    client.seal(oid)
    out = tmp_path / "out"
    gohelper(go_bins, "get", store.socket, oid.hex(), 1000, out)
    assert out.read_bytes() == payload(3 * MiB)
    del buf


def test_go_reads_python_array(client, store, go_bins, tmp_path):
    np = pytest.importorskip("numpy")
    a = np.arange(1000, dtype="<i4")
    oid = client.put_array(a)
    out = tmp_path / "out"
    meta = bytes.fromhex(gohelper(go_bins, "get", store.socket, oid.hex(), 0, out))
    assert meta == b'{"dtype":"<i4","plasmastream":"ndarray","shape":[1000],"version":1}'
    assert out.read_bytes() == a.tobytes()
