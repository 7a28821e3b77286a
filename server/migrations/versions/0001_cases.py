"""Cases, their hashes, PIN-attempt counters, idempotency records and the server secret.

Revision ID: 0001
Revises:
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    secret = op.create_table(
        "server_secret",
        sa.Column("id", sa.SmallInteger, primary_key=True),
        sa.Column("secret", sa.LargeBinary(32), nullable=False),
    )
    op.bulk_insert(secret, [{"id": 1, "secret": secrets.token_bytes(32)}])
    op.create_table(
        "cases",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("case_number", sa.String(19), nullable=False, unique=True),
        sa.Column("pin_hash", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("language", sa.String(2), nullable=False),
        sa.Column("ref", sa.String(32)),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("updated_at", Time, nullable=False),
        sa.Column("withdrawn_at", Time),
    )
    op.create_table(
        "case_hashes",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("case_id", Id, sa.ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
        sa.Column("signal_type", sa.String(16), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("quality", sa.SmallInteger),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("added_at", Time, nullable=False),
        sa.Column("updated_at", Time, nullable=False),
        sa.Column("withdrawn_at", Time),
        sa.UniqueConstraint("case_id", "signal_type", "value", name="uq_case_hash"),
    )
    op.create_index("ix_case_hashes_signal_value", "case_hashes", ["signal_type", "value"])
    op.create_index("ix_case_hashes_updated", "case_hashes", ["updated_at"])
    op.create_table(
        "pin_attempts",
        sa.Column("key", sa.LargeBinary(32), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("lockouts", sa.Integer, nullable=False),
        sa.Column("locked_until", Time),
        sa.Column("updated_at", Time, nullable=False),
    )
    op.create_table(
        "idempotency",
        sa.Column("key", sa.LargeBinary(32), primary_key=True),
        sa.Column("case_id", Id, sa.ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
        sa.Column("request_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("pin_proposed", sa.SmallInteger, nullable=False),
        sa.Column("created_at", Time, nullable=False),
    )


def downgrade() -> None:
    for table in ("idempotency", "pin_attempts", "case_hashes", "cases", "server_secret"):
        op.drop_table(table)
