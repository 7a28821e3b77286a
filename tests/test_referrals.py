"""Helplines' referral codes (server/referrals.py): the command line, which codes a case keeps,
and the weekly figures a helpline may see (issue 11; the /r/ pages are still to come)."""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from server.db import Database
from server.referrals import FEWER_THAN, ReferralStore, Week, weekly
from server_client import create_case, creds, execute, in_process, md5, migrate, new_key, query, run_cli

pytestmark = pytest.mark.anyio

TKDF = ["--name-tr", "Türkiye Kadın Dernekleri Federasyonu", "--name-en", "Federation of Women's Associations of Turkey",
        "--phone", "+902126569696", "--phone-display", "0212 656 96 96", "--lang", "tr"]


def add(database_url: str, data: Path, code: str = "tkdf") -> str:
    result = run_cli(database_url, data, "referrals", "add", code, *TKDF, "--json")
    assert result.returncode == 0, result.stderr
    return str(json.loads(result.stdout)["key"])


async def stats(database_url: str, code: str, key: str) -> list[Week] | None:
    database = Database(database_url)
    try:
        store = ReferralStore(database)
        await store.start()
        return await store.stats(code, key)
    finally:
        await database.dispose()


def test_the_command_line_adds_lists_rotates_and_revokes(database_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    key = add(database_url, data)
    assert len(key) == 43
    listed = run_cli(database_url, data, "referrals", "list", "--json")
    assert json.loads(listed.stdout) == [{"code": "tkdf", "name_tr": "Türkiye Kadın Dernekleri Federasyonu",
                                          "name_en": "Federation of Women's Associations of Turkey",
                                          "phone": "0212 656 96 96", "language": "tr", "status": "active"}]
    stored = asyncio.run(query(database_url, "SELECT key_hash FROM referrals"))[0][0]
    assert key.encode() not in bytes(stored) and len(bytes(stored)) == 32  # a keyed hash, not the key
    again = run_cli(database_url, data, "referrals", "add", "tkdf", *TKDF)
    assert again.returncode == 1 and "exists already" in again.stderr
    for bad, says in ((["--phone", "02126569696"], "E.164"), (["--lang", "de"], "tr or en")):
        refused = run_cli(database_url, data, "referrals", "add", "other", *TKDF, *bad)
        assert refused.returncode == 1 and says in refused.stderr, refused.stderr
    refused = run_cli(database_url, data, "referrals", "add", "TKDF!", *TKDF)
    assert refused.returncode == 1 and "a-z" in refused.stderr
    rotated = json.loads(run_cli(database_url, data, "referrals", "rotate", "tkdf", "--json").stdout)["key"]
    assert rotated != key
    assert asyncio.run(stats(database_url, "tkdf", key)) is None
    assert asyncio.run(stats(database_url, "tkdf", rotated)) is not None
    assert run_cli(database_url, data, "referrals", "revoke", "tkdf").returncode == 0
    assert asyncio.run(stats(database_url, "tkdf", rotated)) is None
    assert "revoked" in run_cli(database_url, data, "referrals", "list").stdout


async def test_a_case_keeps_only_a_known_active_code(database_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    await migrate(database_url)
    await asyncio.to_thread(add, database_url, data)
    await asyncio.to_thread(add, database_url, data, "gone")
    assert (await asyncio.to_thread(run_cli, database_url, data, "referrals", "revoke", "gone")).returncode == 0
    async with in_process(database_url, data) as client:
        for number, ref in enumerate(("tkdf", "nobody", "gone")):
            await create_case(client, [md5(number)], ref=ref)
        # A replay after the code was revoked is still the same request (the body as sent).
        body = {"hashes": [md5(9)], "ref": "tkdf", "idempotency_key": new_key()}
        first = (await client.post("/api/cases", json=body)).json()
    assert sorted(await query(database_url, "SELECT ref FROM cases"), key=repr) == sorted(
        [("tkdf",), (None,), (None,), ("tkdf",)], key=repr)
    assert (await asyncio.to_thread(run_cli, database_url, data, "referrals", "revoke", "tkdf")).returncode == 0
    async with in_process(database_url, data) as client:
        replay = await client.post("/api/cases", json=body)
        assert replay.status_code == 201 and replay.json() == first
        assert (await client.post("/api/cases/status", json=creds(first))).status_code == 200


async def test_a_helpline_sees_cases_per_week_with_small_counts_hidden(database_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    await migrate(database_url)
    key = await asyncio.to_thread(add, database_url, data)
    async with in_process(database_url, data) as client:
        for number in range(6):
            await create_case(client, [md5(number)], ref="tkdf")
        await create_case(client, [md5(99)])  # not referred: never counted
    # Four cases three weeks ago, two last week, none the week between.
    three_weeks_ago = datetime.now(timezone.utc) - timedelta(weeks=3)
    ids = [row[0] for row in await query(database_url, "SELECT id FROM cases WHERE ref = 'tkdf' ORDER BY id")]
    for index, case_id in enumerate(ids):
        moment = three_weeks_ago if index < 4 else datetime.now(timezone.utc) - timedelta(weeks=1)
        await execute(database_url, "UPDATE cases SET created_at = :t WHERE id = :id", t=moment, id=case_id)
    await execute(database_url, "UPDATE referrals SET created_at = :t", t=three_weeks_ago)
    figures = await stats(database_url, "tkdf", key)
    assert figures is not None and len(figures) in (4, 5)  # from that week to this one
    assert figures[0].cases == 4
    assert [week.cases for week in figures[1:]] == [None] * (len(figures) - 1)  # 0, 2 and 0: all "fewer than 3"
    assert await stats(database_url, "tkdf", "x" * 43) is None
    assert await stats(database_url, "nobody", key) is None


def test_weeks_are_iso_weeks_and_counts_below_three_are_hidden() -> None:
    monday = date(2026, 11, 30)  # ISO week 49 of 2026
    moments = [datetime(2026, 11, 30, 1, tzinfo=timezone.utc)] * FEWER_THAN + [datetime(2026, 12, 7, tzinfo=timezone.utc)]
    assert weekly(moments, monday + timedelta(days=2), monday + timedelta(days=8)) == [
        Week(2026, 49, FEWER_THAN), Week(2026, 50, None)]
    assert weekly([], date(2025, 12, 29), date(2026, 1, 4)) == [Week(2026, 1, None)]  # ISO year 2026 starts then
