"""The test harness itself: per-test databases and the live server (tests/server_harness.py)."""

from __future__ import annotations

import asyncio
import json
import signal
import textwrap
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from server_harness import (
    CLIENT_ADDRESS,
    CLIENT_USER_AGENT,
    PostgresDatabases,
    ServerStartError,
    StartLiveServer,
    sqlite_url,
    test_postgres_url,
)


async def table_names(url: str) -> list[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    finally:
        await engine.dispose()


async def existing_databases(names: list[str]) -> set[str]:
    dsn = make_url(test_postgres_url()).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch("SELECT datname FROM pg_database WHERE datname = ANY($1)", names)
        return {row[0] for row in rows}
    finally:
        await connection.close()


def test_database_url_is_fresh_empty_and_writable(database_url: str, tmp_path: Path) -> None:
    if database_url.startswith("sqlite"):
        assert database_url == sqlite_url(tmp_path / "kalkan.db")
        assert not (tmp_path / "kalkan.db").exists()
    else:
        assert str(make_url(database_url).database).startswith("kalkan_t_")

    async def check() -> None:
        assert await table_names(database_url) == []
        engine = create_async_engine(database_url)
        try:
            async with engine.begin() as connection:
                await connection.execute(text("CREATE TABLE t (x INTEGER)"))
                await connection.execute(text("INSERT INTO t VALUES (1)"))
        finally:
            await engine.dispose()
        assert await table_names(database_url) == ["t"]

    asyncio.run(check())


def test_postgresql_databases_are_separate_and_dropped_even_while_in_use() -> None:
    dead_pid_name = "kalkan_t_999999999_feedface"  # pid above Linux's pid_max: a crashed run's
    dsn = make_url(test_postgres_url()).set(drivername="postgresql").render_as_string(hide_password=False)

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{dead_pid_name}"'))
    databases = PostgresDatabases(test_postgres_url(), spares=1)
    assert asyncio.run(existing_databases([dead_pid_name])) == set(), "leftover of a dead run kept"
    first, second = databases.acquire(), databases.acquire()
    assert first != second

    async def use_both() -> asyncpg.Connection:
        one = await asyncpg.connect(make_url(databases.url(first)).set(drivername="postgresql")
                                    .render_as_string(hide_password=False))
        await one.execute("CREATE TABLE only_in_first (x int)")
        await one.close()
        assert await table_names(databases.url(second)) == []
        # Left open on purpose, like a server a test forgot to stop: the drop must not wait for it.
        return await asyncpg.connect(make_url(databases.url(second)).set(drivername="postgresql")
                                     .render_as_string(hide_password=False))

    loop = asyncio.new_event_loop()
    try:
        stray = loop.run_until_complete(use_both())
        databases.release(first)
        databases.release(second)
        databases.close()  # also drops the spare it had made ahead
        assert loop.run_until_complete(existing_databases([first, second])) == set()
        assert stray.is_closed() or loop.run_until_complete(_is_dead(stray))
    finally:
        loop.close()


async def _is_dead(connection: asyncpg.Connection) -> bool:
    try:
        await connection.fetchval("SELECT 1")
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
        return True
    return False


def test_live_server_serves_survives_kill_and_restart_and_logs_no_client(
        live_server: StartLiveServer, database_url: str) -> None:
    server = live_server(database_url)
    assert server.url("healthz") == server.url("/healthz") == f"{server.base_url}/healthz"
    with server.client() as client:
        assert client.get("/healthz").text == "ok"
        assert client.get("/no-such-page").status_code == 404
        refused = client.post("/api/cases", content=b"{not json", headers={"Content-Type": "application/json"})
        assert 400 <= refused.status_code < 500
        # The server migrated the database it was given (KALKAN_DATABASE_URL reached it).
        assert "alembic_version" in asyncio.run(table_names(database_url))

        assert server.kill() == -9  # kill -9: no shutdown code runs
        assert not server.running
        with pytest.raises(httpx.ConnectError):
            client.get("/healthz")

        server.restart()  # same port: the client made before still works
        assert client.get("/healthz").status_code == 200
        # uvicorn shuts down gracefully, then re-raises SIGTERM: -15 is its normal exit here.
        assert server.stop() == -signal.SIGTERM

    logs = server.logs()
    assert CLIENT_ADDRESS not in logs and CLIENT_USER_AGENT not in logs


def test_live_server_failure_to_start_shows_the_servers_stderr(live_server: StartLiveServer) -> None:
    with pytest.raises(ServerStartError, match="unsupported database URL scheme"):
        live_server("mysql://nobody@127.0.0.1/kalkan")


STAND_IN = textwrap.dedent('''
    """Stand-in for `python -m server`: same flags, answers /healthz and /env, or never serves."""
    import argparse, json, os, sys, time
    from http.server import BaseHTTPRequestHandler, HTTPServer

    parser = argparse.ArgumentParser()
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    args = parser.parse_args()
    print("stand-in stdout", flush=True)
    print("stand-in stderr", file=sys.stderr, flush=True)
    if os.environ.get("STAND_IN_NEVER_SERVES"):
        time.sleep(3600)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            env = {k: v for k, v in os.environ.items() if k.startswith("KALKAN_") or k.startswith("STAND_IN")}
            body = b"ok" if self.path == "/healthz" else json.dumps(env).encode()
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    HTTPServer((args.host, args.port), Handler).serve_forever()
''')


def test_live_server_environment_logs_and_start_timeout(
        live_server: StartLiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "kalkan_stand_in.py").write_text(STAND_IN)
    monkeypatch.setenv("KALKAN_FROM_THE_SHELL", "must not reach the server")
    server = live_server("sqlite+aiosqlite:///x.db", module="kalkan_stand_in",
                         env={"PYTHONPATH": str(tmp_path), "STAND_IN_EXTRA": "1"})
    with server.client() as client:
        env = json.loads(client.get("/env").content)
    assert env == {"KALKAN_DATABASE_URL": "sqlite+aiosqlite:///x.db",
                   "KALKAN_DATA_DIR": str(server.data_dir), "STAND_IN_EXTRA": "1"}
    assert server.data_dir.is_dir()
    assert server.stdout() == "stand-in stdout\n" and server.stderr() == "stand-in stderr\n"
    server.restart()
    assert server.logs().count("stand-in stdout") == 2  # logs of every run are kept

    with pytest.raises(ServerStartError, match=r"did not answer 200 within 1 s(.|\n)*stand-in stderr"):
        live_server("sqlite+aiosqlite:///x.db", module="kalkan_stand_in", start_timeout=1,
                    env={"PYTHONPATH": str(tmp_path), "STAND_IN_NEVER_SERVES": "1"})
