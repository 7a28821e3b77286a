"""Case numbers and PINs: random, easy to read aloud and write down, forgiving when typed back.

Both use Crockford's base32 alphabet (no I, L, O, U): typed input is upper-cased, spaces and
hyphens dropped, and O read as 0, I and L as 1, so a person copying from paper gets it right.
"""

from __future__ import annotations

import hmac
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TYPO_MAP = str.maketrans({"O": "0", "I": "1", "L": "1", "-": None, " ": None})

CASE_NUMBER_CHARS = 16  # 80 random bits, shown as 4 groups of 4
PIN_CHARS = 10  # 50 random bits, shown as 2 groups of 5


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, digit = divmod(value, 32)
        chars.append(ALPHABET[digit])
    return "".join(reversed(chars))


def _group(text: str, size: int) -> str:
    return "-".join(text[i : i + size] for i in range(0, len(text), size))


def new_case_number() -> str:
    return _group(_encode(secrets.randbits(5 * CASE_NUMBER_CHARS), CASE_NUMBER_CHARS), 4)


MIN_DISTINCT_PIN_CHARS = 5
WEAK_PIN_RULE = (f"a proposed pin needs at least {MIN_DISTINCT_PIN_CHARS} different characters and may not be "
                 "a run of consecutive characters (such as 01234-56789)")


def weak_pin(pin: str) -> bool:
    """Whether a (normalised) PIN is one that people or careless programs pick: few distinct
    characters (AAAAA-AAAAA, ABABA-BABAB) or a run up or down the alphabet (01234-56789).
    About one random PIN in 30,000 is weak too; the server draws those again."""
    chars = pin.replace("-", "")
    steps = {ALPHABET.index(b) - ALPHABET.index(a) for a, b in zip(chars, chars[1:])}
    return len(set(chars)) < MIN_DISTINCT_PIN_CHARS or steps in ({1}, {-1})


def new_pin() -> str:
    while True:
        pin = _group(_encode(secrets.randbits(5 * PIN_CHARS), PIN_CHARS), 5)
        if not weak_pin(pin):
            return pin


def pin_from_bytes(material: bytes) -> str:
    """A PIN derived from (secret) key material: for replaying a lost creation response. It may
    be weak; the caller then derives another (from other material)."""
    return _group(_encode(int.from_bytes(material, "big") >> (8 * len(material) - 5 * PIN_CHARS), PIN_CHARS), 5)


def _normalise(text: object, length: int) -> str | None:
    if not isinstance(text, str) or len(text) > 4 * length or not text.isascii():
        return None  # ASCII first: upper() would turn "ß" into "SS"
    compact = text.strip().upper().translate(_TYPO_MAP)
    if len(compact) != length or any(c not in ALPHABET for c in compact):
        return None
    return compact


def normalise_case_number(text: object) -> str | None:
    """The canonical 'XXXX-XXXX-XXXX-XXXX' form, or None if it can't be a case number."""
    compact = _normalise(text, CASE_NUMBER_CHARS)
    return None if compact is None else _group(compact, 4)


def normalise_pin(text: object) -> str | None:
    compact = _normalise(text, PIN_CHARS)
    return None if compact is None else _group(compact, 5)


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
