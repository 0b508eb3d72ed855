"""Zero-copy views over the shared arena whose lifetime is observable.

A ``memoryview`` cannot carry a finalizer, and slicing it (or handing it to
numpy) creates new views that do not keep the original object alive. What
every derived view *does* keep alive is the object that exported the buffer
in the first place. So each object handed to the user gets its own exporter:
a small ctypes array placed (``from_address``) over the object's bytes in one
of the client's two arena mappings. Every memoryview, slice and numpy array
made from it references that exporter; when the last of them is gone the
exporter is collected and its ``weakref.finalize`` callback tells the client
to send Release. No memory is copied and nothing is mapped per object.

Exporter types are created per power-of-two size class (at most ~64 types,
cached) and the user's view is sliced to the object's exact size; the
exporter may nominally extend past the object, but only the slice is ever
exposed.
"""

from __future__ import annotations

import ctypes

__all__ = ["buffer_address", "make_view"]


class _PyBuffer(ctypes.Structure):
    # struct Py_buffer (Include/pybuffer.h), stable since Python 3.3.
    _fields_ = [
        ("buf", ctypes.c_void_p),
        ("obj", ctypes.c_void_p),
        ("len", ctypes.c_ssize_t),
        ("itemsize", ctypes.c_ssize_t),
        ("readonly", ctypes.c_int),
        ("ndim", ctypes.c_int),
        ("format", ctypes.c_char_p),
        ("shape", ctypes.c_void_p),
        ("strides", ctypes.c_void_p),
        ("suboffsets", ctypes.c_void_p),
        ("internal", ctypes.c_void_p),
    ]


_get_buffer = ctypes.pythonapi.PyObject_GetBuffer
_get_buffer.argtypes = [ctypes.py_object, ctypes.POINTER(_PyBuffer), ctypes.c_int]
_get_buffer.restype = ctypes.c_int
_release_buffer = ctypes.pythonapi.PyBuffer_Release
_release_buffer.argtypes = [ctypes.POINTER(_PyBuffer)]
_release_buffer.restype = None


def buffer_address(obj) -> int:
    """The address of the memory an object exports (e.g. an ``mmap``, even a
    read-only one, which ctypes' ``from_buffer`` refuses). The caller must
    keep ``obj`` alive, open and unresized while it uses the address."""
    view = _PyBuffer()
    _get_buffer(obj, ctypes.byref(view), 0)  # PyBUF_SIMPLE; raises on failure
    try:
        return view.buf or 0
    finally:
        _release_buffer(ctypes.byref(view))


_span_types: dict[int, type] = {}


def _span_type(n: int) -> type:
    k = (n - 1).bit_length() if n > 1 else 0
    t = _span_types.get(k)
    if t is None:
        # A subclass, so that instances accept attributes and weak references.
        t = type(f"_Span{1 << k}", (ctypes.c_char * (1 << k),), {})
        t = _span_types.setdefault(k, t)
    return t


def make_view(mapping, base: int, offset: int, size: int, readonly: bool):
    """An exporter over ``size`` bytes at ``base + offset`` (inside
    ``mapping``, which it keeps alive) and a byte memoryview of exactly those
    bytes. Returns ``(exporter, view)``; attach the finalizer to the exporter."""
    exporter = _span_type(size).from_address(base + offset)
    exporter.mapping = mapping
    view = memoryview(exporter).cast("B")
    if len(view) != size:
        view = view[:size]
    if readonly:
        view = view.toreadonly()
    return exporter, view
