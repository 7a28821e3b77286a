"""Stress tests of the real server (`python -m server` under uvicorn, on loopback), on SQLite and on
PostgreSQL: PIN lockout under a flood of guesses, concurrent creations, and durability across
`kill -9`.

Every load here goes to 127.0.0.1 only, is bounded in count and time, and turns the per-client
rate limit off (KALKAN_RATE_LIMIT_PER_MINUTE=0: all requests come from one address); the
database lockout is what is under test.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from server.codes import ALPHABET
from server.config import MAX_PIN_FAILURES, PIN_LOCK_SECONDS
from server_client import pdq_like
from server_harness import CLIENT_ADDRESS, HOST, LiveServer, StartLiveServer

# Every simulated client comes from one loopback address: lift the limits per client address
# (requests a minute, and open connections: up to 200 at once here).
NO_RATE_LIMIT = {"KALKAN_RATE_LIMIT_PER_MINUTE": "0", "KALKAN_MAX_CONNECTIONS_PER_CLIENT": "512"}


# --- helpers -----------------------------------------------------------------------------------


def random_hashes(count: int = 3) -> list[dict[str, Any]]:
    """`count` distinct, valid hashes: alternately PDQ (with a quality) and MD5."""
    hashes: list[dict[str, Any]] = []
    for i in range(count):
        if i % 2 == 0:
            hashes.append({"signal_type": "pdq", "value": pdq_like(secrets.token_bytes(32)), "quality": 50 + i})
        else:
            hashes.append({"signal_type": "md5", "value": secrets.token_hex(16)})
    return hashes


def random_pin(avoid: str) -> str:
    while True:
        raw = "".join(secrets.choice(ALPHABET) for _ in range(10))
        pin = f"{raw[:5]}-{raw[5:]}"
        if pin != avoid:
            return pin


async def bounded(jobs: Iterable[Callable[[], Awaitable[Any]]], concurrency: int) -> list[Any]:
    """Run the jobs with at most `concurrency` in flight; results in job order."""
    jobs = list(jobs)
    results: list[Any] = [None] * len(jobs)
    position = 0

    async def worker() -> None:
        nonlocal position
        while position < len(jobs):
            index = position
            position += 1
            results[index] = await jobs[index]()

    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(jobs)))))
    return results


class RawConnection:
    """One keep-alive HTTP/1.1 connection speaking just enough protocol for JSON POSTs.

    The lockout flood sends 10,000 requests; httpx spends a few times more CPU per request than
    this, and on a 2-core machine the client's CPU is taken from the server under test."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, server: LiveServer) -> "RawConnection":
        return cls(*await asyncio.open_connection(HOST, server.port, local_addr=(CLIENT_ADDRESS, 0)))

    async def post(self, path: str, body: Any) -> tuple[int, dict[str, str], Any]:
        data = json.dumps(body).encode()
        self.writer.write(b"POST %s HTTP/1.1\r\nHost: kalkan.test\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n%s" % (path.encode(), len(data), data))
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        payload = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return int(head[0].split()[1]), headers, json.loads(payload)

    def close(self) -> None:
        self.writer.close()


async def create_case(client: httpx.AsyncClient, hashes: list[dict[str, Any]], **extra: Any) -> httpx.Response:
    return await client.post("/api/cases", json={"hashes": hashes, **extra})


async def case_status(client: httpx.AsyncClient, case_number: str, pin: str) -> httpx.Response:
    return await client.post("/api/cases/status", json={"case_number": case_number, "pin": pin})


def assert_hashes_stored(status_body: dict[str, Any], sent: list[dict[str, Any]]) -> None:
    assert status_body["status"] == "active"
    stored = sorted((h["signal_type"], h["value"], h["status"]) for h in status_body["hashes"])
    assert stored == sorted((h["signal_type"], h["value"].lower(), "active") for h in sent)


async def query(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    """Read the server's database directly (a separate connection, not the server's code)."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            return [tuple(row) for row in (await connection.execute(text(sql))).all()]
    finally:
        await engine.dispose()


def hashes_per_case(database_url: str) -> dict[str, int]:
    rows = asyncio.run(query(database_url, (
        "SELECT c.case_number, COUNT(h.id) FROM cases c LEFT JOIN case_hashes h ON h.case_id = c.id "
        "GROUP BY c.case_number")))
    return {number: count for number, count in rows}


# --- 1. lockout ----------------------------------------------------------------------------------

GUESSES = 10_000
GUESS_CONCURRENCY = 50


def test_lockout_survives_ten_thousand_concurrent_wrong_pins(database_url: str, live_server: StartLiveServer) -> None:
    server = live_server(database_url, env=NO_RATE_LIMIT)

    async def run() -> None:
        async with server.async_client(timeout=60) as client:
            target = (await create_case(client, random_hashes(2))).json()
            bystander = (await create_case(client, random_hashes(2))).json()
        number, right_pin = target["case_number"], target["pin"]

        # The right PIN, slipped in among the guesses once the flood is well under way, must be
        # refused like the rest: the lock holds for the owner too.
        right_at = {GUESSES // 4, GUESSES // 2, GUESSES - 1}
        pins = [right_pin if i in right_at else random_pin(right_pin) for i in range(GUESSES)]
        responses: list[tuple[int, dict[str, str], Any]] = [(0, {}, None)] * GUESSES
        position = 0

        async def guesser() -> None:
            nonlocal position
            connection = await RawConnection.open(server)
            try:
                while position < GUESSES:
                    index = position
                    position += 1
                    responses[index] = await connection.post(
                        "/api/cases/status", {"case_number": number, "pin": pins[index]})
            finally:
                connection.close()

        started = time.monotonic()
        await asyncio.wait_for(asyncio.gather(*(guesser() for _ in range(GUESS_CONCURRENCY))), timeout=300)
        elapsed = time.monotonic() - started

        statuses = Counter(status for status, _, _ in responses)
        print(f"\n{GUESSES} guesses, {GUESS_CONCURRENCY} at a time, in {elapsed:.1f} s "
              f"({GUESSES / elapsed:.0f}/s): {dict(statuses)}")
        assert set(statuses) <= {401, 429}, statuses  # 0 successes, 0 server errors
        # Exactly the documented 10 guesses were checked (each takes its slot in the counter
        # before argon2 runs, however many arrive at once); the rest were refused unchecked.
        checked = statuses[401]
        assert checked == MAX_PIN_FAILURES, checked
        for i in right_at:
            assert responses[i][0] == 429, (i, responses[i])
        for status, headers, body in responses:
            if status == 429:
                assert body["error"]["code"] == "locked"
                assert 0 < body["error"]["retry_after"] <= PIN_LOCK_SECONDS
                assert headers["retry-after"] == str(body["error"]["retry_after"])
            else:
                assert body["error"]["code"] == "case_or_pin_wrong"
        # Locked requests are cheap (no argon2): the whole flood stays well inside budget.
        assert elapsed < 150, elapsed

        async with server.async_client(timeout=60) as client:
            # Still locked afterwards, for the right PIN: the first lock's hour, no longer (the
            # refused guesses did not count towards further locks).
            after = await case_status(client, number, right_pin)
            assert after.status_code == 429
            assert PIN_LOCK_SECONDS - 300 < after.json()["error"]["retry_after"] <= PIN_LOCK_SECONDS
            # The same through the no-JS page form: locked, and the page does not show the case.
            page = await client.post("/case", data={"case_number": number, "pin": right_pin})
            assert page.status_code == 429
            assert right_pin not in page.text
            # Typed in another spelling (lower case, no hyphens): the same case, the same lock.
            typed = await case_status(client, number.lower().replace("-", ""), right_pin.lower())
            assert typed.status_code == 429

            # Other cases are not affected: the right PIN works, a wrong one is simply wrong.
            ok = await case_status(client, bystander["case_number"], bystander["pin"])
            assert ok.status_code == 200, ok.text
            assert ok.json()["case_number"] == bystander["case_number"]
            wrong = await case_status(client, bystander["case_number"], random_pin(bystander["pin"]))
            assert wrong.status_code == 401
            ok = await case_status(client, bystander["case_number"], bystander["pin"])
            assert ok.status_code == 200
        return number

    number = asyncio.run(run())
    # The lock lives in the database: it survives a restart of the server.
    server.restart()

    async def after_restart() -> None:
        async with server.async_client(timeout=30) as client:
            response = await case_status(client, number, random_pin(""))
            assert response.status_code == 429

    asyncio.run(after_restart())


def test_a_burst_of_guesses_gets_the_documented_ten_and_a_one_hour_lock(database_url: str,
                                                                       live_server: StartLiveServer) -> None:
    """docs/api.md: "10 wrong PINs for a case number: locked for an hour". A burst of guesses sent
    at once must not get more PINs checked than that, nor escalate the first lock past an hour.

    Today every guess that read the lock state before the 10th failure was written is checked
    too, and each of those failures counts towards further locks: server/cases.py _authenticate
    reads `locked_until`, verifies, and only then counts the failure."""
    server = live_server(database_url, env=NO_RATE_LIMIT)
    burst = 100

    async def run() -> None:
        async with server.async_client(timeout=60) as client:
            case = (await create_case(client, random_hashes(1))).json()
        connections = [await RawConnection.open(server) for _ in range(burst)]
        try:
            responses = await asyncio.gather(*(c.post("/api/cases/status", {
                "case_number": case["case_number"], "pin": random_pin(case["pin"])}) for c in connections))
        finally:
            for connection in connections:
                connection.close()
        statuses = Counter(status for status, _, _ in responses)
        assert set(statuses) <= {401, 429}, statuses
        async with server.async_client(timeout=60) as client:
            locked = await case_status(client, case["case_number"], case["pin"])
        assert locked.status_code == 429
        retry_after = locked.json()["error"]["retry_after"]
        print(f"\n{burst} guesses at once: {dict(statuses)}; locked for {retry_after} s")
        assert statuses[401] == MAX_PIN_FAILURES, f"{statuses[401]} of {burst} simultaneous guesses were checked"
        assert retry_after <= PIN_LOCK_SECONDS, f"the first lock is {retry_after} s, not an hour"

    asyncio.run(run())


# --- 2. concurrent creations ----------------------------------------------------------------------

CREATIONS = 200


def test_two_hundred_concurrent_creations_are_distinct_and_readable(database_url: str,
                                                                    live_server: StartLiveServer) -> None:
    server = live_server(database_url, env=NO_RATE_LIMIT)
    sent = [random_hashes(3) for _ in range(CREATIONS)]

    async def run() -> None:
        limits = httpx.Limits(max_connections=CREATIONS, max_keepalive_connections=CREATIONS)
        async with server.async_client(limits=limits, timeout=120) as client:
            started = time.monotonic()
            responses = await asyncio.gather(*(create_case(client, hashes) for hashes in sent))
            elapsed = time.monotonic() - started
            print(f"\n{CREATIONS} concurrent creations in {elapsed:.2f} s")
            assert [r.status_code for r in responses] == [201] * CREATIONS, Counter(r.status_code for r in responses)
            bodies = [r.json() for r in responses]
            assert len({b["case_number"] for b in bodies}) == CREATIONS
            assert len({b["pin"] for b in bodies}) == CREATIONS
            assert all(b["hash_count"] == 3 and b["status"] == "active" for b in bodies)

            statuses = await bounded([lambda b=b: case_status(client, b["case_number"], b["pin"]) for b in bodies], 20)
            for body, hashes, status in zip(bodies, sent, statuses):
                assert status.status_code == 200, status.text
                assert status.json()["case_number"] == body["case_number"]
                assert_hashes_stored(status.json(), hashes)
            # A PIN opens its own case only.
            crossed = await case_status(client, bodies[0]["case_number"], bodies[1]["pin"])
            assert crossed.status_code == 401

    asyncio.run(run())
    counts = hashes_per_case(database_url)
    assert len(counts) == CREATIONS and set(counts.values()) == {3}


def test_concurrent_retries_with_one_idempotency_key_make_one_case(database_url: str,
                                                                    live_server: StartLiveServer) -> None:
    """Fifty copies of one creation (a client retrying over flaky connections) race each other:
    one case, and every copy is told its case number and the same PIN."""
    server = live_server(database_url, env=NO_RATE_LIMIT)
    hashes = random_hashes(3)
    key = secrets.token_urlsafe(24)

    async def run() -> None:
        limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
        async with server.async_client(limits=limits, timeout=60) as client:
            responses = await asyncio.gather(*(create_case(client, hashes, idempotency_key=key) for _ in range(50)))
            assert [r.status_code for r in responses] == [201] * 50, [r.text for r in responses if r.status_code != 201]
            bodies = {(r.json()["case_number"], r.json()["pin"]) for r in responses}
            assert len(bodies) == 1, bodies
            assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 49
            (number, pin), = bodies
            status = await case_status(client, number, pin)
            assert status.status_code == 200
            assert_hashes_stored(status.json(), hashes)

    asyncio.run(run())
    assert list(hashes_per_case(database_url).values()) == [3]


# --- 3. durability across kill -9 -------------------------------------------------------------------

ROUNDS = 3
PER_ROUND = 400
CREATE_CONCURRENCY = 32


async def creations_until_killed(server: LiveServer, kill_after: int) -> tuple[list[tuple[dict[str, Any], list]], int]:
    """Send PER_ROUND creations, CREATE_CONCURRENCY at a time; SIGKILL the server (its whole
    process group) as soon as `kill_after` of them were answered 201. Returns the (answer, hashes
    sent) of every 201 that reached us, and how many requests were in flight at the kill."""
    acknowledged: list[tuple[dict[str, Any], list]] = []
    in_flight = 0
    in_flight_at_kill = -1

    async def one() -> None:
        nonlocal in_flight, in_flight_at_kill
        if in_flight_at_kill >= 0:
            return  # the server is gone; the test is about what was sent before
        hashes = random_hashes(3)
        in_flight += 1
        try:
            response = await create_case(client, hashes)
        except httpx.HTTPError:
            return
        finally:
            in_flight -= 1
        # Anything but 201 before the kill is a bug; nothing can answer after it.
        assert response.status_code == 201, response.text
        acknowledged.append((response.json(), hashes))
        if len(acknowledged) >= kill_after and in_flight_at_kill < 0:
            in_flight_at_kill = in_flight
            server.kill()  # kill -9, right here: the event loop blocks until it is dead

    limits = httpx.Limits(max_connections=CREATE_CONCURRENCY, max_keepalive_connections=CREATE_CONCURRENCY)
    async with server.async_client(limits=limits, timeout=30) as client:
        await bounded([one] * PER_ROUND, CREATE_CONCURRENCY)
    return acknowledged, in_flight_at_kill


@pytest.mark.parametrize("workers", [1, 2])
def test_every_acknowledged_case_survives_kill_9(database_url: str, live_server: StartLiveServer, workers: int) -> None:
    if workers == 1:
        server = live_server(database_url, env=NO_RATE_LIMIT)
    else:
        # `python -m tests.server_client` is `python -m server --workers $KALKAN_TEST_WORKERS`.
        server = live_server(database_url, module="tests.server_client",
                             env={**NO_RATE_LIMIT, "KALKAN_TEST_WORKERS": str(workers)})
    all_acknowledged: list[tuple[dict[str, Any], list]] = []
    for round_number in range(ROUNDS):
        kill_after = [40, 150, 90][round_number % 3]
        acknowledged, in_flight = asyncio.run(creations_until_killed(server, kill_after))
        assert not server.running
        # The kill came with requests in flight (their answers never came, or came cut off).
        assert len(acknowledged) >= kill_after and in_flight > 0, (len(acknowledged), in_flight)
        all_acknowledged += acknowledged
        server.start()  # the same database, as after a crash

        in_db = hashes_per_case(database_url)
        print(f"\nworkers={workers} round {round_number + 1}: {len(acknowledged)} acknowledged, {in_flight} in flight "
              f"at the kill, {len(in_db)} cases in the database so far ({len(all_acknowledged)} acknowledged)")
        # Every creation is all or nothing: no case survived without all three of its hashes.
        assert set(in_db.values()) == {3}, Counter(in_db.values())
        # Everything ever acknowledged is there (cases committed whose answer was lost may be too).
        assert {body["case_number"] for body, _ in all_acknowledged} <= set(in_db)

        async def verify() -> None:
            async with server.async_client(limits=httpx.Limits(max_connections=16), timeout=60) as client:
                responses = await bounded([lambda b=b: case_status(client, b["case_number"], b["pin"])
                                           for b, _ in all_acknowledged], 16)
                for (body, hashes), response in zip(all_acknowledged, responses):
                    assert response.status_code == 200, (body["case_number"], response.text)
                    assert_hashes_stored(response.json(), hashes)

        asyncio.run(verify())


# --- 4. keep-alive latency with several workers --------------------------------------------------------


def test_keep_alive_answers_are_not_held_back_with_several_workers(sqlite_database_url: str,
                                                                 live_server: StartLiveServer) -> None:
    """With --workers N, uvicorn binds the listening socket itself with proto 0; the accepted
    sockets inherit it and asyncio then does not set TCP_NODELAY on them (Kludex/uvicorn#3149), so
    every answer on a kept-alive connection after the first waits ~40 ms for the client's delayed
    ACK: a 2-worker server answered 17 creations/s to one client where 1 worker answered 70/s."""
    # `python -m tests.server_client` is `python -m server --workers $KALKAN_TEST_WORKERS`.
    server = live_server(sqlite_database_url, module="tests.server_client",
                         env={**NO_RATE_LIMIT, "KALKAN_TEST_WORKERS": "2"})

    async def run() -> list[float]:
        connection = await RawConnection.open(server)
        try:
            timings = []
            for _ in range(20):
                started = time.perf_counter()
                status, _, _ = await connection.post("/api/cases/status", {"case_number": "x", "pin": "y"})
                timings.append((time.perf_counter() - started) * 1000)
                assert status == 422
            return sorted(timings)
        finally:
            connection.close()

    timings = asyncio.run(run())
    median = timings[len(timings) // 2]
    print(f"\nkeep-alive answers from 2 workers: median {median:.1f} ms, max {timings[-1]:.1f} ms")
    assert median < 20, f"median {median:.1f} ms per answer on a kept-alive connection: Nagle vs delayed ACK"
