"""Per-client rate limits, in memory only.

A client is a key (server/client_address.py's `rate_limit_key`: an address, an IPv6 /64, or a
partner), hashed at once with a random salt that is replaced every day and never stored: the
table can't be turned back into addresses, not even by us, and it forgets everything within a
day. Limits are per process; that is all they need to be (they slow down floods, the lockout
counters in the database stop PIN guessing).

Each limit is a token bucket holding `per_minute` tokens, refilled at `per_minute` a minute.
`allow` takes a token for a request about to be served. A limit that counts only some outcomes
(the partner API's failed authentications) takes one the same way before the work, so that
requests in flight at once cannot all slip past it, and `refund`s it when the outcome is not one
it counts.
"""

from __future__ import annotations

import hashlib
import secrets
import time

DAY = 86400
MAX_CLIENTS = 100_000  # beyond this, clients idle for a minute are forgotten rather than kept


class RateLimiter:
    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute  # 0: no limit
        self._salt = secrets.token_bytes(16)
        self._salt_day = int(time.time() // DAY)
        self._buckets: dict[bytes, tuple[float, float]] = {}  # client -> (tokens, last refill)

    def allow(self, key: str | None) -> float:
        """0 if the request may go ahead (a token is taken), else the seconds until it may."""
        if self.per_minute <= 0:
            return 0.0
        client = self._client(key)
        tokens, moment = self._refilled(client)
        if tokens < 1:
            return (1 - tokens) / self._rate
        self._buckets[client] = (tokens - 1, moment)
        if len(self._buckets) > MAX_CLIENTS:
            self._buckets = {k: v for k, v in self._buckets.items() if moment - v[1] < 60}
        return 0.0

    def refund(self, key: str | None) -> None:
        """Give back the token `allow` took, for a request the limit does not count after all."""
        if self.per_minute <= 0:
            return
        client = self._client(key)
        tokens, moment = self._refilled(client)
        self._buckets[client] = (min(float(self.per_minute), tokens + 1), moment)

    @property
    def _rate(self) -> float:
        return self.per_minute / 60

    def _client(self, key: str | None) -> bytes:
        day = int(time.time() // DAY)
        if day != self._salt_day:
            self._salt, self._salt_day, self._buckets = secrets.token_bytes(16), day, {}
        return hashlib.blake2b((key or "").encode(), key=self._salt, digest_size=16).digest()

    def _refilled(self, client: bytes) -> tuple[float, float]:
        moment = time.monotonic()
        tokens, last = self._buckets.get(client, (float(self.per_minute), moment))
        return min(float(self.per_minute), tokens + (moment - last) * self._rate), moment


MAX_KNOWN_KEYS = 1024  # partners' subscription keys remembered; there are a few dozen partners


class KnownKeys:
    """Keys that authenticated successfully in this process (the partner API's subscription keys),
    so that a flood of bad keys from a client's address does not turn away a good partner that
    shares it. As the limiter's keys, they are kept only as hashes under a random key that lives
    in memory, at most MAX_KNOWN_KEYS of them, the least recently used going first.

    Being known decides only whether the failed-authentication limit is checked first; the keys
    are still looked up in the database on every request, and the caller forgets a key as soon
    as it is refused there (revoked, rotated)."""

    def __init__(self, size: int = MAX_KNOWN_KEYS) -> None:
        self.size = size
        self._secret = secrets.token_bytes(16)
        self._keys: dict[bytes, None] = {}  # insertion order: least recently used first

    def __contains__(self, key: str | None) -> bool:
        return bool(key) and self._hash(key or "") in self._keys

    def add(self, key: str) -> None:
        digest = self._hash(key)
        self._keys.pop(digest, None)
        self._keys[digest] = None
        while len(self._keys) > self.size:
            del self._keys[next(iter(self._keys))]

    def discard(self, key: str | None) -> None:
        if key:
            self._keys.pop(self._hash(key), None)

    def _hash(self, key: str) -> bytes:
        return hashlib.blake2b(key.encode("utf-8", "surrogateescape"), key=self._secret, digest_size=16).digest()
