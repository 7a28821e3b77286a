"""The database tables. Only what the service needs: hashes, statuses and times.

No IP address, user agent, referrer or image ever reaches these tables.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# Integer ids autoincrement on both databases (BIGINT on PostgreSQL, INTEGER PRIMARY KEY on SQLite).
Id = BigInteger().with_variant(Integer(), "sqlite")

# One row: the server's own random secret, for keyed hashes (idempotency keys, PIN-attempt
# counters, replayed PINs). In the database so every worker and host shares it.
server_secret = Table(
    "server_secret",
    metadata,
    Column("id", SmallInteger, primary_key=True),
    Column("secret", LargeBinary(32), nullable=False),
)

cases = Table(
    "cases",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("case_number", String(19), nullable=False, unique=True),
    Column("pin_hash", String(200), nullable=False),  # argon2id
    Column("status", String(16), nullable=False),  # active | withdrawn
    Column("language", String(2), nullable=False),
    Column("ref", String(32)),  # which helpline sent the person, if any
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("withdrawn_at", DateTime(timezone=True)),
)

case_hashes = Table(
    "case_hashes",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("case_id", Id, ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
    Column("signal_type", String(16), nullable=False),
    Column("value", Text, nullable=False),
    # SHA-256 of the value: what the indexes hold. A vPDQ value grows with the video (about 80
    # characters a second) and PostgreSQL's b-tree refuses entries over ~2.7 KB.
    Column("value_key", LargeBinary(32), nullable=False),
    Column("quality", SmallInteger),
    Column("status", String(16), nullable=False),  # active | withdrawn
    Column("added_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("withdrawn_at", DateTime(timezone=True)),
    UniqueConstraint("case_id", "signal_type", "value_key", name="uq_case_hash_key"),
)
Index("ix_case_hashes_signal_value_key", case_hashes.c.signal_type, case_hashes.c.value_key)
Index("ix_case_hashes_updated", case_hashes.c.updated_at)

# Wrong-PIN counters, keyed by a keyed hash of the case number as typed (normalised): an unknown
# case number gets a counter too, so locking reveals nothing about which numbers exist.
pin_attempts = Table(
    "pin_attempts",
    metadata,
    Column("key", LargeBinary(32), primary_key=True),
    Column("failures", Integer, nullable=False),  # guesses since the last right PIN or ended lock
    Column("locked_until", DateTime(timezone=True)),  # set by the guess that took the last slot
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Case creations by client idempotency key (stored keyed-hashed), so a retry after a lost
# response returns the same case instead of a second one.
idempotency = Table(
    "idempotency",
    metadata,
    Column("key", LargeBinary(32), primary_key=True),
    Column("case_id", Id, ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
    Column("request_hash", LargeBinary(32), nullable=False),
    Column("pin_proposed", SmallInteger, nullable=False),  # 1: the client chose the PIN
    # Random per creation: the PIN of a key that the server chose is derived from the key and
    # this, so a key used again once its record is gone (purged) gets another PIN. NULL in
    # records older than it (migration 0005): those are no longer replayed.
    Column("pin_salt", LargeBinary(16)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Helplines' referral codes (server/referrals.py). The key opens the helpline's weekly figures.
referrals = Table(
    "referrals",
    metadata,
    Column("code", String(32), primary_key=True),
    Column("name_tr", String(100), nullable=False),
    Column("name_en", String(100), nullable=False),
    Column("phone", String(16), nullable=False),  # E.164
    Column("phone_display", String(32), nullable=False),
    Column("language", String(2), nullable=False),
    Column("key_hash", LargeBinary(32), nullable=False),
    Column("status", String(16), nullable=False),  # active | revoked
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)
Index("ix_cases_ref", cases.c.ref)

# --- the partner API (server/partners.py, server/exchange.py) -------------------------------------

# Platforms that sync hashes. `name` is shown to people as the operator typed it.
partners = Table(
    "partners",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("status", String(16), nullable=False),  # active | revoked
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("keys_issued_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)

# A partner's keys, only as keyed hashes. purpose: "subscription" (Ocp-Apim-Subscription-Key) or
# the endpoint a function key (x-functions-key) opens: FetchHashes, SubmitFeedback, SubmitHashes.
partner_keys = Table(
    "partner_keys",
    metadata,
    Column("key_hash", LargeBinary(32), primary_key=True),
    Column("partner_id", Id, ForeignKey("partners.id", ondelete="CASCADE"), nullable=False),
    Column("purpose", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
Index("ix_partner_keys_partner", partner_keys.c.partner_id)

# One row: the last change number handed out and the time it carried. Every change to an
# exchange record takes its number here, under this row's lock, so numbers are in commit order.
exchange_counter = Table(
    "exchange_counter",
    metadata,
    Column("id", SmallInteger, primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("modified_at", BigInteger, nullable=False),  # Unix seconds, never decreasing
)

# What partners sync: one record per (signal type, hash value), the aggregate over every case and
# partner submission holding it. status: Active | Withdrawn | Deleted (StopNCII's words).
exchange_records = Table(
    "exchange_records",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    # sha256(signal_type NUL value): unique key of any length (a vPDQ value can be tens of KB,
    # over PostgreSQL's b-tree entry limit).
    Column("key_digest", LargeBinary(32), nullable=False, unique=True),
    Column("signal_type", String(16), nullable=False),
    Column("value", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("change_seq", BigInteger, nullable=False, unique=True),
    Column("modified_at", BigInteger, nullable=False),  # lastModtimestamp, Unix seconds
    # 1 once every case holding the hash was withdrawn (and after purge removed them, while the
    # Deleted record is kept): no partner submission makes it Active again, only a new case.
    Column("person_withdrawn", SmallInteger, nullable=False, server_default="0"),
)
Index("ix_exchange_records_modified", exchange_records.c.modified_at, exchange_records.c.change_seq)
# Joins from case_hashes by value (a hash index on PostgreSQL: no entry size limit).
Index("ix_exchange_records_value", exchange_records.c.value, postgresql_using="hash")

# A partner's latest feedback on a record; submitted=1 if the partner itself reported the hash
# (SubmitHashes), which makes it a source that keeps the record Active.
partner_feedback = Table(
    "partner_feedback",
    metadata,
    Column("record_id", Id, ForeignKey("exchange_records.id", ondelete="CASCADE"), primary_key=True),
    Column("partner_id", Id, ForeignKey("partners.id", ondelete="CASCADE"), primary_key=True),
    Column("value", String(16), nullable=False),  # PendingReview, Blocked, NotBlocked, None, ...
    Column("tags", Text, nullable=False),  # JSON list of strings
    Column("submitted", SmallInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),  # when `value` last changed
    # When the partner last sent feedback on the record, whatever its value: a case sees only
    # feedback sent while it held the hash (server/outcomes.py).
    Column("reported_at", DateTime(timezone=True), nullable=False),
)
# Partners' own submissions, few among all feedback: the status lookup of every feedback and
# withdrawal reads them (migration 0004).
Index("ix_partner_feedback_submitted", partner_feedback.c.record_id,
      postgresql_where=partner_feedback.c.submitted == 1, sqlite_where=partner_feedback.c.submitted == 1)


def value_key(value: str) -> bytes:
    """case_hashes.value_key for a (normalised) hash value."""
    return hashlib.sha256(value.encode()).digest()
