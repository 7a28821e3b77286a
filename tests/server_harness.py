"""Test harness for the case server: fresh databases, and the real server in a subprocess.

Tests use it through the fixtures in conftest.py (`database_url`, `sqlite_database_url`,
`postgresql_database_url`, `live_server`). Nothing here is mocked: the server under test is
`python -m server` as people run it, talking to a real SQLite file or a real PostgreSQL database.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any, Protocol

import asyncpg
import httpx
from sqlalchemy.engine import make_url

REPO_ROOT = Path(__file__).resolve().parent.parent
# Same default as build.py, whose setup step makes this server exist on a fresh Debian machine.
DEFAULT_TEST_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
HOST = "127.0.0.1"
# LiveServer.client() sends from this loopback address with this user agent. Neither appears
# anywhere else (the server itself listens on 127.0.0.1), so a test can assert that the server's
# logs never contain them: the server must not log client addresses or user agents.
CLIENT_ADDRESS = "127.77.0.1"
CLIENT_USER_AGENT = "kalkan-test-client/ua-5f1c9e"


def test_postgres_url() -> str:
    """The server the PostgreSQL tests use: $KALKAN_TEST_POSTGRES_URL or the local default."""
    return os.environ.get("KALKAN_TEST_POSTGRES_URL") or DEFAULT_TEST_POSTGRES_URL


test_postgres_url.__test__ = False  # type: ignore[attr-defined]  # pytest: not a test


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


# --- PostgreSQL: one fresh database per test ------------------------------------------------------

DB_PREFIX = "kalkan_t_"  # kalkan_t_<pid>_<random>: the pid lets a later run drop a crashed run's


class PostgresDatabases:
    """Hands out fresh, empty PostgreSQL databases, one per test, and drops them afterwards.

    CREATE DATABASE costs 40-80 ms here (it copies template1 and flushes WAL), and DROP another
    15-20 ms: too slow to pay in every one of hundreds of tests. So a background thread, on its
    own admin connection, keeps `spares` databases created ahead of need and drops used ones
    later; acquire() then only takes a ready name. All SQL runs on that thread's event loop; the
    test thread talks to it through a thread-safe queue and call_soon_threadsafe.
    """

    def __init__(self, admin_url: str, spares: int = 2) -> None:
        self._admin_url = make_url(admin_url)
        self._spares = spares
        self._ready: queue.Queue[str | BaseException] = queue.Queue()
        self._to_drop: list[str] = []  # touched only on the loop thread
        self._closing = False
        self._loop = asyncio.new_event_loop()
        self._wake = asyncio.Event()
        self._thread = threading.Thread(target=self._loop.run_forever, name="kalkan-pg-admin",
                                        daemon=True)
        self._thread.start()
        dsn = self._admin_url.set(drivername="postgresql").render_as_string(hide_password=False)
        try:
            self._conn: asyncpg.Connection = self._call(asyncpg.connect(dsn, timeout=10))
            if self._admin_url.host in (None, "localhost", "::1") or str(self._admin_url.host).startswith("127."):
                self._call(self._drop_leftovers())  # pids are only meaningful on this machine
        except Exception as exc:
            self._stop_loop()
            # Fail, never skip: a suite that quietly drops its PostgreSQL half hides real bugs.
            raise RuntimeError(
                f"PostgreSQL for the tests is not reachable at {admin_url}: {exc!r}. "
                "`python3 build.py test` sets it up; or set KALKAN_TEST_POSTGRES_URL.") from exc
        self._worker = asyncio.run_coroutine_threadsafe(self._maintain(), self._loop)

    def acquire(self) -> str:
        """The name of a fresh database nobody else uses; usually ready at once."""
        item = self._ready.get(timeout=120)
        if isinstance(item, BaseException):
            self._ready.put(item)  # every later acquire() fails the same way
            raise RuntimeError("creating PostgreSQL test databases failed") from item
        self._loop.call_soon_threadsafe(self._wake.set)  # make the next spare
        return item

    def url(self, name: str) -> str:
        """SQLAlchemy URL of database `name`: same server, user and driver as the admin URL."""
        return self._admin_url.set(database=name).render_as_string(hide_password=False)

    def release(self, name: str) -> None:
        """Drop `name` soon, in the background (the test need not wait for it)."""
        self._loop.call_soon_threadsafe(self._schedule_drop, name)

    def close(self) -> None:
        """Drop every database this instance created (spares too) and close the connection."""
        def begin_closing() -> None:
            self._closing = True
            self._wake.set()

        self._loop.call_soon_threadsafe(begin_closing)
        try:
            self._worker.result(timeout=120)
        finally:
            self._call(self._conn.close())
            self._stop_loop()

    # The rest runs on the loop thread.

    def _call(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def _schedule_drop(self, name: str) -> None:
        self._to_drop.append(name)
        self._wake.set()

    async def _maintain(self) -> None:
        # Checks and clear() run in one step of the loop (no await between them), and every
        # wake.set() arrives as a later callback, so no wake-up is lost.
        try:
            while True:
                if self._closing:
                    while not self._ready.empty():
                        self._to_drop.append(str(self._ready.get_nowait()))
                if not self._closing and self._ready.empty():
                    await self._create()  # a test may be waiting: before any drop
                elif self._to_drop:
                    await self._drop(self._to_drop.pop())
                elif not self._closing and self._ready.qsize() < self._spares:
                    await self._create()
                elif self._closing:
                    return
                else:
                    self._wake.clear()
                    await self._wake.wait()
        except BaseException as exc:
            self._ready.put(exc)  # acquire() raises it instead of waiting forever
            raise

    async def _create(self) -> None:
        name = f"{DB_PREFIX}{os.getpid()}_{uuid.uuid4().hex[:12]}"
        await self._conn.execute(f'CREATE DATABASE "{name}"')
        self._ready.put(name)

    async def _drop(self, name: str) -> None:
        # A server a test left running may reconnect between FORCE ending its sessions and the
        # drop itself; forbidding new connections first closes that window.
        await self._conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        await self._conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    async def _drop_leftovers(self) -> None:
        """Drop test databases of earlier runs whose process is gone (killed, crashed)."""
        rows = await self._conn.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE $1", DB_PREFIX.replace("_", r"\_") + "%")
        for (name,) in rows:
            pid = name[len(DB_PREFIX):].split("_", 1)[0]
            if pid.isdigit() and not _process_exists(int(pid)):
                await self._drop(name)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


# --- the real server in a subprocess --------------------------------------------------------------


class ServerStartError(RuntimeError):
    """The server exited or never answered GET /healthz with 200; the message has its stderr."""


def free_port() -> int:
    """A port free right now on 127.0.0.1 (the OS picks it). Another process could take it before
    the server binds; on a test machine that is rare enough not to matter."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _healthz_status(port: int) -> int | None:
    """Status of GET /healthz, or None while nothing answers. http.client rather than urllib or
    httpx: those honour $http_proxy, which must not see loopback traffic."""
    connection = http.client.HTTPConnection(HOST, port, timeout=2)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


class LiveServer:
    """`python -m server --host 127.0.0.1 --port PORT` with KALKAN_DATABASE_URL and
    KALKAN_DATA_DIR set, its stdout and stderr appended to files in `log_dir`.

    The port stays the same across restart(), so `base_url` and clients made earlier stay valid.
    """

    def __init__(self, database_url: str, data_dir: Path, log_dir: Path, *,
                 env: Mapping[str, str] | None = None, module: str = "server",
                 start_timeout: float = 30.0) -> None:
        self.database_url = database_url
        self.data_dir = data_dir
        self.module = module  # tests of the harness itself may start a stand-in module
        self.start_timeout = start_timeout
        self.port = free_port()
        self.base_url = f"http://{HOST}:{self.port}"
        self.stdout_path = log_dir / "server.stdout.log"
        self.stderr_path = log_dir / "server.stderr.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        log_dir.mkdir(parents=True, exist_ok=True)
        # The test decides the server's whole configuration: no KALKAN_* leaks in from the shell.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("KALKAN_")}
        self.env |= {
            "PYTHONUNBUFFERED": "1",  # every line reaches the log file, even right before a kill -9
            "KALKAN_DATABASE_URL": database_url,
            "KALKAN_DATA_DIR": str(data_dir),
            **(env or {}),
        }
        self._process: subprocess.Popen[bytes] | None = None

    def url(self, path: str = "/") -> str:
        return self.base_url + "/" + path.lstrip("/")

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def returncode(self) -> int | None:
        """Exit status of the last run (negative: killed by that signal); None while running."""
        return self._process.poll() if self._process else None

    def start(self) -> None:
        """Start the server and return once GET /healthz answers 200."""
        if self.running:
            raise RuntimeError("server is already running")
        argv = [sys.executable, "-m", self.module, "--host", HOST, "--port", str(self.port)]
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            # Its own session (process group): kill() takes down uvicorn's worker processes too,
            # as a crash of the machine would, and a Ctrl-C in the terminal reaches only pytest,
            # which then stops the server in fixture teardown.
            self._process = subprocess.Popen(argv, cwd=REPO_ROOT, env=self.env, stdin=subprocess.DEVNULL,
                                             stdout=out, stderr=err, start_new_session=True)
        deadline = time.monotonic() + self.start_timeout
        while (status := _healthz_status(self.port)) != 200:
            if (code := self._process.poll()) is not None:
                raise ServerStartError(f"{' '.join(argv)} exited with {code} before /healthz "
                                       f"answered; its stderr:\n{self.stderr()}")
            if time.monotonic() > deadline:
                self.kill()
                raise ServerStartError(f"GET {self.url('/healthz')} did not answer 200 within "
                                       f"{self.start_timeout:g} s (last: {status}); stderr:\n{self.stderr()}")
            time.sleep(0.02)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, as a service manager sends, and wait for the graceful shutdown; returns the
        exit status (-15 for uvicorn, which re-raises the signal once it has shut down). A
        server still up after `timeout` is killed and the test fails."""
        process = self._process
        if process is None or process.poll() is not None:
            return self.returncode
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"server ignored SIGTERM for {timeout:g} s; killed it") from None

    def kill(self) -> int | None:
        """SIGKILL the server's whole process group at once (no shutdown code runs)."""
        process = self._process
        if process is None or process.poll() is not None:
            return self.returncode
        os.killpg(process.pid, signal.SIGKILL)
        return process.wait()

    def restart(self) -> None:
        """stop() if running (a test that wants a crash calls kill() first), then start()."""
        self.stop()
        self.start()

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def logs(self) -> str:
        """Everything the server printed so far, over all its runs."""
        return self.stdout() + self.stderr()

    def client(self, **kwargs: Any) -> httpx.Client:
        """An httpx client for this server, sending from CLIENT_ADDRESS as CLIENT_USER_AGENT.
        trust_env=False: $http_proxy and friends must not divert loopback traffic."""
        return httpx.Client(base_url=self.base_url, headers={"User-Agent": CLIENT_USER_AGENT},
                            transport=httpx.HTTPTransport(local_address=CLIENT_ADDRESS),
                            trust_env=False, **kwargs)

    def async_client(self, **kwargs: Any) -> httpx.AsyncClient:
        """Like client(), for asyncio tests (many requests in flight at once)."""
        return httpx.AsyncClient(base_url=self.base_url, headers={"User-Agent": CLIENT_USER_AGENT},
                                 transport=httpx.AsyncHTTPTransport(local_address=CLIENT_ADDRESS),
                                 trust_env=False, **kwargs)


class StartLiveServer(Protocol):
    """What the `live_server` fixture gives: call it to start a server (stopped after the test)."""

    def __call__(self, database_url: str, *, env: Mapping[str, str] | None = None,
                 module: str = "server", start_timeout: float = 30.0) -> LiveServer: ...
