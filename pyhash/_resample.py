"""PDQ's downsampling stage as exact integer weights.

The reference (ThreatExchange `pdq/cpp/downscaling`) blurs the luma plane with two passes of a
box filter along each axis ("Jarosz filter") and then picks 64 samples per axis. Every step is
linear, so for one output sample the whole stage is one fixed weighted sum of input samples.
The weights are rationals; scaled by their common denominator they become small integers, so
`sum(weight * pixel)` can be computed exactly (Python ints, or numpy while sums stay below 2**53).
Exact sums are what let the pure-Python, numpy and Pyodide paths agree bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from math import gcd

OUTPUT_SIZE = 64


@dataclass(frozen=True)
class AxisWeights:
    """Weights of one output sample along one axis: value = sum(nums[k] * x[start + k]) / den."""

    start: int
    nums: tuple[int, ...]
    den: int

    @property
    def stop(self) -> int:
        return self.start + len(self.nums)


def jarosz_window(length: int, output_size: int = OUTPUT_SIZE) -> int:
    """The reference's box-filter window for downsampling `length` samples to `output_size`."""
    return (length + 2 * output_size - 1) // (2 * output_size)


def _box_span(center: int, length: int, window: int) -> tuple[int, int]:
    """Inclusive input range the reference's box filter averages for output index `center`.

    The reference's running-sum filter reads `half - 1` samples ahead before its first write,
    so its window is asymmetric: [center - (window - half), center + half - 1], clipped to the
    vector, and near the ends it averages over the shorter clipped window.
    """
    half = (window + 2) // 2
    return max(0, center - (window - half)), min(length - 1, center + half - 1)


def decimation_index(i: int, length: int, output_size: int = OUTPUT_SIZE) -> int:
    """The reference samples `int((i + 0.5) * length / output_size)`; in exact integers."""
    return ((2 * i + 1) * length) // (2 * output_size)


@lru_cache(maxsize=64)
def axis_weights(length: int, output_size: int = OUTPUT_SIZE) -> tuple[AxisWeights, ...]:
    """Integer weights of the reference's two box passes followed by decimation, per output.

    Output at sampled position p = (1 / size(p)) * sum over m in span(p) of
    (1 / size(m)) * sum of x over span(m). Scaled by size(p) * lcm(size(m)), every weight is an
    integer; a difference array adds each inner span's share in O(1).
    """
    if length < 1:
        raise ValueError("length must be positive")
    window = jarosz_window(length, output_size)
    result = []
    for i in range(output_size):
        p = decimation_index(i, length, output_size)
        outer_lo, outer_hi = _box_span(p, length, window)
        inner = [_box_span(m, length, window) for m in range(outer_lo, outer_hi + 1)]
        common = 1
        for lo, hi in inner:
            size = hi - lo + 1
            common = common * size // gcd(common, size)
        start = min(lo for lo, _ in inner)
        stop = max(hi for _, hi in inner) + 1
        diff = [0] * (stop - start + 1)
        for lo, hi in inner:
            share = common // (hi - lo + 1)
            diff[lo - start] += share
            diff[hi + 1 - start] -= share
        nums, running = [], 0
        for step in diff[:-1]:
            running += step
            nums.append(running)
        den = (outer_hi - outer_lo + 1) * common
        divisor = gcd(den, *nums)
        result.append(AxisWeights(start, tuple(n // divisor for n in nums), den // divisor))
    return tuple(result)
