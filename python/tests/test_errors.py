"""Every store error code maps to its exception class, carrying the store's
message."""

import gc

import pytest

import plasmastream as ps
from plasmastream import _wire as w
from plasmastream.errors import ERROR_CLASSES, error_for_code

CODES = {
    1: ps.ObjectExists,
    2: ps.ObjectNotFound,
    3: ps.OutOfMemory,
    4: ps.ObjectNotSealed,
    5: ps.AlreadySealed,
    6: ps.NotCreator,
    7: ps.InvalidRequest,
    8: ps.TooLarge,
    9: ps.ProtocolVersion,
    10: ps.InternalError,
    11: ps.DeleteDeferred,
    12: ps.NotReferenced,
    13: ps.StoreBusy,
}


@pytest.mark.parametrize("code", sorted(CODES))
def test_code_table(code):
    cls = CODES[code]
    assert ERROR_CLASSES[code] is cls and cls.code == code
    e = error_for_code(code, "the store's sentence")
    assert type(e) is cls and isinstance(e, ps.PlasmaError)
    assert str(e) == e.message == "the store's sentence" and e.code == code
    unknown = error_for_code(999, "x")
    assert type(unknown) is ps.PlasmaError and unknown.code == 999


def test_object_exists(client):
    oid = client.put(b"x")
    with pytest.raises(ps.ObjectExists) as e:
        client.create(oid, 10)
    assert oid.hex() in str(e.value) and "already exists" in str(e.value) and e.value.code == 1
    with pytest.raises(ps.PlasmaObjectExists):
        client.put(b"y", oid)


def test_object_not_found(client):
    oid = ps.ObjectID.from_random()
    for op in (client.seal, client.abort):
        with pytest.raises(ps.ObjectNotFound) as e:
            op(oid)
        assert oid.hex() in str(e.value) and e.value.code == 2


def test_out_of_memory(client):
    with pytest.raises(ps.OutOfMemory) as e:
        client.create(ps.ObjectID.from_random(), 65 << 20)
    assert "capacity" in str(e.value) and e.value.code == 3


def test_object_not_sealed(client):
    oid = ps.ObjectID.from_random()
    buf = client.create(oid, 10)
    (res,) = client.delete([oid])
    assert isinstance(res, ps.ObjectNotSealed) and res.code == 4
    with pytest.raises(ps.ObjectNotSealed):
        client.delete([oid], strict=True)
    del buf


def test_already_sealed(client):
    oid = ps.ObjectID.from_random()
    buf = client.create(oid, 10)
    client.seal(oid)
    with pytest.raises(ps.AlreadySealed) as e:
        client.seal(oid)
    assert "already sealed" in str(e.value)
    with pytest.raises(ps.AlreadySealed):
        client.abort(oid)
    del buf


def test_not_creator(client, store):
    oid = ps.ObjectID.from_random()
    buf = client.create(oid, 10)
    with store.connect() as other:
        with pytest.raises(ps.NotCreator) as e:
            other.seal(oid)
        assert "another client" in str(e.value)
        with pytest.raises(ps.NotCreator):
            other.abort(oid)
    del buf


def test_invalid_request(client):
    with pytest.raises(ps.InvalidRequest) as e:
        client._call(99, b"")  # unknown message type
    assert "unknown request type" in str(e.value)
    with pytest.raises(ps.InvalidRequest):
        client._call(w.CREATE, b"short")  # malformed payload; the connection stays open
    assert not client.contains(ps.ObjectID.from_random())


def test_too_large(client):
    with pytest.raises(ps.TooLarge):
        client.create(ps.ObjectID.from_random(), 10, b"m" * (64 * 1024 + 1))
    with pytest.raises(ps.TooLarge):
        client.get_buffers([ps.ObjectID.from_random()] * 65537, timeout_ms=0)
    with pytest.raises(ValueError):  # TooLarge is also a ValueError
        client.put(b"x", metadata=b"m" * (64 * 1024 + 1))


def test_protocol_version(store):
    with pytest.raises(ps.ProtocolVersion) as e:
        ps.PlasmaClient(store.socket, _version=2)
    assert "version 2" in str(e.value) and e.value.code == 9


def test_not_referenced(client):
    oid = client.put(b"x")
    with pytest.raises(ps.NotReferenced) as e:
        client.release(oid)
    assert "no reference" in str(e.value) and e.value.code == 12


def test_delete_deferred_is_not_an_error(client):
    oid = client.put(b"x")
    view = client.get(oid)
    assert client.delete([oid], strict=True) == [None]
    del view
    gc.collect()
    assert oid not in client.list()


def test_connection_closed(store):
    client = store.connect()
    client.disconnect()
    with pytest.raises(ps.ConnectionClosed):
        client.put(b"x")
    client.disconnect()  # idempotent


def test_batch_reply_decoder_rejects_garbage():
    """Fuzz-style: the CreateAndSealBatch reply decoder meets random and
    mutated bytes and either decodes a list of (code, message) that encodes
    back to the same bytes or raises ValueError, never anything else."""
    import os
    import random
    import struct

    def encode(results):
        out = [w.U32.pack(len(results))]
        for code, msg in results:
            m = msg.encode()
            out += [w.BATCH_RESULT.pack(code, len(m)), m]
        return b"".join(out)

    good = encode([(0, ""), (1, "object ab already exists (sealed)"), (3, "store full")])
    assert w.decode_batch_results(good) == [(0, ""), (1, "object ab already exists (sealed)"), (3, "store full")]
    seeds = [b"", good, good[:9], encode([]), struct.pack("<I", 1 << 20)]
    rng = random.Random(18)
    for _ in range(3000):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            if data and rng.random() < 0.7:
                data[rng.randrange(len(data))] = rng.randrange(256)
            else:
                data += os.urandom(rng.randint(1, 8))
        try:
            results = w.decode_batch_results(bytes(data))
        except ValueError:
            continue
        if "\ufffd" not in "".join(m for _, m in results):  # valid UTF-8 encodes back
            assert encode(results) == bytes(data)
