"""Attacks on a person's case that an attack run found working (issue 10, items 1-5), each one
run here as the attacker would, on SQLite and PostgreSQL; every test failed on the code before
the fix.

1. An abuser who holds the same images opens a case with their hashes and reads platform reports
   dated before that case existed: proof that someone else reported them.
2. Replaying a creation's idempotency key returned the case number and PIN for ever (after
   withdrawal too), and after purge the key reproduced the victim's PIN; keys of any quality.
3. Replays with wrong proposed PINs were a PIN-guessing oracle outside the lockout; weak proposed
   PINs were taken.
4. A crash between counting the tenth wrong PIN and writing the lock left the case locked for good.
5. Locks escalated to a week: anyone who knows a case number could keep its owner out.
"""

from __future__ import annotations

import asyncio
import json
import select
import socket
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from threatexchange.exchanges.clients.stopncii.api import StopNCIICSPFeedbackValue
from threatexchange.exchanges.clients.stopncii.api import StopNCIISignalType

from partner_bank import add_partner, partner_client
from server import codes
from server.config import MAX_PIN_FAILURES, PIN_LOCK_SECONDS
from server_client import (
    create_case,
    creds,
    execute,
    in_process,
    md5,
    new_key,
    other_pin,
    pdq,
    pdq_value,
    query,
    run_cli,
    status,
)
from server_harness import CLIENT_ADDRESS, HOST, StartLiveServer

pytestmark = pytest.mark.anyio

NO_LIMITS = {"KALKAN_RATE_LIMIT_PER_MINUTE": "0", "KALKAN_PARTNER_RATE_LIMIT_PER_MINUTE": "0"}


@pytest.fixture
async def client(database_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    async with in_process(database_url, tmp_path / "data") as c:
        yield c


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- 1. outcomes are shown only to cases that held the hash when they were reported -------------------


def test_a_second_case_does_not_see_what_platforms_reported_before_it_held_the_hash(
        database_url: str, live_server: StartLiveServer) -> None:
    server = live_server(database_url, env=NO_LIMITS)
    platform = partner_client(server, add_partner(database_url, "Example Social"))
    shared, own = pdq_value(1), pdq_value(2)
    with server.client() as http:
        def open_case(hashes: list[dict[str, Any]]) -> dict[str, Any]:
            response = http.post("/api/cases", json={"hashes": hashes})
            assert response.status_code == 201, response.text
            return response.json()

        def outcomes(case: dict[str, Any]) -> list[dict[str, Any]]:
            response = http.post("/api/cases/status", json=creds(case))
            assert response.status_code == 200, response.text
            return response.json()["outcomes"]

        victim = open_case([pdq(1), pdq(2)])
        platform.submit_feedback(StopNCIISignalType.ImagePDQ, shared, StopNCIICSPFeedbackValue.Blocked)
        platform.submit_feedback(StopNCIISignalType.ImagePDQ, own, StopNCIICSPFeedbackValue.PendingReview)
        assert outcomes(victim)[0]["counts"] == {"removed": 1, "under_review": 1}

        # The attack: a case opened afterwards with the same image's hash, and an older case of the
        # abuser's that adds it now. Neither may learn that anyone reported it.
        abuser = open_case([pdq(1)])
        older = open_case([md5(1)])
        added = http.post("/api/cases/hashes", json=creds(older, hashes=[pdq(1)]))
        assert added.status_code == 200 and added.json()["added"] == 1
        for case in (abuser, older):
            assert outcomes(case) == []
            page = http.post("/case", data={**creds(case), "lang": "en"})
            assert page.status_code == 200 and "Example Social" not in page.text

        # What the platform reports from now on is about every case holding the hash, dated no
        # earlier than each case had it.
        platform.submit_feedback(StopNCIISignalType.ImagePDQ, shared, StopNCIICSPFeedbackValue.NotBlocked)
        seen = outcomes(abuser)
        assert [(o["platform"], o["state"], o["counts"]) for o in seen] == [
            ("Example Social", "not_removed", {"not_removed": 1})]
        opened = utc(http.post("/api/cases/status", json=creds(abuser)).json()["created_at"])
        assert utc(seen[0]["found_at"]) >= opened and utc(seen[0]["updated_at"]) >= utc(seen[0]["found_at"])
        assert [o["counts"] for o in outcomes(older)] == [{"not_removed": 1}]
        # The person's own case still sees everything, first report included.
        mine = outcomes(victim)[0]
        assert mine["counts"] == {"not_removed": 1, "under_review": 1}
        assert utc(mine["found_at"]) <= opened  # (to the second)


# --- 2. idempotency replays: a window, the same body, never after withdrawal or purge ---------------


async def test_a_replay_after_withdrawal_gets_no_codes(client: httpx.AsyncClient) -> None:
    body = {"hashes": [pdq(1), md5(1)], "idempotency_key": new_key()}
    case = (await client.post("/api/cases", json=body)).json()
    assert (await client.post("/api/cases/withdraw", json=creds(case))).status_code == 200
    replay = await client.post("/api/cases", json=body)
    assert replay.status_code == 409, replay.text
    assert replay.json()["error"]["code"] == "idempotency_key_reused"
    assert case["case_number"] not in replay.text and case["pin"] not in replay.text


async def test_a_replay_after_the_window_gets_no_codes(client: httpx.AsyncClient, database_url: str) -> None:
    body = {"hashes": [pdq(1)], "idempotency_key": new_key()}
    case = (await client.post("/api/cases", json=body)).json()
    assert (await client.post("/api/cases", json=body)).status_code == 201  # within the window: the same case
    day_ago = datetime.now(timezone.utc) - timedelta(hours=24, minutes=1)
    assert await execute(database_url, "UPDATE idempotency SET created_at = :t", t=day_ago) == 1
    replay = await client.post("/api/cases", json=body)
    assert replay.status_code == 409, replay.text
    assert case["case_number"] not in replay.text and case["pin"] not in replay.text
    assert "24 hours" in replay.json()["error"]["message"]
    assert (await status(client, case)).json()["status"] == "active"  # the case itself is untouched


async def test_a_key_used_again_after_purge_never_reproduces_the_pin(database_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    key = new_key()
    async with in_process(database_url, data) as c:
        victim = await create_case(c, [pdq(1)], idempotency_key=key)
        assert (await c.post("/api/cases/withdraw", json=creds(victim))).status_code == 200
        long_ago = datetime.now(timezone.utc) - timedelta(days=91)
        await execute(database_url, "UPDATE cases SET withdrawn_at = :t", t=long_ago)
        await execute(database_url, "UPDATE case_hashes SET withdrawn_at = :t", t=long_ago)
    assert run_cli(database_url, data, "purge", "--older-than", "90d").returncode == 0
    assert await query(database_url, "SELECT count(*) FROM idempotency") == [(0,)]
    async with in_process(database_url, data) as c:
        pins = set()
        for hashes in ([pdq(1)], [md5(7)]):  # the same body as the victim's, and any other
            again = await create_case(c, hashes, idempotency_key=key)
            assert again["pin"] != victim["pin"] and again["case_number"] != victim["case_number"]
            pins.add(again["pin"])
            assert (await c.post("/api/cases/withdraw", json=creds(again))).status_code == 200
            await execute(database_url, "DELETE FROM idempotency")  # as a purge would, for the next round
        assert len(pins) == 2


@pytest.mark.parametrize("key", [
    "abcdefghijklmnop",  # 16 characters: the old minimum, 96 bits at most
    "0123456789abcdef0123456789abcd",  # 30 hex digits: 120 bits
    "123456789012345678901234567890123456",  # 36 decimal digits: 119 bits
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",  # one character
    "abababababababababababababab",  # two
    "c232ab00-9414-11ec-b3c8-9e6bdeced846",  # a version 1 UUID: a time and a MAC address
    "00000000-0000-0000-0000-000000000000",
])
async def test_idempotency_keys_without_122_random_bits_are_refused(client: httpx.AsyncClient, key: str,
                                                                    database_url: str) -> None:
    r = await client.post("/api/cases", json={"hashes": [pdq(1)], "idempotency_key": key})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == "idempotency_key" and "122" in r.json()["error"]["message"]
    assert await query(database_url, "SELECT count(*) FROM cases") == [(0,)]


@pytest.mark.parametrize("key", [
    "3f2b8c1e-5d4a-4b7e-9c2f-1a8d6e4b0c7f", "3F2B8C1E-5D4A-4B7E-9C2F-1A8D6E4B0C7F",  # UUID4, either case
    "Zq8_x-3LkP0vN7bW2sYc9A",  # 22 base64url characters
    "f3a1c9e07b2d4e8f9a6b5c3d2e1f0a9b",  # 32 hex digits (the browser without randomUUID)
])
async def test_random_idempotency_keys_are_taken(client: httpx.AsyncClient, key: str) -> None:
    await create_case(client, [pdq(1)], idempotency_key=key)


# --- 3. a proposed PIN replayed is a guess like any other ----------------------------------------


async def test_wrong_proposed_pins_on_replay_count_towards_the_lockout(client: httpx.AsyncClient) -> None:
    proposed = "K7M2Q-ZX9AB"
    body = {"hashes": [pdq(1)], "idempotency_key": new_key(), "pin": proposed}
    case = (await client.post("/api/cases", json=body)).json()
    answers = []
    for _ in range(60):
        r = await client.post("/api/cases", json={**body, "pin": other_pin(codes.new_pin())})
        assert case["case_number"] not in r.text
        answers.append((r.status_code, r.json()["error"]["code"]))
    assert answers[:MAX_PIN_FAILURES] == [(409, "idempotency_key_reused")] * MAX_PIN_FAILURES
    assert set(answers[MAX_PIN_FAILURES:]) == {(429, "locked")}
    # The same lock as wrong PINs on the status endpoint: even the right PIN waits now.
    assert (await status(client, case)).status_code == 429
    assert (await client.post("/api/cases", json=body)).status_code == 429


async def test_a_right_proposed_pin_replayed_resets_the_count(client: httpx.AsyncClient) -> None:
    body = {"hashes": [pdq(1)], "idempotency_key": new_key(), "pin": "K7M2Q-ZX9AB"}
    case = (await client.post("/api/cases", json=body)).json()
    for _ in range(MAX_PIN_FAILURES - 1):
        assert (await status(client, case, pin=other_pin(case["pin"]))).status_code == 401
    replay = await client.post("/api/cases", json=body)
    assert replay.status_code == 201 and replay.json() == case
    for _ in range(MAX_PIN_FAILURES - 1):
        assert (await status(client, case, pin=other_pin(case["pin"]))).status_code == 401
    assert (await status(client, case)).status_code == 200


@pytest.mark.parametrize("pin", ["AAAAA-AAAAA", "ABABA-BABAB", "AABBC-CDDAA", "01234-56789", "98765-43210",
                                 "ABCDE-FGHJK", "00000-00000", "11111-22222"])
async def test_weak_proposed_pins_are_refused(client: httpx.AsyncClient, pin: str, database_url: str) -> None:
    r = await client.post("/api/cases", json={"hashes": [pdq(1)], "idempotency_key": new_key(), "pin": pin})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert (error["field"], error["code"]) == ("pin", "weak_pin")
    assert "5 different characters" in error["message"] and "consecutive" in error["message"]
    assert await query(database_url, "SELECT count(*) FROM cases") == [(0,)]


def test_the_weak_pin_rule() -> None:
    assert not codes.weak_pin("K7M2Q-ZX9AB") and not codes.weak_pin("0123A-56789")
    assert not codes.weak_pin("AAAAB-CDEFG")  # 7 distinct, not one run
    assert codes.weak_pin("ZYXWV-TSRQP") and codes.weak_pin("ABCDA-BCDAB")
    # The server never hands out one: new PINs and replayed PINs are drawn again when weak.
    assert not any(codes.weak_pin(codes.new_pin()) for _ in range(2000))


# --- 4. a crash while the tenth wrong PIN is checked leaves a lock that ends ------------------------


def _send_raw(port: int, body: dict[str, Any]) -> socket.socket:
    data = json.dumps(body).encode()
    sock = socket.create_connection((HOST, port), timeout=10, source_address=(CLIENT_ADDRESS, 0))
    sock.sendall(b"POST /api/cases/status HTTP/1.1\r\nHost: kalkan.test\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(data), data))
    return sock


def test_a_crash_while_the_last_guess_is_checked_leaves_a_lock_that_ends(
        database_url: str, live_server: StartLiveServer) -> None:
    lock_seconds = 3
    server = live_server(database_url, env={**NO_LIMITS, "KALKAN_PIN_LOCK_SECONDS": str(lock_seconds)})
    cases = 40
    with server.client(timeout=60) as http:
        made = [http.post("/api/cases", json={"hashes": [md5(i)]}).json() for i in range(cases)]
        for case in made:
            for _ in range(MAX_PIN_FAILURES - 1):
                assert http.post("/api/cases/status", json=creds(case, pin=other_pin(case["pin"]))).status_code == 401
    # Every case's tenth wrong PIN at once; the server is killed as soon as the first answer
    # comes back, while the others are between being counted and being answered.
    sockets = [_send_raw(server.port, creds(case, pin=other_pin(case["pin"]))) for case in made]
    try:
        readable, _, _ = select.select(sockets, [], [], 30)
        assert readable, "no answer within 30 s"
        server.kill()
    finally:
        for sock in sockets:
            sock.close()
    killed_at = time.monotonic()
    counters = asyncio.run(query(database_url, "SELECT failures, locked_until FROM pin_attempts"))
    # Counted and locked together: a counter is never full without a lock.
    assert not [row for row in counters if row[0] >= MAX_PIN_FAILURES and row[1] is None], counters
    server.start()
    with server.client(timeout=60) as http:
        waiting = list(made)
        deadline = killed_at + lock_seconds + 60
        while waiting and time.monotonic() < deadline:
            answers = [http.post("/api/cases/status", json=creds(case)).status_code for case in waiting]
            assert set(answers) <= {200, 429}, answers
            waiting = [case for case, answer in zip(waiting, answers) if answer == 429]
            if waiting:
                time.sleep(0.5)
        assert not waiting, f"{len(waiting)} of {cases} cases still locked {lock_seconds} s after their lock"


# --- 5. locks last an hour, never longer, and a right PIN resets the count ----------------------


def assert_locked_for_an_hour(r: httpx.Response) -> None:
    assert r.status_code == 429 and r.json()["error"]["code"] == "locked", r.text
    assert PIN_LOCK_SECONDS - 60 < r.json()["error"]["retry_after"] <= PIN_LOCK_SECONDS + 1


async def test_repeated_lockouts_never_last_longer_than_an_hour(client: httpx.AsyncClient, database_url: str) -> None:
    """The attack: someone who knows the case number locks it again every time the lock ends.
    Before, the fifth lock lasted 16 hours and the eighth a week."""
    case = await create_case(client, [md5(1)])
    for _ in range(8):
        for _ in range(MAX_PIN_FAILURES):
            assert (await status(client, case, pin=other_pin(case["pin"]))).status_code == 401
        assert_locked_for_an_hour(await status(client, case))
        ended = datetime.now(timezone.utc) - timedelta(seconds=1)
        assert await execute(database_url, "UPDATE pin_attempts SET locked_until = :t", t=ended) == 1
    # The owner, once the lock has ended: the right PIN opens the case and frees every slot.
    assert (await status(client, case)).status_code == 200
    for _ in range(MAX_PIN_FAILURES - 1):
        assert (await status(client, case, pin=other_pin(case["pin"]))).status_code == 401
    assert (await status(client, case)).status_code == 200
    assert await query(database_url, "SELECT failures, locked_until FROM pin_attempts") == [(0, None)]
