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
