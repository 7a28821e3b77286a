"""Shared pytest fixtures for Kalkan's tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

# tests/pyodide.py is a plain module (also used by bench/ scripts); make it importable whether
# or not tests/ is a package.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pyodide import PyodideSession  # noqa: E402
from server_harness import (  # noqa: E402
    LiveServer,
    PostgresDatabases,
    StartLiveServer,
    sqlite_url,
    test_postgres_url,
)


@pytest.fixture(scope="session")
def pyodide() -> Iterator[PyodideSession]:
    """One Pyodide (Node) process for the whole test session: booting takes seconds.

    `pyodide.run(code, **inputs)` runs `code` in a fresh namespace inside Pyodide, with the repo's
    pyhash/ importable, and returns the JSON-decoded `result` variable or last expression.
    See tests/pyodide.py for inputs (JSON values, bytes, host file paths) and `execute()` timing.
    """
    session = PyodideSession()
    try:
        yield session
    finally:
        session.close()


# --- browser tests (pytest-playwright) ------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"  # Debian's package, installed by build.py's test setup


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Playwright launches Debian's Chromium (no `playwright install`: its download cannot work
    here), quietly: no sandbox (root in a container), no GPU, no background or first-run traffic."""
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [*browser_type_launch_args.get("args", []), "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run",
                 "--disable-sync", "--disable-default-apps", "--no-default-browser-check"],
    }


# --- databases and the live server (see tests/server_harness.py) --------------------------------


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    """Creates and drops the per-test PostgreSQL databases, a few ahead of need (one admin
    connection for the session, to $KALKAN_TEST_POSTGRES_URL or postgres@127.0.0.1:5432/test)."""
    databases = PostgresDatabases(test_postgres_url())
    try:
        yield databases
    finally:
        databases.close()


@pytest.fixture
def postgresql_database_url(postgres_databases: PostgresDatabases) -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL database of this test's own, dropped (WITH (FORCE)) after
    it: postgresql+asyncpg://postgres@127.0.0.1:5432/kalkan_t_<pid>_<random>."""
    name = postgres_databases.acquire()
    try:
        yield postgres_databases.url(name)
    finally:
        postgres_databases.release(name)


@pytest.fixture
def sqlite_database_url(tmp_path: Path) -> str:
    """URL of a SQLite file that does not exist yet: sqlite+aiosqlite:///<tmp_path>/kalkan.db."""
    return sqlite_url(tmp_path / "kalkan.db")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """A fresh, empty database of the test's own, once on SQLite and once on PostgreSQL (test
    ids ...[sqlite] and ...[postgresql]; `-k sqlite` picks one)."""
    return str(request.getfixturevalue(f"{request.param}_database_url"))


@pytest.fixture
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartLiveServer]:
    """Starts the real server: `live_server(database_url, env={...})` returns a running
    LiveServer (healthz answered) with its own data dir and log files; every server still running
    after the test gets SIGTERM and must exit within 15 s."""
    servers: list[LiveServer] = []

    def start(database_url: str, *, env: Mapping[str, str] | None = None, module: str = "server",
              start_timeout: float = 30.0) -> LiveServer:
        root = tmp_path_factory.mktemp("live-server")
        server = LiveServer(database_url, data_dir=root / "data", log_dir=root, env=env,
                            module=module, start_timeout=start_timeout)
        servers.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        failures: list[AssertionError] = []
        for server in servers:  # stop every one, even after one refused to stop
            try:
                server.stop()
            except AssertionError as failure:
                failures.append(failure)
        if failures:
            raise failures[0]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["in_process", "live"])
async def any_client(request: pytest.FixtureRequest, database_url: str, tmp_path: Path, live_server):  # type: ignore[no-untyped-def]
    """The same server tests in-process and against `python -m server` on loopback (no rate limit)."""
    from server_client import in_process

    if request.param == "in_process":
        async with in_process(database_url, tmp_path / "data") as c:
            yield c
    else:
        server = live_server(database_url, env={"KALKAN_RATE_LIMIT_PER_MINUTE": "0"})
        async with server.async_client() as c:
            yield c
