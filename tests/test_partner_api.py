"""The partner API (server/partner_api.py, exchange.py, partners.py, outcomes.py) against the
REAL python-threatexchange StopNCII client, on a live uvicorn over loopback, on SQLite and
PostgreSQL. Nothing is mocked: the client is `threatexchange` from PyPI with base_url_override.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import subprocess
import sys
import threading
import time
from datetime import datetime
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import requests
from threatexchange.exchanges.clients.stopncii.api import (
    StopNCIIAPI,
    StopNCIICSPFeedbackValue,
    StopNCIIHashRecord,
    StopNCIISignalType,
)
from threatexchange.exchanges.collab_config import CollaborationConfigBase
from threatexchange.exchanges.impl.stop_ncii_api import StopNCIICheckpoint, StopNCIISignalExchangeAPI

from partner_bank import BANK_PIN, add_partner, partner_client as client_for, partner_headers as headers, seed_bank
from server import exchange
from server.db import Database
from server.errors import ApiError
from server.exchange import case_pseudonym
from server.partners import PartnerStore
from server.security import keyed
from server_client import execute, flatten, md5_value, migrate, pdq_value, query, snapshot
from server_harness import REPO_ROOT, LiveServer, StartLiveServer

NO_LIMITS = {"KALKAN_RATE_LIMIT_PER_MINUTE": "0", "KALKAN_PARTNER_RATE_LIMIT_PER_MINUTE": "0"}
VPDQ = json.dumps([f"{pdq_value(900 + i)},100,{i}.000" for i in range(3)])


# --- helpers --------------------------------------------------------------------------------------


def everything(api: StopNCIIAPI, start: int = StopNCIIAPI.DEFAULT_START_TIME) -> tuple[dict[tuple[str, str], StopNCIIHashRecord], int]:
    """The client's view after paging from `start` (records by (signalType, hashValue)) and the
    checkpoint it would keep (the last page's nextSetTimestamp)."""
    records: dict[tuple[str, str], StopNCIIHashRecord] = {}
    checkpoint = start
    for page in api.fetch_hashes_iter(start_timestamp=start):
        for record in page.hashRecords:
            records[(record.signalType.value, record.hashValue)] = record
        checkpoint = page.nextSetTimestamp
    return records, checkpoint


def statuses(record: StopNCIIHashRecord) -> dict[str, str]:
    return {pseudonym: status.value for pseudonym, status in record.caseNumbers.items()}


def create(http: httpx.Client, hashes: list[dict[str, Any]]) -> dict[str, Any]:
    response = http.post("/api/cases", json={"hashes": hashes})
    assert response.status_code == 201, response.text
    return response.json()


def pdq(value: str) -> dict[str, Any]:
    return {"signal_type": "pdq", "value": value, "quality": 90}


def md5(value: str) -> dict[str, Any]:
    return {"signal_type": "md5", "value": value}


def case_ids(url: str) -> dict[str, int]:
    return {number: case_id for number, case_id in asyncio.run(query(url, "SELECT case_number, id FROM cases"))}


def pseudonyms_for(url: str, partner_name: str) -> dict[int, str]:
    """Case id -> what `partner_name` sees, computed as docs/partner-api.md describes it."""
    secret = asyncio.run(query(url, "SELECT secret FROM server_secret"))[0][0]
    partner_id = asyncio.run(query(url, "SELECT id FROM partners WHERE name = :name", name=partner_name))[0][0]
    key = keyed(bytes(secret), "case-pseudonym", "")
    return {case_id: case_pseudonym(key, partner_id, case_id) for case_id in case_ids(url).values()}


def error_of(response: httpx.Response | requests.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]


@pytest.fixture
def started(database_url: str, live_server: StartLiveServer) -> LiveServer:
    return live_server(database_url, env=NO_LIMITS)


# --- end to end with the real client ----------------------------------------------------------------


def test_cases_sync_withdraw_feedback_and_partner_hashes_with_the_real_client(
        database_url: str, started: LiveServer) -> None:
    social = add_partner(database_url, "Example Social")
    other = add_partner(database_url, "Örnek Platform")
    api, other_api = client_for(started, social), client_for(started, other)
    p1, p2, m1 = pdq_value(1), pdq_value(2), md5_value(1)
    with started.client() as http:
        first = create(http, [pdq(p1), md5(m1), {"signal_type": "vpdq", "value": VPDQ}])
        second = create(http, [pdq(p1), pdq(p2)])
        ids = case_ids(database_url)
        seen = pseudonyms_for(database_url, "Example Social")
        c1, c2 = seen[ids[first["case_number"]]], seen[ids[second["case_number"]]]

        # StopNCIIAPI.fetch_hashes_iter: one record per hash, Active, cases as pseudonyms.
        records, checkpoint = everything(api)
        assert set(records) == {("ImagePDQ", p1), ("ImagePDQ", p2), ("VideoMD5", m1)}  # no vPDQ unasked
        assert statuses(records[("ImagePDQ", p1)]) == {c1: "Active", c2: "Active"}
        assert statuses(records[("VideoMD5", m1)]) == {c1: "Active"}
        assert statuses(records[("ImagePDQ", p2)]) == {c2: "Active"}
        assert all(r.hashStatus.value == "Active" and r.CSPFeedbacks == [] for r in records.values())
        assert c1 != c2 and not {c1, c2} & {first["case_number"], second["case_number"]}
        # Another partner sees other pseudonyms for the same cases.
        other_records, _ = everything(other_api)
        assert set(other_records) == set(records)
        assert set(statuses(other_records[("ImagePDQ", p1)])).isdisjoint({c1, c2})
        assert len(statuses(other_records[("ImagePDQ", p1)])) == 2

        # vPDQ only when asked for, under pytx's name for it.
        asked = httpx.get(started.url("/v1/FetchHashes"), params={"signalTypes": "vpdq"},
                          headers=headers(social, "FetchHashes"), trust_env=False).json()
        assert [(r["signalType"], r["hashValue"], r["caseNumbers"]) for r in asked["hashRecords"]] == \
            [("vpdq", VPDQ, {c1: "Active"})]

        # StopNCIISignalExchangeAPI (what HMA runs): the same hashes, under pytx's type names.
        exchange = StopNCIISignalExchangeAPI(CollaborationConfigBase("KALKAN", "stop_ncii", True), api)
        deltas = list(exchange.fetch_iter([], None))
        assert {key for delta in deltas for key in delta.updates} == {("pdq", p1), ("pdq", p2), ("video_md5", m1)}
        saved: StopNCIICheckpoint = deltas[-1].checkpoint
        assert saved.update_time == checkpoint

        # A withdrawn case: from the saved checkpoint, its hashes come again, Withdrawn where no
        # other case holds them.
        assert http.post("/api/cases/withdraw", json={"case_number": first["case_number"],
                                                      "pin": first["pin"]}).status_code == 200
        again = list(exchange.fetch_iter([], saved))
        assert {("pdq", p1), ("video_md5", m1)} <= {key for delta in again for key in delta.updates}
        changed, _ = everything(api, saved.update_time)
        assert changed[("VideoMD5", m1)].hashStatus.value == "Withdrawn"
        assert statuses(changed[("VideoMD5", m1)]) == {c1: "Withdrawn"}
        assert changed[("ImagePDQ", p1)].hashStatus.value == "Active"  # the second case still holds it
        assert statuses(changed[("ImagePDQ", p1)]) == {c1: "Withdrawn", c2: "Active"}
        assert changed[("ImagePDQ", p1)].lastModtimestamp >= records[("ImagePDQ", p1)].lastModtimestamp

        # Feedback: stored per partner per hash, visible to every partner, told to the person.
        api.submit_feedback(StopNCIISignalType.ImagePDQ, p2, StopNCIICSPFeedbackValue.PendingReview)
        api.submit_feedback(StopNCIISignalType.ImagePDQ, p2, StopNCIICSPFeedbackValue.Blocked, {"nudity"})
        other_api.submit_feedback(StopNCIISignalType.ImagePDQ, p2, StopNCIICSPFeedbackValue.NotBlocked)
        seen_by_other, _ = everything(other_api, saved.update_time)
        feedback = {(f.source, f.feedbackValue.value, frozenset(f.tags))
                    for f in seen_by_other[("ImagePDQ", p2)].CSPFeedbacks}
        assert feedback == {("Example Social", "Blocked", frozenset({"nudity"})),
                            ("Örnek Platform", "NotBlocked", frozenset())}

        status = http.post("/api/cases/status", json={"case_number": second["case_number"], "pin": second["pin"]})
        outcomes = {o["platform"]: o for o in status.json()["outcomes"]}
        assert set(outcomes) == {"Example Social", "Örnek Platform"}
        assert outcomes["Example Social"]["state"] == "removed"
        assert outcomes["Örnek Platform"]["state"] == "not_removed"
        today = time.gmtime(time.time() + 3 * 3600)  # dates are Turkey's (UTC+3)
        en_month = time.strftime("%B", today)
        tr_month = ["Ocak", "Şubat", "Mart", "Nisan", "Mayıs", "Haziran", "Temmuz", "Ağustos", "Eylül", "Ekim",
                    "Kasım", "Aralık"][today.tm_mon - 1]
        assert outcomes["Example Social"]["text"]["en"] == f"found and removed on {today.tm_mday} {en_month} {today.tm_year}"
        assert outcomes["Example Social"]["text"]["tr"] == \
            f"{today.tm_mday} {tr_month} {today.tm_year} tarihinde bulundu ve kaldırıldı"
        assert "not removed" in outcomes["Örnek Platform"]["text"]["en"]
        assert "kaldırılmadı" in outcomes["Örnek Platform"]["text"]["tr"]
        # The first case holds no hash with feedback: nothing to tell.
        assert http.post("/api/cases/status", json={"case_number": first["case_number"],
                                                    "pin": first["pin"]}).json()["outcomes"] == []
        for lang, words in (("tr", "bulundu ve kaldırıldı"), ("en", "found and removed on")):
            page = http.post("/case", data={"lang": lang, "case_number": second["case_number"], "pin": second["pin"]})
            assert page.status_code == 200
            assert "Example Social" in page.text and words in page.text
            assert "Örnek Platform" in page.text

        # A partner's own hashes: never on a case, shared with the others under its name.
        own = md5_value(77)
        other_api.submit_hash(StopNCIISignalType.VideoMD5, own)
        shared, _ = everything(api, saved.update_time)
        record = shared[("VideoMD5", own)]
        assert record.hashStatus.value == "Active" and record.caseNumbers == {}
        assert [(f.source, f.feedbackValue.value) for f in record.CSPFeedbacks] == [("Örnek Platform", "Blocked")]
    assert asyncio.run(query(database_url, "SELECT count(*) FROM case_hashes WHERE value = :v", v=own)) == [(0,)]


def test_purge_leaves_a_deleted_record_for_partners_then_forgets_it(
        database_url: str, started: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from server.cli import main as cli

    keys = add_partner(database_url, "Example Social")
    api = client_for(started, keys)
    shared, alone = pdq_value(5), md5_value(5)
    with started.client() as http:
        gone = create(http, [pdq(shared), md5(alone)])
        kept = create(http, [pdq(shared)])
        assert http.post("/api/cases/withdraw", json={"case_number": gone["case_number"],
                                                      "pin": gone["pin"]}).status_code == 200
    _, checkpoint = everything(api)
    monkeypatch.setenv("KALKAN_DATABASE_URL", database_url)
    assert cli(["purge", "--older-than", "0s"]) == 0
    after, _ = everything(api, checkpoint)
    assert after[("VideoMD5", alone)].hashStatus.value == "Deleted"
    assert after[("VideoMD5", alone)].caseNumbers == {}
    kept_pseudonym = pseudonyms_for(database_url, "Example Social")[case_ids(database_url)[kept["case_number"]]]
    assert statuses(after[("ImagePDQ", shared)]) == {kept_pseudonym: "Active"}
    # The next purge forgets the Deleted marker: a partner syncing since has deleted the hash.
    time.sleep(1.1)  # markers are dated in whole seconds
    assert cli(["purge", "--older-than", "0s"]) == 0
    final, _ = everything(api)
    assert set(final) == {("ImagePDQ", shared)}


# --- keys -----------------------------------------------------------------------------------------


def test_wrong_revoked_and_other_endpoint_keys_are_refused(database_url: str, started: LiveServer) -> None:
    social = add_partner(database_url, "Example Social")
    other = add_partner(database_url, "Other")
    url = started.url("/v1/FetchHashes")

    def fetch(headers: dict[str, str]) -> httpx.Response:
        return httpx.get(url, headers=headers, trust_env=False)

    assert fetch(headers(social, "FetchHashes")).status_code == 200
    cases = [
        ({}, 401, "Ocp-Apim-Subscription-Key"),
        ({"Ocp-Apim-Subscription-Key": social["subscription_key"]}, 401, "x-functions-key"),
        ({**headers(social, "FetchHashes"), "Ocp-Apim-Subscription-Key": "x" * 43}, 401, "Ocp-Apim-Subscription-Key"),
        ({**headers(social, "FetchHashes"), "x-functions-key": "x" * 43}, 401, "x-functions-key"),
        # another partner's FetchHashes key with this partner's subscription key
        ({**headers(social, "FetchHashes"), "x-functions-key": other["function_keys"]["FetchHashes"]}, 401,
         "x-functions-key"),
        # this partner's keys for other endpoints
        (headers(social, "SubmitFeedback"), 403, "x-functions-key"),
        ({**headers(social, "FetchHashes"), "x-functions-key": social["subscription_key"]}, 403, "x-functions-key"),
    ]
    for sent, status, field_name in cases:
        response = fetch(sent)
        assert response.status_code == status, (sent, response.text)
        assert error_of(response)["field"] == field_name
    # The real client raises on them too.
    with pytest.raises(requests.HTTPError) as refused:
        client_for(started, social, fetch_key=social["function_keys"]["SubmitHashes"]).fetch_hashes()
    assert refused.value.response.status_code == 403
    feedback = httpx.post(started.url("/v1/SubmitFeedback"), headers=headers(social, "FetchHashes"),
                          json={"count": 1, "hashFeedbacks": [{"hashValue": pdq_value(1), "feedbackValue": "Blocked"}]},
                          trust_env=False)
    assert feedback.status_code == 403

    asyncio.run(_revoke(database_url, "Example Social"))
    revoked = fetch(headers(social, "FetchHashes"))
    assert revoked.status_code == 401 and error_of(revoked)["field"] == "Ocp-Apim-Subscription-Key"
    assert fetch(headers(other, "FetchHashes")).status_code == 200


async def _revoke(url: str, name: str) -> None:
    database = Database(url)
    try:
        store = PartnerStore(database)
        await store.start()
        await store.revoke(name)
    finally:
        await database.dispose()


def test_status_lookups_stay_on_indexes_when_tables_grow_after_start(postgresql_database_url: str) -> None:
    """PostgreSQL may keep one generic plan per prepared statement after five runs. Made while
    partner_feedback was empty (a new deployment), the plan of the lookup that every feedback and
    withdrawal runs (exchange._statuses) scanned the whole table once it held rows: 10 ms instead
    of 3 per feedback at 90,000 rows in bench/partner_bench.py, until autovacuum next analysed it.
    Even planned afresh, before the first ANALYZE the planner guessed a scan cheaper than probing
    the primary key per record. The server's connections plan each statement for the tables as
    they are (server/db.py), and partners' own submissions have an index of their own (migration
    0004). Here one connection of the server's own Database runs the lookup on an empty feedback
    table, the table grows by 10,000 rows from elsewhere, and the same connection's next run is
    read back from PostgreSQL's auto_explain: it goes through that index."""
    url = postgresql_database_url
    bank = seed_bank(url, 2_000, 5)  # 10,000 records, no feedback yet
    add_partner(url, "Other Platform")
    keys = [("pdq", value) for held in bank.keys for kind, value in held if kind == "pdq"][:3]

    async def plans_after_growth() -> list[str]:
        database = Database(url)
        notices: list[str] = []
        try:
            async with database.engine.connect() as conn:
                raw = (await conn.get_raw_connection()).driver_connection
                raw.add_log_listener(lambda _, message: notices.append(message.message))
                for _ in range(10):  # a generic plan would be made here, on the empty table
                    assert await conn.run_sync(lambda c: exchange._statuses(c, keys)) == dict.fromkeys(keys, ("Active", False))
                await conn.rollback()
                await execute(url, "INSERT INTO partner_feedback (record_id, partner_id, value, tags, submitted,"
                                   " created_at, updated_at, reported_at) SELECT id, (SELECT id FROM partners), 'Blocked', '[]',"
                                   " 0, now(), now(), now() FROM exchange_records")
                for setting in ("LOAD 'auto_explain'", "SET auto_explain.log_min_duration = 0",
                                "SET auto_explain.log_level = notice"):
                    await conn.exec_driver_sql(setting)
                notices.clear()
                assert await conn.run_sync(lambda c: exchange._statuses(c, keys)) == dict.fromkeys(keys, ("Active", False))
                await conn.rollback()
        finally:
            await database.dispose()
        return notices

    plans = [plan for plan in asyncio.run(plans_after_growth()) if "partner_feedback" in plan]
    assert plans, "auto_explain reported no plan that reads partner_feedback"
    for plan in plans:
        assert "Seq Scan on partner_feedback" not in plan, plan
        assert "ix_partner_feedback_submitted" in plan, plan  # migration 0004


def test_per_partner_rate_limit(sqlite_database_url: str, live_server: StartLiveServer) -> None:
    server = live_server(sqlite_database_url, env={"KALKAN_PARTNER_RATE_LIMIT_PER_MINUTE": "2"})
    busy, calm = add_partner(sqlite_database_url, "Busy"), add_partner(sqlite_database_url, "Calm")
    url = server.url("/v1/FetchHashes")
    statuses_seen = [httpx.get(url, headers=headers(busy, "FetchHashes"), trust_env=False) for _ in range(3)]
    assert [r.status_code for r in statuses_seen] == [200, 200, 429]
    assert error_of(statuses_seen[2])["code"] == "rate_limited" and int(statuses_seen[2].headers["Retry-After"]) >= 1
    assert httpx.get(url, headers=headers(calm, "FetchHashes"), trust_env=False).status_code == 200


# --- bad input ------------------------------------------------------------------------------------


def test_bad_input_names_the_field_and_writes_nothing(database_url: str, started: LiveServer) -> None:
    social = add_partner(database_url, "Example Social")
    other = add_partner(database_url, "Other")
    known = pdq_value(11)
    with started.client() as http:
        create(http, [pdq(known)])
    fetch_url = started.url("/v1/FetchHashes")

    def fetch(keys: dict[str, Any] = social, **params: Any) -> httpx.Response:
        return httpx.get(fetch_url, params=params, headers=headers(keys, "FetchHashes"), trust_env=False)

    token = fetch(pageSize=1).json()["nextPageToken"]
    vpdq_token = fetch(signalTypes="vpdq").json()["nextPageToken"]
    other_token = fetch(other).json()["nextPageToken"]
    tampered = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    before = asyncio.run(snapshot(database_url))

    for params, field_name in [
        ({"pageSize": "2001"}, "pageSize"), ({"pageSize": "0"}, "pageSize"), ({"pageSize": "ten"}, "pageSize"),
        ({"startTimestamp": "-1"}, "startTimestamp"), ({"startTimestamp": "1e9"}, "startTimestamp"),
        ({"nextPageToken": tampered}, "nextPageToken"), ({"nextPageToken": "garbage!"}, "nextPageToken"),
        ({"nextPageToken": other_token}, "nextPageToken"), ({"nextPageToken": vpdq_token}, "nextPageToken"),
        ({"signalTypes": "VideoTMK"}, "signalTypes"), ({"pagesize": "10"}, "pagesize"),
    ]:
        response = fetch(**params)
        assert response.status_code == 400, (params, response.text)
        assert error_of(response)["field"] == field_name, params

    def post(endpoint: str, body: Any, **kwargs: Any) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.post(started.url(f"/v1/{endpoint}"), content=content, trust_env=False,
                          headers={**headers(social, endpoint), "Content-Type": "application/json",
                                   **kwargs.get("extra", {})})

    good = {"hashValue": known, "feedbackValue": "Blocked", "tags": []}
    feedback_cases: list[tuple[Any, int, str | None, str]] = [
        (b"{not json", 400, None, "malformed_json"),
        ({"count": 2, "hashFeedbacks": [good, {**good, "hashValue": pdq_value(12)}]}, 422,
         "hashFeedbacks[1].hashValue", "unknown_hash"),
        ({"count": 1, "hashFeedbacks": [{**good, "hashValue": "abc"}]}, 422, "hashFeedbacks[0].hashValue",
         "invalid_field"),
        ({"count": 1, "hashFeedbacks": [{**good, "feedbackValue": "Removed"}]}, 422,
         "hashFeedbacks[0].feedbackValue", "invalid_field"),
        ({"count": 1, "hashFeedbacks": [{**good, "tags": "nudity"}]}, 422, "hashFeedbacks[0].tags", "invalid_field"),
        ({"count": 1, "hashFeedbacks": [{**good, "tags": ["ok", ""]}]}, 422, "hashFeedbacks[0].tags[1]",
         "invalid_field"),
        ({"count": 1, "hashFeedbacks": [{**good, "extra": 1}]}, 422, "hashFeedbacks[0].extra", "invalid_field"),
        ({"count": 3, "hashFeedbacks": [good]}, 422, "count", "invalid_field"),
        ({"count": 0, "hashFeedbacks": []}, 422, "hashFeedbacks", "invalid_field"),
        ({"count": 1001, "hashFeedbacks": [good] * 1001}, 422, "hashFeedbacks", "invalid_field"),
        ([good], 422, None, "invalid_field"),
    ]
    for body, status, field_name, code in feedback_cases:
        response = post("SubmitFeedback", body)
        assert response.status_code == status, (body, response.text)
        assert error_of(response).get("field") == field_name and error_of(response)["code"] == code, response.text
    assert post("SubmitFeedback", {"count": 1, "hashFeedbacks": [good]},
                extra={"Content-Type": "text/plain"}).status_code == 415
    assert post("SubmitFeedback", b" " * (1024 * 1024 + 1)).status_code == 413  # partners' cap: 1 MB

    record = {"signalType": "VideoMD5", "hashValue": md5_value(40), "CSPFeedbacks": [{"feedbackValue": "Blocked",
                                                                                         "tags": []}]}
    for body, field_name in [
        ({"count": 1, "hashRecords": [{**record, "signalType": "VideoTMK"}]}, "hashRecords[0].signalType"),
        ({"count": 2, "hashRecords": [record, {**record, "hashValue": "0" * 31}]}, "hashRecords[1].hashValue"),
        ({"count": 1, "hashRecords": [{**record, "signalType": "ImagePDQ", "hashValue": "0" * 64}]},
         "hashRecords[0].hashValue"),
        ({"count": 1, "hashRecords": [{**record, "CSPFeedbacks": [record["CSPFeedbacks"][0]] * 2}]},
         "hashRecords[0].CSPFeedbacks"),
        ({"count": 1, "hashRecords": [{**record, "CSPFeedbacks": [{"feedbackValue": "Yes"}]}]},
         "hashRecords[0].CSPFeedbacks[0].feedbackValue"),
    ]:
        response = post("SubmitHashes", body)
        assert response.status_code == 422, (body, response.text)
        assert error_of(response)["field"] == field_name
    for method, path in (("GET", "/v1/SubmitFeedback"), ("POST", "/v1/FetchHashes"), ("GET", "/v1/Nothing")):
        response = httpx.request(method, started.url(path), headers=headers(social, "FetchHashes"), trust_env=False)
        assert response.status_code in (404, 405) and error_of(response)["code"].startswith("http_")

    assert asyncio.run(snapshot(database_url)) == before


# --- partners on the command line ---------------------------------------------------------------


def test_partners_command_line(database_url: str, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    from server.cli import main as cli

    env = {"KALKAN_DATABASE_URL": database_url, "KALKAN_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    added = subprocess.run([sys.executable, "-m", "server", "partners", "add", "Example Social", "--json"],
                           cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert added.returncode == 0, added.stderr
    keys = json.loads(added.stdout)
    assert set(keys) == {"name", "subscription_key", "function_keys"} and keys["name"] == "Example Social"
    assert set(keys["function_keys"]) == {"FetchHashes", "SubmitFeedback", "SubmitHashes"}
    every_key = [keys["subscription_key"], *keys["function_keys"].values()]
    assert len(set(every_key)) == 4 and all(len(k) == 43 for k in every_key)

    monkeypatch.setenv("KALKAN_DATABASE_URL", database_url)
    assert cli(["partners", "add", "example social"]) == 1
    assert "exists already" in capsys.readouterr().err
    assert cli(["partners", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(p["name"], p["status"]) for p in listed] == [("Example Social", "active")]
    stored = flatten(asyncio.run(snapshot(database_url)))
    assert not any(key in stored for key in every_key)  # only keyed hashes are stored

    assert cli(["partners", "rotate", "Example Social", "--json"]) == 0
    rotated = json.loads(capsys.readouterr().out)
    assert not set([rotated["subscription_key"], *rotated["function_keys"].values()]) & set(every_key)
    assert asyncio.run(_authenticates(database_url, keys)) == "unauthorized"
    assert asyncio.run(_authenticates(database_url, rotated)) == "Example Social"

    assert cli(["partners", "revoke", "Example Social"]) == 0
    assert "revoked" in capsys.readouterr().out
    assert asyncio.run(_authenticates(database_url, rotated)) == "unauthorized"
    assert cli(["partners", "rotate", "Example Social"]) == 1
    assert "revoked" in capsys.readouterr().err
    assert cli(["partners", "revoke", "Nobody"]) == 1
    assert "no partner named 'Nobody'" in capsys.readouterr().err
    assert cli(["partners", "list"]) == 0
    assert "Example Social\trevoked" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli(["partners", "add"])


async def _authenticates(url: str, keys: dict[str, Any]) -> str:
    database = Database(url)
    try:
        store = PartnerStore(database)
        await store.start()
        try:
            return (await store.authenticate(keys["subscription_key"], keys["function_keys"]["FetchHashes"],
                                             "FetchHashes")).name
        except ApiError as error:
            return error.code
    finally:
        await database.dispose()


# --- consistency under concurrent writes ------------------------------------------------------------


BANK_CASES, BANK_HASHES_PER_CASE = 4000, 5  # 20,000 records
NEW_CASES = 1000
BANK_WITHDRAWALS = 100


@dataclass
class SyncingClient:
    """A platform syncing in a loop. By checkpoint (as HMA does): pages with nextPageToken to the
    end, keeps the last nextSetTimestamp, starts again from it. Or by token only: keeps paging
    with the last nextPageToken for ever, so a change number handed out of commit order would be
    skipped for good (timestamps, a second wide, would paper over it)."""

    api: StopNCIIAPI
    page_size: int
    follow_token: bool
    state: dict[tuple[str, str], StopNCIIHashRecord] = field(default_factory=dict)
    checkpoint: int = StopNCIIAPI.DEFAULT_START_TIME
    token: str = ""
    pages: int = 0
    passes: int = 0
    error: BaseException | None = None

    def sync_once(self) -> None:
        token = self.token if self.follow_token else ""
        while True:
            page = self.api.fetch_hashes(page_size=self.page_size, start_timestamp=self.checkpoint, next_page=token)
            self.pages += 1
            for record in page.hashRecords:
                self.state[(record.signalType.value, record.hashValue)] = record
            token = page.nextPageToken or ""
            if not page.hasMoreRecords:
                self.checkpoint, self.token = page.nextSetTimestamp, token
                self.passes += 1
                return

    def run_until(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                self.sync_once()
                time.sleep(0.2 if self.follow_token else 0.5)  # a platform pauses; the writers need the CPU
        except BaseException as error:  # reported by the test
            self.error = error


def test_paging_while_cases_are_created_and_withdrawn_ends_equal_to_the_database(
        database_url: str, live_server: StartLiveServer) -> None:
    bank = seed_bank(database_url, BANK_CASES, BANK_HASHES_PER_CASE)
    keys = add_partner(database_url, "Example Social")
    server = live_server(database_url, env=NO_LIMITS)
    # One follows the token with small pages (many pages interleave with the writes), one keeps
    # checkpoints with the client's default page size (800).
    clients = [SyncingClient(client_for(server, keys), 97, follow_token=True),
               SyncingClient(client_for(server, keys), 800, follow_token=False)]
    stop = threading.Event()
    threads = [threading.Thread(target=c.run_until, args=(stop,)) for c in clients]
    for thread in threads:
        thread.start()
    try:
        asyncio.run(_write_concurrently(server, bank))
    finally:
        stop.set()
        for thread in threads:
            thread.join(120)
    for client in clients:
        assert client.error is None, repr(client.error)
        assert client.passes >= 2, "the client should have synced while the cases changed"
        client.sync_once()  # one more from its checkpoint (or token), now that nothing changes

    expected = _database_state(database_url)
    assert len(expected) == BANK_CASES * BANK_HASHES_PER_CASE + 2 * NEW_CASES
    assert sum(1 for status, _ in expected.values() if status == "Withdrawn") > 0
    for client in clients:
        got = {(kind, value): (record.hashStatus.value, statuses(record))
               for (kind, value), record in client.state.items()}
        assert got.keys() == expected.keys()
        wrong = [key for key in expected if got[key] != expected[key]]
        assert not wrong, f"{len(wrong)} records differ, e.g. {wrong[0]}: client {got[wrong[0]]}, " \
                          f"database {expected[wrong[0]]}"


async def _write_concurrently(server: LiveServer, bank: Any) -> None:
    """1,000 new cases (each: a new PDQ, a new MD5, and one bank PDQ it shares), half of them
    withdrawn right after; and 100 bank cases withdrawn. 16 requests in flight."""
    rng = random.Random(5)
    gate = asyncio.Semaphore(16)

    async with server.async_client(timeout=60) as http:
        async def post(path: str, body: dict[str, Any]) -> httpx.Response:
            # A keep-alive connection the server closes as a request goes out (its idle timeout,
            # on a loaded machine) fails that request: send it again, as any client would; both
            # requests are idempotent (the creation carries an idempotency key).
            for attempt in range(3):
                try:
                    return await http.post(path, json=body)
                except httpx.TransportError:
                    if attempt == 2:
                        raise
            raise AssertionError("unreachable")

        async def new_case(i: int) -> None:
            shared = bank.keys[rng.randrange(BANK_CASES)][0]
            async with gate:
                response = await post("/api/cases", {"idempotency_key": f"concurrent-case-{i:06d}-{rng.getrandbits(96):024x}", "hashes": [
                    pdq(pdq_value(10_000 + i)), md5(md5_value(10_000 + i)), pdq(shared[1])]})
                assert response.status_code == 201, response.text
                if i % 2:
                    case = response.json()
                    withdrawn = await post("/api/cases/withdraw", {"case_number": case["case_number"],
                                                                   "pin": case["pin"]})
                    assert withdrawn.status_code == 200, withdrawn.text

        async def withdraw_bank_case(number: str) -> None:
            async with gate:
                response = await post("/api/cases/withdraw", {"case_number": number, "pin": BANK_PIN})
                assert response.status_code == 200, response.text

        work = [new_case(i) for i in range(NEW_CASES)]
        work += [withdraw_bank_case(number) for number in rng.sample(bank.case_numbers, BANK_WITHDRAWALS)]
        rng.shuffle(work)
        await asyncio.gather(*work)


def _database_state(url: str) -> dict[tuple[str, str], tuple[str, dict[str, str]]]:
    """What a client should hold, from the case tables (not from the exchange's own records)."""
    pseudonym = pseudonyms_for(url, "Example Social")
    wire = {"pdq": "ImagePDQ", "md5": "VideoMD5"}
    state: dict[tuple[str, str], tuple[str, dict[str, str]]] = {}
    for kind, value, case_id, status in asyncio.run(query(url, "SELECT signal_type, value, case_id, status "
                                                               "FROM case_hashes")):
        _, holders = state.setdefault((wire[kind], value), ("", {}))
        holders[pseudonym[case_id]] = status.capitalize()
    return {key: ("Active" if "Active" in holders.values() else "Withdrawn", holders)
            for key, (_, holders) in state.items()}


# --- the migration --------------------------------------------------------------------------------


def test_migration_turns_existing_case_hashes_into_records(database_url: str) -> None:
    asyncio.run(migrate(database_url, "0001"))
    moment = "2026-01-01T00:00:00+00:00"
    for case_id, status in ((1, "active"), (2, "withdrawn")):
        asyncio.run(execute(database_url, "INSERT INTO cases (id, case_number, pin_hash, status, language, created_at, "
                                          "updated_at) VALUES (:id, :number, 'x', :status, 'tr', :at, :at)",
                            id=case_id, number=f"AAAA-AAAA-AAAA-000{case_id}", status=status,
                            at=datetime.fromisoformat(moment)))
    rows = [(1, "pdq", pdq_value(1), "active"), (2, "pdq", pdq_value(1), "withdrawn"),
            (2, "md5", md5_value(1), "withdrawn")]
    for number, (case_id, kind, value, status) in enumerate(rows, start=1):
        asyncio.run(execute(database_url, "INSERT INTO case_hashes (id, case_id, signal_type, value, status, added_at, "
                                          "updated_at) VALUES (:id, :case_id, :kind, :value, :status, :at, :at)",
                            id=number, case_id=case_id, kind=kind, value=value, status=status,
                            at=datetime.fromisoformat(moment)))
    asyncio.run(migrate(database_url))
    records = asyncio.run(query(database_url, "SELECT signal_type, value, status, change_seq FROM exchange_records"))
    assert sorted((kind, value, status) for kind, value, status, _ in records) == sorted(
        [("pdq", pdq_value(1), "Active"), ("md5", md5_value(1), "Withdrawn")])
    assert sorted(seq for *_, seq in records) == [1, 2]
    assert asyncio.run(query(database_url, "SELECT seq FROM exchange_counter")) == [(2,)]
    # 0003: every case hash got its value's digest, the key its indexes now use.
    keys = asyncio.run(query(database_url, "SELECT value, value_key FROM case_hashes ORDER BY id"))
    assert [bytes(key) for _, key in keys] == [hashlib.sha256(value.encode()).digest() for value, _ in keys]
