"""The database: SQLite (the embedded default) or PostgreSQL, chosen by URL.

The case service writes its database work as plain synchronous functions of a SQLAlchemy
`Connection` (`Work`), and `Database` decides how they run:

- PostgreSQL (asyncpg): each in its own transaction on the event loop, through SQLAlchemy's
  `run_sync` bridge; rows are locked with FOR UPDATE where it matters.
- SQLite: in threads, with the standard-library driver, one thread hop per transaction. (The
  asyncio driver hops to its thread and back for every statement, and each hop waits for the busy
  event loop: three inserts took milliseconds under load.) WAL mode with synchronous=FULL, so a
  commit that returned is on disk. Reads run on a small pool of read connections with a plain
  (deferred) BEGIN: in WAL mode they never wait for the writer and see a consistent snapshot.
  Writes run one after another on a single writer thread and connection, and begin with BEGIN
  IMMEDIATE, so another process's writer queues on the database lock (busy timeout) instead of
  failing half-way.

On both, case creations are group-committed: those that arrive while a transaction runs are
written together in the next one, with a multi-row statement per table and one commit (one
fsync) for all; each is answered only after that commit returned.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, Generic, TypeVar

import sqlalchemy
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_READERS = 4
MAX_GROUP = 64  # creations per group commit: bounds how long one transaction holds the lock

T = TypeVar("T")
Item = TypeVar("Item")
R = TypeVar("R")
Work = Callable[[Connection], T]


def _make_sqlite_directory(url: str) -> None:
    parsed = make_url(url)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas_and_begin(engine: Engine, begin: str) -> None:
    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection) -> None:  # type: ignore[no-untyped-def]
        connection.exec_driver_sql(begin)


def create_engine(url: str) -> AsyncEngine:
    """An asyncio engine that may write (SQLite: every transaction BEGIN IMMEDIATE). For
    migrations, command-line tools and tests; the server itself goes through `Database`."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        _make_sqlite_directory(url)
        if parsed.drivername != "sqlite+aiosqlite":
            parsed = parsed.set(drivername="sqlite+aiosqlite")
        # hide_parameters: a database error must not put a case number into a log.
        engine = create_async_engine(parsed, pool_size=8, max_overflow=8, hide_parameters=True)
        _sqlite_pragmas_and_begin(engine.sync_engine, "BEGIN IMMEDIATE")
        return engine
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername != "postgresql+asyncpg":
            parsed = parsed.set(drivername="postgresql+asyncpg")
        # No pre-ping: it costs a round trip per checkout; a connection that died (database
        # restarted) is dropped from the pool by the error it raises.
        # Every statement is planned for its own parameters against the tables as they are now
        # (force_custom_plan). asyncpg prepares each statement once per connection, and after five
        # runs PostgreSQL may keep one generic plan for it: made while a table was still empty
        # (a new deployment), that plan went on scanning the whole table once it held rows, until
        # autovacuum next analysed it (seen: 10 ms instead of 3 per partner feedback after 90,000
        # feedback rows). Planning these small statements costs tens of microseconds.
        return create_async_engine(parsed, pool_size=10, max_overflow=10, hide_parameters=True,
                                   connect_args={"server_settings": {"plan_cache_mode": "force_custom_plan"}})
    raise ValueError(f"unsupported database URL scheme {parsed.drivername!r}: use sqlite or postgresql")


def _sqlite_sync_engine(url: str, *, begin: str, pool_size: int) -> Engine:
    parsed = make_url(url).set(drivername="sqlite+pysqlite")
    engine = sqlalchemy.create_engine(parsed, pool_size=pool_size, max_overflow=0, hide_parameters=True,
                                      connect_args={"check_same_thread": False})
    _sqlite_pragmas_and_begin(engine, begin)
    return engine


class Database:
    """Runs the case service's database work: `read`, `write`, `group_commit`."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        self.is_sqlite = self.dialect == "sqlite"
        # Also for code that wants asyncio access (other modules, tools); writes made through it
        # on SQLite queue on the database lock like any other process's.
        self.engine: AsyncEngine = create_engine(url)
        if self.is_sqlite:  # create_engine made the database's directory
            self._writer = _sqlite_sync_engine(url, begin="BEGIN IMMEDIATE", pool_size=1)
            self._reader = _sqlite_sync_engine(url, begin="BEGIN", pool_size=SQLITE_READERS)
            self._write_thread = ThreadPoolExecutor(1, thread_name_prefix="kalkan-sqlite-writer")
            self._read_threads = ThreadPoolExecutor(SQLITE_READERS, thread_name_prefix="kalkan-sqlite-reader")

    async def read(self, work: Work[T]) -> T:
        """`work` in a read transaction (a consistent snapshot), rolled back afterwards."""
        if not self.is_sqlite:
            async with self.engine.connect() as conn:
                return await conn.run_sync(work)
        return await asyncio.get_running_loop().run_in_executor(self._read_threads, _in_transaction,
                                                                self._reader, work)

    async def write(self, work: Work[T]) -> T:
        """`work` in its own transaction, committed if it returns, rolled back if it raises."""
        if not self.is_sqlite:
            async with self.engine.begin() as conn:
                return await conn.run_sync(work)
        return await asyncio.get_running_loop().run_in_executor(self._write_thread, _in_transaction,
                                                                self._writer, work)

    def group_commit(self, run: Callable[[Connection, list[Item]], list[R]]) -> GroupCommit[Item, R]:
        """A writer that puts the items submitted while a transaction runs into the next one.

        `run(conn, items)` writes a group of items in one transaction and returns one result per
        item: one commit (one fsync) and a few multi-row statements for the whole group instead
        of a transaction per item.
        """
        return GroupCommit(self, run)

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.is_sqlite:
            self._write_thread.shutdown(wait=True)
            self._read_threads.shutdown(wait=True)
            self._writer.dispose()
            self._reader.dispose()


class GroupCommit(Generic[Item, R]):
    """Group commit for one kind of write (see Database.group_commit).

    `submit` returns once the transaction holding its item committed. If the group's transaction
    fails (say one item breaks a unique constraint), it is rolled back and every item in it is
    written again alone, so only the failing one sees the error, and it is as if it never ran.
    One group is in flight per process at a time; PostgreSQL still sees the other processes'.
    """

    def __init__(self, database: Database, run: Callable[[Connection, list[Item]], list[R]]) -> None:
        self._database = database
        self._run = run
        self._waiting: list[tuple[Item, asyncio.Future[R]]] = []
        self._committer: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> R:
        done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        # Mark the outcome as seen even if the request was cancelled meanwhile (no log noise).
        done.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._waiting.append((item, done))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_waiting())
        # shield: a request whose client went away must not cancel a commit shared with others.
        return await asyncio.shield(done)

    async def _commit_waiting(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting[:MAX_GROUP], self._waiting[MAX_GROUP:]
            items = [item for item, _ in group]
            try:
                outcomes: list[tuple[bool, Any]] = [(True, r) for r in await self._database.write(
                    partial(_run_group, self._run, items))]
            except Exception:
                outcomes = []
                for item in items:
                    try:
                        outcomes.append((True, (await self._database.write(partial(_run_group, self._run, [item])))[0]))
                    except Exception as exc:  # handed to the waiting request
                        outcomes.append((False, exc))
            for (_, done), (ok, value) in zip(group, outcomes):
                if not done.done():
                    if ok:
                        done.set_result(value)
                    else:
                        done.set_exception(value)


_REUSE_PLANS = sqlalchemy.text("SET LOCAL plan_cache_mode = auto")


def reuse_cached_plans(conn: Connection) -> None:
    """From here to the end of this transaction, PostgreSQL may run statements on plans cached
    from earlier runs (the server's connections otherwise plan every statement afresh: see
    create_engine). For work that only inserts, or updates rows by key, where any plan is as good
    as a new one and replanning each row of a batch costs a tenth or more of its throughput."""
    if conn.dialect.name == "postgresql":
        conn.execute(_REUSE_PLANS)


def _run_group(run: Callable[[Connection, list[Item]], list[R]], items: list[Item], conn: Connection) -> list[R]:
    reuse_cached_plans(conn)  # group commits insert and update by key only
    return run(conn, items)


def _in_transaction(engine: Engine, work: Work[T]) -> T:
    with engine.begin() as conn:
        return work(conn)
