"""The case service: create, read, extend and withdraw cases. No HTTP here.

The database work is plain synchronous functions of a SQLAlchemy Connection, run by
server/db.py's Database (in threads on SQLite, on the event loop on PostgreSQL). Every write is
one transaction (creations arriving together share one: group commit); a response is only sent
after its commit, so what a client was told exists does exist. PINs are checked with argon2id
outside transactions (they take a few milliseconds) and wrong ones are counted in the database,
where every worker sees them.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
from functools import partial
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError

from . import codes, exchange, outcomes, referrals
from .config import IDEMPOTENCY_REPLAY_SECONDS, MAX_HASHES_PER_CASE, MAX_PIN_FAILURES, Settings
from .db import Database
from .errors import Conflict, InvalidField, Locked, WrongCredentials
from .models import case_hashes, cases, idempotency, pin_attempts, value_key
from .security import PinHasher, keyed, load_secret
from .validation import CreateCase, Credentials, HashInput

ACTIVE, WITHDRAWN = "active", "withdrawn"

# Built once: their SQL and cache keys are reused. The ids come back in the rows' order.
_INSERT_CASES = cases.insert().returning(cases.c.id, sort_by_parameter_order=True)
_INSERT_HASHES = case_hashes.insert()
_INSERT_IDEMPOTENCY = idempotency.insert()


def now() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(moment: datetime | None) -> datetime | None:
    """SQLite hands datetimes back without a zone; they were stored in UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=timezone.utc)


def iso(moment: datetime | None) -> str | None:
    moment = as_utc(moment)
    return None if moment is None else moment.isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class NewCase:
    case_number: str
    pin_hash: str
    request: CreateCase
    key: bytes | None  # the keyed hash of the idempotency key
    pin_salt: bytes | None  # with a key: what the server's PIN was derived from, besides the key
    ref: str | None  # the request's referral code if it is an active one (server/referrals.py)
    moment: datetime


@dataclass(frozen=True)
class Created:
    body: dict[str, Any]
    replayed: bool


class CaseStore:
    def __init__(self, database: Database, settings: Settings) -> None:
        self.db = database
        self.engine = database.engine  # asyncio access, for code outside this service
        self.settings = settings
        self.pins = PinHasher(settings)
        self._secret = b""
        self._insert = postgresql.insert if database.dialect == "postgresql" else sqlite.insert
        # Creations arriving together are written together (see Database.group_commit).
        self._creations = database.group_commit(self._insert_cases)

    async def start(self) -> None:
        self._secret = await load_secret(self.db)

    # -- creating ---------------------------------------------------------------------------

    def _request_hash(self, request: CreateCase) -> bytes:
        canonical = json.dumps(
            [sorted([h.signal_type, h.value, h.quality or 0] for h in request.hashes), request.language,
             request.ref], separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).digest()

    def _replay_pin(self, idempotency_key: str, salt: bytes) -> str:
        # Derived, never stored: a retry after a lost response can be told the same PIN, while the
        # database alone (the key is kept only as a keyed hash) can't produce it. The salt is the
        # creation's own: the same key once its record is gone derives another PIN.
        return codes.pin_from_bytes(keyed(self._secret, "pin", salt.hex() + ":" + idempotency_key))

    def _salted_pin(self, idempotency_key: str) -> tuple[str, bytes]:
        """A salt for a new creation with this key, and the (not weak) PIN derived with it."""
        while True:
            salt = secrets.token_bytes(16)
            pin = self._replay_pin(idempotency_key, salt)
            if not codes.weak_pin(pin):
                return pin, salt

    async def create(self, request: CreateCase) -> Created:
        # A retry is recognised by its idempotency key's unique index when the insert fails, not
        # by a lookup first: retries are rare, and a lookup would cost every creation a read.
        key = keyed(self._secret, "idempotency", request.idempotency_key) if request.idempotency_key else None
        salt = None
        if request.pin is not None:
            pin = request.pin
        elif request.idempotency_key is not None:
            pin, salt = self._salted_pin(request.idempotency_key)
        else:
            pin = codes.new_pin()
        pin_hash = await self.pins.hash(pin)
        # Only a known, active helpline code is kept; the request as sent is what a replay must match.
        ref = await self.db.read(partial(referrals.active_code, code=request.ref)) if request.ref else None
        for _ in range(3):
            case_number = codes.new_case_number()
            moment = now()
            try:
                await self._creations.submit(NewCase(case_number, pin_hash, request, key, salt, ref, moment))
            except IntegrityError:
                # Either the same idempotency key won a race with us, or (2^-80) a case number clash.
                if key is not None:
                    replay = await self._replay(key, request)
                    if replay is not None:
                        return replay
                continue
            body = {"case_number": case_number, "pin": pin, "status": ACTIVE, "hash_count": len(request.hashes)}
            return Created(body, replayed=False)
        raise RuntimeError("could not allocate a case number")

    def _insert_cases(self, conn: Connection, new: list[NewCase]) -> list[None]:
        """Write a group of new cases: one multi-row statement per table for all of them."""
        case_ids = conn.execute(_INSERT_CASES, [dict(
            case_number=c.case_number, pin_hash=c.pin_hash, status=ACTIVE, language=c.request.language,
            ref=c.ref, created_at=c.moment, updated_at=c.moment, withdrawn_at=None) for c in new]).scalars().all()
        # New cases: their hashes (deduplicated by validation) can't clash with stored ones.
        conn.execute(_INSERT_HASHES, [row for c, case_id in zip(new, case_ids)
                                      for row in self._hash_rows(case_id, c.request.hashes, c.moment)])
        keys = [dict(key=c.key, case_id=case_id, request_hash=self._request_hash(c.request),
                     pin_proposed=int(c.request.pin is not None), pin_salt=c.pin_salt, created_at=c.moment)
                for c, case_id in zip(new, case_ids) if c.key is not None]
        if keys:
            conn.execute(_INSERT_IDEMPOTENCY, keys)
        # Last, right before the commit: partners' records (server/exchange.py holds a lock from here).
        exchange.hashes_added(conn, [(h.signal_type, h.value) for c in new for h in c.request.hashes])
        return [None] * len(new)

    async def _replay(self, key: bytes, request: CreateCase) -> Created | None:
        """The answer to a creation retried with a key already used: the same case's codes, if
        this is a replay of a lost response (the same body, within the replay window, the case
        still active); else a 409 that carries no codes."""
        def find(conn: Connection) -> tuple[Row[Any], int] | None:
            record = conn.execute(
                select(idempotency.c.request_hash, idempotency.c.pin_proposed, idempotency.c.pin_salt,
                       idempotency.c.created_at, cases.c.case_number, cases.c.status, cases.c.id)
                .join(cases, cases.c.id == idempotency.c.case_id)
                .where(idempotency.c.key == key)).first()
            return None if record is None else (record, self._hash_count(conn, record.id))

        found = await self.db.read(find)
        if found is None:
            return None
        record, count = found
        opened = as_utc(record.created_at)
        assert opened is not None
        # One answer for an old key and a withdrawn case: the key's holder learns nothing of which.
        if (record.status != ACTIVE or now() - opened > timedelta(seconds=IDEMPOTENCY_REPLAY_SECONDS)
                or (not record.pin_proposed and record.pin_salt is None)):
            raise Conflict(f"idempotency_key was used for a case more than {IDEMPOTENCY_REPLAY_SECONDS // 3600} hours "
                           "ago, or for one no longer active: its answer is not given again; send a new key",
                           field="idempotency_key", code="idempotency_key_reused")
        if record.request_hash != self._request_hash(request):
            raise Conflict("idempotency_key was already used for a different request: send a new key for new content",
                           field="idempotency_key", code="idempotency_key_reused")
        if record.pin_proposed:
            if request.pin is None:
                raise Conflict("idempotency_key was already used with a pin", field="pin",
                               code="idempotency_key_reused")
            # The PIN is checked as on every other endpoint, so this counts as a guess on the case
            # and is stopped by its lockout (else a key's holder could guess PINs here unchecked).
            try:
                await self._authenticate(Credentials(record.case_number, request.pin))
            except WrongCredentials:
                raise Conflict("idempotency_key was already used with another pin", field="pin",
                               code="idempotency_key_reused") from None
            pin = request.pin
        elif request.pin is not None:
            raise Conflict("idempotency_key was already used without a pin", field="pin",
                           code="idempotency_key_reused")
        else:
            pin = self._replay_pin(request.idempotency_key or "", record.pin_salt)
        body = {"case_number": record.case_number, "pin": pin, "status": record.status, "hash_count": count}
        return Created(body, replayed=True)

    def _insert_hashes(self, conn: Connection, case_id: int, hashes: tuple[HashInput, ...],
                       moment: datetime) -> int:
        """Add hashes to an existing case; those it already holds are skipped. How many were new."""
        statement = self._insert(case_hashes).on_conflict_do_nothing(
            index_elements=["case_id", "signal_type", "value_key"]).returning(case_hashes.c.id)
        return len(conn.execute(statement, self._hash_rows(case_id, hashes, moment)).all())

    @staticmethod
    def _hash_rows(case_id: int, hashes: tuple[HashInput, ...], moment: datetime) -> list[dict[str, Any]]:
        return [dict(case_id=case_id, signal_type=h.signal_type, value=h.value, value_key=value_key(h.value),
                     quality=h.quality,
                     status=ACTIVE, added_at=moment, updated_at=moment, withdrawn_at=None) for h in hashes]

    @staticmethod
    def _hash_count(conn: Connection, case_id: int) -> int:
        return conn.execute(select(func.count()).select_from(case_hashes)
                            .where(case_hashes.c.case_id == case_id)).scalar_one()

    # -- authenticating ---------------------------------------------------------------------

    async def _authenticate(self, creds: Credentials) -> Row[Any]:
        """The case, if the PIN is right; counts every guess before checking it.

        A guess takes one of the MAX_PIN_FAILURES slots before argon2 runs, so a burst of guesses
        sent at once gets exactly as many checked as one after another. The guess that takes the
        last slot locks the case number in the same statement that counts it, before its PIN is
        checked: a process that dies while checking leaves a lock that ends on time, never a
        counter that is full but not locked (which nothing would ever clear). A right PIN
        unlocks and frees the slots, leaving the counter as it was before (so the database does
        not tell when a person last opened their case); a wrong one marks the time of the guess.
        """
        attempts_key = keyed(self._secret, "attempts", creds.case_number)
        moment = now()
        case = await self.db.write(partial(self._take_slot, attempts_key, creds.case_number, moment))
        if await self.pins.verify(case.pin_hash if case is not None else None, creds.pin):
            await self.db.write(lambda conn: conn.execute(
                update(pin_attempts).where(pin_attempts.c.key == attempts_key).values(failures=0, locked_until=None)))
            assert case is not None
            return case
        # Purge forgets counters idle for long; a crash before this only makes one forgotten sooner.
        await self.db.write(lambda conn: conn.execute(
            update(pin_attempts).where(pin_attempts.c.key == attempts_key).values(updated_at=moment)))
        raise WrongCredentials()

    def _take_slot(self, attempts_key: bytes, case_number: str, moment: datetime,
                   conn: Connection) -> Row[Any] | None:
        """Count one guess (locking the case number if it is the last one allowed) and read the
        case; Locked if the case number is locked."""
        conn.execute(self._insert(pin_attempts).values(
            key=attempts_key, failures=0, updated_at=moment).on_conflict_do_nothing())
        # FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises this.
        row = conn.execute(select(pin_attempts).where(pin_attempts.c.key == attempts_key).with_for_update()).one()
        locked_until = as_utc(row.locked_until)
        if locked_until is not None and locked_until > moment:
            # At most the lock's length: a guess that read the clock just before the one that
            # locked would otherwise be told a second more.
            raise Locked(min(math.ceil((locked_until - moment).total_seconds()), self.settings.pin_lock_seconds))
        failures = 1 if locked_until is not None else row.failures + 1  # an ended lock: fresh slots
        lock = moment + timedelta(seconds=self.settings.pin_lock_seconds) if failures >= MAX_PIN_FAILURES else None
        conn.execute(update(pin_attempts).where(pin_attempts.c.key == attempts_key).values(
            failures=failures, locked_until=lock))
        return conn.execute(select(cases).where(cases.c.case_number == case_number)).first()

    # -- reading and changing ---------------------------------------------------------------

    async def status(self, creds: Credentials) -> dict[str, Any]:
        case = await self._authenticate(creds)
        def read(conn: Connection) -> tuple[Any, list[dict[str, Any]]]:
            return conn.execute(
                select(case_hashes.c.signal_type, case_hashes.c.value, case_hashes.c.added_at, case_hashes.c.status)
                .where(case_hashes.c.case_id == case.id).order_by(case_hashes.c.id)).all(), \
                outcomes.for_case(conn, case.id)

        rows, reported = await self.db.read(read)
        return {
            "case_number": case.case_number,
            "status": case.status,
            "created_at": iso(case.created_at),
            "language": case.language,
            "hashes": [{"signal_type": r.signal_type, "value": r.value, "added_at": iso(r.added_at),
                        "status": r.status} for r in rows],
            "outcomes": reported,  # what each platform reported (server/outcomes.py)
        }

    async def add_hashes(self, creds: Credentials, hashes: tuple[HashInput, ...]) -> dict[str, Any]:
        case = await self._authenticate(creds)
        moment = now()

        def add(conn: Connection) -> tuple[int, int]:
            # FOR UPDATE: a concurrent withdraw or add waits, so no active hash lands on a withdrawn
            # case and the per-case cap holds (SQLite's BEGIN IMMEDIATE already serialises).
            current = conn.execute(select(cases.c.status).where(cases.c.id == case.id).with_for_update()).scalar_one()
            if current != ACTIVE:
                raise Conflict("this case is withdrawn; start a new case to protect more images",
                               code="case_withdrawn")
            existing = {(r.signal_type, r.value) for r in conn.execute(
                select(case_hashes.c.signal_type, case_hashes.c.value).where(case_hashes.c.case_id == case.id)).all()}
            new = tuple(h for h in hashes if (h.signal_type, h.value) not in existing)
            if len(existing) + len(new) > MAX_HASHES_PER_CASE:
                raise InvalidField(f"a case holds at most {MAX_HASHES_PER_CASE} hashes; this one has "
                                   f"{len(existing)}", field="hashes", code="case_full")
            added = self._insert_hashes(conn, case.id, new, moment) if new else 0
            conn.execute(update(cases).where(cases.c.id == case.id).values(updated_at=moment))
            exchange.hashes_added(conn, [(h.signal_type, h.value) for h in new])  # last: see exchange.py
            return len(existing), added

        existing, added = await self.db.write(add)
        return {"case_number": case.case_number, "status": ACTIVE, "hash_count": existing + added, "added": added}

    async def withdraw(self, creds: Credentials) -> dict[str, Any]:
        case = await self._authenticate(creds)
        moment = now()

        def withdraw(conn: Connection) -> None:
            changed = conn.execute(update(cases).where(cases.c.id == case.id, cases.c.status == ACTIVE)
                                   .values(status=WITHDRAWN, withdrawn_at=moment, updated_at=moment)).rowcount
            if changed:
                # Tombstones, not deletions: platforms syncing hashes learn to delete them.
                conn.execute(update(case_hashes).where(case_hashes.c.case_id == case.id).values(
                    status=WITHDRAWN, withdrawn_at=moment, updated_at=moment))
                exchange.hashes_changed(conn, [(r.signal_type, r.value) for r in conn.execute(
                    select(case_hashes.c.signal_type, case_hashes.c.value).where(case_hashes.c.case_id == case.id))])

        await self.db.write(withdraw)
        return {"case_number": case.case_number, "status": WITHDRAWN}

    async def purge(self, older_than: timedelta) -> dict[str, int]:
        """Delete, for good, what was withdrawn before the cutoff, and stale counters and keys."""
        return await self.db.write(partial(self._purge, now() - older_than))

    @staticmethod
    def _purge(cutoff: datetime, conn: Connection) -> dict[str, int]:
        # Partners keep a Deleted record of each hash nothing holds any more, so they delete it too;
        # those markers are themselves forgotten after the same time.
        markers = exchange.drop_old_markers(conn, cutoff.timestamp())
        gone = [(r.signal_type, r.value) for r in conn.execute(select(case_hashes.c.signal_type, case_hashes.c.value)
                .where(case_hashes.c.status == WITHDRAWN, case_hashes.c.withdrawn_at < cutoff))]
        hashes = conn.execute(delete(case_hashes).where(
            case_hashes.c.status == WITHDRAWN, case_hashes.c.withdrawn_at < cutoff)).rowcount
        exchange.hashes_changed(conn, gone)
        conn.execute(delete(idempotency).where(idempotency.c.case_id.in_(
            select(cases.c.id).where(cases.c.status == WITHDRAWN, cases.c.withdrawn_at < cutoff))))
        removed_cases = conn.execute(delete(cases).where(
            cases.c.status == WITHDRAWN, cases.c.withdrawn_at < cutoff)).rowcount
        keys = conn.execute(delete(idempotency).where(idempotency.c.created_at < cutoff)).rowcount
        counters = conn.execute(delete(pin_attempts).where(
            pin_attempts.c.updated_at < cutoff,
            (pin_attempts.c.locked_until.is_(None)) | (pin_attempts.c.locked_until < now()))).rowcount
        return {"hashes": hashes, "cases": removed_cases, "idempotency_keys": keys, "pin_counters": counters,
                "deleted_markers": markers}
