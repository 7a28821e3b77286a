"""What an attack run on the case and partner APIs needed from the tables.

- `pin_attempts.lockouts` goes: locks no longer escalate (server/config.py, PIN_LOCK_SECONDS).
- `idempotency.pin_salt`: a random value per creation that the replayed PIN is derived from,
  together with the key, so that a key used again after its record was purged gets another PIN.
  Records made before have none and are no longer replayed (a replay is for a lost response,
  seconds or minutes old: nothing is lost by this).
- `partner_feedback.reported_at`: when the partner last reported on the record, so a case shows
  only what was reported while it held the hash. Existing feedback takes the time its value last
  changed, the latest report known.
- `exchange_records.person_withdrawn`: every case holding the hash was withdrawn, so no partner
  submission may make it Active again. Set for existing Withdrawn records that cases hold.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("pin_attempts") as batch:
        batch.drop_column("lockouts")
    op.add_column("idempotency", sa.Column("pin_salt", sa.LargeBinary(16)))

    op.add_column("partner_feedback", sa.Column("reported_at", Time))
    op.execute("UPDATE partner_feedback SET reported_at = updated_at")
    with op.batch_alter_table("partner_feedback") as batch:
        batch.alter_column("reported_at", existing_type=Time, nullable=False)

    op.add_column("exchange_records", sa.Column("person_withdrawn", sa.SmallInteger, nullable=False,
                                                server_default="0"))
    op.execute("UPDATE exchange_records SET person_withdrawn = 1 WHERE status = 'Withdrawn' AND EXISTS "
               "(SELECT 1 FROM case_hashes WHERE case_hashes.signal_type = exchange_records.signal_type "
               "AND case_hashes.value = exchange_records.value)")


def downgrade() -> None:
    op.drop_column("exchange_records", "person_withdrawn")
    op.drop_column("partner_feedback", "reported_at")
    op.drop_column("idempotency", "pin_salt")
    with op.batch_alter_table("pin_attempts") as batch:
        batch.add_column(sa.Column("lockouts", sa.Integer, nullable=False, server_default="0"))
