"""Incremental MD5 of files and byte streams, as lowercase hex.

MD5 is the exact-copy fingerprint: platforms look it up next to the perceptual hashes, so a
file re-shared byte for byte is caught even when its picture is too plain for PDQ.

Chunks are fed one at a time so a file of any size hashes in constant memory (the browser
streams a `File` through `Blob.slice`; CPython reads with `readinto` into one reused buffer).
`hashlib.md5` exists in CPython and in Pyodide (it is one of CPython's built-in HACL* modules,
not part of the unvendored OpenSSL package). Should a build ever lack it, a pure-Python MD5
(RFC 1321) takes over: same results, only slower.
"""

from __future__ import annotations

import hashlib
import math
import os
import struct
from typing import BinaryIO, Iterable, Union

__all__ = ["MD5Hasher", "md5_bytes", "md5_chunks", "md5_file", "DEFAULT_CHUNK_SIZE"]

# 1 MiB: large enough that per-call overhead (notably the JS<->Python hop in Pyodide) is
# negligible, small enough to be irrelevant for memory.
DEFAULT_CHUNK_SIZE = 1 << 20

BytesLike = Union[bytes, bytearray, memoryview]
PathOrFile = Union[str, "os.PathLike[str]", BinaryIO]


def _new_native():  # -> hashlib._Hash | None
    """hashlib's MD5, or None where this interpreter was built without it."""
    try:
        # usedforsecurity=False: MD5 here identifies files, it protects nothing; the flag
        # keeps FIPS-restricted OpenSSL builds from refusing it.
        return hashlib.md5(usedforsecurity=False)
    except (AttributeError, ValueError, TypeError):
        return None


class _PureMD5:
    """RFC 1321 MD5 in plain Python: the fallback when hashlib has no MD5."""

    # Per-round left-rotation amounts and the sine-derived constants of RFC 1321 section 3.4.
    _SHIFTS = [7, 12, 17, 22] * 4 + [5, 9, 14, 20] * 4 + [4, 11, 16, 23] * 4 + [6, 10, 15, 21] * 4
    _K = [int(abs(math.sin(i + 1)) * 2**32) & 0xFFFFFFFF for i in range(64)]

    def __init__(self) -> None:
        self._state = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476]
        self._pending = bytearray()  # < 64 bytes not yet forming a whole block
        self._length = 0  # total bytes fed, for the final length field

    def update(self, data: BytesLike) -> None:
        self._length += len(data)
        self._pending += data
        whole = len(self._pending) - len(self._pending) % 64
        view = memoryview(self._pending)
        for start in range(0, whole, 64):
            self._compress(view[start : start + 64])
        view.release()
        del self._pending[:whole]

    def _compress(self, block: memoryview) -> None:
        words = struct.unpack("<16I", block)
        a, b, c, d = self._state
        for i in range(64):
            if i < 16:
                f, g = (b & c) | (~b & d), i
            elif i < 32:
                f, g = (d & b) | (~d & c), (5 * i + 1) % 16
            elif i < 48:
                f, g = b ^ c ^ d, (3 * i + 5) % 16
            else:
                f, g = c ^ (b | (~d & 0xFFFFFFFF)), (7 * i) % 16
            f = (f + a + self._K[i] + words[g]) & 0xFFFFFFFF
            a, d, c = d, c, b
            s = self._SHIFTS[i]
            b = (b + ((f << s) | (f >> (32 - s)))) & 0xFFFFFFFF
        self._state = [(x + y) & 0xFFFFFFFF for x, y in zip(self._state, (a, b, c, d))]

    def hexdigest(self) -> str:
        # Finish on a copy so the hasher can keep taking data, like hashlib's objects.
        clone = _PureMD5()
        clone._state = list(self._state)
        clone._pending = bytearray(self._pending)
        padding = b"\x80" + b"\x00" * ((55 - self._length) % 64)
        clone.update(padding + struct.pack("<Q", (self._length * 8) & 0xFFFFFFFFFFFFFFFF))
        return struct.pack("<4I", *clone._state).hex()


class MD5Hasher:
    """Feed chunks with `update`, read the lowercase hex digest with `hexdigest` at any time."""

    def __init__(self, data: BytesLike = b"", *, pure_python: bool = False) -> None:
        # pure_python forces the fallback; the tests use it to check the fallback against hashlib.
        native = None if pure_python else _new_native()
        self._impl = native if native is not None else _PureMD5()
        self.bytes_hashed = 0
        if data:
            self.update(data)

    @property
    def is_native(self) -> bool:
        """True when hashlib's C implementation is doing the work."""
        return not isinstance(self._impl, _PureMD5)

    def update(self, chunk: BytesLike) -> "MD5Hasher":
        """Add the next chunk; returns self so calls can be chained."""
        if not isinstance(chunk, (bytes, bytearray, memoryview)):
            raise TypeError(f"MD5 chunks must be bytes-like, not {type(chunk).__name__}")
        self._impl.update(chunk)
        self.bytes_hashed += chunk.nbytes if isinstance(chunk, memoryview) else len(chunk)
        return self

    def hexdigest(self) -> str:
        return self._impl.hexdigest()


def md5_bytes(data: BytesLike) -> str:
    """MD5 of a whole in-memory buffer."""
    return MD5Hasher(data).hexdigest()


def md5_chunks(chunks: Iterable[BytesLike]) -> str:
    """MD5 of a stream given as an iterable of chunks (consumed once, never held whole)."""
    hasher = MD5Hasher()
    for chunk in chunks:
        hasher.update(chunk)
    return hasher.hexdigest()


def md5_file(source: PathOrFile, chunk_size: int = DEFAULT_CHUNK_SIZE) -> str:
    """MD5 of a file given by path or as an open binary file object, read in chunks.

    A file object is read from its current position to its end and is left open.
    OSError from opening or reading a path propagates unchanged: the caller knows best how
    to word "cannot read this file" for its user.
    """
    if chunk_size <= 0:
        raise ValueError("chunk_size must be a positive number of bytes")
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as handle:
            return _md5_fileobj(handle, chunk_size)
    return _md5_fileobj(source, chunk_size)


def _md5_fileobj(handle: BinaryIO, chunk_size: int) -> str:
    hasher = MD5Hasher()
    readinto = getattr(handle, "readinto", None)
    if readinto is None:
        # Plain .read() streams (e.g. some wrappers) still work, one chunk at a time.
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            hasher.update(chunk)
        return hasher.hexdigest()
    # One buffer reused for every read: memory stays at chunk_size whatever the file size.
    buffer = bytearray(chunk_size)
    view = memoryview(buffer)
    while True:
        count = readinto(view)
        if not count:
            break
        hasher.update(view[:count])
    view.release()
    return hasher.hexdigest()
