"""PIN hashing (argon2id) and keyed hashes made with the server's secret."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from functools import partial
from typing import Any

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from sqlalchemy import select

from .config import Settings
from .models import server_secret


class PinHasher:
    def __init__(self, settings: Settings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
            type=Type.ID,
        )
        # Verified against when the case number is unknown, so that answer takes as long as a
        # wrong PIN for a real case.
        self._decoy = self._hasher.hash("decoy-pin-never-issued")

    async def hash(self, pin: str) -> str:
        # argon2 releases the GIL: in a thread it runs beside the event loop, on another core.
        return await asyncio.to_thread(self._hasher.hash, pin)

    async def verify(self, pin_hash: str | None, pin: str) -> bool:
        return await asyncio.to_thread(partial(self._check, pin_hash or self._decoy, pin)) and pin_hash is not None

    def _check(self, pin_hash: str, pin: str) -> bool:
        try:
            return self._hasher.verify(pin_hash, pin)
        except (VerificationError, InvalidHashError):
            return False


async def load_secret(database: Any) -> bytes:
    """The server's own random secret (one row, shared by every worker and host), which keyed
    hashes are made with. `database` is a server.db.Database."""
    return bytes(await database.read(lambda conn: conn.execute(select(server_secret.c.secret)).scalar_one()))


def keyed(secret: bytes, purpose: str, value: str) -> bytes:
    """HMAC-SHA256 of `value` for one `purpose`: stored instead of the value itself."""
    return hmac.new(secret, purpose.encode() + b"\0" + value.encode(), hashlib.sha256).digest()
