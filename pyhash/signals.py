"""The one registry of signal types: what a hash is called, how it is checked and compared.

The browser, the server's case API and the partner API all look types up here, so a hash is
validated and matched the same way wherever it travels.

    name        the name in Kalkan's own API (`pdq`, `md5`, `vpdq`)
    wire_name   the StopNCII.org wire name (`ImagePDQ`, `VideoMD5`); None where StopNCII has none
    max_length  the longest value accepted, in characters: on every path in (the case API,
                partners' submissions and feedback), checked before anything is parsed
    validate    text -> the normalised value, or `InvalidHashError` saying which rule it broke
    distance    (a, b) -> how far apart two normalised values are
    threshold   the largest distance that still counts as a match
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from . import pdq, vpdq
from .errors import PyhashError

__all__ = ["SignalType", "InvalidHashError", "SIGNAL_TYPES", "get", "by_wire_name"]


class InvalidHashError(PyhashError):
    """A submitted hash value breaks its type's format rule; the message states the rule."""


@dataclass(frozen=True)
class SignalType:
    name: str
    wire_name: str | None
    media: str  # "photo" or "video": which files produce it
    description: str
    max_length: int
    parse: Callable[[str], str]  # the format rule, for a string within max_length
    distance: Callable[[str, str], int]
    threshold: int

    def validate(self, value: object) -> str:
        """The normalised value, or `InvalidHashError` naming the rule it broke."""
        text = _require_str(value)
        if len(text) > self.max_length:
            raise InvalidHashError(f"too long for a {self.name} value: at most {self.max_length} characters, "
                                   f"got {len(text)}")
        normalised = self.parse(text)
        if len(normalised) > self.max_length:  # normalising may lengthen it (vPDQ's timestamps)
            raise InvalidHashError(f"too long for a {self.name} value once normalised: at most "
                                   f"{self.max_length} characters, got {len(normalised)}")
        return normalised

    def matches(self, a: str, b: str) -> bool:
        return self.distance(a, b) <= self.threshold


_HEX64 = re.compile(r"[0-9a-f]{64}")
# A vPDQ value takes about 80 characters per hashed frame (one a second), so this holds some
# 13 minutes of video: about what one request to the case API (64 KB) can carry. The cap keeps
# a partner's page of records, and the memory reading it, bounded (server/exchange.py).
MAX_VPDQ_CHARS = 64_000
MAX_VPDQ_SECONDS = 7 * 24 * 3600  # a frame's time: no video a person has lasts longer than a week
_HEX32 = re.compile(r"[0-9a-f]{32}")


def _require_str(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidHashError(f"must be a string, got {type(value).__name__}")
    return value


def validate_pdq(value: str) -> str:
    text = _require_str(value).lower()
    if not _HEX64.fullmatch(text):
        raise InvalidHashError(f"a PDQ hash must be exactly 64 hexadecimal characters, got {len(value)} characters")
    if text == pdq.ZERO_HASH:
        # The reference's hash for images under 5 pixels: it would match every other such image.
        raise InvalidHashError("the all-zero PDQ hash comes from an image too small to fingerprint")
    if not pdq.producible(text):
        # Neutral on purpose: saying which rule failed would explain how to forge a passing value.
        raise InvalidHashError("this value is not a PDQ hash that an image produces")
    return text


def validate_md5(value: str) -> str:
    text = _require_str(value).lower()
    if not _HEX32.fullmatch(text):
        raise InvalidHashError(f"an MD5 hash must be exactly 32 hexadecimal characters, got {len(value)} characters")
    return text


def md5_distance(a: str, b: str) -> int:
    """MD5 identifies exact copies only: 0 when equal, else 1."""
    return 0 if a == b else 1


def validate_vpdq(value: str) -> str:
    """A vPDQ value is python-threatexchange's signal string: a JSON list of `hash,quality,seconds`."""
    try:
        features = vpdq.from_threatexchange_signal(_require_str(value))
    except vpdq.VpdqFormatError as error:
        raise InvalidHashError(f"not a vPDQ signal: {error}") from None
    for feature in features:
        # A frame's PDQ hash follows PDQ's rule, except that a frame may be all-zero: black and
        # flat frames are, and vPDQ keeps them (at quality 0) as the reference does.
        if feature.pdq_hex != pdq.ZERO_HASH and not pdq.producible(feature.pdq_hex):
            raise InvalidHashError(f"not a vPDQ signal: item {feature.frame_number}: this frame's value is not a "
                                   "PDQ hash that an image produces")
        if feature.timestamp > MAX_VPDQ_SECONDS:
            raise InvalidHashError(f"not a vPDQ signal: item {feature.frame_number}: a frame's time is at most "
                                   f"{MAX_VPDQ_SECONDS} seconds")
    return vpdq.to_threatexchange_signal(features)


def vpdq_distance(a: str, b: str) -> int:
    """Percent of the compared video's (b) distinct good frames not found in the query video (a).

    vPDQ's README matches when that share found is at least 80%: a distance of at most 20.
    """
    result = vpdq.compare(vpdq.from_threatexchange_signal(a), vpdq.from_threatexchange_signal(b))
    return 100 - int(result.compared_match_percent)


SIGNAL_TYPES: dict[str, SignalType] = {
    t.name: t
    for t in (
        SignalType(
            name="pdq",
            wire_name="ImagePDQ",
            media="photo",
            description="PDQ perceptual hash of a photo: 64 hex digits",
            max_length=pdq.HEX_LENGTH,
            parse=validate_pdq,
            distance=pdq.distance,
            threshold=pdq.MATCH_THRESHOLD,
        ),
        SignalType(
            name="md5",
            wire_name="VideoMD5",
            media="video",
            description="MD5 of a video file's bytes: 32 hex digits",
            max_length=32,
            parse=validate_md5,
            distance=md5_distance,
            threshold=0,
        ),
        SignalType(
            name="vpdq",
            wire_name=None,
            media="video",
            description="vPDQ: PDQ hashes of one video frame per second",
            max_length=MAX_VPDQ_CHARS,
            parse=validate_vpdq,
            distance=vpdq_distance,
            threshold=100 - int(vpdq.COMPARED_MATCH_PERCENT),
        ),
    )
}

_BY_WIRE_NAME = {t.wire_name: t for t in SIGNAL_TYPES.values() if t.wire_name}


def get(name: str) -> SignalType:
    """The signal type called `name`, or `InvalidHashError` listing the known names."""
    try:
        return SIGNAL_TYPES[name]
    except (KeyError, TypeError):
        known = ", ".join(SIGNAL_TYPES)
        raise InvalidHashError(f"unknown signal type {name!r}; known types: {known}") from None


def by_wire_name(wire_name: str) -> SignalType:
    try:
        return _BY_WIRE_NAME[wire_name]
    except (KeyError, TypeError):
        known = ", ".join(_BY_WIRE_NAME)
        raise InvalidHashError(f"unknown StopNCII signal type {wire_name!r}; known: {known}") from None
