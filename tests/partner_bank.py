"""Big hash banks for the partner-API tests and bench/partner_bench.py, written with bulk SQL.

Opening 20,000 cases over HTTP would take minutes (argon2 per PIN); the partner API only reads
what the tables hold, so the bank is written straight into them, as the server would have:
cases, their hashes, and one exchange record per hash with consecutive change numbers (taken
from the counter row, which is moved past them). Every bank case has the same PIN (`BANK_PIN`),
so tests can withdraw bank cases through the API.

SQLite through the standard-library driver, PostgreSQL through asyncpg's COPY: a million hashes
take seconds, not minutes.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import asyncpg
from argon2 import PasswordHasher
from sqlalchemy.engine import make_url

from server import codes
from server.db import Database
from server.exchange import record_key
from server.models import value_key
from server.partners import PartnerStore
from server_client import migrate, pdq_like
from server_harness import LiveServer
from threatexchange.exchanges.clients.stopncii.api import StopNCIIAPI, StopNCIIEndpoint

BANK_PIN = "7K3QX-M2VDR"


def add_partner(url: str, name: str) -> dict[str, Any]:
    """What `python -m server partners add NAME --json` prints (the store the CLI uses)."""

    async def add() -> dict[str, Any]:
        await migrate(url)
        database = Database(url)
        try:
            store = PartnerStore(database)
            await store.start()
            return (await store.add(name)).as_json()
        finally:
            await database.dispose()

    return asyncio.run(add())


def partner_client(server: LiveServer, keys: dict[str, Any], fetch_key: str | None = None) -> StopNCIIAPI:
    """The real python-threatexchange StopNCII client, with a partner's keys, for `server`."""
    functions = keys["function_keys"]
    return StopNCIIAPI(keys["subscription_key"], fetch_key or functions["FetchHashes"],
                       {StopNCIIEndpoint.SubmitFeedback: functions["SubmitFeedback"],
                        StopNCIIEndpoint.SubmitHashes: functions["SubmitHashes"]},
                       base_url_override=server.url("/v1"))


def partner_headers(keys: dict[str, Any], endpoint: str) -> dict[str, str]:
    """The two key headers for calling `endpoint` by hand."""
    return {"Ocp-Apim-Subscription-Key": keys["subscription_key"], "x-functions-key": keys["function_keys"][endpoint]}


def bank_value(kind: str, i: int) -> str:
    """Distinct valid values (never the all-zero PDQ) for bank hash `i`."""
    if kind == "pdq":
        return pdq_like(hashlib.sha256(b"bank-pdq-%d" % i).digest())
    return hashlib.md5(b"bank-md5-%d" % i).hexdigest()


@dataclass(frozen=True)
class Bank:
    case_numbers: list[str]  # bank case i has case_numbers[i]
    keys: list[list[tuple[str, str]]]  # bank case i holds keys[i]: (signal type, value)


def plan_bank(cases: int, hashes_per_case: int) -> Bank:
    numbers: set[str] = set()
    while len(numbers) < cases:
        numbers.add(codes.new_case_number())
    keys = []
    for case in range(cases):
        held = []
        for j in range(hashes_per_case):
            i = case * hashes_per_case + j
            kind = "pdq" if j % 2 == 0 else "md5"
            held.append((kind, bank_value(kind, i)))
        keys.append(held)
    return Bank(sorted(numbers), keys)


def seed_bank(url: str, cases: int, hashes_per_case: int) -> Bank:
    """Migrate the database at `url` and fill it with a bank of cases*hashes_per_case records.
    Call it before any case exists (case and hash ids start at 1)."""
    bank = plan_bank(cases, hashes_per_case)
    asyncio.run(migrate(url))
    pin_hash = PasswordHasher(time_cost=1, memory_cost=2048, parallelism=1).hash(BANK_PIN)
    moment = datetime.now(timezone.utc)
    if make_url(url).get_backend_name() == "sqlite":
        _seed_sqlite(str(make_url(url).database), bank, pin_hash, moment)
    else:
        asyncio.run(_seed_postgresql(url, bank, pin_hash, moment))
    return bank


def _rows(bank: Bank, pin_hash: str, moment: datetime, first_seq: int, stamp: int):  # type: ignore[no-untyped-def]
    case_rows = [(number_id + 1, number, pin_hash, "active", "tr", None, moment, moment, None)
                 for number_id, number in enumerate(bank.case_numbers)]
    hash_rows, record_rows = [], []
    for case_index, held in enumerate(bank.keys):
        for kind, value in held:
            hash_id = len(hash_rows) + 1
            hash_rows.append((hash_id, case_index + 1, kind, value, 90 if kind == "pdq" else None, "active",
                              moment, moment, None, value_key(value)))
            record_rows.append((hash_id, record_key(kind, value), kind, value, "Active", first_seq + hash_id - 1,
                                stamp))
    return case_rows, hash_rows, record_rows


def _seed_sqlite(path: str, bank: Bank, pin_hash: str, moment: datetime) -> None:
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        seq, stamp = connection.execute("SELECT seq, modified_at FROM exchange_counter WHERE id = 1").fetchone()
        stamp = max(stamp, int(time.time()))
        # SQLAlchemy's SQLite DateTime text format (UTC, no zone).
        text = moment.strftime("%Y-%m-%d %H:%M:%S.%f")
        case_rows, hash_rows, record_rows = _rows(bank, pin_hash, moment, seq + 1, stamp)
        with connection:
            connection.executemany("INSERT INTO cases (id, case_number, pin_hash, status, language, ref, created_at, "
                                   "updated_at, withdrawn_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                   [(*r[:6], text, text, None) for r in case_rows])
            connection.executemany("INSERT INTO case_hashes (id, case_id, signal_type, value, quality, status, "
                                   "added_at, updated_at, withdrawn_at, value_key) "
                                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                   [(*r[:6], text, text, None, r[9]) for r in hash_rows])
            connection.executemany("INSERT INTO exchange_records (id, key_digest, signal_type, value, status, "
                                   "change_seq, modified_at) VALUES (?, ?, ?, ?, ?, ?, ?)", record_rows)
            connection.execute("UPDATE exchange_counter SET seq = ?, modified_at = ? WHERE id = 1",
                               (seq + len(record_rows), stamp))
        connection.execute("ANALYZE")
    finally:
        connection.close()


async def _seed_postgresql(url: str, bank: Bank, pin_hash: str, moment: datetime) -> None:
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        async with connection.transaction():
            seq, stamp = await connection.fetchrow("SELECT seq, modified_at FROM exchange_counter WHERE id = 1 "
                                                   "FOR UPDATE")
            stamp = max(stamp, int(time.time()))
            case_rows, hash_rows, record_rows = _rows(bank, pin_hash, moment, seq + 1, stamp)
            await connection.copy_records_to_table("cases", records=case_rows, columns=[
                "id", "case_number", "pin_hash", "status", "language", "ref", "created_at", "updated_at",
                "withdrawn_at"])
            await connection.copy_records_to_table("case_hashes", records=hash_rows, columns=[
                "id", "case_id", "signal_type", "value", "quality", "status", "added_at", "updated_at",
                "withdrawn_at", "value_key"])
            await connection.copy_records_to_table("exchange_records", records=record_rows, columns=[
                "id", "key_digest", "signal_type", "value", "status", "change_seq", "modified_at"])
            await connection.execute("UPDATE exchange_counter SET seq = $1, modified_at = $2 WHERE id = 1",
                                     seq + len(record_rows), stamp)
            # Explicit ids: move the id sequences past them, as inserts through the server would.
            for table in ("cases", "case_hashes", "exchange_records"):
                await connection.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        await connection.execute("ANALYZE")
    finally:
        await connection.close()

