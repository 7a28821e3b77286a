#!/usr/bin/env python3
"""Partner API: a full sync of a big bank with the real StopNCII client, and feedback throughput.

    python bench/partner_bench.py                               # 1,000,000 hashes, SQLite and PostgreSQL
    python bench/partner_bench.py --db sqlite --hashes 100000 --feedback-seconds 5

For each database: a fresh one (SQLite file in a temp dir; a new PostgreSQL database, dropped
afterwards) gets a bank of --hashes records written with bulk SQL (tests/partner_bank.py: cases
of 5 hashes, PDQ and MD5), one partner, and `python -m server` on 127.0.0.1 (rate limits off).
Then:

- sync (client): python-threatexchange's `StopNCIIAPI.fetch_hashes_iter()` from the start, its
  default 800 records a page, every record parsed into its dataclasses (dacite), as HMA does;
- sync (raw): the same pages with a bare HTTP client and json.loads only, so the server's share
  shows apart from the client's parsing;
- feedback: `submit_feedbacks` with 500 hashes a request, then `submit_feedback` one hash a
  request, each for --feedback-seconds.

Client and server share this machine's cores, so every figure includes the client's CPU.
The target is a full sync of a million hashes in at most 60 s. The machine's load average before
the run is printed with the figures: the sync needs both cores (the client parses while the
server answers), so other work on the machine slows it roughly in proportion (at load 2 from
other processes it took twice as long).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "tests"))
sys.path.insert(0, str(REPO_ROOT))

from partner_bank import seed_bank  # noqa: E402
from threatexchange.exchanges.clients.stopncii.api import (  # noqa: E402
    StopNCIIAPI,
    StopNCIICSPFeedback,
    StopNCIICSPFeedbackValue,
    StopNCIIEndpoint,
    StopNCIISignalType,
)

HOST = "127.0.0.1"
DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
TARGET_SECONDS = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, url: str, data_dir: Path) -> None:
        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("KALKAN_")}
        env |= {"KALKAN_DATABASE_URL": url, "KALKAN_DATA_DIR": str(data_dir), "KALKAN_RATE_LIMIT_PER_MINUTE": "0",
                "KALKAN_PARTNER_RATE_LIMIT_PER_MINUTE": "0"}
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str) -> str:
        return subprocess.run([sys.executable, "-m", "server", *args], cwd=REPO_ROOT, env=self.env, check=True,
                              capture_output=True, text=True).stdout

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "server", "--host", HOST, "--port", str(self.port)],
                                        cwd=REPO_ROOT, env=self.env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base + "/healthz", trust_env=False).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("the server did not start")

    def cpu_seconds(self) -> float:
        """CPU time the server process used so far (user + system): less at the mercy of other
        work on the machine than wall time."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)


def sync_with_client(api: StopNCIIAPI) -> tuple[int, float, int]:
    started = time.perf_counter()
    records = pages = 0
    for page in api.fetch_hashes_iter():
        records += len(page.hashRecords)
        pages += 1
    return records, time.perf_counter() - started, pages


def sync_raw(base: str, keys: dict[str, Any]) -> tuple[int, float]:
    headers = {"Ocp-Apim-Subscription-Key": keys["subscription_key"],
               "x-functions-key": keys["function_keys"]["FetchHashes"]}
    started = time.perf_counter()
    records, token = 0, ""
    with httpx.Client(base_url=base, headers=headers, trust_env=False, timeout=60) as http:
        while True:
            page = json.loads(http.get("/v1/FetchHashes", params={"startTimestamp": 10, "pageSize": 800,
                                                                  "nextPageToken": token}).content)
            records += page["count"]
            token = page["nextPageToken"]
            if not page["hasMoreRecords"]:
                return records, time.perf_counter() - started


def feedback_rate(api: StopNCIIAPI, values: list[str], seconds: float, batch: int) -> tuple[float, float]:
    """(feedbacks per second, requests per second) for `seconds` of back-to-back requests."""
    states = [StopNCIICSPFeedbackValue.PendingReview, StopNCIICSPFeedbackValue.Blocked,
              StopNCIICSPFeedbackValue.NotBlocked]
    started = time.perf_counter()
    sent = requests = 0
    while time.perf_counter() - started < seconds:
        chunk = [values[(sent + i) % len(values)] for i in range(batch)]
        state = states[requests % len(states)]
        if batch == 1:
            api.submit_feedback(StopNCIISignalType.ImagePDQ, chunk[0], state)
        else:
            api.submit_feedbacks({(StopNCIISignalType.ImagePDQ, value): StopNCIICSPFeedback(state, {"bench"})
                                  for value in chunk})
        sent += batch
        requests += 1
    elapsed = time.perf_counter() - started
    return sent / elapsed, requests / elapsed


async def _create_database(admin_url: str, name: str) -> None:
    connection = await asyncpg.connect(make_url(admin_url).set(drivername="postgresql").render_as_string(False))
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def _drop_database(admin_url: str, name: str) -> None:
    connection = await asyncpg.connect(make_url(admin_url).set(drivername="postgresql").render_as_string(False))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def run(db: str, hashes: int, feedback_seconds: float, postgres_url: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kalkan-partner-bench-") as scratch:
        if db == "sqlite":
            url = f"sqlite+aiosqlite:///{scratch}/kalkan.db"
            name = None
        else:
            name = f"kalkan_bench_{uuid.uuid4().hex[:10]}"
            asyncio.run(_create_database(postgres_url, name))
            url = make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
        server = Server(url, Path(scratch) / "data")
        try:
            started = time.perf_counter()
            bank = seed_bank(url, hashes // 5, 5)
            seeded = time.perf_counter() - started
            keys = json.loads(server.cli("partners", "add", "Bench Platform", "--json"))
            server.start()
            functions = keys["function_keys"]
            api = StopNCIIAPI(keys["subscription_key"], functions["FetchHashes"],
                              {StopNCIIEndpoint.SubmitFeedback: functions["SubmitFeedback"]},
                              base_url_override=server.base + "/v1")
            server_cpu, client_cpu = server.cpu_seconds(), time.process_time()
            records, client_seconds, pages = sync_with_client(api)
            server_cpu, client_cpu = server.cpu_seconds() - server_cpu, time.process_time() - client_cpu
            assert records == hashes, f"the client got {records} records, expected {hashes}"
            raw_cpu = server.cpu_seconds()
            raw_records, raw_seconds = sync_raw(server.base, keys)
            raw_cpu = server.cpu_seconds() - raw_cpu
            assert raw_records == hashes
            values = [value for held in bank.keys for kind, value in held if kind == "pdq"]
            batched = feedback_rate(api, values, feedback_seconds, 500)
            single = feedback_rate(api, values[len(values) // 2:], feedback_seconds, 1)
            return {"db": db, "hashes": hashes, "seed_s": seeded, "pages": pages, "client_s": client_seconds,
                    "client_cpu_s": client_cpu, "server_cpu_s": server_cpu, "raw_server_cpu_s": raw_cpu,
                    "raw_s": raw_seconds, "batch_fb_per_s": batched[0], "batch_req_per_s": batched[1],
                    "single_fb_per_s": single[0]}
        finally:
            server.stop()
            if name is not None:
                asyncio.run(_drop_database(postgres_url, name))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--hashes", type=int, default=1_000_000)
    parser.add_argument("--feedback-seconds", type=float, default=10.0)
    parser.add_argument("--postgres-url", default=os.environ.get("KALKAN_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL)
    args = parser.parse_args()
    load_before = os.getloadavg()
    results = [run(db.strip(), args.hashes, args.feedback_seconds, args.postgres_url) for db in args.db.split(",")]
    print(f"\nPartner API, {os.cpu_count()} cores, load average {load_before[0]:.2f} {load_before[1]:.2f} "
          f"{load_before[2]:.2f} before the run; full sync of {args.hashes:,} hashes (target <= {TARGET_SECONDS:g} s)")
    print(f"{'database':<11}{'seed s':>8}{'pages':>7}{'sync, pytx client s':>21}{'sync, raw HTTP s':>18}"
          f"{'feedback/s (500/req)':>22}{'feedback/s (1/req)':>20}")
    for r in results:
        print(f"{r['db']:<11}{r['seed_s']:>8.1f}{r['pages']:>7}{r['client_s']:>21.1f}{r['raw_s']:>18.1f}"
              f"{r['batch_fb_per_s']:>22,.0f}{r['single_fb_per_s']:>20,.0f}")
    print("CPU seconds of the pytx sync: client (parsing into dataclasses) / server; server CPU of the raw sync:")
    for r in results:
        print(f"{r['db']:<11}client {r['client_cpu_s']:.1f} s, server {r['server_cpu_s']:.1f} s; "
              f"raw: server {r['raw_server_cpu_s']:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
