"""An index of partners' own submissions (partner_feedback rows with submitted = 1).

Every feedback, withdrawal and purge recomputes the status of the records it touches, which asks
which of them a partner submitted itself. Partner-submitted rows are few among all feedback, and
without an index of just them PostgreSQL's planner may scan the whole feedback table for them
(it did: before the table was first analysed, it guessed a scan cheaper than probing the primary
key once per record). The partial index holds only those rows, so the lookup costs the same
however much feedback the platforms send.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_ONLY_SUBMITTED = sa.text("submitted = 1")


def upgrade() -> None:
    op.create_index("ix_partner_feedback_submitted", "partner_feedback", ["record_id"],
                    postgresql_where=_ONLY_SUBMITTED, sqlite_where=_ONLY_SUBMITTED)


def downgrade() -> None:
    op.drop_index("ix_partner_feedback_submitted", table_name="partner_feedback")
