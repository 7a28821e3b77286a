"""The records partners sync: one per (signal type, hash value), the current aggregate.

A record is Active while any active case (or an active partner's own submission) holds its hash,
Withdrawn once every holder withdrew (platforms delete it), Deleted once `purge` removed the last
holder for good. A person's withdrawal is final for partners: once every case holding a hash is
withdrawn, the record stays Withdrawn (Deleted after purge) whatever partners submitted since the
first case held it; only a new case makes it Active again. A partner's submission made before
any case held the hash is the partner's own finding, and keeps holding the record Active: else
anyone with the images could open a case with their hash and withdraw it to take a platform's
own reports out of the bank. No HTTP here: server/partner_api.py speaks the wire format.

Consistent paging. Every change to a record (a case adds the hash, a case is withdrawn, a partner
gives feedback or submits the hash, purge removes a holder) gives the record the next number
from one counter row (`exchange_counter`), taken in the changing transaction, after all its other
work, right before it commits. On PostgreSQL the UPDATE of that row holds the row's lock until
commit, so a second changer waits there: numbers are handed out in commit order, and a reader's
snapshot always holds every number up to the highest it sees (a transaction that took a lower
number committed before the higher one could be taken). SQLite has one writer at a time anyway.
A reader pages by `change_seq > last seen`; a record changed after it was read moves to a number
above everything read so far, so a client that keeps paging ends with exactly the current state.

The counter row also carries the time (Unix seconds) given with the number, never decreasing,
so a record's `modified_at` (lastModtimestamp) grows with its number: "changed at or after T"
is a range of numbers, which is how a client resumes from its checkpoint timestamp.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pyhash
from sqlalchemy import BigInteger, LargeBinary, any_, bindparam, case, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from .db import reuse_cached_plans
from .models import case_hashes, exchange_counter, exchange_records, partner_feedback, partners, value_key

Status = tuple[str, bool]  # a record's wire status, and whether the people holding it withdrew it

ACTIVE, WITHDRAWN, DELETED = "Active", "Withdrawn", "Deleted"
CASE_STATUS = {"active": ACTIVE, "withdrawn": WITHDRAWN}  # case_hashes.status -> wire word
# Feedback values a partner may send (StopNCII's StopNCIICSPFeedbackValue).
FEEDBACK_VALUES = ("Unknown", "None", "QualityUnknown", "PendingReview", "Blocked", "NotBlocked",
                   "Withdrawn", "Deleted")
# A partner's own submission with one of these no longer holds the record Active.
RETRACTED = ("Withdrawn", "Deleted")
_CHUNK = 400  # keys per IN (...) list: well under SQLite's bound-parameter limit

Key = tuple[str, str]  # (pyhash signal type name, normalised value)


# --- names ----------------------------------------------------------------------------------------


def record_key(signal_type: str, value: str) -> bytes:
    """The record's unique key; a digest, since a vPDQ value may be too long to index."""
    return hashlib.sha256(signal_type.encode() + b"\0" + value.encode()).digest()


def wire_name(signal_type: str) -> str:
    """What the wire calls a type: StopNCII's name where it has one (ImagePDQ, VideoMD5), else
    pyhash's (vpdq, which is also python-threatexchange's name for it)."""
    entry = pyhash.signal_type(signal_type)
    return entry.wire_name or entry.name


WIRE_NAMES = {wire_name(name): name for name in pyhash.SIGNAL_TYPES}
# What a partner gets unless it asks (signalTypes=): only types StopNCII has names for, so an
# unmodified StopNCII client never meets a type it cannot parse.
DEFAULT_TYPES = tuple(name for name, entry in pyhash.SIGNAL_TYPES.items() if entry.wire_name)


def type_mask(types: Iterable[str]) -> int:
    names = list(pyhash.SIGNAL_TYPES)
    return sum(1 << names.index(name) for name in set(types))


def case_pseudonym(pseudonym_key: bytes, partner_id: int, case_id: int) -> str:
    """What partner `partner_id` sees instead of a case: stable for that partner, different for
    every other one, and no way back to the case number (a keyed hash of the internal id;
    BLAKE2b's keyed mode is a MAC, and a few times cheaper than HMAC for a million records)."""
    return hashlib.blake2b(b"%d:%d" % (partner_id, case_id), key=pseudonym_key, digest_size=12).hexdigest()


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# --- changing records (called inside the changing transaction, as its last work) ------------------


# Statements built once per dialect (their SQL and cache keys are reused): they run in every
# case's transaction and for every page, where building them anew cost more than running them.
_counter = exchange_counter.c
_LOCK = select(_counter.seq).where(_counter.id == 1).with_for_update()
_ALLOCATE = (update(exchange_counter).where(_counter.id == 1)
             .values(seq=_counter.seq + bindparam("count"),
                     modified_at=case((_counter.modified_at > bindparam("now"), _counter.modified_at),
                                      else_=bindparam("now")))
             .returning(_counter.seq, _counter.modified_at))
_BUMP = (update(exchange_records).where(exchange_records.c.id == bindparam("record_id"))
         .values(status=bindparam("new_status"), person_withdrawn=bindparam("new_person_withdrawn"),
                 change_seq=bindparam("new_seq"), modified_at=bindparam("new_modified")))
_PAGE_CHUNK = 1000  # values per list when reading a page (pageSize is at most 2000)
# Cases a page lists per record (caseNumbers); the record's status counts them all. Anyone can
# open cases, and a page must not grow with how many hold one hash.
MAX_CASES_LISTED = 100


def _one_of(column: Any, name: str, item_type: Any, dialect: str) -> Any:
    """`column IN (list)`: on PostgreSQL `= ANY(array)`, one parameter, one prepared statement
    whatever the list's length (an expanded IN renders and prepares anew for every length)."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=postgresql.ARRAY(item_type)))
    return column.in_(bindparam(name, expanding=True))


@dataclass(frozen=True)
class _Statements:
    holders: Any  # a type's case hashes among some values: value, case_id, status, added_at
    page_holders: Any  # the same for a page: value, case_id, status; the first MAX_CASES_LISTED per value
    submitters: Any  # partners' own submissions among records: key_digest, value, partner status, first report
    person_withdrawn: Any  # which of some records (by key digest) people withdrew
    find: Any  # records by key digest
    page_feedback: Any  # feedback on records: record_id, partner name, value, tags
    upsert: Any  # a record, or the existing one's new status, number and time
    new_records: Any  # records that do not exist yet
    feedback_upsert: Any  # a partner's feedback on a record


_STATEMENTS: dict[str, _Statements] = {}


def _sql(conn: Connection) -> _Statements:
    dialect = conn.dialect.name
    if dialect in _STATEMENTS:
        return _STATEMENTS[dialect]
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # One type at a time: `signal_type = ? AND value_key IN (...)` uses the (signal_type, value_key) index
    # on both databases (SQLite scans the table for a row-value IN, and PostgreSQL's planner may
    # pick a hash join over all case hashes for a join).
    same_type = case_hashes.c.signal_type == bindparam("signal_type")
    values = _one_of(case_hashes.c.value_key, "value_keys", LargeBinary(), dialect)
    record = insert(exchange_records)
    feedback = insert(partner_feedback)
    given = partner_feedback.c
    statements = _Statements(
        holders=select(case_hashes.c.value, case_hashes.c.case_id, case_hashes.c.status,
                       case_hashes.c.added_at).where(same_type, values),
        page_holders=_first_holders(same_type, values),
        submitters=(select(exchange_records.c.key_digest, given.value, partners.c.status, given.created_at)
                    .select_from(partner_feedback.join(exchange_records, exchange_records.c.id == given.record_id)
                                 .join(partners, partners.c.id == given.partner_id))
                    .where(_one_of(exchange_records.c.key_digest, "digests", LargeBinary(), dialect),
                           given.submitted == 1)),
        person_withdrawn=select(exchange_records.c.key_digest).where(
            _one_of(exchange_records.c.key_digest, "digests", LargeBinary(), dialect),
            exchange_records.c.person_withdrawn == 1),
        find=(select(exchange_records.c.id, exchange_records.c.key_digest, exchange_records.c.signal_type,
                     exchange_records.c.value)
              .where(_one_of(exchange_records.c.key_digest, "digests", LargeBinary(), dialect))
              # Keeps the records from being deleted (purge) until commit, and nothing else: FOR KEY
              # SHARE does not wait for, or hold up, changes to their status.
              .with_for_update(key_share=True, read=True)),
        page_feedback=(select(given.record_id, partners.c.name, given.value, given.tags)
                       .join(partners, partners.c.id == given.partner_id)
                       .where(_one_of(given.record_id, "ids", BigInteger(), dialect))
                       .order_by(given.record_id, partners.c.name)),
        upsert=record.on_conflict_do_update(
            index_elements=[exchange_records.c.key_digest],
            set_={"status": record.excluded.status, "person_withdrawn": record.excluded.person_withdrawn,
                  "change_seq": record.excluded.change_seq, "modified_at": record.excluded.modified_at}),
        new_records=insert(exchange_records).on_conflict_do_nothing(index_elements=[exchange_records.c.key_digest]),
        feedback_upsert=feedback.on_conflict_do_update(
            index_elements=[given.record_id, given.partner_id],
            set_={"value": feedback.excluded.value, "tags": feedback.excluded.tags,
                  # Once the partner reported the hash itself, it stays a source (feedback
                  # Withdrawn or Deleted retracts it).
                  "submitted": case((given.submitted == 1, 1), else_=feedback.excluded.submitted),
                  # The date a person reads ("removed on ..."): when the value last changed.
                  "updated_at": case((given.value != feedback.excluded.value, feedback.excluded.updated_at),
                                     else_=given.updated_at),
                  "reported_at": feedback.excluded.reported_at}),
    )
    _STATEMENTS[dialect] = statements
    return statements


def _first_holders(same_type: Any, values: Any) -> Any:
    numbered = select(case_hashes.c.value, case_hashes.c.case_id, case_hashes.c.status,
                      func.row_number().over(partition_by=case_hashes.c.value_key, order_by=case_hashes.c.case_id)
                      .label("number")).where(same_type, values).subquery()
    return (select(numbered.c.value, numbered.c.case_id, numbered.c.status)
            .where(numbered.c.number <= MAX_CASES_LISTED))


def _lock(conn: Connection) -> None:
    """Take the counter row's lock now, for a transaction that reads records before changing them
    (a no-op on SQLite, where the writer already holds the database lock)."""
    conn.execute(_LOCK)


def _allocate(conn: Connection, count: int) -> tuple[int, int]:
    """Reserve `count` change numbers; returns the first and the time that goes with them."""
    seq, modified_at = conn.execute(_ALLOCATE, {"count": count, "now": int(time.time())}).one()
    return seq - count + 1, modified_at


_ADDED: Status = (ACTIVE, False)


def _write(conn: Connection, ordered: Sequence[Key],
           statuses: Callable[[], dict[Key, Status]] | None) -> dict[Key, Status]:
    first, moment = _allocate(conn, len(ordered))
    # After _allocate: on PostgreSQL every earlier changer has committed, so statuses() reads
    # the holders as the last of them left them.
    status = statuses() if statuses is not None else {}
    conn.execute(_sql(conn).upsert, [
        {"key_digest": record_key(signal_type, value), "signal_type": signal_type, "value": value,
         "status": status.get((signal_type, value), _ADDED)[0],
         "person_withdrawn": int(status.get((signal_type, value), _ADDED)[1]),
         "change_seq": first + number, "modified_at": moment}
        for number, (signal_type, value) in enumerate(ordered)])
    return status


def hashes_added(conn: Connection, keys: Iterable[Key]) -> None:
    """Active cases now hold these hashes (a case was opened or extended): their records are
    Active, with new numbers (their caseNumbers changed)."""
    ordered = sorted(set(keys))
    if ordered:
        _write(conn, ordered, None)


def hashes_changed(conn: Connection, keys: Iterable[Key]) -> dict[Key, Status]:
    """Holders of these hashes changed (a case withdrew, purge removed hashes, a partner was
    revoked): recompute each record's status from what holds it now, and give it a new number.
    Returns the new statuses."""
    ordered = sorted(set(keys))
    return _write(conn, ordered, lambda: _statuses(conn, ordered)) if ordered else {}


def _statuses(conn: Connection, keys: Sequence[Key]) -> dict[Key, Status]:
    """Each record's status from its holders: active cases first; then active partners' own
    submissions, where no person withdrew the hash or the partner submitted it before any case
    held it (its own finding: see the module's docstring)."""
    case_active: set[Key] = set()
    first_held: dict[Key, datetime] = {}  # when the first case still holding it (withdrawn or not) added it
    by_type: dict[str, list[str]] = {}
    for signal_type, value in keys:
        by_type.setdefault(signal_type, []).append(value)
    for signal_type, values in by_type.items():
        for chunk in _chunks(values):
            for value, _, status, added_at in conn.execute(_sql(conn).holders, {
                    "signal_type": signal_type, "value_keys": [value_key(v) for v in chunk]}):
                key, added_at = (signal_type, value), _utc(added_at)
                first_held[key] = min(first_held.get(key, added_at), added_at)
                if status == "active":
                    case_active.add(key)
    submissions: dict[Key, list[tuple[bool, datetime]]] = {}  # (still holds it up, first reported)
    withdrawn_before: set[Key] = set()  # people withdrew it, and purge has removed their cases since
    for chunk in _chunks(keys):
        by_digest = {record_key(*key): key for key in chunk}
        for digest, value, partner_status, created_at in conn.execute(_sql(conn).submitters,
                                                                      {"digests": list(by_digest)}):
            # A revoked partner, or one that retracted its submission, holds nothing up.
            submissions.setdefault(by_digest[digest], []).append(
                (value not in RETRACTED and partner_status == "active", _utc(created_at)))
        for (digest,) in conn.execute(_sql(conn).person_withdrawn, {"digests": list(by_digest)}):
            withdrawn_before.add(by_digest[digest])

    def status(key: Key) -> Status:
        if key in case_active:
            return ACTIVE, False
        held_up = [since for holds, since in submissions.get(key, []) if holds]
        if key in first_held:  # every case holding it was withdrawn
            own_finding = any(since < first_held[key] for since in held_up)
            return (ACTIVE, False) if own_finding else (WITHDRAWN, True)
        if key in withdrawn_before:  # (and no partner's own finding held it up then)
            return DELETED, True
        if held_up:
            return ACTIVE, False
        return (WITHDRAWN if key in submissions else DELETED), False

    return {key: status(key) for key in keys}


def _utc(moment: datetime) -> datetime:
    """SQLite hands datetimes back without their zone; they were stored in UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def drop_old_markers(conn: Connection, cutoff: float) -> int:
    """Forget Deleted records older than `cutoff` (Unix seconds). A partner that synced since has
    deleted the hash; one that has not synced for that long must start over (python-threatexchange
    does by itself after 30 days)."""
    old = select(exchange_records.c.id).where(exchange_records.c.status == DELETED,
                                              exchange_records.c.modified_at < cutoff)
    conn.execute(delete(partner_feedback).where(partner_feedback.c.record_id.in_(old)))
    return (conn.execute(delete(exchange_records).where(
        exchange_records.c.status == DELETED, exchange_records.c.modified_at < cutoff))).rowcount


# --- partners' feedback and submissions -----------------------------------------------------------


@dataclass(frozen=True)
class FeedbackInput:
    value: str  # one of FEEDBACK_VALUES
    tags: tuple[str, ...]


class UnknownHash(Exception):
    """Feedback named a hash no record has; `index` is its position in the request."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


def _find(conn: Connection, digests: Sequence[bytes]) -> dict[bytes, tuple[int, Key]]:
    found: dict[bytes, tuple[int, Key]] = {}
    for chunk in _chunks(digests):
        for record_id, digest, signal_type, value in conn.execute(_sql(conn).find, {"digests": list(chunk)}):
            found[digest] = (record_id, (signal_type, value))
    return found


def submit_feedback(conn: Connection, partner_id: int, moment: Any,
                    items: Sequence[tuple[Sequence[Key], FeedbackInput]]) -> int:
    """Store each item's feedback on every record its hash value names (the value's candidate
    keys: a value may be valid for more than one type); UnknownHash if one names none.
    Returns how many records got feedback. The counter's lock is taken only at the end (in
    _store_feedback), so a big batch does not hold up case creations while it is looked up."""
    found = _find(conn, list({record_key(*key) for candidates, _ in items for key in candidates}))
    feedback: dict[int, FeedbackInput] = {}  # record id -> the last feedback on it in this request
    for index, (candidates, given) in enumerate(items):
        hits = [found[d] for d in (record_key(*key) for key in candidates) if d in found]
        if not hits:
            raise UnknownHash(index)
        for record_id, _ in hits:
            feedback[record_id] = given
    keys = {record_id: key for record_id, key in found.values() if record_id in feedback}
    _store_feedback(conn, partner_id, moment, feedback, keys, submitted=False)
    return len(feedback)


def submit_hashes(conn: Connection, partner_id: int, moment: Any,
                  items: Sequence[tuple[Key, FeedbackInput]]) -> tuple[int, set[Key]]:
    """A partner reports hashes it found to be NCII itself: each becomes (or stays) a record with
    this partner as a source. Returns how many distinct hashes, and those that stay withdrawn
    because the people holding them withdrew them (the submission is recorded all the same)."""
    _lock(conn)
    given = {key: feedback for key, feedback in items}  # the last one wins for a repeated hash
    ordered = sorted(given)
    first, modified = _allocate(conn, len(ordered))
    # New records start Active (the submission holds them); _store_feedback settles the status
    # and gives every record its final number.
    conn.execute(_sql(conn).new_records, [
        {"key_digest": record_key(*key), "signal_type": key[0], "value": key[1], "status": ACTIVE,
         "person_withdrawn": 0, "change_seq": first + number, "modified_at": modified}
        for number, key in enumerate(ordered)])
    ids = {key: record_id for record_id, key in _find(conn, [record_key(*key) for key in ordered]).values()}
    statuses = _store_feedback(conn, partner_id, moment, {ids[key]: given[key] for key in ordered},
                               {ids[key]: key for key in ordered}, submitted=True)
    return len(ordered), {key for key, (_, person_withdrawn) in statuses.items() if person_withdrawn}


def _store_feedback(conn: Connection, partner_id: int, moment: Any, feedback: dict[int, FeedbackInput],
                    keys: dict[int, Key], *, submitted: bool) -> dict[Key, Status]:
    if not feedback:
        return {}
    conn.execute(_sql(conn).feedback_upsert, [
        {"record_id": record_id, "partner_id": partner_id, "value": given.value,
         "tags": json.dumps(sorted(set(given.tags))), "submitted": int(submitted), "created_at": moment,
         "updated_at": moment, "reported_at": moment} for record_id, given in feedback.items()])
    # lastModtimestamp moves, so every partner sees the feedback on its next fetch; the status may
    # move too (a partner's own submission retracted, or now holding the record).
    ordered = sorted(feedback)
    first, modified = _allocate(conn, len(ordered))
    statuses = _statuses(conn, [keys[record_id] for record_id in ordered])
    reuse_cached_plans(conn)  # the rest updates by primary key, one execution per record
    conn.execute(_BUMP, [{"record_id": record_id, "new_status": statuses[keys[record_id]][0],
                          "new_person_withdrawn": int(statuses[keys[record_id]][1]), "new_seq": first + number,
                          "new_modified": modified} for number, record_id in enumerate(ordered)])
    return statuses


# --- reading pages --------------------------------------------------------------------------------


_PAGE = (select(exchange_records.c.id, exchange_records.c.signal_type, exchange_records.c.value,
                exchange_records.c.status, exchange_records.c.change_seq, exchange_records.c.modified_at)
         .where(exchange_records.c.change_seq > bindparam("after"),
                exchange_records.c.signal_type.in_(bindparam("types", expanding=True)))
         .order_by(exchange_records.c.change_seq).limit(bindparam("limit")))


def _bounded_page() -> Any:
    """_PAGE's rows, but only as many as start within `max_chars` characters of hash values
    (a running sum over the page): the database never hands over much more than that."""
    window = _PAGE.add_columns(
        func.sum(func.length(exchange_records.c.value)).over(order_by=exchange_records.c.change_seq).label("running"),
        func.length(exchange_records.c.value).label("own")).subquery()
    return (select(window.c.id, window.c.signal_type, window.c.value, window.c.status, window.c.change_seq,
                   window.c.modified_at)
            .where(window.c.running - window.c.own <= bindparam("max_chars")).order_by(window.c.change_seq))


_BOUNDED_PAGE = _bounded_page()


@dataclass(frozen=True)
class Page:
    records: list[dict[str, Any]]
    after_seq: int  # where the next page starts (exclusive)
    last_modified: int | None  # lastModtimestamp of the page's last record, None if empty
    has_more: bool


def start_position(conn: Connection, start_timestamp: int) -> int:
    """The number just before the first record changed at or after `start_timestamp`."""
    first = (conn.execute(
        select(exchange_records.c.change_seq).where(exchange_records.c.modified_at >= start_timestamp)
        .order_by(exchange_records.c.modified_at, exchange_records.c.change_seq).limit(1))).scalar()
    if first is not None:
        return int(first) - 1
    # Nothing yet: start after everything committed (whatever comes later gets a higher number).
    return int((conn.execute(select(exchange_counter.c.seq).where(exchange_counter.c.id == 1))).scalar_one())


def _record_bytes(record: dict[str, Any]) -> int:
    """At least as many bytes as the record takes in a page's JSON (a character is at most 4)."""
    size = 160 + len(record["hashValue"]) + sum(len(pseudonym) + 16 for pseudonym in record["caseNumbers"])
    for opinion in record["CSPFeedbacks"]:
        size += 64 + 4 * (len(opinion["source"]) + len(opinion["feedbackValue"]))
        size += sum(4 * len(tag) + 4 for tag in opinion["tags"])
    return size


def read_page(conn: Connection, *, partner_id: int, after_seq: int, types: Collection[str], size: int,
              max_bytes: int, pseudonym_key: bytes) -> Page:
    """Up to `size` records of `types` numbered above `after_seq`, in number order, as the wire
    shows them to `partner_id`: together at most `max_bytes` of JSON (but at least one record),
    each listing at most MAX_CASES_LISTED of the cases holding it. Run it in one snapshot
    (repeatable read)."""
    parameters = {"after": after_seq, "types": list(types), "limit": size + 1, "max_chars": max_bytes}
    # Values are most of a page. Only types whose values can be long need the database to stop
    # at the budget (a running sum); PDQ and MD5 pages never reach it.
    longest = max(pyhash.signal_type(name).max_length for name in types)
    rows = conn.execute(_PAGE if longest * size <= max_bytes else _BOUNDED_PAGE, parameters).all()
    taken, chars = 0, 0
    while taken < min(len(rows), size) and (taken == 0 or chars + len(rows[taken].value) <= max_bytes):
        chars += len(rows[taken].value)
        taken += 1
    has_more = len(rows) > taken
    rows = rows[:taken]
    if not rows:
        return Page([], after_seq, None, False)
    by_key = {(signal_type, value): record_id for record_id, signal_type, value, *_ in rows}
    by_type: dict[str, list[str]] = {}
    for signal_type, value in by_key:
        by_type.setdefault(signal_type, []).append(value)

    # The holders of the page's hashes, one type at a time, by the (signal_type, value) index: as
    # an explicit list, not a join, so PostgreSQL's planner has no hash join over all case hashes
    # to pick.
    holders: dict[int, dict[str, str]] = {}
    pseudonyms: dict[int, str] = {}  # cases often hold several hashes: one keyed hash per case
    for signal_type, values in by_type.items():
        for chunk in _chunks(values, _PAGE_CHUNK):
            for value, case_id, status in conn.execute(_sql(conn).page_holders, {
                    "signal_type": signal_type, "value_keys": [value_key(v) for v in chunk]}):
                pseudonym = pseudonyms.get(case_id)
                if pseudonym is None:
                    pseudonym = pseudonyms[case_id] = case_pseudonym(pseudonym_key, partner_id, case_id)
                holders.setdefault(by_key[(signal_type, value)], {})[pseudonym] = CASE_STATUS[status]
    opinions: dict[int, list[dict[str, Any]]] = {}
    for chunk in _chunks(list(by_key.values()), _PAGE_CHUNK):
        for record_id, name, value, tags in conn.execute(_sql(conn).page_feedback, {"ids": list(chunk)}):
            opinions.setdefault(record_id, []).append({"source": name, "feedbackValue": value,
                                                       "tags": json.loads(tags)})

    wire = {name: wire_name(name) for name in pyhash.SIGNAL_TYPES}
    out: list[dict[str, Any]] = []
    total = 0
    for record_id, signal_type, value, status, _, modified_at in rows:
        record = {"lastModtimestamp": modified_at, "signalType": wire[signal_type], "hashValue": value,
                  "hashStatus": status, "caseNumbers": holders.get(record_id, {}),
                  "CSPFeedbacks": opinions.get(record_id, [])}
        total += _record_bytes(record)
        if out and total > max_bytes:  # the rest comes on the next page
            has_more = True
            break
        out.append(record)
    last = rows[len(out) - 1]
    return Page(out, last.change_seq, last.modified_at, has_more)
