"""Turning request bodies into checked values, or an error that names the field and the rule."""

from __future__ import annotations

import json
import math
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyhash

from . import codes
from .config import MAX_HASHES_PER_REQUEST, MIN_PDQ_QUALITY
from .errors import ApiError, InvalidField

LANGUAGES = ("tr", "en")
REF = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
# An idempotency key must be unguessable: whoever holds it may replay the creation (within the
# replay window) and be told the case number. So it carries at least 122 random bits: a random
# (version 4) UUID, or at least 22 base64url characters (132 bits; a key of only hex digits
# needs 31, of only decimal digits 37, for the same). Randomness cannot be read off a string;
# this refuses what is plainly not random: other UUID versions, short keys of a small alphabet,
# and keys of few distinct characters.
_UUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
_UUID4 = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-4[0-9A-Fa-f]{3}-[89ABab][0-9A-Fa-f]{3}-[0-9A-Fa-f]{12}")
_BASE64URL_KEY = re.compile(r"[A-Za-z0-9_-]{22,128}")
_KEY_MIN_BITS = 122
_KEY_MIN_DISTINCT = 8
IDEMPOTENCY_KEY_RULE = ("idempotency_key must be a random (version 4) UUID or 22 to 128 random base64url "
                        "characters (A-Z a-z 0-9 - _), at least 122 random bits")


@dataclass(frozen=True)
class HashInput:
    signal_type: str
    value: str
    quality: int | None


@dataclass(frozen=True)
class CreateCase:
    hashes: tuple[HashInput, ...]
    language: str
    ref: str | None
    idempotency_key: str | None
    pin: str | None


@dataclass(frozen=True)
class Credentials:
    case_number: str
    pin: str


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise ApiError(f"The request body is not valid UTF-8 JSON: {error}", code="malformed_json") from None


def json_object(value: Any, field: str, allowed: Sequence[str], required: Sequence[str]) -> dict[str, Any]:
    """`value` if it is a JSON object with only `allowed` fields and every `required` one (both
    named in the order given: the refusal lists `allowed` and names the first missing field);
    else InvalidField naming `field` ("" for the body) or the offending member."""
    if not isinstance(value, dict):
        raise InvalidField(f"{field or 'the body'} must be a JSON object", field=field or None)
    for name in value:
        if name not in allowed:
            where = f"{field}.{name}" if field else name
            raise InvalidField(f"unknown field {name[:40]!r}; allowed: {', '.join(allowed)}", field=where)
    for name in required:
        if name not in value:
            raise InvalidField(f"{name} is required", field=f"{field}.{name}" if field else name)
    return value


def _string(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise InvalidField(f"{field} must be a string", field=field)
    return value


def _hash(item: Any, field: str) -> HashInput:
    obj = json_object(item, field, ("quality", "signal_type", "value"), ("signal_type", "value"))
    name = _string(obj["signal_type"], f"{field}.signal_type")
    try:
        signal = pyhash.signal_type(name)
    except pyhash.InvalidHashError as error:
        raise InvalidField(str(error), field=f"{field}.signal_type") from None
    try:
        value = signal.validate(_string(obj["value"], f"{field}.value"))
    except pyhash.InvalidHashError as error:
        raise InvalidField(str(error), field=f"{field}.value") from None
    quality = obj.get("quality")
    if signal.name == "pdq":
        if quality is None:
            raise InvalidField("quality is required for pdq hashes (0 to 100)", field=f"{field}.quality")
        if isinstance(quality, bool) or not isinstance(quality, int) or not 0 <= quality <= 100:
            raise InvalidField("quality must be a whole number from 0 to 100", field=f"{field}.quality")
        if quality < MIN_PDQ_QUALITY:
            raise InvalidField(
                f"quality {quality} is below {MIN_PDQ_QUALITY}: the image has too little detail to be "
                "recognised reliably, so this hash would not protect it",
                field=f"{field}.quality",
                code="low_quality",
            )
    elif quality is not None:
        raise InvalidField(f"quality applies only to pdq hashes, not {signal.name}", field=f"{field}.quality")
    return HashInput(signal.name, value, quality)


def _hashes(value: Any, field: str = "hashes") -> tuple[HashInput, ...]:
    if not isinstance(value, list) or not value:
        raise InvalidField("hashes must be a non-empty list", field=field)
    if len(value) > MAX_HASHES_PER_REQUEST:
        raise InvalidField(f"at most {MAX_HASHES_PER_REQUEST} hashes per request, got {len(value)}", field=field)
    unique: dict[tuple[str, str], HashInput] = {}
    for index, item in enumerate(value):
        parsed = _hash(item, f"{field}[{index}]")
        unique.setdefault((parsed.signal_type, parsed.value), parsed)  # duplicates are stored once
    return tuple(unique.values())


def _key_bits(key: str) -> float:
    """The most random bits a key of this length and alphabet can carry."""
    if key.isdigit():
        return len(key) * math.log2(10)
    if all(c in string.hexdigits for c in key):
        return len(key) * 4.0
    return len(key) * 6.0


def _idempotency_key(value: Any) -> str:
    if isinstance(value, str) and _UUID.fullmatch(value):
        if _UUID4.fullmatch(value):
            return value
        raise InvalidField(IDEMPOTENCY_KEY_RULE + "; this UUID is not a random one", field="idempotency_key")
    if not (isinstance(value, str) and _BASE64URL_KEY.fullmatch(value) and _key_bits(value) >= _KEY_MIN_BITS
            and len(set(value)) >= _KEY_MIN_DISTINCT):
        raise InvalidField(IDEMPOTENCY_KEY_RULE, field="idempotency_key")
    return value


def _case_number(value: Any) -> str:
    number = codes.normalise_case_number(_string(value, "case_number"))
    if number is None:
        raise InvalidField("case_number must look like XXXX-XXXX-XXXX-XXXX (16 letters and digits)",
                           field="case_number")
    return number


def _pin(value: Any) -> str:
    pin = codes.normalise_pin(_string(value, "pin"))
    if pin is None:
        raise InvalidField("pin must look like XXXXX-XXXXX (10 letters and digits)", field="pin")
    return pin


def create_case(body: Any) -> CreateCase:
    obj = json_object(body, "", ("hashes", "idempotency_key", "language", "pin", "ref"), ("hashes",))
    language = obj.get("language", "tr")
    if language not in LANGUAGES:
        raise InvalidField(f"language must be one of {', '.join(LANGUAGES)}", field="language")
    ref = obj.get("ref")
    if ref is not None and not (isinstance(ref, str) and REF.fullmatch(ref)):
        raise InvalidField("ref must be 1-32 lowercase letters, digits, '-' or '_'", field="ref")
    key = obj.get("idempotency_key")
    if key is not None:
        key = _idempotency_key(key)
    pin = _pin(obj["pin"]) if "pin" in obj else None
    if pin is not None and key is None:
        raise InvalidField("a proposed pin needs an idempotency_key", field="pin")
    if pin is not None and codes.weak_pin(pin):
        raise InvalidField(codes.WEAK_PIN_RULE, field="pin", code="weak_pin")
    return CreateCase(_hashes(obj["hashes"]), language, ref, key, pin)


def credentials(body: Any, extra: set[str] = frozenset()) -> tuple[Credentials, dict[str, Any]]:
    fields = tuple(sorted({"case_number", "pin", *extra}))
    obj = json_object(body, "", fields, fields)
    return Credentials(_case_number(obj["case_number"]), _pin(obj["pin"])), obj


def add_hashes(body: Any) -> tuple[Credentials, tuple[HashInput, ...]]:
    creds, obj = credentials(body, {"hashes"})
    return creds, _hashes(obj["hashes"])
