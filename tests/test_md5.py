"""pyhash.md5: incremental MD5 must equal hashlib's digest whatever the chunking, in constant memory."""

from __future__ import annotations

import hashlib
import io
import random
import tracemalloc

import pytest

from pyhash.md5 import MD5Hasher, md5_bytes, md5_chunks, md5_file


def _random_chunks(data: bytes, rng: random.Random, max_chunk: int):
    pos = 0
    while pos < len(data):
        size = rng.randint(0, max_chunk)  # includes empty chunks, which must be harmless
        yield data[pos : pos + size]
        pos += size


@pytest.mark.parametrize("pure_python", [False, True])
def test_random_chunking_matches_hashlib(pure_python: bool) -> None:
    rng = random.Random(1234)
    # Lengths around the 64-byte block and 56-byte padding boundaries are where MD5 code breaks.
    lengths = [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000, 4096 + 7]
    lengths += [rng.randint(0, 20000) for _ in range(5 if pure_python else 30)]
    for length in lengths:
        data = rng.randbytes(length)
        hasher = MD5Hasher(pure_python=pure_python)
        for chunk in _random_chunks(data, rng, max_chunk=200):
            hasher.update(chunk)
        assert hasher.hexdigest() == hashlib.md5(data).hexdigest(), length
        assert hasher.bytes_hashed == length


def test_native_is_used_when_available() -> None:
    assert MD5Hasher().is_native
    assert not MD5Hasher(pure_python=True).is_native


def test_hexdigest_midstream_then_continue() -> None:
    for pure in (False, True):
        hasher = MD5Hasher(b"abc", pure_python=pure)
        assert hasher.hexdigest() == "900150983cd24fb0d6963f7d28e17f72"  # RFC 1321 test suite
        hasher.update(b"def").update(memoryview(b"ghi"))
        assert hasher.hexdigest() == hashlib.md5(b"abcdefghi").hexdigest()


def test_helpers(tmp_path) -> None:
    data = random.Random(7).randbytes(3 * 1024 * 1024 + 11)
    expected = hashlib.md5(data).hexdigest()
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert md5_bytes(data) == expected
    assert md5_chunks([data[:5], data[5:]]) == expected
    assert md5_file(path) == expected
    assert md5_file(str(path), chunk_size=1000) == expected
    with open(path, "rb") as handle:
        assert md5_file(handle, chunk_size=4097) == expected
    assert md5_file(io.BytesIO(data)) == expected
    assert md5_bytes(b"") == "d41d8cd98f00b204e9800998ecf8427e"


def test_errors(tmp_path) -> None:
    with pytest.raises(TypeError):
        MD5Hasher().update("text is not bytes")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        md5_file(io.BytesIO(b"x"), chunk_size=0)
    with pytest.raises(FileNotFoundError):
        md5_file(tmp_path / "missing.bin")


class _ZeroStream(io.RawIOBase):
    """A large file-like object that exists nowhere: it only fills the buffers it is given."""

    def __init__(self, size: int) -> None:
        self.remaining = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = min(len(buffer), self.remaining)
        buffer[:count] = b"\x5a" * count
        self.remaining -= count
        return count


def test_200mb_stream_in_constant_memory() -> None:
    size = 200 * 1000 * 1000
    chunk = 1 << 20
    reference = hashlib.md5()
    block = b"\x5a" * chunk
    for _ in range(size // chunk):
        reference.update(block)
    reference.update(b"\x5a" * (size % chunk))

    tracemalloc.start()
    try:
        # A generator of fresh chunks: each is dropped once hashed.
        def generate():
            left = size
            while left:
                n = min(chunk, left)
                yield b"\x5a" * n
                left -= n

        via_chunks = md5_chunks(generate())
        via_file = md5_file(_ZeroStream(size), chunk_size=chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert via_chunks == via_file == reference.hexdigest()
    # A couple of chunks alive at once at most, nothing proportional to the 200 MB.
    assert peak < 4 * chunk, peak


def test_same_digest_in_pyodide(pyodide) -> None:
    data = random.Random(3).randbytes(300_000)
    code = (
        "from pyhash.md5 import MD5Hasher\n"
        "native = MD5Hasher()\n"
        "pure = MD5Hasher(pure_python=True)\n"
        "for i in range(0, len(data), 65_537):\n"
        "    native.update(data[i : i + 65_537]); pure.update(data[i : i + 65_537])\n"
        "result = [native.is_native, native.hexdigest(), pure.hexdigest()]\n"
    )
    expected = hashlib.md5(data).hexdigest()
    assert pyodide.run(code, data=data) == [True, expected, expected]
