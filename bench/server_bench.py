#!/usr/bin/env python3
"""Case-creation throughput and latency of the real server, on SQLite and PostgreSQL.

    python bench/server_bench.py                        # the full table (about 2 minutes)
    python bench/server_bench.py --db sqlite --workers 1 --clients 1,32 --seconds 2
    python bench/server_bench.py --scenario locked      # status requests on a locked case

For every (database, uvicorn workers) it starts `python -m server --host 127.0.0.1 --port P
--workers W` on a fresh database (SQLite file in a temp dir; a new PostgreSQL database, dropped
afterwards), with the per-client limits off (rate and connections), and for every N in
--clients runs N concurrent clients, each on its own keep-alive connection sending one request
after another for --seconds (after a short warm-up). A creation is POST /api/cases with --hashes fresh random hashes (PDQ and
MD5) and a fresh idempotency key, as the web flow sends it. Requests go to 127.0.0.1 only, and every run stops by itself.

The load generator is a minimal HTTP/1.1 client on raw asyncio streams: httpx costs several times
more CPU per request, and on a 2-core machine the client shares the cores with the server, so a
heavy client would measure itself. Even so, the figures include the client's share of the CPU.

--root runs the server package of another directory (a scratch copy with changes to try).
--env K=V passes extra environment to the server (e.g. KALKAN_* settings).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests")]
from server_client import pdq_like  # noqa: E402  (PDQ values an image could have)
HOST = "127.0.0.1"
DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
TARGET_RATE, TARGET_P99_MS = 300.0, 100.0  # the target on this 2-core machine


# --- the server under test ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _admin(url: str, sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(_asyncpg_dsn(url), timeout=10)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


class Database:
    """A fresh database for one server run: a SQLite file in a temp dir, or a new PostgreSQL db."""

    def __init__(self, kind: str, postgres_url: str) -> None:
        self.kind = kind
        self.tmp = Path(tempfile.mkdtemp(prefix="kalkan-bench-"))
        if kind == "sqlite":
            self.url = f"sqlite+aiosqlite:///{self.tmp / 'kalkan.db'}"
            self._name = None
        else:
            self._admin_url = postgres_url
            self._name = f"kalkan_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
            asyncio.run(_admin(postgres_url, f'CREATE DATABASE "{self._name}"'))
            base, _, _ = postgres_url.rpartition("/")
            self.url = f"{base}/{self._name}"

    def drop(self) -> None:
        if self._name:
            asyncio.run(_admin(self._admin_url, f'DROP DATABASE IF EXISTS "{self._name}" WITH (FORCE)'))
        shutil.rmtree(self.tmp, ignore_errors=True)


class Server:
    def __init__(self, database: Database, workers: int, root: Path, extra_env: dict[str, str]) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("KALKAN_")}
        env |= {"KALKAN_DATABASE_URL": database.url, "KALKAN_DATA_DIR": str(database.tmp / "data"),
                "KALKAN_RATE_LIMIT_PER_MINUTE": "0", "KALKAN_MAX_CONNECTIONS_PER_CLIENT": "512",  # all from one address
                "PYTHONUNBUFFERED": "1", **extra_env}
        self.log = open(database.tmp / "server.log", "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "server", "--host", HOST, "--port", str(self.port), "--workers", str(workers)],
            cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + 60
        while not self._healthy():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server did not start; log:\n{(database.tmp / 'server.log').read_text()}")
            time.sleep(0.05)
        # uvicorn's workers start one after another: give every one of them time to come up.
        time.sleep(1.0 if workers > 1 else 0.1)

    def _healthy(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=1) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                return sock.recv(64).startswith(b"HTTP/1.1 200")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


def group_cpu_seconds(pgid: int) -> float:
    """CPU time (user + system) used so far by the live processes of one process group: the
    server and its uvicorn workers (PostgreSQL's own processes are not in it)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields[0] is the state; pgrp is the 5th field of stat
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


# --- the load generator ----------------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection; just enough protocol for our JSON POSTs."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> "Connection":
        return cls(*await asyncio.open_connection(HOST, port))

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        self.writer.write(b"POST %s HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n%s" % (path.encode(), len(body), body))
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


def creation_body(hashes: int) -> bytes:
    """A creation as the web flow sends it: fresh hashes and a fresh idempotency key."""
    items = []
    for i in range(hashes):
        if i % 2 == 0:
            items.append({"signal_type": "pdq", "value": pdq_like(secrets.token_bytes(32)), "quality": 90})
        else:
            items.append({"signal_type": "md5", "value": secrets.token_hex(16)})
    return json.dumps({"hashes": items, "language": "tr", "idempotency_key": str(uuid.uuid4())}).encode()


@dataclass
class Result:
    clients: int
    requests: int
    seconds: float
    latencies_ms: list[float]
    errors: int
    server_cpu_ms: float = float("nan")  # server processes' CPU per request (warm-up included)
    client_cpu_ms: float = float("nan")  # this load generator's CPU per request

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


async def run_load(port: int, clients: int, seconds: float, warmup: float, make_request) -> Result:
    connections = [await Connection.open(port) for _ in range(clients)]
    latencies: list[float] = []
    errors = 0
    started = time.perf_counter()
    measure_from = started + warmup
    deadline = measure_from + seconds

    async def client(connection: Connection) -> None:
        nonlocal errors
        while True:
            path, body, expected = make_request()
            begin = time.perf_counter()
            if begin >= deadline:
                return
            status, _ = await connection.post(path, body)
            end = time.perf_counter()
            if begin >= measure_from:
                latencies.append((end - begin) * 1000)
                if status != expected:
                    errors += 1

    try:
        await asyncio.gather(*(client(c) for c in connections))
    finally:
        for connection in connections:
            connection.close()
    # Requests that began in the window, over the window they began in (the last ones finish a
    # little after it: at most one request per client, which the rate slightly undercounts).
    return Result(clients, len(latencies), seconds, latencies, errors)


async def prepare_scenario(port: int, scenario: str, hashes: int):
    """A function giving the next (path, body, expected status) for the scenario."""
    if scenario == "create":
        return lambda: ("/api/cases", creation_body(hashes), 201)
    connection = await Connection.open(port)
    try:
        status, body = await connection.post("/api/cases", creation_body(hashes))
        assert status == 201, body
        case = json.loads(body)
        if scenario == "status":
            request = json.dumps({"case_number": case["case_number"], "pin": case["pin"]}).encode()
            return lambda: ("/api/cases/status", request, 200)
        # locked: guess until the case number is locked, then every request is refused.
        for _ in range(100):
            guess = json.dumps({"case_number": case["case_number"], "pin": "00000-00000"}).encode()
            status, _ = await connection.post("/api/cases/status", guess)
            if status == 429:
                break
        assert status == 429, "the case did not lock"
        return lambda: ("/api/cases/status", guess, 429)
    finally:
        connection.close()


# --- the table -------------------------------------------------------------------------------------


def measure(kind: str, workers: int, args: argparse.Namespace) -> dict[int, Result]:
    database = Database(kind, args.postgres_url)
    server = None
    try:
        server = Server(database, workers, args.root, args.env)

        async def all_loads() -> dict[int, Result]:
            next_request = await prepare_scenario(server.port, args.scenario, args.hashes)
            sent = [0]

            def make_request():  # counts every request, warm-up ones too, for CPU per request
                sent[0] += 1
                return next_request()

            results = {}
            for clients in args.clients:
                cpu_before, own_before = group_cpu_seconds(server.process.pid), time.process_time()
                sent_before = sent[0]
                result = await run_load(server.port, clients, args.seconds, args.warmup, make_request)
                done = max(1, sent[0] - sent_before)
                result.server_cpu_ms = (group_cpu_seconds(server.process.pid) - cpu_before) * 1000 / done
                result.client_cpu_ms = (time.process_time() - own_before) * 1000 / done
                results[clients] = result
            return results

        results = asyncio.run(all_loads())
    finally:
        if server is not None:
            server.stop()
        database.drop()
    for clients, result in results.items():
        print(f"  {kind:10} workers={workers} clients={clients:3}: {result.rate:7.1f}/s  p50 {result.percentile(50):6.1f} ms"
              f"  p99 {result.percentile(99):6.1f} ms  max {max(result.latencies_ms, default=0):6.1f} ms"
              f"  server CPU {result.server_cpu_ms:5.2f} ms/req, client {result.client_cpu_ms:5.2f} ms/req"
              f"  ({result.requests} requests, {result.errors} errors)", file=sys.stderr, flush=True)
    return results


def print_table(columns: dict[str, dict[int, Result]], clients: list[int], scenario: str) -> None:
    names = list(columns)
    width = max(18, *(len(n) + 2 for n in names))
    print(f"\n{scenario}: requests/s and p99 latency (ms), N concurrent clients")
    print("N".rjust(4) + "".join(name.rjust(width) for name in names))
    for n in clients:
        cells = []
        for name in names:
            r = columns[name][n]
            flag = "" if r.errors == 0 else f" E{r.errors}"
            cells.append(f"{r.rate:6.0f}/s {r.percentile(99):5.0f}ms{flag}".rjust(width))
        print(str(n).rjust(4) + "".join(cells))
    print("server CPU per request (ms; uvicorn processes only, not PostgreSQL's):")
    for n in clients:
        print(str(n).rjust(4) + "".join(f"{columns[name][n].server_cpu_ms:8.2f} ms".rjust(width) for name in names))
    if scenario == "create":
        print(f"target: >= {TARGET_RATE:.0f}/s with p99 <= {TARGET_P99_MS:.0f} ms")
        for name in names:
            best = [n for n in clients if columns[name][n].rate >= TARGET_RATE
                    and columns[name][n].percentile(99) <= TARGET_P99_MS]
            print(f"  {name}: " + (f"met at N = {', '.join(map(str, best))}" if best else "not met"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--workers", default="1,2", help="comma-separated uvicorn worker counts")
    parser.add_argument("--clients", default="1,8,16,32,64", help="comma-separated concurrent client counts")
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per configuration")
    parser.add_argument("--warmup", type=float, default=0.5, help="unmeasured seconds before each")
    parser.add_argument("--hashes", type=int, default=3, help="hashes per created case")
    parser.add_argument("--scenario", default="create", choices=["create", "status", "locked"])
    parser.add_argument("--postgres-url", default=os.environ.get("KALKAN_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL)
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="directory holding the server package")
    parser.add_argument("--env", action="append", default=[], metavar="K=V", help="extra server environment")
    args = parser.parse_args()
    args.clients = [int(n) for n in args.clients.split(",")]
    args.env = dict(item.split("=", 1) for item in args.env)
    if not 0 < args.seconds <= 30 or max(args.clients) > 256:
        parser.error("keep it bounded: --seconds up to 30, at most 256 clients")

    columns: dict[str, dict[int, Result]] = {}
    for kind in args.db.split(","):
        for workers in (int(w) for w in args.workers.split(",")):
            name = f"{'SQLite' if kind == 'sqlite' else 'PostgreSQL'} w{workers}"
            columns[name] = measure(kind, workers, args)
    print_table(columns, args.clients, args.scenario)
    return 0


if __name__ == "__main__":
    sys.exit(main())
