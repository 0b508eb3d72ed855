"""BLAKE3 (32-byte digests, no key), written from the BLAKE3 specification
for verified gets: the ``blake3`` package is used when installed (it is
much faster); this pure-Python fallback hashes a few MB a second at best, which
is enough for small objects and keeps the package free of dependencies."""

from __future__ import annotations

import struct

try:  # pragma: no cover - depends on the environment
    from blake3 import blake3 as _native
except ImportError:  # pragma: no cover
    _native = None

_IV = (0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
       0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19)
_PERM = (2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8)
_CHUNK_START, _CHUNK_END, _PARENT, _ROOT = 1, 2, 4, 8
_BLOCK, _CHUNK = 64, 1024
_M = 0xFFFFFFFF
_WORDS = struct.Struct("<16I")


def _g(s, a, b, c, d, x, y):
    s[a] = (s[a] + s[b] + x) & _M
    v = s[d] ^ s[a]
    s[d] = ((v >> 16) | (v << 16)) & _M
    s[c] = (s[c] + s[d]) & _M
    v = s[b] ^ s[c]
    s[b] = ((v >> 12) | (v << 20)) & _M
    s[a] = (s[a] + s[b] + y) & _M
    v = s[d] ^ s[a]
    s[d] = ((v >> 8) | (v << 24)) & _M
    s[c] = (s[c] + s[d]) & _M
    v = s[b] ^ s[c]
    s[b] = ((v >> 7) | (v << 25)) & _M


def _compress(cv, m, counter, block_len, flags):
    """The compression function: 8 output words (the chaining value, or the
    first 32 bytes of output when flags has ROOT)."""
    s = list(cv) + list(_IV[:4]) + [counter & _M, (counter >> 32) & _M, block_len, flags]
    m = list(m)
    for r in range(7):
        _g(s, 0, 4, 8, 12, m[0], m[1])
        _g(s, 1, 5, 9, 13, m[2], m[3])
        _g(s, 2, 6, 10, 14, m[4], m[5])
        _g(s, 3, 7, 11, 15, m[6], m[7])
        _g(s, 0, 5, 10, 15, m[8], m[9])
        _g(s, 1, 6, 11, 12, m[10], m[11])
        _g(s, 2, 7, 8, 13, m[12], m[13])
        _g(s, 3, 4, 9, 14, m[14], m[15])
        if r < 6:
            m = [m[i] for i in _PERM]
    return [s[i] ^ s[i + 8] for i in range(8)]


def _words(block: bytes):
    return _WORDS.unpack(bytes(block).ljust(_BLOCK, b"\0"))


def _chunk(data, counter):
    """A chunk's final compression, unapplied: (cv, words, counter, len, flags)."""
    cv = _IV
    n = max(1, (len(data) + _BLOCK - 1) // _BLOCK)
    for i in range(n - 1):
        flags = _CHUNK_START if i == 0 else 0
        cv = _compress(cv, _words(data[i * _BLOCK:(i + 1) * _BLOCK]), counter, _BLOCK, flags)
    last = data[(n - 1) * _BLOCK:]
    flags = _CHUNK_END | (_CHUNK_START if n == 1 else 0)
    return cv, _words(last), counter, len(last), flags


def _node(data, counter):
    """The final compression of the subtree over data, whose first chunk is
    number counter: a chunk, or a parent of two subtrees whose left one
    holds the largest power of two of chunks that leaves the right one
    non-empty."""
    if len(data) <= _CHUNK:
        return _chunk(data, counter)
    chunks = (len(data) + _CHUNK - 1) // _CHUNK
    left_chunks = 1 << ((chunks - 1).bit_length() - 1)
    split = left_chunks * _CHUNK
    left = _compress(*_node(data[:split], counter))
    right = _compress(*_node(data[split:], counter + left_chunks))
    return _IV, tuple(left + right), 0, _BLOCK, _PARENT


def blake3(data) -> bytes:
    """The 32-byte BLAKE3 digest of data (bytes-like)."""
    if _native is not None:
        return _native(bytes(data) if not isinstance(data, (bytes, bytearray, memoryview)) else data).digest()
    cv, m, counter, block_len, flags = _node(memoryview(data).cast("B"), 0)
    return struct.pack("<8I", *_compress(cv, m, counter, block_len, flags | _ROOT))
