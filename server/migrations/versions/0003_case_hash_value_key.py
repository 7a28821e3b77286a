"""Case hashes are indexed by a digest of their value, not the value itself.

PostgreSQL's b-tree refuses index entries over ~2.7 KB, and a vPDQ value grows with the video
(about 80 characters a second): a video of half a minute or more could not be stored. The unique
constraint and the lookup index move to `value_key`, SHA-256 of the value.

Revision ID: 0003
Revises: 0002
"""

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_BATCH = 1000


def upgrade() -> None:
    op.add_column("case_hashes", sa.Column("value_key", sa.LargeBinary(32), nullable=True))
    connection = op.get_bind()
    table = sa.table("case_hashes", sa.column("id", sa.BigInteger), sa.column("value", sa.Text),
                     sa.column("value_key", sa.LargeBinary))
    fill = sa.update(table).where(table.c.id == sa.bindparam("row_id")).values(value_key=sa.bindparam("key"))
    last = 0
    while True:
        rows = connection.execute(sa.select(table.c.id, table.c.value).where(table.c.id > last)
                                  .order_by(table.c.id).limit(_BATCH)).all()
        if not rows:
            break
        connection.execute(fill, [{"row_id": row_id, "key": hashlib.sha256(value.encode()).digest()}
                                  for row_id, value in rows])
        last = rows[-1][0]
    with op.batch_alter_table("case_hashes") as batch:
        batch.alter_column("value_key", existing_type=sa.LargeBinary(32), nullable=False)
        batch.drop_constraint("uq_case_hash", type_="unique")
        batch.drop_index("ix_case_hashes_signal_value")
        batch.create_unique_constraint("uq_case_hash_key", ["case_id", "signal_type", "value_key"])
        batch.create_index("ix_case_hashes_signal_value_key", ["signal_type", "value_key"])


def downgrade() -> None:
    with op.batch_alter_table("case_hashes") as batch:
        batch.drop_index("ix_case_hashes_signal_value_key")
        batch.drop_constraint("uq_case_hash_key", type_="unique")
        batch.create_unique_constraint("uq_case_hash", ["case_id", "signal_type", "value"])
        batch.create_index("ix_case_hashes_signal_value", ["signal_type", "value"])
        batch.drop_column("value_key")
