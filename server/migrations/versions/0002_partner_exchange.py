"""Partner API: partners and their keys, exchange records with change numbers, partner feedback.

Existing case hashes become exchange records (one per signal type and value), numbered in order.

Revision ID: 0002
Revises: 0001
"""

import hashlib
import time

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = sa.DateTime(timezone=True)


def _key_digest(signal_type: str, value: str) -> bytes:
    # The same rule as server.exchange.record_key (kept here so this revision never changes).
    return hashlib.sha256(signal_type.encode() + b"\0" + value.encode()).digest()


def upgrade() -> None:
    op.create_table(
        "partners",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("keys_issued_at", Time, nullable=False),
        sa.Column("revoked_at", Time),
    )
    op.create_table(
        "partner_keys",
        sa.Column("key_hash", sa.LargeBinary(32), primary_key=True),
        sa.Column("partner_id", Id, sa.ForeignKey("partners.id", ondelete="CASCADE"), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("created_at", Time, nullable=False),
    )
    op.create_index("ix_partner_keys_partner", "partner_keys", ["partner_id"])
    counter = op.create_table(
        "exchange_counter",
        sa.Column("id", sa.SmallInteger, primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("modified_at", sa.BigInteger, nullable=False),
    )
    records = op.create_table(
        "exchange_records",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("key_digest", sa.LargeBinary(32), nullable=False, unique=True),
        sa.Column("signal_type", sa.String(16), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("change_seq", sa.BigInteger, nullable=False, unique=True),
        sa.Column("modified_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_exchange_records_modified", "exchange_records", ["modified_at", "change_seq"])
    op.create_index("ix_exchange_records_value", "exchange_records", ["value"], postgresql_using="hash")
    op.create_table(
        "partner_feedback",
        sa.Column("record_id", Id, sa.ForeignKey("exchange_records.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("partner_id", Id, sa.ForeignKey("partners.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("value", sa.String(16), nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("submitted", sa.SmallInteger, nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("updated_at", Time, nullable=False),
    )

    # Cases opened before this revision: their hashes become records, Active while any case
    # holding them is active.
    moment = int(time.time())
    held = sa.table("case_hashes", sa.column("signal_type"), sa.column("value"), sa.column("status"))
    rows = op.get_bind().execute(
        sa.select(held.c.signal_type, held.c.value,
                  sa.func.max(sa.case((held.c.status == "active", 1), else_=0)).label("active"))
        .group_by(held.c.signal_type, held.c.value)
        .order_by(held.c.signal_type, held.c.value)).all()
    op.bulk_insert(records, [
        {"key_digest": _key_digest(r.signal_type, r.value), "signal_type": r.signal_type, "value": r.value,
         "status": "Active" if r.active else "Withdrawn", "change_seq": number, "modified_at": moment}
        for number, r in enumerate(rows, start=1)
    ])
    op.bulk_insert(counter, [{"id": 1, "seq": len(rows), "modified_at": moment}])


def downgrade() -> None:
    for table in ("partner_feedback", "exchange_records", "exchange_counter", "partner_keys", "partners"):
        op.drop_table(table)
