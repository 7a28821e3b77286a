"""Alembic environment: always given a connection by server.migrate (never opens its own)."""

from alembic import context

from server.models import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `python -m server migrate` (server.migrate.upgrade)")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
