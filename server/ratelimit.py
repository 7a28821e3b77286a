"""Per-client request rate limit, in memory only.

Clients are told apart by a hash of their address with a random salt that is replaced every day
and never stored: the table can't be turned back into addresses, not even by us, and it
forgets everything within a day. Limits are per process; that is all they need to be (they
slow down floods, the lockout counters in the database stop PIN guessing).
"""

from __future__ import annotations

import hashlib
import secrets
import time

DAY = 86400


class RateLimiter:
    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._salt = secrets.token_bytes(16)
        self._salt_day = int(time.time() // DAY)
        self._buckets: dict[bytes, tuple[float, float]] = {}  # client -> (tokens, last refill)

    def _client(self, address: str) -> bytes:
        day = int(time.time() // DAY)
        if day != self._salt_day:
            self._salt, self._salt_day, self._buckets = secrets.token_bytes(16), day, {}
        return hashlib.blake2b(address.encode(), key=self._salt, digest_size=16).digest()

    def allow(self, address: str | None) -> float:
        """0 if the request may go ahead, else the seconds until it may."""
        if self.per_minute <= 0:
            return 0.0
        key = self._client(address or "")
        moment = time.monotonic()
        rate = self.per_minute / 60
        tokens, last = self._buckets.get(key, (float(self.per_minute), moment))
        tokens = min(float(self.per_minute), tokens + (moment - last) * rate)
        if tokens < 1:
            self._buckets[key] = (tokens, moment)
            return (1 - tokens) / rate
        self._buckets[key] = (tokens - 1, moment)
        if len(self._buckets) > 100_000:  # forget idle clients rather than grow without bound
            self._buckets = {k: v for k, v in self._buckets.items() if moment - v[1] < 60}
        return 0.0
