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
  submission made since a case held it may make it Active again.

The data is brought to the new rules as well: locks longer than an hour end within the hour;
records are recomputed where the old rules left them Active (a partner's submission made after a
person's case held the hash, which every case then withdrew; a revoked partner's submission),
with new change numbers so partners learn of it; Deleted records (which only purge makes) are
marked as withdrawn by people. The rules are written out here, as they are today, so that this
revision never changes with the application's code.

Revision ID: 0005
Revises: 0004
"""

import time
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Time = sa.DateTime(timezone=True)


_LOCK_SECONDS = 3600
_HOLDERS = ("FROM case_hashes h WHERE h.signal_type = r.signal_type AND h.value = r.value")
# Records that the new rules no longer hold Active: held by cases that all withdrew, with no
# partner submission (still standing, by an active partner) from before the first of them; or
# held by no case and no such submission at all (a revoked partner's).
_NO_LONGER_ACTIVE = sa.text(f"""
SELECT r.id, EXISTS (SELECT 1 {_HOLDERS}) AS held_by_cases FROM exchange_records r
WHERE r.status = 'Active'
  AND NOT EXISTS (SELECT 1 {_HOLDERS} AND h.status = 'active')
  AND NOT EXISTS (SELECT 1 FROM partner_feedback f JOIN partners p ON p.id = f.partner_id
                  WHERE f.record_id = r.id AND f.submitted = 1 AND f.value NOT IN ('Withdrawn', 'Deleted')
                    AND p.status = 'active'
                    AND (NOT EXISTS (SELECT 1 {_HOLDERS})
                         OR f.created_at < (SELECT min(h.added_at) {_HOLDERS})))
ORDER BY r.id""")


def _end_long_locks(connection: sa.Connection) -> None:
    cap = datetime.now(timezone.utc) + timedelta(seconds=_LOCK_SECONDS)
    connection.execute(sa.text("UPDATE pin_attempts SET locked_until = :cap WHERE locked_until > :cap")
                       .bindparams(sa.bindparam("cap", type_=Time)), {"cap": cap})


def _recompute_records(connection: sa.Connection) -> None:
    changed = connection.execute(_NO_LONGER_ACTIVE).all()
    if not changed:
        return
    # Change numbers as server/exchange.py hands them out: the next ones from the counter row,
    # with a time that never goes back.
    seq, modified = connection.execute(sa.text("SELECT seq, modified_at FROM exchange_counter WHERE id = 1")).one()
    moment = max(int(modified), int(time.time()))
    connection.execute(sa.text("UPDATE exchange_counter SET seq = :seq, modified_at = :moment WHERE id = 1"),
                       {"seq": seq + len(changed), "moment": moment})
    connection.execute(sa.text("UPDATE exchange_records SET status = 'Withdrawn', person_withdrawn = :by_person, "
                               "change_seq = :seq, modified_at = :moment WHERE id = :id"),
                       [{"id": record_id, "by_person": int(bool(by_cases)), "seq": seq + number, "moment": moment}
                        for number, (record_id, by_cases) in enumerate(changed, start=1)])


def upgrade() -> None:
    connection = op.get_bind()
    _end_long_locks(connection)
    with op.batch_alter_table("pin_attempts") as batch:
        batch.drop_column("lockouts")
    op.add_column("idempotency", sa.Column("pin_salt", sa.LargeBinary(16)))

    op.add_column("partner_feedback", sa.Column("reported_at", Time))
    op.execute("UPDATE partner_feedback SET reported_at = updated_at")
    with op.batch_alter_table("partner_feedback") as batch:
        batch.alter_column("reported_at", existing_type=Time, nullable=False)

    op.add_column("exchange_records", sa.Column("person_withdrawn", sa.SmallInteger, nullable=False,
                                                server_default="0"))
    op.execute("UPDATE exchange_records SET person_withdrawn = 1 WHERE status = 'Deleted' OR (status = 'Withdrawn' "
               "AND EXISTS (SELECT 1 FROM case_hashes WHERE case_hashes.signal_type = exchange_records.signal_type "
               "AND case_hashes.value = exchange_records.value))")
    _recompute_records(connection)


def downgrade() -> None:
    op.drop_column("exchange_records", "person_withdrawn")
    op.drop_column("partner_feedback", "reported_at")
    op.drop_column("idempotency", "pin_salt")
    with op.batch_alter_table("pin_attempts") as batch:
        batch.add_column(sa.Column("lockouts", sa.Integer, nullable=False, server_default="0"))
