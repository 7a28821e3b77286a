"""Helpers for the case-server tests (test_server_api/pages/privacy.py).

- valid hashes to send (`pdq(i)`, `md5(i)`: distinct for distinct i, never the all-zero PDQ);
- `in_process(url, data_dir)`: the real app (`server.app.create_app`) with its lifespan run, on a
  migrated database, behind an httpx.AsyncClient over ASGITransport;
- `snapshot(url)`: every row of every table of a database, read without the server's engine
  (so reading never writes), for "nothing was written" and "nothing private is stored" checks.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import uuid
from datetime import datetime
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import DateTime, bindparam, inspect, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from server.app import create_app
from server.config import Settings
from server.db import create_engine
from server.migrate import upgrade

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CASE_NUMBER_RE = re.compile(rf"[{CROCKFORD}]{{4}}(-[{CROCKFORD}]{{4}}){{3}}")
PIN_RE = re.compile(rf"[{CROCKFORD}]{{5}}-[{CROCKFORD}]{{5}}")
SERVER_TABLES = ("server_secret", "cases", "case_hashes", "pin_attempts", "idempotency")


def pdq_like(seed: bytes) -> str:
    """A PDQ value an image could have, made from 32 random-looking bytes: with more than 128 of
    its 256 bits set (which no image gives: pyhash.pdq.MAX_SET_BITS) the bits are inverted, so
    about 120 remain. Distinct seeds give distinct values (unless one is the other's inverse)."""
    value = int.from_bytes(seed[:32], "big")
    if bin(value).count("1") > 128:
        value ^= (1 << 256) - 1
    return format(value, "064x")


def pdq_value(i: int) -> str:
    return pdq_like(hashlib.sha256(b"pdq-%d" % i).digest())


def md5_value(i: int) -> str:
    return hashlib.md5(b"md5-%d" % i).hexdigest()


def pdq(i: int, quality: Any = 87) -> dict[str, Any]:
    return {"signal_type": "pdq", "value": pdq_value(i), "quality": quality}


def md5(i: int) -> dict[str, Any]:
    return {"signal_type": "md5", "value": md5_value(i)}


def new_key() -> str:
    return str(uuid.uuid4())


def compact(code: str) -> str:
    return code.replace("-", "")


# --- reading the database directly ----------------------------------------------------------------


def _reader(url: str):  # type: ignore[no-untyped-def]
    # NullPool: nothing stays open (PostgreSQL test databases are dropped WITH (FORCE) anyway).
    return create_async_engine(url, poolclass=NullPool)


async def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (alembic_version included), sorted, by table name."""
    engine = _reader(url)
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
            tables = {}
            for name in sorted(names):
                rows = (await conn.execute(text(f'SELECT * FROM "{name}"'))).all()
                tables[name] = sorted((tuple(r) for r in rows), key=repr)
            return tables
    finally:
        await engine.dispose()


async def counts(url: str) -> dict[str, int]:
    return {name: len(rows) for name, rows in (await snapshot(url)).items()}


def _statement(sql: str, params: dict[str, Any]):  # type: ignore[no-untyped-def]
    # Datetimes bound as the server's own column type, so SQLite stores them as the server does.
    return text(sql).bindparams(*(bindparam(name, type_=DateTime(timezone=True))
                                  for name, value in params.items() if isinstance(value, datetime)))


async def execute(url: str, sql: str, **params: Any) -> int:
    """One statement in its own transaction (e.g. to backdate withdrawn_at); rows affected."""
    engine = _reader(url)
    try:
        async with engine.begin() as conn:
            return (await conn.execute(_statement(sql, params), params)).rowcount
    finally:
        await engine.dispose()


async def query(url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    engine = _reader(url)
    try:
        async with engine.connect() as conn:
            return [tuple(r) for r in (await conn.execute(_statement(sql, params), params)).all()]
    finally:
        await engine.dispose()


def flatten(tables: dict[str, list[tuple[Any, ...]]]) -> str:
    """All values of all rows as one text, for substring checks (bytes shown as hex and latin-1)."""
    parts = []
    for rows in tables.values():
        for row in rows:
            for value in row:
                if isinstance(value, (bytes, bytearray, memoryview)):
                    value = bytes(value)
                    parts.append(value.hex())
                    parts.append(value.decode("latin-1"))
                else:
                    parts.append(str(value))
    return "\n".join(parts)


def sqlite_path(url: str) -> Path | None:
    prefix = "sqlite+aiosqlite:///"
    return Path(url[len(prefix):]) if url.startswith(prefix) else None


def run_cli(database_url: str, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m server ARGS` on this database, as an operator runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KALKAN_")}
    env |= {"KALKAN_DATABASE_URL": database_url, "KALKAN_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "server", *args], cwd=Path(__file__).resolve().parent.parent,
                          env=env, capture_output=True, text=True, timeout=60)


# --- the app in this process ----------------------------------------------------------------------


async def migrate(url: str, revision: str = "head") -> None:
    """Bring the database at `url` to `revision` (tests of a migration stop at an older one)."""
    engine = create_engine(url)
    try:
        await upgrade(engine, revision)
    finally:
        await engine.dispose()


@asynccontextmanager
async def in_process(url: str, data_dir: Path, *, rate_limit_per_minute: int = 0,
                     client_address: str = "127.0.0.1") -> AsyncIterator[httpx.AsyncClient]:
    """The real app on a migrated database, its lifespan running, behind an AsyncClient."""
    await migrate(url)
    settings = Settings(database_url=url, data_dir=data_dir, rate_limit_per_minute=rate_limit_per_minute)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        # raise_app_exceptions=False: a crash is the 500 response a person would get, not a test error.
        transport = httpx.ASGITransport(app=app, client=(client_address, 40000), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


# --- the API, briefly -----------------------------------------------------------------------------


async def create_case(client: httpx.AsyncClient, hashes: list[dict[str, Any]] | None = None,
                      **fields: Any) -> dict[str, Any]:
    """POST /api/cases, asserting 201; the response body."""
    body = {"hashes": hashes if hashes is not None else [pdq(1), md5(1)], **fields}
    response = await client.post("/api/cases", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def creds(case: dict[str, Any], **override: Any) -> dict[str, Any]:
    return {"case_number": case["case_number"], "pin": case["pin"], **override}


async def status(client: httpx.AsyncClient, case: dict[str, Any], **override: Any) -> httpx.Response:
    """POST /api/cases/status with the case's number and PIN (or what `override` puts instead)."""
    return await client.post("/api/cases/status", json=creds(case, **override))


def other_pin(pin: str) -> str:
    """A well-formed PIN that differs from `pin` (in its last character)."""
    last = pin[-1]
    return pin[:-1] + CROCKFORD[(CROCKFORD.index(last) + 1) % 32]


if __name__ == "__main__":
    # `python -m tests.server_client ARGS` is `python -m server ARGS --workers $KALKAN_TEST_WORKERS`:
    # the live_server fixture starts a module with --host/--port only, and the workers test
    # needs uvicorn's multi-process mode exactly as `python -m server --workers N` runs it.
    from server.cli import main

    raise SystemExit(main([*sys.argv[1:], "--workers", os.environ.get("KALKAN_TEST_WORKERS", "2")]))
