"""PDQ perceptual hashes of photos, as the ThreatExchange reference computes them.

Pipeline (reference: ThreatExchange `hashing/hashing.pdf`, `pdq/cpp/hashing/pdqhashing.cpp`):
luma 0.299 R + 0.587 G + 0.114 B; two box-filter passes per axis and decimation to 64x64;
a 16x64 DCT on both axes (DC skipped); each of the 256 coefficients is a bit: above the median.
Quality is the summed 64x64 gradient / 90, capped at 100.

The downsampling stage is computed exactly in integers (see `_resample`): every path
(pure Python, numpy, Pyodide) then produces the same 64x64 buffer, and one shared step turns it
into the hash, so our paths agree bit for bit. The reference computes in float32, so it can
differ from us when a DCT coefficient sits right at the median: a bit or two, rarely.

Input is a pixel buffer as the browser's `getImageData` gives it: `hash_rgba(data, w, h)` with
`data` of w*h*4 RGBA bytes. Alpha is ignored (callers composite it first: `pyhash.images` puts
transparent pixels on white).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Union

from ._resample import OUTPUT_SIZE, AxisWeights, axis_weights

Buffer = Union[bytes, bytearray, memoryview]
Backend = Literal["auto", "pure", "numpy"]

HASH_BITS = 256
HEX_LENGTH = 64
MATCH_THRESHOLD = 31  # ThreatExchange's recommended Hamming distance for a match
MIN_HASHABLE_DIM = 5  # the reference gives smaller images the all-zero hash and quality 0
ZERO_HASH = "0" * HEX_LENGTH

# How many of a hash's 256 bits an image can set. Each bit says "this DCT coefficient is above
# the median", the median being the 128th smallest of the 256: so at most 128 bits are ever set,
# exactly 128 when no coefficient ties with the median (every photo we measured, and each of its
# eight dihedral transforms), fewer when some do. Ties come from images with exact symmetries,
# whose odd-frequency coefficients are all zero: measured (bench/pdq_bits.py) on the corpus, its
# mirrored copies, gradients, stripes, checkerboards and drawn text, the fewest bits of a
# non-zero hash of quality >= 50 were 33 (ours, a four-way mirrored photo) and 80 (native
# pdqhash, which computes in float and so rarely ties). The floor is one more than the match
# threshold: any value with fewer bits lies within matching distance of the all-zero hash that
# flat and tiny images give, so it would flag such images rather than protect a photo.
MIN_SET_BITS = MATCH_THRESHOLD + 1
MAX_SET_BITS = HASH_BITS // 2

# Luma weights as integers over 1000: exact, and the reference's 0.299/0.587/0.114.
LUMA_R, LUMA_G, LUMA_B, LUMA_SCALE = 299, 587, 114, 1000

DIHEDRAL_NAMES = (
    "original",
    "rotate90",
    "rotate180",
    "rotate270",
    "flip_x",
    "flip_y",
    "flip_plus1",
    "flip_minus1",
)


@dataclass(frozen=True)
class PDQHash:
    """A PDQ hash as ThreatExchange prints it: 64 lowercase hex digits and quality 0..100."""

    hash: str
    quality: int


@dataclass(frozen=True)
class DihedralHashes:
    """The hashes of the image's 8 rotations/flips, all from one DCT (reference semantics)."""

    hashes: dict[str, str]
    quality: int


try:  # Python 3.12+ (Pyodide): a C loop with exact integer arithmetic.
    _sumprod = math.sumprod  # type: ignore[attr-defined]
except AttributeError:  # Python 3.11

    def _sumprod(p: Sequence[int], q: Sequence[int]) -> int:
        return sum(map(operator.mul, p, q))


# ---------------------------------------------------------------------------------------------
# Input handling


def _check_dimensions(data: Buffer, width: int, height: int, channels: int) -> memoryview:
    if not isinstance(width, int) or not isinstance(height, int) or width < 1 or height < 1:
        raise ValueError(f"width and height must be positive integers, got {width!r} x {height!r}")
    view = memoryview(data).cast("B") if not isinstance(data, memoryview) or data.format != "B" else data
    expected = width * height * channels
    if view.nbytes != expected:
        raise ValueError(
            f"pixel buffer has {view.nbytes} bytes; {width}x{height} with {channels} channels needs {expected}"
        )
    return view


def to_rgba(data: Buffer, width: int, height: int, channels: int) -> memoryview:
    """Expand RGB (3) or grey (1) pixels to RGBA; RGBA passes through without a copy."""
    if channels not in (1, 3, 4):
        raise ValueError(f"channels must be 1 (grey), 3 (RGB) or 4 (RGBA), got {channels!r}")
    view = _check_dimensions(data, width, height, channels)
    if channels == 4:
        return view
    out = bytearray(width * height * 4)
    # Strided slice assignment is a C loop: no per-pixel Python work.
    for c in range(3):
        out[c::4] = view if channels == 1 else view[c::3]
    return memoryview(out)


# ---------------------------------------------------------------------------------------------
# Stage 1: exact downsampling sums. The result is 4096 integers N[i][j] (row-major); the 64x64
# buffer value is N[i][j] / (LUMA_SCALE * rows[i].den * cols[j].den).


def _contributions(rows: Sequence[AxisWeights], row_start: int, row_stop: int) -> dict[int, list[tuple[int, int]]]:
    """For each image row in [row_start, row_stop): the output rows it feeds, with weights."""
    by_row: dict[int, list[tuple[int, int]]] = {}
    for i, weights in enumerate(rows):
        for k, num in enumerate(weights.nums):
            r = weights.start + k
            if num and row_start <= r < row_stop:
                by_row.setdefault(r, []).append((i, num))
    return by_row


# Sums of up to this much weight fit 16-bit lanes: 255 * 257 = 65535.
_SHORT_LANE_WEIGHT = 257


def _vertical_short_lanes(
    rgba: memoryview, width: int, rows: Sequence[AxisWeights], row_start: int, row_stop: int
) -> list[list[int]]:
    """Vertical sums, the fast way: per output row, R, G and B as integers with 32-bit lanes.

    `int.from_bytes` of one image row holds each pixel in a 32-bit lane. Two masks split it into
    16-bit lanes (R and B; G and A) with 8 spare bits each, so up to 257 units of weight can be
    summed in place before the lanes are widened: two masked planes per row instead of three, and
    the widening (flush) happens once per ~10 rows. The rare larger weight (the last output
    row, where the reference's window meets the border, has weights over a larger denominator)
    goes straight into the wide lanes, one masked channel at a time.
    """
    row_bytes = width * 4
    low_bytes = int.from_bytes(b"\xff\x00" * (2 * width), "little")  # bytes 0 and 2 of each pixel
    low_halves = int.from_bytes(b"\xff\xff\x00\x00" * width, "little")  # bits 0-15 of each pixel
    first_byte = int.from_bytes(b"\xff\x00\x00\x00" * width, "little")  # byte 0 of each pixel
    short = [[0, 0, 0] for _ in range(OUTPUT_SIZE)]  # (R|B plane, G|A plane, weight so far)
    wide = [[0, 0, 0] for _ in range(OUTPUT_SIZE)]  # R, G, B

    def flush(i: int) -> None:
        rb, ga, _ = short[i]
        w = wide[i]
        w[0] += rb & low_halves
        w[1] += ga & low_halves
        w[2] += (rb >> 16) & low_halves
        short[i] = [0, 0, 0]

    for r, targets in sorted(_contributions(rows, row_start, row_stop).items()):
        offset = (r - row_start) * row_bytes
        x = int.from_bytes(rgba[offset : offset + row_bytes], "little")
        rb = x & low_bytes
        ga = (x >> 8) & low_bytes
        for i, num in targets:
            if num > _SHORT_LANE_WEIGHT:
                w = wide[i]
                for c in range(3):
                    w[c] += ((x >> (8 * c)) & first_byte) * num
                continue
            s = short[i]
            if s[2] + num > _SHORT_LANE_WEIGHT:
                flush(i)
                s = short[i]
            s[0] += rb * num
            s[1] += ga * num
            s[2] += num
    for i in range(OUTPUT_SIZE):
        flush(i)
    return wide


def _vertical_masked(
    rgba: memoryview, width: int, rows: Sequence[AxisWeights], row_start: int, row_stop: int, phases: int
) -> list[list[int]]:
    """Vertical sums for any weights: each channel masked into its own lane of 32 * phases bits.

    With `phases` = 2, pixels are split by parity into 64-bit lanes, for weights whose sums
    overflow 32 bits (images tens of thousands of pixels long). Result per output row: planes
    ordered (phase 0: R, G, B; phase 1: R, G, B).
    """
    lane_bytes = 4 * phases
    mask = int.from_bytes((b"\xff" + b"\x00" * (lane_bytes - 1)) * -(-width // phases), "little")
    shifts = [32 * q + 8 * c for q in range(phases) for c in range(3)]
    acc = [[0] * len(shifts) for _ in range(OUTPUT_SIZE)]
    row_bytes = width * 4
    for r, targets in sorted(_contributions(rows, row_start, row_stop).items()):
        offset = (r - row_start) * row_bytes
        x = int.from_bytes(rgba[offset : offset + row_bytes], "little")
        planes = [(x >> shift) & mask for shift in shifts]
        for i, num in targets:
            a = acc[i]
            for p, plane in enumerate(planes):
                a[p] += plane * num
    return acc


def _sums_pure(rgba: memoryview, width: int, height: int, row_start: int, row_stop: int) -> list[int]:
    """Stage 1 in pure Python, with the per-pixel work inside big-integer C loops.

    Vertical first: image rows, read as big integers with one lane per pixel, are summed with
    their integer weights into 64 output rows, all pixels at once. Then each output row's lanes
    are read back (`to_bytes` + `memoryview.cast`) and summed across with `sumprod`.
    """
    rows = axis_weights(height)
    cols = axis_weights(width)
    phases = 1 if 255 * max(w.den for w in rows) < 1 << 32 else 2
    if phases == 1:
        acc = _vertical_short_lanes(rgba, width, rows, row_start, row_stop)
    else:
        acc = _vertical_masked(rgba, width, rows, row_start, row_stop, phases)

    # Per output column and phase: which weights multiply which lanes.
    column_slices = []
    for weights in cols:
        parts = []
        for q in range(phases):
            k0 = (q - weights.start) % phases
            nums = weights.nums[k0::phases]
            if nums:
                lane0 = (weights.start + k0) // phases
                parts.append((q, nums, lane0, lane0 + len(nums)))
        column_slices.append(parts)

    lane_bytes = 4 * phases
    lanes_per_phase = -(-width // phases)
    fmt = "I" if phases == 1 else "Q"
    coefficients = (LUMA_R, LUMA_G, LUMA_B)
    sums: list[int] = []
    for i in range(OUTPUT_SIZE):
        # lanes[q][c]: the accumulated channel c of phase q, one integer per pixel.
        lanes = [
            [
                memoryview(acc[i][3 * q + c].to_bytes(lanes_per_phase * lane_bytes, "little")).cast(fmt)
                for c in range(3)
            ]
            for q in range(phases)
        ]
        for parts in column_slices:
            total = 0
            for q, nums, lo, hi in parts:
                for c in range(3):
                    total += coefficients[c] * _sumprod(nums, lanes[q][c][lo:hi])
            sums.append(total)
    return sums


def _sums_numpy(rgba: memoryview, width: int, height: int, row_start: int, row_stop: int) -> list[int] | None:
    """Stage 1 with numpy: the same exact integers. None when numpy can't import or could overflow.

    Float BLAS is exact here: every product and partial sum is an integer below the type's
    exact range (2**24 for float32, 2**53 for float64), so no summation order can round.
    """
    try:
        import numpy as np
    except ImportError:
        return None
    rows = axis_weights(height)
    cols = axis_weights(width)
    vertical_bound = 255 * max(w.den for w in rows)
    total_bound = LUMA_SCALE * vertical_bound * max(w.den for w in cols)
    if total_bound >= 1 << 62:
        return None
    vertical_type = np.float32 if vertical_bound < 1 << 24 else np.float64
    pixels = np.frombuffer(rgba, dtype=np.uint8).reshape(row_stop - row_start, width * 4)
    vertical = np.zeros((OUTPUT_SIZE, width * 4), dtype=vertical_type)
    for i, weights in enumerate(rows):
        lo, hi = max(weights.start, row_start), min(weights.stop, row_stop)
        if lo < hi:
            nums = np.array(weights.nums[lo - weights.start : hi - weights.start], dtype=vertical_type)
            vertical[i] = nums @ pixels[lo - row_start : hi - row_start].astype(vertical_type)
    luma = vertical.reshape(OUTPUT_SIZE, width, 4)[:, :, :3].astype(np.float64) @ np.array(
        [LUMA_R, LUMA_G, LUMA_B], dtype=np.float64
    )
    horizontal_type = np.float64 if total_bound < 1 << 53 else np.int64
    column_weights = np.zeros((width, OUTPUT_SIZE), dtype=horizontal_type)
    for j, weights in enumerate(cols):
        column_weights[weights.start : weights.stop, j] = weights.nums
    out = luma.astype(horizontal_type) @ column_weights
    return [int(v) for v in out.ravel()]


def _downsample_sums(rgba: memoryview, width: int, height: int, backend: Backend) -> list[int]:
    if backend not in ("auto", "pure", "numpy"):
        raise ValueError(f"backend must be 'auto', 'pure' or 'numpy', got {backend!r}")
    if backend != "pure":
        sums = _sums_numpy(rgba, width, height, 0, height)
        if sums is not None:
            return sums
        if backend == "numpy":
            raise RuntimeError("the numpy backend is unavailable (numpy not importable, or the image too elongated)")
    return _sums_pure(rgba, width, height, 0, height)


def buffer_from_sums(sums: Sequence[int], width: int, height: int) -> list[list[float]]:
    """The 64x64 luma buffer: each exact rational rounded once to the nearest float64."""
    rows = axis_weights(height)
    cols = axis_weights(width)
    buffer = []
    for i, rw in enumerate(rows):
        scale = LUMA_SCALE * rw.den
        # int / int is correctly rounded in Python, so every path gets the same float.
        buffer.append([sums[i * OUTPUT_SIZE + j] / (scale * cw.den) for j, cw in enumerate(cols)])
    return buffer


# ---------------------------------------------------------------------------------------------
# Stage 2: the shared step from the 64x64 buffer to bits. Pure Python on 4096 values; its float
# operations are the same on every platform (fsum is exactly rounded; the DCT matrix is
# computed in integers rather than with the platform's cos, which may differ in the last bit).


def _dct_matrix() -> tuple[tuple[float, ...], ...]:
    """sqrt(2/64) * cos(pi / 128 * (i + 1) * (2j + 1)), i < 16, j < 64, correctly rounded."""
    bits = 120
    one = 1 << bits
    pi = 314159265358979323846264338327950288419716939937510582097494459 * one // 10**62
    scale = math.isqrt(2 << (2 * bits)) // 8  # sqrt(2/64) = sqrt(2) / 8

    def cos_fixed(m: int) -> int:  # cos(pi * m / 128) in fixed point
        m %= 256
        if m > 128:
            m = 256 - m
        sign = 1
        if m > 64:
            m, sign = 128 - m, -1
        x = pi * m // 128
        term, total, k = one, one, 0
        while term:
            k += 2
            term = -term * x // one * x // one // ((k - 1) * k)
            total += term
        return sign * total

    return tuple(
        tuple((scale * cos_fixed((i + 1) * (2 * j + 1)) >> bits) / one for j in range(64)) for i in range(16)
    )


_DCT = _dct_matrix()


def _dct16(buffer: Sequence[Sequence[float]]) -> list[list[float]]:
    """B = D A D^T with D the 16x64 DCT matrix."""
    columns = list(zip(*buffer))
    t = [[math.fsum(map(operator.mul, d, col)) for col in columns] for d in _DCT]
    return [[math.fsum(map(operator.mul, t_row, d)) for d in _DCT] for t_row in t]


def _quality(buffer: Sequence[Sequence[float]]) -> int:
    """Sum of truncated gradient magnitudes (in percent of 255), / 90, capped at 100."""
    total = 0
    for i in range(64):
        row = buffer[i]
        below = buffer[i + 1] if i < 63 else None
        for j in range(64):
            u = row[j]
            if below is not None:
                total += abs(int((u - below[j]) * 100 / 255))
            if j < 63:
                total += abs(int((u - row[j + 1]) * 100 / 255))
    return min(total // 90, 100)


def _bits_to_hex(coefficients: Sequence[Sequence[float]]) -> str:
    flat = [v for row in coefficients for v in row]
    # The reference's Torben median of 256 values is the 128th smallest.
    median = sorted(flat)[127]
    value = 0
    for k, v in enumerate(flat):
        if v > median:
            value |= 1 << k
    # Bit i*16+j lives in 16-bit word i; words print from 15 down to 0: one big-endian number.
    return format(value, "064x")


def _dihedral(b: Sequence[Sequence[float]]) -> dict[str, list[list[float]]]:
    """DCT coefficients of the rotated/flipped image, by sign flips and transposition."""
    r16 = range(16)
    return {
        "original": [list(row) for row in b],
        "rotate90": [[b[j][i] if i & 1 else -b[j][i] for j in r16] for i in r16],
        "rotate180": [[-b[i][j] if (i + j) & 1 else b[i][j] for j in r16] for i in r16],
        "rotate270": [[b[j][i] if j & 1 else -b[j][i] for j in r16] for i in r16],
        "flip_x": [[b[i][j] if i & 1 else -b[i][j] for j in r16] for i in r16],
        "flip_y": [[b[i][j] if j & 1 else -b[i][j] for j in r16] for i in r16],
        "flip_plus1": [[b[j][i] for j in r16] for i in r16],
        "flip_minus1": [[-b[j][i] if (i + j) & 1 else b[j][i] for j in r16] for i in r16],
    }


def hash_from_buffer(buffer: Sequence[Sequence[float]]) -> PDQHash:
    """PDQ hash of a 64x64 luma buffer (already downsampled)."""
    return PDQHash(_bits_to_hex(_dct16(buffer)), _quality(buffer))


# ---------------------------------------------------------------------------------------------
# Public entry points


def _too_small(width: int, height: int) -> bool:
    return width < MIN_HASHABLE_DIM or height < MIN_HASHABLE_DIM


def hash_rgba(data: Buffer, width: int, height: int, *, backend: Backend = "auto") -> PDQHash:
    """PDQ hash of width*height RGBA pixels (row-major, as `getImageData` returns them)."""
    return hash_pixels(data, width, height, 4, backend=backend)


def hash_pixels(data: Buffer, width: int, height: int, channels: int, *, backend: Backend = "auto") -> PDQHash:
    """PDQ hash of row-major pixels with 4 (RGBA), 3 (RGB) or 1 (grey) channels."""
    rgba = to_rgba(data, width, height, channels)
    if _too_small(width, height):
        return PDQHash(ZERO_HASH, 0)
    buffer = buffer_from_sums(_downsample_sums(rgba, width, height, backend), width, height)
    return hash_from_buffer(buffer)


def dihedral_pixels(
    data: Buffer, width: int, height: int, channels: int = 4, *, backend: Backend = "auto"
) -> DihedralHashes:
    """The hashes of all 8 rotations and flips of the image, from one downsample and one DCT."""
    rgba = to_rgba(data, width, height, channels)
    if _too_small(width, height):
        return DihedralHashes({name: ZERO_HASH for name in DIHEDRAL_NAMES}, 0)
    buffer = buffer_from_sums(_downsample_sums(rgba, width, height, backend), width, height)
    coefficients = _dct16(buffer)
    return DihedralHashes(
        {name: _bits_to_hex(b) for name, b in _dihedral(coefficients).items()},
        _quality(buffer),
    )


def band_sums(band: Buffer, width: int, height: int, row_start: int, row_stop: int) -> list[int]:
    """Exact downsampling sums of rows [row_start, row_stop) of an RGBA image `height` rows tall.

    `band` holds only those rows. The sums are linear, so the bands of one image (hashed by
    several browser workers, say) add up element-wise to the whole image's: `hash_from_sums`.
    """
    if not 0 <= row_start < row_stop <= height:
        raise ValueError(f"rows {row_start}..{row_stop} are not a band of an image {height} rows tall")
    view = _check_dimensions(band, width, row_stop - row_start, 4)
    return _sums_pure(view, width, height, row_start, row_stop)


def hash_from_sums(sums: Sequence[int], width: int, height: int) -> PDQHash:
    """The hash of an image from its (summed) `band_sums`."""
    if len(sums) != OUTPUT_SIZE * OUTPUT_SIZE:
        raise ValueError(f"expected {OUTPUT_SIZE * OUTPUT_SIZE} sums, got {len(sums)}")
    if _too_small(width, height):
        return PDQHash(ZERO_HASH, 0)
    return hash_from_buffer(buffer_from_sums(sums, width, height))


def set_bits(value: str) -> int:
    """How many bits of a hex hash are 1."""
    return bin(int(value, 16)).count("1")


def producible(value: str) -> bool:
    """Whether an image can have this (valid, hex) hash: its set bits lie in the band above."""
    return MIN_SET_BITS <= set_bits(value) <= MAX_SET_BITS


def distance(a: str, b: str) -> int:
    """Hamming distance between two PDQ hashes given as 64 hex digits."""
    return (int(a, 16) ^ int(b, 16)).bit_count()
