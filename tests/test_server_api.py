"""The case API (server/api.py, cases.py, validation.py), in-process and on a live uvicorn.

Every test runs on SQLite and on PostgreSQL (`database_url`). In-process tests drive the real app
(`create_app`, lifespan run) through httpx's ASGITransport; live tests start `python -m server`
(`live_server`) and talk to it over loopback. Nothing is mocked.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import statistics
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from server_client import (
    CASE_NUMBER_RE,
    CROCKFORD,
    PIN_RE,
    compact,
    counts,
    create_case,
    creds,
    execute,
    in_process,
    md5,
    md5_value,
    new_key,
    other_pin,
    pdq,
    pdq_value,
    query,
    run_cli,
    snapshot,
    status,
    sqlite_path,
)
from server_harness import CLIENT_ADDRESS, LiveServer, StartLiveServer

pytestmark = pytest.mark.anyio

NO_RATE_LIMIT = {"KALKAN_RATE_LIMIT_PER_MINUTE": "0"}
WRONG = {"error": {"code": "case_or_pin_wrong",
                   "message": "No case matches this case number and PIN. Check both and try again."}}


@pytest.fixture
async def client(database_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The app in this process, on a fresh migrated database."""
    async with in_process(database_url, tmp_path / "data") as c:
        yield c


def utc(text: str) -> datetime:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", text), text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- the whole life of a case, with exact JSON shapes --------------------------------------------


async def test_case_lifecycle_has_the_documented_json_shapes(any_client: httpx.AsyncClient,
                                                             database_url: str) -> None:
    c = any_client
    before = datetime.now(timezone.utc).replace(microsecond=0)
    upper_pdq = pdq_value(1).upper()  # hex is accepted in any case and stored lower-case
    r = await c.post("/api/cases", json={
        "hashes": [{"signal_type": "pdq", "value": upper_pdq, "quality": 87}, md5(1)],
        "language": "tr", "ref": "tkdf", "idempotency_key": new_key()})
    assert r.status_code == 201, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.headers["cache-control"] == "no-store"
    assert "idempotent-replayed" not in r.headers
    case = r.json()
    assert set(case) == {"case_number", "pin", "status", "hash_count"}
    assert CASE_NUMBER_RE.fullmatch(case["case_number"]) and PIN_RE.fullmatch(case["pin"])
    assert (case["status"], case["hash_count"]) == ("active", 2)

    r = await status(c, case)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    shown = r.json()
    assert set(shown) == {"case_number", "status", "created_at", "language", "hashes", "outcomes"}
    assert (shown["case_number"], shown["status"], shown["language"], shown["outcomes"]) == (
        case["case_number"], "active", "tr", [])
    created = utc(shown["created_at"])
    assert before - timedelta(seconds=1) <= created <= datetime.now(timezone.utc) + timedelta(seconds=1)
    assert shown["hashes"] == [
        {"signal_type": "pdq", "value": pdq_value(1), "added_at": shown["created_at"], "status": "active"},
        {"signal_type": "md5", "value": md5_value(1), "added_at": shown["created_at"], "status": "active"},
    ]

    # Adding: one duplicate (already in the case), one new; charset in the content type is fine.
    r = await c.post("/api/cases/hashes", content=json.dumps(creds(case, hashes=[md5(1), pdq(2, 50)])),
                     headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 200, r.text
    assert r.json() == {"case_number": case["case_number"], "status": "active", "hash_count": 3, "added": 1}
    shown = (await status(c, case)).json()
    assert [(h["signal_type"], h["value"], h["status"]) for h in shown["hashes"]] == [
        ("pdq", pdq_value(1), "active"), ("md5", md5_value(1), "active"), ("pdq", pdq_value(2), "active")]
    assert utc(shown["hashes"][2]["added_at"]) >= created

    r = await c.post("/api/cases/withdraw", json=creds(case))
    assert r.status_code == 200, r.text
    assert r.json() == {"case_number": case["case_number"], "status": "withdrawn"}
    shown = (await status(c, case)).json()
    assert shown["status"] == "withdrawn"
    # Tombstones: every hash is still listed, marked withdrawn, so syncing platforms delete them.
    assert [(h["value"], h["status"]) for h in shown["hashes"]] == [
        (pdq_value(1), "withdrawn"), (md5_value(1), "withdrawn"), (pdq_value(2), "withdrawn")]
    rows = await query(database_url, "SELECT h.status, h.withdrawn_at, c.status, c.withdrawn_at "
                       "FROM case_hashes h JOIN cases c ON c.id = h.case_id")
    assert len(rows) == 3 and all(r[0] == r[2] == "withdrawn" and r[1] is not None and r[3] is not None for r in rows)

    # A withdrawn case takes no more content; withdrawing again changes nothing.
    tables = await snapshot(database_url)
    r = await c.post("/api/cases/hashes", json=creds(case, hashes=[md5(9)]))
    assert r.status_code == 409 and r.json()["error"]["code"] == "case_withdrawn", r.text
    r = await c.post("/api/cases/withdraw", json=creds(case))
    assert r.status_code == 200 and r.json()["status"] == "withdrawn"
    assert await snapshot(database_url) == tables


async def test_language_and_ref_are_optional_and_kept(client: httpx.AsyncClient, database_url: str,
                                                      tmp_path: Path) -> None:
    added = await asyncio.to_thread(run_cli, database_url, tmp_path / "data", "referrals", "add", "tkdf",
                                    "--name-tr", "TKDF", "--name-en", "TKDF", "--phone", "+902126569696")
    assert added.returncode == 0, added.stderr
    plain = await create_case(client, [md5(1)])
    english = await create_case(client, [md5(2)], language="en", ref="tkdf")
    unknown = await create_case(client, [md5(3)], ref="nobody")  # only known codes are kept
    assert (await status(client, plain)).json()["language"] == "tr"
    assert (await status(client, english)).json()["language"] == "en"
    rows = await query(database_url, "SELECT case_number, language, ref FROM cases ORDER BY id")
    assert rows == [(plain["case_number"], "tr", None), (english["case_number"], "en", "tkdf"),
                    (unknown["case_number"], "tr", None)]


async def test_vpdq_hashes_are_accepted_in_their_canonical_form(client: httpx.AsyncClient) -> None:
    signal = "[" + ",".join(f'"{pdq_value(i)},90,{i}.000"' for i in range(3)) + "]"
    import pyhash

    canonical = pyhash.signal_type("vpdq").validate(signal)
    case = await create_case(client, [{"signal_type": "vpdq", "value": signal}])
    assert (await status(client, case)).json()["hashes"][0]["value"] == canonical



async def test_a_long_video_vpdq_is_stored_and_deduplicated(client: httpx.AsyncClient) -> None:
    """Ten minutes of video at one frame a second: ~47 KB of vPDQ, far over what PostgreSQL's
    b-tree takes as an index entry (~2.7 KB); case hashes are indexed by a digest of the value."""
    signal = "[" + ",".join(f'"{pdq_value(i)},90,{i}.000"' for i in range(600)) + "]"
    import pyhash

    canonical = pyhash.signal_type("vpdq").validate(signal)
    assert len(canonical) > 40_000
    case = await create_case(client, [{"signal_type": "vpdq", "value": signal}, md5(1)])
    again = await client.post("/api/cases/hashes", json=creds(case, hashes=[{"signal_type": "vpdq", "value": signal}]))
    assert again.status_code == 200, again.text
    assert (again.json()["added"], again.json()["hash_count"]) == (0, 2)
    stored = (await status(client, case)).json()["hashes"]
    assert [h["value"] for h in stored if h["signal_type"] == "vpdq"] == [canonical]


# --- case numbers and PINs ----------------------------------------------------------------------


async def test_case_numbers_and_pins_are_random_and_unambiguous(client: httpx.AsyncClient) -> None:
    cases = [await create_case(client, [md5(i)]) for i in range(40)]
    numbers = [c["case_number"] for c in cases]
    pins = [c["pin"] for c in cases]
    for number in numbers:
        assert CASE_NUMBER_RE.fullmatch(number), number  # 4 groups of 4 Crockford chars: 80 bits
    for pin in pins:
        assert PIN_RE.fullmatch(pin), pin  # 10 Crockford chars: 50 bits (>= 40)
        assert not set(pin) & set("ILOU"), pin  # nothing to misread
    assert len(set(numbers)) == len(numbers) and len(set(pins)) == len(pins)

    def bits(code: str) -> int:
        return int("".join(f"{CROCKFORD.index(ch):05b}" for ch in compact(code)), 2)

    # Not sequential, no shared structure: consecutive numbers differ in about half their 80
    # bits (a counter or a timestamp would differ in a few), and every position takes many values.
    values = [bits(n) for n in numbers]
    for a, b in zip(values, values[1:]):
        assert bin(a ^ b).count("1") >= 15, (a, b)
    assert len({b - a for a, b in zip(values, values[1:])}) == len(values) - 1
    for position in range(16):
        assert len({compact(n)[position] for n in numbers}) >= 10, position
    for position in range(10):
        assert len({compact(p)[position] for p in pins}) >= 10, position
    pin_values = [bits(p) for p in pins]
    for a, b in zip(pin_values, pin_values[1:]):
        assert bin(a ^ b).count("1") >= 8


async def test_pin_is_stored_only_as_argon2id(client: httpx.AsyncClient, database_url: str) -> None:
    key = new_key()
    made = [
        await create_case(client, [md5(1)]),
        await create_case(client, [md5(2)], idempotency_key=key),
        await create_case(client, [md5(3)], idempotency_key=new_key(), pin="7K3QZ-W9X2M"),
    ]
    await status(client, made[0], pin=other_pin(made[0]["pin"]))  # a counter row too
    tables = await snapshot(database_url)
    pin_hashes = [row[0] for row in await query(database_url, "SELECT pin_hash FROM cases")]
    assert len(pin_hashes) == 3 and all(h.startswith("$argon2id$") for h in pin_hashes), pin_hashes
    text = "\n".join(map(repr, tables.values()))
    from server_client import flatten

    everything = flatten(tables) + text
    for case in made:
        for form in (case["pin"], compact(case["pin"]), case["pin"].lower(), compact(case["pin"]).lower()):
            assert form not in everything, "a PIN is stored"
    assert key not in everything, "the idempotency key is stored as sent"
    path = sqlite_path(database_url)
    if path is not None:  # every byte on disk, the write-ahead log included
        raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        for case in made:
            assert compact(case["pin"]).encode() not in raw and case["pin"].encode() not in raw
        assert key.encode() not in raw


def typed_variants(code: str) -> list[str]:
    """How people type a code back: lower-case, no hyphens, spaces, O for 0, I/L for 1."""
    plain = compact(code)
    swapped = plain.replace("0", "O").replace("1", "I")
    spaced = " ".join(plain[i:i + 4] for i in range(0, len(plain), 4))
    return [code.lower(), plain, plain.lower(), f"  {spaced.lower()} ", swapped, swapped.lower(),
            code.replace("1", "L"), code.replace("1", "l").replace("0", "o")]


async def test_typed_input_is_forgiven(client: httpx.AsyncClient) -> None:
    # A case number with a 0 and a 1 (about one case in three has both) and a proposed PIN with them.
    for _ in range(60):
        case = await create_case(client, [md5(1)], idempotency_key=new_key(), pin="o1ilo-abcde")
        if "0" in case["case_number"] and "1" in case["case_number"]:
            break
    else:
        pytest.fail("60 case numbers without both a 0 and a 1")
    assert case["pin"] == "01110-ABCDE"  # the proposed PIN, normalised
    for number in typed_variants(case["case_number"]):
        for pin in typed_variants(case["pin"])[::3]:
            r = await status(client, case, case_number=number, pin=pin)
            assert r.status_code == 200, (number, pin, r.text)
            assert r.json()["case_number"] == case["case_number"]
    r = await client.post("/api/cases/hashes", json=creds(
        case, case_number=compact(case["case_number"]).lower(), pin="O1IL0abcde", hashes=[md5(2)]))
    assert r.status_code == 200 and r.json()["added"] == 1, r.text
    r = await client.post("/api/cases/withdraw", json=creds(case, case_number=" " + case["case_number"].lower()))
    assert r.status_code == 200 and r.json() == {"case_number": case["case_number"], "status": "withdrawn"}


# --- idempotent creation ------------------------------------------------------------------------


async def test_retry_with_the_same_key_returns_the_same_case(client: httpx.AsyncClient, database_url: str) -> None:
    body = {"hashes": [pdq(1), md5(1)], "language": "en", "ref": "tkdf", "idempotency_key": new_key()}
    first = await client.post("/api/cases", json=body)
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    # Same content in another order, with a duplicate, hex in upper case: the same request.
    again = {**body, "hashes": [md5(1), {**pdq(1), "value": pdq_value(1).upper()}, md5(1)]}
    second = await client.post("/api/cases", json=again)
    assert second.status_code == 201, second.text
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    assert (await counts(database_url))["cases"] == 1
    assert (await status(client, second.json())).status_code == 200
    other = await create_case(client, [pdq(1), md5(1)], idempotency_key=new_key())
    assert other["case_number"] != first.json()["case_number"]


async def test_retry_with_a_proposed_pin_returns_that_pin(client: httpx.AsyncClient, database_url: str) -> None:
    body = {"hashes": [pdq(1)], "idempotency_key": new_key(), "pin": "k7m2q-zx9ab"}
    first = await client.post("/api/cases", json=body)
    assert first.status_code == 201 and first.json()["pin"] == "K7M2Q-ZX9AB", first.text
    second = await client.post("/api/cases", json={**body, "pin": "K7M2QZX9AB"})
    assert second.status_code == 201 and second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    assert (await counts(database_url))["cases"] == 1
    assert (await status(client, first.json(), pin="K7M2Q-ZX9AB")).status_code == 200


async def test_same_key_with_a_different_body_is_a_conflict(client: httpx.AsyncClient, database_url: str) -> None:
    key = new_key()
    await create_case(client, [pdq(1)], idempotency_key=key)
    tables = await snapshot(database_url)
    for changed in ({"hashes": [pdq(2)]}, {"hashes": [pdq(1), md5(1)]}, {"hashes": [pdq(1)], "language": "en"},
                    {"hashes": [pdq(1)], "ref": "tkdf"}, {"hashes": [pdq(1, 88)]}):
        r = await client.post("/api/cases", json={**changed, "idempotency_key": key})
        assert r.status_code == 409, (changed, r.text)
        error = r.json()["error"]
        assert error["code"] == "idempotency_key_reused" and error["field"] == "idempotency_key"
        assert "idempotency_key" in error["message"]
    assert await snapshot(database_url) == tables


async def test_same_key_with_another_pin_is_a_conflict(client: httpx.AsyncClient, database_url: str) -> None:
    key = new_key()
    case = await create_case(client, [pdq(1)], idempotency_key=key, pin="A7KQ2-BX9MN")
    tables = await snapshot(database_url)
    for body in ({"pin": "A7KQ2-BX9MP"}, {}):
        r = await client.post("/api/cases", json={"hashes": [pdq(1)], "idempotency_key": key, **body})
        assert r.status_code == 409, (body, r.text)
        assert r.json()["error"]["code"] == "idempotency_key_reused"
        assert "idempotency_key" in r.json()["error"]["message"]
        assert case["case_number"] not in r.text and "A7KQ2" not in r.text
    # Nothing changed but the case's wrong-PIN counter: the wrong PIN counts as a guess (see
    # tests/test_attacks_case.py).
    after = await snapshot(database_url)
    assert [row[1] for row in after.pop("pin_attempts")] == [1]
    tables.pop("pin_attempts")
    assert after == tables


async def test_adding_a_pin_on_retry_is_a_conflict_not_a_different_pin(client: httpx.AsyncClient,
                                                                      database_url: str) -> None:
    """A client that proposes a PIN shows it to the person before sending. If the first attempt
    went out without one (the same key, same hashes), a retry with a PIN must not be answered 201
    with some other PIN: the person would write down a PIN that does not open their case."""
    key = new_key()
    await create_case(client, [pdq(1)], idempotency_key=key)
    r = await client.post("/api/cases", json={"hashes": [pdq(1)], "idempotency_key": key, "pin": "A7KQ2-BX9MN"})
    assert r.status_code == 409, f"answered {r.status_code} {r.text}: the PIN the client proposed is not the case's"
    assert r.json()["error"]["code"] == "idempotency_key_reused"


async def test_a_proposed_pin_needs_an_idempotency_key(client: httpx.AsyncClient, database_url: str) -> None:
    r = await client.post("/api/cases", json={"hashes": [pdq(1)], "pin": "A7KQ2-BX9MN"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "pin"
    assert (await counts(database_url))["cases"] == 0


@pytest.mark.parametrize("pin", [None, "Q2RTV-9HJKM"])
async def test_concurrent_duplicates_make_one_case(client: httpx.AsyncClient, database_url: str,
                                                   pin: str | None) -> None:
    body: dict[str, Any] = {"hashes": [pdq(1), md5(1)], "idempotency_key": new_key()}
    if pin:
        body["pin"] = pin
    responses = await asyncio.gather(*(client.post("/api/cases", json=body) for _ in range(8)))
    assert [r.status_code for r in responses] == [201] * 8, [r.text for r in responses]
    assert len({json.dumps(r.json(), sort_keys=True) for r in responses}) == 1
    assert sum("idempotent-replayed" not in r.headers for r in responses) == 1
    found = await counts(database_url)
    assert (found["cases"], found["case_hashes"], found["idempotency"]) == (1, 2, 1)
    assert (await status(client, responses[0].json())).status_code == 200


# --- wrong PINs: one answer, one timing, and the lockout ----------------------------------------


async def test_unknown_case_and_wrong_pin_look_and_take_the_same(client: httpx.AsyncClient) -> None:
    real = [await create_case(client, [md5(i)]) for i in range(3)]
    unknown_numbers = []
    for i in range(24):
        n = f"{i:04d}-ZZZZ-ZZZZ-{i:04d}"  # well-formed, never issued in this test's database
        unknown_numbers.append(n)

    async def timed(body: dict[str, Any]) -> tuple[float, httpx.Response]:
        start = time.perf_counter()
        response = await client.post("/api/cases/status", json=body)
        return time.perf_counter() - start, response

    wrong_times, unknown_times, invalid_times = [], [], []
    for i in range(24):  # 8 wrong PINs per real case: below the lockout
        case = real[i % 3]
        pair = [("wrong", {"case_number": case["case_number"], "pin": other_pin(case["pin"])}),
                ("unknown", {"case_number": unknown_numbers[i], "pin": case["pin"]})]
        for kind, body in pair if i % 2 else pair[::-1]:
            elapsed, r = await timed(body)
            assert r.status_code == 401 and r.json() == WRONG, (kind, r.text)
            (wrong_times if kind == "wrong" else unknown_times).append(elapsed)
        elapsed, r = await timed({"case_number": "not a case number", "pin": case["pin"]})
        assert r.status_code == 422
        invalid_times.append(elapsed)
    wrong, unknown, invalid = (statistics.median(t) for t in (wrong_times, unknown_times, invalid_times))
    assert 1 / 3 < wrong / unknown < 3, f"wrong PIN {wrong * 1000:.1f} ms, unknown case {unknown * 1000:.1f} ms"
    # Both run argon2: each takes clearly longer than a request refused before any PIN check.
    assert min(wrong, unknown) > 2 * invalid, (wrong, unknown, invalid)
    for case in real:
        assert (await status(client, case)).status_code == 200  # none got locked by the above


async def test_unknown_case_and_wrong_pin_alike_on_every_endpoint(client: httpx.AsyncClient) -> None:
    case = await create_case(client, [md5(1)])
    for path, extra in (("/api/cases/status", {}), ("/api/cases/hashes", {"hashes": [md5(2)]}),
                        ("/api/cases/withdraw", {})):
        wrong = await client.post(path, json=creds(case, pin=other_pin(case["pin"]), **extra))
        unknown = await client.post(path, json={"case_number": "ZZZZ-ZZZZ-ZZZZ-ZZZZ", "pin": case["pin"], **extra})
        assert (wrong.status_code, wrong.content) == (unknown.status_code, unknown.content) == (401, json.dumps(
            WRONG, separators=(",", ":")).encode()), path
        assert {k: v for k, v in wrong.headers.items() if k != "date"} == {
            k: v for k, v in unknown.headers.items() if k != "date"}
        assert case["case_number"] not in wrong.text and case["pin"] not in wrong.text
    assert (await status(client, case)).json()["status"] == "active"


def assert_locked(r: httpx.Response, case: dict[str, Any] | None = None, around: int = 3600) -> None:
    assert r.status_code == 429, r.text
    error = r.json()["error"]
    assert error["code"] == "locked"
    assert isinstance(error["retry_after"], int) and around - 60 < error["retry_after"] <= around + 1, error
    assert r.headers["retry-after"] == str(error["retry_after"])
    if case is not None:
        assert case["case_number"] not in r.text and case["pin"] not in r.text


async def test_ten_wrong_pins_lock_the_case_number(client: httpx.AsyncClient, database_url: str) -> None:
    case = await create_case(client, [md5(1)])
    bystander = await create_case(client, [md5(2)])
    for attempt in range(10):
        r = await status(client, case, pin=other_pin(case["pin"]))
        assert r.status_code == 401, (attempt, r.text)
    assert_locked(await status(client, case), case)  # even the right PIN
    assert_locked(await status(client, case, case_number=compact(case["case_number"]).lower()), case)
    before = await snapshot(database_url)
    assert_locked(await client.post("/api/cases/hashes", json=creds(case, hashes=[md5(3)])), case)
    assert_locked(await client.post("/api/cases/withdraw", json=creds(case)), case)
    assert await snapshot(database_url) == before
    # Other cases are not affected, neither their right nor their wrong PINs.
    assert (await status(client, bystander)).status_code == 200
    assert (await status(client, bystander, pin=other_pin(bystander["pin"]))).status_code == 401
    assert (await status(client, bystander)).status_code == 200


async def test_a_lock_looks_the_same_for_unknown_case_numbers(client: httpx.AsyncClient) -> None:
    case = await create_case(client, [md5(1)])
    unknown = {"case_number": "ZZZZ-ZZZZ-ZZZZ-ZZZ0", "pin": case["pin"]}
    for _ in range(10):
        await status(client, case, pin=other_pin(case["pin"]))
        assert (await client.post("/api/cases/status", json=unknown)).status_code == 401
    real, fake = await status(client, case), await client.post("/api/cases/status", json=unknown)
    assert_locked(real, case)
    assert_locked(fake)
    assert real.json()["error"]["code"] == fake.json()["error"]["code"]
    assert real.json()["error"]["message"] == fake.json()["error"]["message"]


async def test_typed_variants_share_one_counter(client: httpx.AsyncClient) -> None:
    case = await create_case(client, [md5(1)])
    for i in range(10):
        number = case["case_number"] if i % 2 else compact(case["case_number"]).lower()
        assert (await status(client, case, case_number=number, pin=other_pin(case["pin"]))).status_code == 401
    assert_locked(await status(client, case), case)


async def test_a_right_pin_before_the_tenth_resets_the_count(client: httpx.AsyncClient) -> None:
    case = await create_case(client, [md5(1)])
    for _ in range(3):
        for _ in range(9):
            assert (await status(client, case, pin=other_pin(case["pin"]))).status_code == 401
        assert (await status(client, case)).status_code == 200  # 27 wrong in all, never 10 in a row
    for _ in range(10):
        assert (await status(client, case, pin=other_pin(case["pin"]))).status_code == 401
    assert_locked(await status(client, case), case)


async def test_a_lock_ends_and_the_next_one_lasts_the_same_hour(client: httpx.AsyncClient, database_url: str) -> None:
    case = await create_case(client, [md5(1)])
    for _ in range(10):
        await status(client, case, pin=other_pin(case["pin"]))
    assert_locked(await status(client, case), case, around=3600)
    past = datetime.now(timezone.utc) - timedelta(seconds=5)
    assert await execute(database_url, "UPDATE pin_attempts SET locked_until = :t", t=past) == 1
    assert (await status(client, case)).status_code == 200
    for _ in range(10):
        assert (await status(client, case, pin=other_pin(case["pin"]))).status_code == 401
    assert_locked(await status(client, case), case, around=3600)  # not longer: locks do not escalate


async def test_rate_limit_per_client(database_url: str, tmp_path: Path) -> None:
    async with in_process(database_url, tmp_path / "data", rate_limit_per_minute=3) as c:
        for _ in range(3):
            assert (await c.post("/api/cases/status", json={})).status_code == 422
        r = await c.post("/api/cases/status", json={})
        assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited", r.text
        assert int(r.headers["retry-after"]) == r.json()["error"]["retry_after"] >= 1
        assert (await c.get("/healthz")).status_code == 200  # pages and health are not API calls


# --- refusals: 4xx naming the field, never a 5xx, nothing written --------------------------------

FULLWIDTH = str.maketrans({**{chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)}})


def bad_requests(case: dict[str, Any]) -> list[tuple[str, str, Any, str | None, set[int], str | None]]:
    """(label, path, body, content type, acceptable statuses, field). body: bytes are sent as is,
    anything else as JSON (json.dumps, so lone surrogates become \\ud800 escapes)."""
    number, pin = case["case_number"], case["pin"]
    good = {"hashes": [pdq(1)]}
    JSON = "application/json"
    C = "/api/cases"
    S = "/api/cases/status"
    H = "/api/cases/hashes"
    W = "/api/cases/withdraw"
    deep = b'{"hashes": ' + b"[" * 30000 + b"]" * 30000 + b"}"
    rows: list[tuple[str, str, Any, str | None, set[int], str | None]] = [
        # not JSON at all
        ("truncated JSON", C, b'{"hashes": [', JSON, {400}, None),
        ("not UTF-8", C, b'{"hashes": "\xff\xfe"}', JSON, {400}, None),
        ("empty body", C, b"", JSON, {400}, None),
        ("NaN", C, b'{"hashes": [{"signal_type": "pdq", "value": "%s", "quality": NaN}]}' % pdq_value(1).encode(), JSON, {400}, None),
        ("Infinity", C, b'{"hashes": [{"signal_type": "pdq", "value": "%s", "quality": -Infinity}]}' % pdq_value(1).encode(), JSON, {400}, None),
        ("5000-digit number", C, b'{"hashes": [{"signal_type": "pdq", "value": "%s", "quality": %s}]}' % (pdq_value(1).encode(), b"9" * 5000), JSON, {400, 422}, None),
        ("deep nesting", C, deep, JSON, {400, 422}, None),
        # the wrong content type
        ("text/plain", C, json.dumps(good).encode(), "text/plain", {415}, None),
        ("no content type", C, json.dumps(good).encode(), None, {415}, None),
        ("form-encoded", C, b"hashes=x", "application/x-www-form-urlencoded", {415}, None),
        ("multipart", C, b"--b\r\nContent-Disposition: form-data; name=\"hashes\"\r\n\r\nx\r\n--b--\r\n", "multipart/form-data; boundary=b", {415}, None),
        ("json-lookalike type", C, json.dumps(good).encode(), "application/jsonp", {415}, None),
        # not an object
        ("array body", C, [good], JSON, {422}, None),
        ("string body", C, "hashes", JSON, {422}, None),
        ("null body", C, None, JSON, {422}, None),
        ("number body", C, 1, JSON, {422}, None),
        # fields missing, unknown, of the wrong type
        ("no hashes", C, {"language": "tr"}, JSON, {422}, "hashes"),
        ("unknown field", C, {**good, "email": "a@b.c"}, JSON, {422}, "email"),
        ("unknown field, zero-width twin", C, {**good, "hashes\u200b": []}, JSON, {422}, "hashes\u200b"),
        # Not valid Unicode: refused as malformed (400) or as an unknown field (422), never a 500.
        ("unknown field, lone surrogate", C, {**good, "\ud800": 1}, JSON, {400, 422}, None),
        ("unknown nested field", C, {"hashes": [{**pdq(1), "name": "me.jpg"}]}, JSON, {422}, "hashes[0].name"),
        ("hashes empty", C, {"hashes": []}, JSON, {422}, "hashes"),
        ("hashes an object", C, {"hashes": {"0": pdq(1)}}, JSON, {422}, "hashes"),
        ("hashes a string", C, {"hashes": "pdq " + pdq_value(1)}, JSON, {422}, "hashes"),
        ("hash a string", C, {"hashes": [pdq(1), "md5 " + md5_value(1)]}, JSON, {422}, "hashes[1]"),
        ("501 hashes", C, {"hashes": [md5(i) for i in range(501)]}, JSON, {422}, "hashes"),
        ("no signal_type", C, {"hashes": [{"value": md5_value(1)}]}, JSON, {422}, "hashes[0].signal_type"),
        ("no value", C, {"hashes": [{"signal_type": "md5"}]}, JSON, {422}, "hashes[0].value"),
        ("signal_type unknown", C, {"hashes": [{"signal_type": "sha256", "value": md5_value(1)}]}, JSON, {422}, "hashes[0].signal_type"),
        ("signal_type upper-case", C, {"hashes": [{**pdq(1), "signal_type": "PDQ"}]}, JSON, {422}, "hashes[0].signal_type"),
        ("signal_type fullwidth", C, {"hashes": [{**pdq(1), "signal_type": "ｐｄｑ"}]}, JSON, {422}, "hashes[0].signal_type"),
        ("signal_type zero-width", C, {"hashes": [{**pdq(1), "signal_type": "pd\u200bq"}]}, JSON, {422}, "hashes[0].signal_type"),
        ("signal_type surrogate", C, {"hashes": [{**pdq(1), "signal_type": "\udfff"}]}, JSON, {422}, "hashes[0].signal_type"),
        ("signal_type a number", C, {"hashes": [{**pdq(1), "signal_type": 1}]}, JSON, {422}, "hashes[0].signal_type"),
        ("signal_type null", C, {"hashes": [{**pdq(1), "signal_type": None}]}, JSON, {422}, "hashes[0].signal_type"),
        ("value not hex", C, {"hashes": [pdq(1), {**pdq(2), "value": "g" * 64}]}, JSON, {422}, "hashes[1].value"),
        ("value 63 hex", C, {"hashes": [{**pdq(1), "value": pdq_value(1)[:63]}]}, JSON, {422}, "hashes[0].value"),
        ("value 65 hex", C, {"hashes": [{**pdq(1), "value": pdq_value(1) + "a"}]}, JSON, {422}, "hashes[0].value"),
        ("md5 of pdq length", C, {"hashes": [{"signal_type": "md5", "value": pdq_value(1)}]}, JSON, {422}, "hashes[0].value"),
        ("pdq of md5 length", C, {"hashes": [{"signal_type": "pdq", "value": md5_value(1), "quality": 90}]}, JSON, {422}, "hashes[0].value"),
        ("all-zero pdq", C, {"hashes": [{**pdq(1), "value": "0" * 64}]}, JSON, {422}, "hashes[0].value"),
        ("value fullwidth hex", C, {"hashes": [{**md5(1), "value": md5_value(1).translate(FULLWIDTH)}]}, JSON, {422}, "hashes[0].value"),
        ("value with RTL mark", C, {"hashes": [{**md5(1), "value": "\u200f" + md5_value(1)[1:]}]}, JSON, {422}, "hashes[0].value"),
        ("value with newline", C, {"hashes": [{**md5(1), "value": md5_value(1) + "\n"}]}, JSON, {422}, "hashes[0].value"),
        ("value a number", C, {"hashes": [{**md5(1), "value": 12345}]}, JSON, {422}, "hashes[0].value"),
        ("value a list", C, {"hashes": [{**md5(1), "value": [md5_value(1)]}]}, JSON, {422}, "hashes[0].value"),
        ("vpdq not a signal", C, {"hashes": [{"signal_type": "vpdq", "value": "[1,2"}]}, JSON, {422}, "hashes[0].value"),
        ("pdq without quality", C, {"hashes": [{"signal_type": "pdq", "value": pdq_value(1)}]}, JSON, {422}, "hashes[0].quality"),
        ("pdq quality null", C, {"hashes": [pdq(1, None)]}, JSON, {422}, "hashes[0].quality"),
        ("quality 101", C, {"hashes": [pdq(1, 101)]}, JSON, {422}, "hashes[0].quality"),
        ("quality -1", C, {"hashes": [pdq(1, -1)]}, JSON, {422}, "hashes[0].quality"),
        ("quality 10**400", C, {"hashes": [pdq(1, 10 ** 400)]}, JSON, {422}, "hashes[0].quality"),
        ("quality 1e400", C, b'{"hashes": [{"signal_type": "pdq", "value": "%s", "quality": 1e400}]}' % pdq_value(1).encode(), JSON, {422}, "hashes[0].quality"),
        ("quality true", C, {"hashes": [pdq(1, True)]}, JSON, {422}, "hashes[0].quality"),
        ("quality false", C, {"hashes": [pdq(1, False)]}, JSON, {422}, "hashes[0].quality"),
        ("quality 87.0", C, {"hashes": [pdq(1, 87.0)]}, JSON, {422}, "hashes[0].quality"),
        ("quality 5e1", C, b'{"hashes": [{"signal_type": "pdq", "value": "%s", "quality": 5e1}]}' % pdq_value(1).encode(), JSON, {422}, "hashes[0].quality"),
        ("quality '87'", C, {"hashes": [pdq(1, "87")]}, JSON, {422}, "hashes[0].quality"),
        ("quality fullwidth '８７'", C, {"hashes": [pdq(1, "８７")]}, JSON, {422}, "hashes[0].quality"),
        ("quality on md5", C, {"hashes": [{**md5(1), "quality": 90}]}, JSON, {422}, "hashes[0].quality"),
        ("language de", C, {**good, "language": "de"}, JSON, {422}, "language"),
        ("language TR", C, {**good, "language": "TR"}, JSON, {422}, "language"),
        ("language a list", C, {**good, "language": ["tr"]}, JSON, {422}, "language"),
        ("language null", C, {**good, "language": None}, JSON, {422}, "language"),
        ("ref upper-case", C, {**good, "ref": "TKDF"}, JSON, {422}, "ref"),
        ("ref empty", C, {**good, "ref": ""}, JSON, {422}, "ref"),
        ("ref 33 chars", C, {**good, "ref": "a" * 33}, JSON, {422}, "ref"),
        ("ref a number", C, {**good, "ref": 7}, JSON, {422}, "ref"),
        ("ref with newline", C, {**good, "ref": "tkdf\n"}, JSON, {422}, "ref"),
        ("key too short", C, {**good, "idempotency_key": "abc"}, JSON, {422}, "idempotency_key"),
        ("key with spaces", C, {**good, "idempotency_key": "a b c d e f g h i j k"}, JSON, {422}, "idempotency_key"),
        ("key fullwidth", C, {**good, "idempotency_key": "１２３４５６７８９０１２３４５６７８"}, JSON, {422}, "idempotency_key"),
        ("key a number", C, {**good, "idempotency_key": 12345678901234567890}, JSON, {422}, "idempotency_key"),
        ("key 129 chars", C, {**good, "idempotency_key": "k" * 129}, JSON, {422}, "idempotency_key"),
        ("pin malformed", C, {**good, "idempotency_key": new_key(), "pin": "12345"}, JSON, {422}, "pin"),
        ("pin a number", C, {**good, "idempotency_key": new_key(), "pin": 1234567890}, JSON, {422}, "pin"),
        ("pin null", C, {**good, "idempotency_key": new_key(), "pin": None}, JSON, {422}, "pin"),
        ("pin with U", C, {**good, "idempotency_key": new_key(), "pin": "UUUUU-UUUUU"}, JSON, {422}, "pin"),
        # a valid hash first, then a bad one: nothing of the request is kept
        ("one bad among good", C, {"hashes": [pdq(1), md5(1), pdq(2, 49)]}, JSON, {422}, "hashes[2].quality"),
        # credentials
        ("status: empty object", S, {}, JSON, {422}, "case_number"),
        ("status: no pin", S, {"case_number": number}, JSON, {422}, "pin"),
        ("status: unknown field", S, {"case_number": number, "pin": pin, "email": "x"}, JSON, {422}, "email"),
        ("status: hashes not allowed", S, {"case_number": number, "pin": pin, "hashes": []}, JSON, {422}, "hashes"),
        ("status: number a number", S, {"case_number": 1234, "pin": pin}, JSON, {422}, "case_number"),
        ("status: number null", S, {"case_number": None, "pin": pin}, JSON, {422}, "case_number"),
        ("status: number a list", S, {"case_number": [number], "pin": pin}, JSON, {422}, "case_number"),
        ("status: number short", S, {"case_number": number[:-1], "pin": pin}, JSON, {422}, "case_number"),
        ("status: number long", S, {"case_number": number + "0", "pin": pin}, JSON, {422}, "case_number"),
        ("status: number 10000 chars", S, {"case_number": number * 500, "pin": pin}, JSON, {422}, "case_number"),
        ("status: number fullwidth", S, {"case_number": number.translate(FULLWIDTH), "pin": pin}, JSON, {422}, "case_number"),
        ("status: number RTL mark", S, {"case_number": number[:9] + "\u200f" + number[9:], "pin": pin}, JSON, {422}, "case_number"),
        ("status: number RTL override", S, {"case_number": "\u202e" + number, "pin": pin}, JSON, {422}, "case_number"),
        ("status: number zero-width space", S, {"case_number": number[:4] + "\u200b" + number[4:], "pin": pin}, JSON, {422}, "case_number"),
        ("status: number zero-width joiner", S, {"case_number": number.replace("-", "\u200d"), "pin": pin}, JSON, {422}, "case_number"),
        ("status: number BOM", S, {"case_number": "\ufeff" + number, "pin": pin}, JSON, {422}, "case_number"),
        ("status: number NUL", S, {"case_number": number + "\x00", "pin": pin}, JSON, {422}, "case_number"),
        ("status: number surrogate", S, {"case_number": number[:-1] + "\ud800", "pin": pin}, JSON, {422}, "case_number"),
        # letters whose upper case is ASCII: a different string must not pass as a case number
        ("status: number long s (ſ for S)", S, {"case_number": "ABCD-EFGH-JKMN-PQRſ", "pin": pin}, JSON, {422}, "case_number"),
        ("status: number sharp s (ß for SS)", S, {"case_number": "ABCD-EFGH-JKMN-PQß", "pin": pin}, JSON, {422}, "case_number"),
        ("status: number ligature (ﬀ for FF)", S, {"case_number": "ABCD-EFGH-JKMN-PQﬀ", "pin": pin}, JSON, {422}, "case_number"),
        ("status: pin fullwidth", S, {"case_number": number, "pin": pin.translate(FULLWIDTH)}, JSON, {422}, "pin"),
        ("status: pin zero-width", S, {"case_number": number, "pin": pin[:3] + "\u200b" + pin[3:]}, JSON, {422}, "pin"),
        ("status: pin a number", S, {"case_number": number, "pin": 12345}, JSON, {422}, "pin"),
        ("status: text/plain", S, json.dumps({"case_number": number, "pin": pin}).encode(), "text/plain", {415}, None),
        ("status: form-encoded", S, f"case_number={number}&pin={pin}".encode(), "application/x-www-form-urlencoded", {415}, None),
        ("add: no hashes", H, {"case_number": number, "pin": pin}, JSON, {422}, "hashes"),
        ("add: bad value", H, {"case_number": number, "pin": pin, "hashes": [md5(5), {**md5(6), "value": "x"}]}, JSON, {422}, "hashes[1].value"),
        ("add: low quality", H, {"case_number": number, "pin": pin, "hashes": [pdq(5, 10)]}, JSON, {422}, "hashes[0].quality"),
        ("add: 501 hashes", H, {"case_number": number, "pin": pin, "hashes": [md5(i) for i in range(501)]}, JSON, {422}, "hashes"),
        ("add: unknown field", H, {"case_number": number, "pin": pin, "hashes": [md5(5)], "x": 1}, JSON, {422}, "x"),
        ("withdraw: confirm not a field", W, {"case_number": number, "pin": pin, "confirm": "yes"}, JSON, {422}, "confirm"),
        ("withdraw: no pin", W, {"case_number": number}, JSON, {422}, "pin"),
        ("withdraw: malformed", W, b"{", JSON, {400}, None),
    ]
    return rows


async def test_bad_input_is_refused_by_field_and_writes_nothing(client: httpx.AsyncClient, database_url: str) -> None:
    case = await create_case(client, [md5(1)], idempotency_key=new_key())
    tables = await snapshot(database_url)
    problems = []
    for label, path, body, content_type, statuses, field in bad_requests(case):
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": content_type} if content_type else {}
        r = await client.post(path, content=content, headers=headers)
        try:
            error = r.json()["error"]
        except (ValueError, KeyError, TypeError):
            problems.append(f"{label}: {r.status_code} {r.text[:80]!r} is no JSON error")
            continue
        if r.status_code not in statuses:
            problems.append(f"{label}: {r.status_code} {error}, expected {statuses}")
        if not (isinstance(error.get("code"), str) and isinstance(error.get("message"), str) and error["message"]):
            problems.append(f"{label}: no code and message in {error}")
        if field is not None and error.get("field") != field:
            problems.append(f"{label}: field {error.get('field')!r}, expected {field!r} ({error.get('message')})")
        for secret in (case["case_number"], compact(case["case_number"]), case["pin"], compact(case["pin"])):
            if secret in r.text:
                problems.append(f"{label}: the response repeats the case number or PIN")
        if await snapshot(database_url) != tables:
            problems.append(f"{label}: the database changed")
            tables = await snapshot(database_url)
    assert not problems, "\n".join(problems)
    assert (await status(client, case)).json()["hashes"] == [
        {"signal_type": "md5", "value": md5_value(1), "added_at": (await status(client, case)).json()["created_at"],
         "status": "active"}]


async def test_low_quality_says_the_image_has_too_little_detail(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/cases", json={"hashes": [pdq(1, 49)]})
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "low_quality" and error["field"] == "hashes[0].quality"
    assert "too little detail" in error["message"]
    for quality in (50, 100):  # the edges that are fine
        assert (await create_case(client, [pdq(quality, quality)]))["hash_count"] == 1


async def test_unknown_routes_and_methods_are_json_errors(client: httpx.AsyncClient) -> None:
    for method, path, code in (("GET", "/api/cases", 405), ("PUT", "/api/cases/status", 405),
                               ("POST", "/api/nothing", 404), ("GET", "/api/cases/XXXX-XXXX", 404)):
        r = await client.request(method, path)
        assert r.status_code == code, (method, path, r.status_code)
        assert r.json()["error"]["code"] == f"http_{code}"


# --- limits -------------------------------------------------------------------------------------


def padded(body: dict[str, Any], size: int) -> bytes:
    """JSON of exactly `size` bytes (trailing whitespace is valid JSON)."""
    data = json.dumps(body).encode()
    assert len(data) <= size
    return data + b" " * (size - len(data))


async def test_bodies_are_capped_at_64_kb(client: httpx.AsyncClient, database_url: str) -> None:
    body = {"hashes": [md5(i) for i in range(300)]}
    r = await client.post("/api/cases", content=padded(body, 64 * 1024), headers={"Content-Type": "application/json"})
    assert r.status_code == 201 and r.json()["hash_count"] == 300, r.text
    tables = await snapshot(database_url)
    over = padded({"hashes": [md5(1000 + i) for i in range(300)]}, 64 * 1024 + 1)
    r = await client.post("/api/cases", content=over, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large", r.text

    async def chunks():  # no Content-Length: the cap must hold while streaming too
        for i in range(0, len(over), 4096):
            yield over[i:i + 4096]

    r = await client.post("/api/cases", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large", r.text
    r = await client.post("/case", content=b"a=" + b"x" * 70000, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413
    assert await snapshot(database_url) == tables


async def test_at_most_500_hashes_per_request(client: httpx.AsyncClient, database_url: str) -> None:
    case = await create_case(client, [pdq(i) for i in range(500)])
    assert case["hash_count"] == 500
    r = await client.post("/api/cases/hashes", json=creds(case, hashes=[md5(i) for i in range(500)]))
    assert r.status_code == 200 and r.json()["added"] == 500
    tables = await snapshot(database_url)
    r = await client.post("/api/cases/hashes", json=creds(case, hashes=[md5(1000 + i) for i in range(501)]))
    assert r.status_code == 422 and r.json()["error"]["field"] == "hashes"
    assert "500" in r.json()["error"]["message"]
    assert await snapshot(database_url) == tables


async def test_a_case_holds_at_most_5000_hashes(client: httpx.AsyncClient, database_url: str) -> None:
    case = await create_case(client, [md5(i) for i in range(500)])
    for batch in range(1, 10):
        r = await client.post("/api/cases/hashes", json=creds(case, hashes=[md5(batch * 500 + i) for i in range(500)]))
        assert r.status_code == 200 and r.json()["hash_count"] == 500 * (batch + 1), r.text
    tables = await snapshot(database_url)
    r = await client.post("/api/cases/hashes", json=creds(case, hashes=[md5(1), md5(99999)]))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "case_full" and r.json()["error"]["field"] == "hashes"
    assert "5000" in r.json()["error"]["message"]
    assert await snapshot(database_url) == tables
    # Hashes already in the case don't count against the cap.
    r = await client.post("/api/cases/hashes", json=creds(case, hashes=[md5(7), md5(4999)]))
    assert r.status_code == 200 and r.json() == {"case_number": case["case_number"], "status": "active",
                                                  "hash_count": 5000, "added": 0}
    assert (await counts(database_url))["case_hashes"] == 5000


async def test_duplicates_in_one_case_are_stored_once(client: httpx.AsyncClient, database_url: str) -> None:
    case = await create_case(client, [pdq(1, 60), pdq(1, 90), {**pdq(1), "value": pdq_value(1).upper()},
                                      md5(1), md5(1)])
    assert case["hash_count"] == 2
    r = await client.post("/api/cases/hashes", json=creds(case, hashes=[md5(1), md5(2), md5(2), pdq(1, 99)]))
    assert r.json() == {"case_number": case["case_number"], "status": "active", "hash_count": 3, "added": 1}
    rows = await query(database_url, "SELECT signal_type, value, quality FROM case_hashes ORDER BY id")
    assert rows == [("pdq", pdq_value(1), 60), ("md5", md5_value(1), None), ("md5", md5_value(2), None)]


async def test_concurrent_additions_cannot_pass_the_case_cap(client: httpx.AsyncClient, database_url: str) -> None:
    case = await create_case(client, [md5(i) for i in range(500)])
    for batch in range(1, 9):
        r = await client.post("/api/cases/hashes", json=creds(case, hashes=[md5(batch * 500 + i) for i in range(500)]))
        assert r.status_code == 200
    # 4500 in the case: of six concurrent additions of 400 new hashes, only one fits.
    responses = await asyncio.gather(*(
        client.post("/api/cases/hashes", json=creds(case, hashes=[md5(100_000 * (j + 1) + i) for i in range(400)]))
        for j in range(6)))
    assert sorted(r.status_code for r in responses) == [200] + [422] * 5, [r.status_code for r in responses]
    stored = (await counts(database_url))["case_hashes"]
    assert stored == 4900, f"{stored} hashes stored in a case capped at 5000"


async def test_a_withdrawal_racing_an_addition_leaves_no_active_hash(client: httpx.AsyncClient,
                                                                     database_url: str) -> None:
    """Whatever the order, a withdrawn case has only withdrawn hashes: an addition that commits
    after the withdrawal must be refused, not leave an active hash platforms keep matching."""
    for round_ in range(8):
        case = await create_case(client, [md5(round_)])
        add, withdraw = await asyncio.gather(
            client.post("/api/cases/hashes", json=creds(case, hashes=[md5(1000 + round_), pdq(round_)])),
            client.post("/api/cases/withdraw", json=creds(case)))
        assert withdraw.status_code == 200 and add.status_code in (200, 409), (add.text, withdraw.text)
        shown = (await status(client, case)).json()
        assert shown["status"] == "withdrawn"
        assert {h["status"] for h in shown["hashes"]} == {"withdrawn"}, (round_, add.status_code, shown["hashes"])


# --- purging tombstones: python -m server purge ------------------------------------------------


async def test_purge_deletes_old_tombstones_for_good(database_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with in_process(database_url, data) as c:
        old = await create_case(c, [pdq(1), md5(1)], idempotency_key=new_key())
        recent = await create_case(c, [pdq(2), md5(2)])
        active = await create_case(c, [pdq(3), md5(3)])
        for case in (old, recent):
            assert (await c.post("/api/cases/withdraw", json=creds(case))).status_code == 200
        long_ago = datetime.now(timezone.utc) - timedelta(days=91)
        backdate = "SET withdrawn_at = :t WHERE {} = (SELECT id FROM cases WHERE case_number = :n)"
        assert await execute(database_url, "UPDATE cases " + backdate.format("id"), t=long_ago, n=old["case_number"]) == 1
        assert await execute(database_url, "UPDATE case_hashes " + backdate.format("case_id"), t=long_ago,
                             n=old["case_number"]) == 2
        # An active case, however old, is never purged.
        ancient = datetime.now(timezone.utc) - timedelta(days=400)
        await execute(database_url, "UPDATE cases SET created_at = :t, updated_at = :t WHERE case_number = :n",
                      t=ancient, n=active["case_number"])
        await execute(database_url, "UPDATE case_hashes SET added_at = :t, updated_at = :t WHERE case_id = "
                      "(SELECT id FROM cases WHERE case_number = :n)", t=ancient, n=active["case_number"])

    result = run_cli(database_url, data, "purge", "--older-than", "90d")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("purged: 2 hashes, 1 cases"), result.stdout
    for secret in (old["case_number"], old["pin"], recent["case_number"], active["case_number"]):
        assert secret not in result.stdout + result.stderr

    left = await query(database_url, "SELECT c.case_number, c.status, h.status FROM cases c "
                       "JOIN case_hashes h ON h.case_id = c.id ORDER BY h.id")
    assert left == [(recent["case_number"], "withdrawn", "withdrawn")] * 2 + [(active["case_number"], "active", "active")] * 2
    assert (await counts(database_url))["idempotency"] == 0
    async with in_process(database_url, data) as c:
        gone = await status(c, old)
        assert (gone.status_code, gone.json()) == (401, WRONG)  # like a case that never was
        assert (await status(c, recent)).json()["status"] == "withdrawn"
        assert len((await status(c, active)).json()["hashes"]) == 2

    # A second purge finds nothing; the command refuses to guess a duration.
    assert run_cli(database_url, data, "purge", "--older-than", "90d").stdout.startswith("purged: 0 hashes, 0 cases")
    for bad in (["purge"], ["purge", "--older-than", "90"], ["purge", "--older-than", "ninety days"]):
        result = run_cli(database_url, data, *bad)
        assert result.returncode == 2 and "older-than" in result.stderr, (bad, result.stderr)


# --- live uvicorn: responses that never arrive --------------------------------------------------


def raw_request(path: str, body: bytes, port: int) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


def connect(server: LiveServer) -> socket.socket:
    sock = socket.socket()
    sock.bind((CLIENT_ADDRESS, 0))
    sock.connect(("127.0.0.1", server.port))
    return sock


def reset(sock: socket.socket) -> None:
    """Close at once with RST, whatever the server sent: the response is never read."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()


async def wait_for_cases(database_url: str, n: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while (found := (await counts(database_url)).get("cases", 0)) != n:
        assert time.monotonic() < deadline, f"{found} cases, waited for {n}"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("proposed_pin", [None, "H4PPY-D4Y5X"])
async def test_a_dropped_response_is_recovered_by_retrying(database_url: str, live_server: StartLiveServer,
                                                           proposed_pin: str | None) -> None:
    server = live_server(database_url, env=NO_RATE_LIMIT)
    body: dict[str, Any] = {"hashes": [pdq(1), md5(1)], "language": "tr", "idempotency_key": new_key()}
    if proposed_pin:
        body["pin"] = proposed_pin
    sock = connect(server)
    sock.sendall(raw_request("/api/cases", json.dumps(body).encode(), server.port))
    await wait_for_cases(database_url, 1)  # the server made the case ...
    reset(sock)  # ... and its answer is lost
    [(number,)] = await query(database_url, "SELECT case_number FROM cases")
    server.restart()  # the key and the server secret live in the database, not in the process
    async with server.async_client() as c:
        r = await c.post("/api/cases", json=body)
        assert r.status_code == 201, r.text
        assert r.headers["idempotent-replayed"] == "true"
        assert r.json()["case_number"] == number and r.json()["hash_count"] == 2
        if proposed_pin:
            assert r.json()["pin"] == proposed_pin
        shown = await status(c, r.json())
        assert shown.status_code == 200 and len(shown.json()["hashes"]) == 2
    assert (await counts(database_url))["cases"] == 1


async def test_a_client_that_gives_up_early_and_retries_gets_one_case(database_url: str,
                                                                      live_server: StartLiveServer) -> None:
    server = live_server(database_url, env=NO_RATE_LIMIT)
    body = {"hashes": [pdq(1), md5(1)], "idempotency_key": new_key()}
    # Hang up right after sending: the server may or may not have read the request by then.
    sock = connect(server)
    sock.sendall(raw_request("/api/cases", json.dumps(body).encode(), server.port))
    reset(sock)
    # Give up after half a millisecond: usually before the answer comes (argon2 alone takes
    # longer); if the server was quicker, the answer must be the one case all the same.
    async with server.async_client(timeout=httpx.Timeout(5.0, read=0.0005)) as impatient:
        try:
            early = await impatient.post("/api/cases", json=body)
        except httpx.ReadTimeout:
            pass
        else:
            assert early.status_code == 201, early.text
    async with server.async_client() as c:
        r = await c.post("/api/cases", json=body)
        assert r.status_code == 201, r.text
        await asyncio.sleep(0.3)  # anything still running on the server finishes
        assert (await counts(database_url))["cases"] == 1
        assert (await status(c, r.json())).status_code == 200
        again = await c.post("/api/cases", json=body)
        assert again.headers["idempotent-replayed"] == "true" and again.json() == r.json()
    assert (await counts(database_url))["cases"] == 1


async def test_concurrent_duplicates_on_a_live_server_make_one_case(database_url: str,
                                                                    live_server: StartLiveServer) -> None:
    server = live_server(database_url, env=NO_RATE_LIMIT)
    body = {"hashes": [pdq(1)], "idempotency_key": new_key(), "pin": "R4SWT-K8NQZ"}
    async with server.async_client() as c:
        responses = await asyncio.gather(*(c.post("/api/cases", json=body) for _ in range(10)))
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["case_number"] for r in responses}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 9
    assert (await counts(database_url))["cases"] == 1


# --- several workers on one PostgreSQL ---------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _owner_of(server: LiveServer, client_port: int) -> int | None:
    """The worker process holding the server end of the connection from client_port."""
    hex_client = f"{socket.ntohl(int.from_bytes(socket.inet_aton(CLIENT_ADDRESS), 'big')):08X}:{client_port:04X}"
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        parts = line.split()
        if parts[1].endswith(f":{server.port:04X}") and parts[2] == hex_client:
            inodes.add(parts[9])
    for pid in _children(server.pid or 0):
        try:
            links = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        except OSError:
            continue
        if any(f"socket:[{inode}]" in links for inode in inodes):
            return pid
    return None


class Connection:
    """One keep-alive HTTP connection from CLIENT_ADDRESS (so we know which worker serves it)."""

    def __init__(self, server: LiveServer) -> None:
        import http.client

        self.http = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30,
                                               source_address=(CLIENT_ADDRESS, 0))
        self.http.connect()
        self.http.request("GET", "/healthz")  # served, so accepted, before we look for the worker
        self.http.getresponse().read()
        self.worker = _owner_of(server, self.http.sock.getsockname()[1])

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        self.http.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        response = self.http.getresponse()
        data = response.read()
        try:
            parsed = json.loads(data)
        except ValueError:
            parsed = data
        return response.status, {k.lower(): v for k, v in response.getheaders()}, parsed

    def close(self) -> None:
        self.http.close()


def two_workers(server: LiveServer) -> tuple[Connection, Connection]:
    """Connections served by two different worker processes."""
    by_worker: dict[int, Connection] = {}
    spare = []
    for _ in range(80):
        conn = Connection(server)
        if conn.worker is not None and conn.worker not in by_worker:
            by_worker[conn.worker] = conn
            if len(by_worker) == 2:
                break
        else:
            spare.append(conn)
    for conn in spare:
        conn.close()
    assert len(by_worker) == 2, f"80 connections all went to workers {set(by_worker)}"
    first, second = by_worker.values()
    return first, second


@pytest.fixture
def workers_server(postgresql_database_url: str, live_server: StartLiveServer) -> LiveServer:
    # `python -m server_client` is `python -m server ... --workers 2` (see tests/server_client.py).
    return live_server(postgresql_database_url, module="tests.server_client",
                       env={**NO_RATE_LIMIT, "KALKAN_TEST_WORKERS": "2"})


async def test_two_workers_share_lockouts_and_idempotency(workers_server: LiveServer,
                                                          postgresql_database_url: str) -> None:
    url = postgresql_database_url
    a, b = two_workers(workers_server)
    assert a.worker != b.worker and a.worker in _children(workers_server.pid or 0)

    # Idempotency: made on one worker, replayed by the other, also after a dropped response.
    body = {"hashes": [pdq(1)], "idempotency_key": new_key()}
    code, headers, case = a.post("/api/cases", body)
    assert code == 201 and "idempotent-replayed" not in headers
    code, headers, again = b.post("/api/cases", body)
    assert (code, headers.get("idempotent-replayed"), again) == (201, "true", case)
    dropped = {"hashes": [pdq(2)], "idempotency_key": new_key(), "pin": "W3XQP-7MNKR"}
    sock = connect(workers_server)
    sock.sendall(raw_request("/api/cases", json.dumps(dropped).encode(), workers_server.port))
    await wait_for_cases(url, 2)
    reset(sock)
    for conn in (a, b):
        code, headers, replay = conn.post("/api/cases", dropped)
        assert (code, headers.get("idempotent-replayed"), replay["pin"]) == (201, "true", "W3XQP-7MNKR")
    # Concurrent duplicates landing on both workers.
    racing = {"hashes": [pdq(3)], "idempotency_key": new_key()}
    results: list[Any] = []
    threads = [threading.Thread(target=lambda conn=conn: results.append(conn.post("/api/cases", racing)))
               for conn in (a, b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r[0] for r in results] == [201, 201] and results[0][2] == results[1][2]
    assert sorted(r[1].get("idempotent-replayed", "") for r in results) == ["", "true"]
    assert (await counts(url))["cases"] == 3

    # Lockout counters: wrong PINs alternate between the workers; the lock holds on both.
    wrong = {"case_number": case["case_number"], "pin": other_pin(case["pin"])}
    right = {"case_number": case["case_number"], "pin": case["pin"]}
    for attempt in range(9):
        assert (a if attempt % 2 else b).post("/api/cases/status", wrong)[0] == 401
    assert a.post("/api/cases/status", right)[0] == 200  # a right PIN on one worker resets for both
    for attempt in range(10):
        assert (a if attempt % 2 else b).post("/api/cases/status", wrong)[0] == 401
    for conn in (a, b):
        code, headers, locked = conn.post("/api/cases/status", right)
        assert code == 429 and locked["error"]["code"] == "locked" and headers["retry-after"]
    assert a.worker == _owner_of(workers_server, a.http.sock.getsockname()[1])  # still the same processes
    assert b.worker == _owner_of(workers_server, b.http.sock.getsockname()[1])
    a.close()
    b.close()


async def test_a_client_hanging_up_mid_request_is_not_a_server_error(database_url: str,
                                                                    live_server: StartLiveServer) -> None:
    """People on bad connections hang up mid-upload all the time: that is no application error
    (no 'Exception in ASGI application' traceback in the log), nothing is written, and the
    server goes on serving."""
    server = live_server(database_url, env=NO_RATE_LIMIT)
    partial = json.dumps({"hashes": [pdq(1), md5(1)]}).encode()
    for path, content_type in (("/api/cases", "application/json"), ("/case", "application/x-www-form-urlencoded")):
        sock = connect(server)
        head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(partial) + 500}\r\n\r\n").encode()
        sock.sendall(head + partial)
        sock.shutdown(socket.SHUT_WR)  # the rest of the body never comes
        sock.settimeout(5)
        try:
            while sock.recv(4096):
                pass
        except OSError:
            pass
        sock.close()
    async with server.async_client() as c:
        assert (await c.get("/healthz")).status_code == 200
        await create_case(c, [md5(2)])
    assert (await counts(database_url))["cases"] == 1
    server.stop()
    assert "Exception in ASGI application" not in server.logs(), server.logs()[-2000:]
