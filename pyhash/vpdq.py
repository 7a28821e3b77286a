"""vPDQ: a video's fingerprint as the PDQ hashes of frames sampled about once a second.

Follows Meta's reference (ThreatExchange `vpdq/`: the C++ hasher, the `vpdq` PyPI binding and
python-threatexchange's matcher) so our hashes and match percentages agree with theirs.
Standard library only: the browser builds vPDQ under Pyodide from frames it decodes itself.

Which frames (reference `filehasher.cpp`, `hasher.h`): decoded frames are numbered 0, 1, 2...
in output order; frame n is hashed when n % int(seconds_per_hash * frame_rate) == 0 (a modulus
of 0 becomes 1, so seconds_per_hash=0 hashes every frame); its timestamp is
float32(n) / float32(frame_rate), not the container's presentation time.
"""

from __future__ import annotations

import json
import math
import re
import struct
from dataclasses import dataclass
from typing import Any, Iterable, List, Optional, Sequence, Tuple, Union

from .errors import PyhashError

__all__ = [
    "VpdqFeature",
    "VpdqFormatError",
    "VpdqMatch",
    "VpdqBuilder",
    "hash_frames",
    "compare",
    "prune",
    "dump_text",
    "parse_text",
    "to_json_list",
    "from_json_list",
    "to_threatexchange_signal",
    "from_threatexchange_signal",
    "QUALITY_THRESHOLD",
    "DISTANCE_THRESHOLD",
]

# Reference defaults (vpdq README, python-threatexchange vpdq_util.py).
QUALITY_THRESHOLD = 50  # frames below this PDQ quality take no part in matching
DISTANCE_THRESHOLD = 31  # two frames match when their Hamming distance is <= this
QUERY_MATCH_PERCENT = 0.0  # README's P_q: extra content in the query is fine
COMPARED_MATCH_PERCENT = 80.0  # README's P_c: most of the compared video must be found
TIMESTAMP_DECIMALS = 3  # the reference writes timestamps with %.3f
MIN_FRAME_SIDE = 5  # the reference refuses to hash frames smaller than this

BytesLike = Union[bytes, bytearray, memoryview]
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_UINT = re.compile(r"[0-9]{1,18}")  # ASCII only (\d and int() take other scripts' digits); bounded
# Plain decimal seconds, optionally with an exponent (python-threatexchange writes "1.23e+02").
_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


class VpdqFormatError(PyhashError):
    """A serialised vPDQ hash is malformed; the message names the line/item and the problem."""


@dataclass(frozen=True)
class VpdqFeature:
    """One hashed frame. Only pdq_hex and quality take part in matching."""

    frame_number: int
    pdq_hex: str  # 64 lowercase hex digits
    quality: int  # 0..100
    timestamp: float  # seconds

    def validate(self) -> "VpdqFeature":
        """Return self if every field is in range, else raise VpdqFormatError."""
        _check_feature(self.frame_number, self.pdq_hex, self.quality, self.timestamp)
        return self


def _check_feature(frame_number: Any, pdq_hex: Any, quality: Any, timestamp: Any) -> None:
    # bool is an int subclass; True as a frame number is a bug, not a value.
    if not isinstance(frame_number, int) or isinstance(frame_number, bool) or frame_number < 0:
        raise VpdqFormatError(f"frame_number must be a non-negative integer, got {frame_number!r}")
    if not isinstance(pdq_hex, str) or not _HEX64.fullmatch(pdq_hex):
        raise VpdqFormatError(f"hash must be 64 hexadecimal digits, got {pdq_hex!r}")
    if not isinstance(quality, int) or isinstance(quality, bool) or not 0 <= quality <= 100:
        raise VpdqFormatError(f"quality must be an integer from 0 to 100, got {quality!r}")
    if (
        not isinstance(timestamp, (int, float))
        or isinstance(timestamp, bool)
        or not math.isfinite(timestamp)
        or timestamp < 0
    ):
        raise VpdqFormatError(f"timestamp must be a finite number >= 0, got {timestamp!r}")


def _float32(value: float) -> float:
    """Round to the nearest IEEE single, as the reference's `float` arithmetic does."""
    return struct.unpack("<f", struct.pack("<f", value))[0]


def _round_timestamp(seconds: float) -> float:
    # Same rounding as the reference's %.3f output, so a feature equals its parsed text form.
    return float(f"{seconds:.{TIMESTAMP_DECIMALS}f}")


# --- building ---------------------------------------------------------------------------


class VpdqBuilder:
    """Hash a video frame by frame, as frames are decoded (the browser streams them).

    Feed every decoded frame in order. Before converting a frame to pixels, ask
    `wants_frame`; if it says no, call `skip_frame` instead of `add_frame` and save the
    conversion. Two ways to pick frames:

    * `frame_rate` known (reference mode): frame n is hashed when n % int(seconds_per_hash *
      frame_rate) == 0, timestamp n / frame_rate -- the reference's choice, bit for bit.
    * `frame_rate=None` (e.g. an HTML <video> element, which does not expose it): the first
      frame at or after each multiple of seconds_per_hash, by the timestamps you pass.
    """

    def __init__(
        self,
        frame_rate: Optional[float] = None,
        *,
        seconds_per_hash: float = 1.0,
        prune_distance: Optional[int] = None,
    ) -> None:
        if not (isinstance(seconds_per_hash, (int, float)) and seconds_per_hash >= 0):
            raise ValueError("seconds_per_hash must be a number >= 0")
        if frame_rate is not None and not (math.isfinite(frame_rate) and frame_rate > 0):
            raise ValueError(f"frame_rate must be a positive number, got {frame_rate!r}")
        if prune_distance is not None and not 0 <= prune_distance <= 256:
            raise ValueError("prune_distance must be from 0 to 256, or None for no pruning")
        self.frame_rate = frame_rate
        self.seconds_per_hash = float(seconds_per_hash)
        self.prune_distance = prune_distance
        # The reference truncates seconds*rate to int and treats 0 as "every frame".
        self._modulus = max(1, int(seconds_per_hash * frame_rate)) if frame_rate else 1
        self._next_due = 0.0  # timestamp mode: earliest timestamp worth hashing next
        self._frames_seen = 0  # frame number of the next frame fed
        self._features: List[VpdqFeature] = []
        self._last_kept_hash: Optional[int] = None  # for pruning

    @property
    def frames_seen(self) -> int:
        return self._frames_seen

    def wants_frame(self, timestamp: Optional[float] = None) -> bool:
        """Would the next frame (at `timestamp` seconds) be hashed?"""
        if self.frame_rate is not None:
            return self._frames_seen % self._modulus == 0
        if timestamp is None:
            raise ValueError("timestamp is required when the builder has no frame_rate")
        # A microsecond of slack: timestamps from time bases like 1001/30000 land a hair short.
        return self.seconds_per_hash == 0 or timestamp >= self._next_due - 1e-6

    def skip_frame(self, timestamp: Optional[float] = None) -> None:
        """Count a frame without hashing it."""
        self._frames_seen += 1

    def add_frame(
        self,
        data: BytesLike,
        width: int,
        height: int,
        channels: int = 3,
        timestamp: Optional[float] = None,
    ) -> Optional[VpdqFeature]:
        """Feed the next frame's pixels (row-major, `channels` bytes a pixel: 4 RGBA, 3 RGB, 1 L).

        Returns the new feature, or None when this frame is not sampled or was pruned.
        """
        if not self.wants_frame(timestamp):
            self.skip_frame(timestamp)
            return None
        if width < MIN_FRAME_SIDE or height < MIN_FRAME_SIDE:
            raise ValueError(f"frame is {width}x{height}; vPDQ needs at least 5x5 pixels")
        expected = width * height * channels
        size = data.nbytes if isinstance(data, memoryview) else len(data)
        if size != expected:
            raise ValueError(f"frame has {size} bytes, expected {width}x{height}x{channels}")

        from . import pdq  # imported here so parsing/matching never pays for (or needs) PDQ

        result = pdq.hash_pixels(data, width, height, channels)
        number = self._frames_seen
        self._frames_seen += 1
        if self.frame_rate is not None:
            seconds = _float32(_float32(number) / _float32(self.frame_rate))
        else:
            assert timestamp is not None  # wants_frame checked it
            seconds = max(0.0, float(timestamp))
            if self.seconds_per_hash > 0:
                # Same slack as wants_frame, so a frame a hair before a due time counts for it.
                slot = math.floor((seconds + 1e-6) / self.seconds_per_hash)
                self._next_due = (slot + 1) * self.seconds_per_hash
        feature = VpdqFeature(number, result.hash, int(result.quality), _round_timestamp(seconds))

        if self.prune_distance is not None:
            value = int(feature.pdq_hex, 16)
            last = self._last_kept_hash
            if last is not None and (value ^ last).bit_count() <= self.prune_distance:
                return None
            self._last_kept_hash = value
        self._features.append(feature)
        return feature

    def result(self) -> List[VpdqFeature]:
        """The features so far, in frame order (a copy: the builder may be fed further)."""
        return list(self._features)


Frame = Tuple[float, BytesLike, int, int, int]  # (timestamp, pixels, width, height, channels)


def hash_frames(
    frames: Iterable[Frame],
    frame_rate: Optional[float] = None,
    *,
    seconds_per_hash: float = 1.0,
    prune_distance: Optional[int] = None,
) -> List[VpdqFeature]:
    """vPDQ of a whole sequence of (timestamp, pixels, width, height, channels) frames."""
    builder = VpdqBuilder(frame_rate, seconds_per_hash=seconds_per_hash, prune_distance=prune_distance)
    for timestamp, data, width, height, channels in frames:
        builder.add_frame(data, width, height, channels, timestamp)
    return builder.result()


def prune(features: Sequence[VpdqFeature], distance: int) -> List[VpdqFeature]:
    """Drop each frame within `distance` bits of the last frame kept (README's D_prune)."""
    kept: List[VpdqFeature] = []
    last: Optional[int] = None
    for feature in features:
        value = int(feature.pdq_hex, 16)
        if last is None or (value ^ last).bit_count() > distance:
            kept.append(feature)
            last = value
    return kept


# --- matching ---------------------------------------------------------------------------


@dataclass(frozen=True)
class VpdqMatch:
    """Percentages (0..100) of each video's unique good frames found in the other video."""

    query_match_percent: float
    compared_match_percent: float

    def is_match(
        self,
        query_threshold: float = QUERY_MATCH_PERCENT,
        compared_threshold: float = COMPARED_MATCH_PERCENT,
    ) -> bool:
        return (
            self.compared_match_percent >= compared_threshold
            and self.query_match_percent >= query_threshold
        )


def _unique_good_hashes(features: Iterable[VpdqFeature], quality_threshold: int) -> List[int]:
    # Dedupe on the hash first, then filter by quality: python-threatexchange's order
    # (match_VPDQ_hash_brute) and the README's `set(Q)` then `filter`.
    seen: dict = {}
    for feature in features:
        seen.setdefault(feature.pdq_hex.lower(), feature.quality)
    return [int(h, 16) for h, quality in seen.items() if quality >= quality_threshold]


def _count_found(needles: List[int], haystack: List[int], distance_threshold: int) -> int:
    return sum(
        1 for a in needles if any((a ^ b).bit_count() <= distance_threshold for b in haystack)
    )


def compare(
    query: Iterable[VpdqFeature],
    compared: Iterable[VpdqFeature],
    *,
    distance_threshold: int = DISTANCE_THRESHOLD,
    quality_threshold: int = QUALITY_THRESHOLD,
) -> VpdqMatch:
    """Brute-force vPDQ comparison (README pseudocode; python-threatexchange's matcher).

    A side left with no frame after filtering scores 0% (as the C++ matcher does) instead of
    python-threatexchange's ZeroDivisionError.
    """
    q = _unique_good_hashes(query, quality_threshold)
    c = _unique_good_hashes(compared, quality_threshold)
    if not q or not c:
        return VpdqMatch(0.0, 0.0)
    return VpdqMatch(
        _count_found(q, c, distance_threshold) * 100 / len(q),
        _count_found(c, q, distance_threshold) * 100 / len(c),
    )


# --- serialisation ----------------------------------------------------------------------
# Text: the reference's hash files (C++ vpdqio.cpp, ThreatExchange vpdq/sample-hashes), one
# frame a line, `frame_number,quality,pdq_hex,timestamp` with %.3f seconds:
#     0,100,e271017837246aaccddea259648fb7d62f435c89d9e99b2497763e216c8d055c,0.000


def dump_text(features: Iterable[VpdqFeature]) -> str:
    return "".join(
        f"{f.frame_number},{f.quality},{f.pdq_hex},{f.timestamp:.{TIMESTAMP_DECIMALS}f}\n"
        for f in features
    )


def _show(text: str) -> str:
    """Quote offending input in a message, cut short: it may be megabytes long."""
    return repr(text) if len(text) <= 40 else repr(text[:40]) + f"... ({len(text)} characters)"


def _parse_uint(text: str, what: str) -> int:
    # Plain digits only: int() would also take "+5", " 5" and "1_000".
    if not _UINT.fullmatch(text):
        raise VpdqFormatError(f"{what} must be a non-negative integer of at most 18 digits, got {_show(text)}")
    return int(text)


def _parse_quality(text: str) -> int:
    quality = _parse_uint(text, "quality")
    if quality > 100:
        raise VpdqFormatError(f"quality must be from 0 to 100, got {quality}")
    return quality


def _parse_timestamp(text: str) -> float:
    # The regex, not float(), decides: float() also takes "nan", "inf", " 1", "1_0", "١".
    value = float(text) if _SECONDS.fullmatch(text) else math.nan
    if not math.isfinite(value):
        raise VpdqFormatError(f"timestamp must be a number of seconds >= 0, got {_show(text)}")
    return value


def _parse_hash(text: str) -> str:
    if not _HEX64.fullmatch(text):
        raise VpdqFormatError(f"hash must be 64 hexadecimal digits, got {_show(text)}")
    return text.lower()


def parse_text(text: str, *, max_features: Optional[int] = None) -> List[VpdqFeature]:
    """Parse the reference text format strictly (a server validates submissions with it).

    Raises VpdqFormatError naming the line and the problem. A final newline and CRLF line
    ends are accepted; blank lines, extra fields and empty input are not.
    """
    if not isinstance(text, str):
        raise VpdqFormatError(f"vPDQ text must be a str, got {type(text).__name__}")
    if not text.strip():
        raise VpdqFormatError("vPDQ hash is empty: expected at least one line")
    # Split on "\n" only (str.splitlines would also break on form feeds, U+2028...).
    lines = text[:-1].split("\n") if text.endswith("\n") else text.split("\n")
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    if max_features is not None and len(lines) > max_features:
        raise VpdqFormatError(f"vPDQ hash has {len(lines)} frames, more than the {max_features} allowed")
    features = []
    for number, line in enumerate(lines, start=1):
        fields = line.split(",")
        try:
            if len(fields) != 4:
                raise VpdqFormatError(
                    f"expected 4 comma-separated fields frame_number,quality,hash,timestamp; got {len(fields)}"
                )
            frame_number = _parse_uint(fields[0], "frame_number")
            quality = _parse_quality(fields[1])
            features.append(VpdqFeature(frame_number, _parse_hash(fields[2]), quality, _parse_timestamp(fields[3])))
        except VpdqFormatError as error:
            raise VpdqFormatError(f"line {number}: {error}") from None
    return features


# JSON: what the CLI prints under "hash" for a video -- a list of plain objects.


def to_json_list(features: Iterable[VpdqFeature]) -> List[dict]:
    return [
        {
            "frame_number": f.frame_number,
            "quality": f.quality,
            "hash": f.pdq_hex,
            "timestamp": _round_timestamp(f.timestamp),
        }
        for f in features
    ]


_JSON_KEYS = {"frame_number", "quality", "hash", "timestamp"}


def from_json_list(items: Any, *, max_features: Optional[int] = None) -> List[VpdqFeature]:
    """Inverse of `to_json_list`; accepts the parsed object or a JSON string. Strict like parse_text."""
    if isinstance(items, (str, bytes)):
        try:
            items = json.loads(items)
        except (ValueError, RecursionError) as error:  # RecursionError: absurdly deep nesting
            raise VpdqFormatError(f"vPDQ JSON does not parse: {error}") from None
    if not isinstance(items, list):
        raise VpdqFormatError(f"vPDQ JSON must be a list of frame objects, got {type(items).__name__}")
    if not items:
        raise VpdqFormatError("vPDQ hash is empty: expected at least one frame")
    if max_features is not None and len(items) > max_features:
        raise VpdqFormatError(f"vPDQ hash has {len(items)} frames, more than the {max_features} allowed")
    features = []
    for index, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise VpdqFormatError(f"must be an object, got {type(item).__name__}")
            if set(item) != _JSON_KEYS:
                missing = sorted(_JSON_KEYS - set(item))
                extra = sorted(set(item) - _JSON_KEYS)
                raise VpdqFormatError(f"keys must be {sorted(_JSON_KEYS)}; missing {missing}, unexpected {extra}")
            _check_feature(item["frame_number"], item["hash"], item["quality"], item["timestamp"])
            features.append(
                VpdqFeature(item["frame_number"], item["hash"].lower(), item["quality"], float(item["timestamp"]))
            )
        except VpdqFormatError as error:
            raise VpdqFormatError(f"frame {index}: {error}") from None
    return features


# ThreatExchange signal string (python-threatexchange VPDQSignal): a JSON list of
# "pdq_hex,quality,timestamp" strings, without frame numbers. For exchanging with platforms
# that run Meta's Hasher-Matcher-Actioner.


def to_threatexchange_signal(features: Iterable[VpdqFeature]) -> str:
    return json.dumps([f"{f.pdq_hex},{f.quality},{f.timestamp:.{TIMESTAMP_DECIMALS}f}" for f in features])


def from_threatexchange_signal(signal: str) -> List[VpdqFeature]:
    """Frame numbers are not in this format; features are numbered 0, 1, 2... in order."""
    try:
        items = json.loads(signal)
    except (ValueError, RecursionError) as error:  # RecursionError: absurdly deep nesting
        raise VpdqFormatError(f"signal JSON does not parse: {error}") from None
    if not isinstance(items, list) or not items or not all(isinstance(s, str) for s in items):
        raise VpdqFormatError("signal must be a non-empty JSON list of 'hash,quality,timestamp' strings")
    features = []
    for index, item in enumerate(items):
        fields = item.split(",")
        try:
            if len(fields) != 3:
                raise VpdqFormatError(f"expected hash,quality,timestamp; got {len(fields)} fields")
            quality = _parse_quality(fields[1])
            features.append(VpdqFeature(index, _parse_hash(fields[0]), quality, _parse_timestamp(fields[2])))
        except VpdqFormatError as error:
            raise VpdqFormatError(f"item {index}: {error}") from None
    return features
