"""Schema migrations (Alembic, scripts in server/migrations/versions)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from .db import Database, create_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # env.py runs the migrations on this connection (Alembic's connection-sharing recipe), so the
    # same code works from the CLI and from inside a running event loop.
    config.attributes["connection"] = connection
    return config


# Any constant: hosts starting at once on one PostgreSQL take turns migrating.
_MIGRATION_LOCK_ID = 0x4B414C4B  # "KALK"


@asynccontextmanager
async def migrated(url: str) -> AsyncIterator[Database]:
    """The database at `url`, its schema brought up to date first: for command-line tools."""
    engine = create_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    database = Database(url)
    try:
        yield database
    finally:
        await database.dispose()


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
        await connection.run_sync(lambda sync: command.upgrade(_config(sync), revision))
