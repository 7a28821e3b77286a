"""Attacks on the partner bank that an attack run found working (issue 10, items 6-8 and 10), run
here against a live uvicorn with the real python-threatexchange client, on SQLite and PostgreSQL;
every test failed on the code before the fix.

6. Hashes PDQ cannot produce (000...001, "quality 100") were taken and shared as a victim's.
7. A revoked partner's submissions stayed Active; a partner's submission re-activated a hash that
   every person holding it had withdrawn.
8. Values of any size from partners: 20 vPDQ values of 930 KB made a 19 MB FetchHashes page.
10. Numbers of 4,301 digits or more in FetchHashes' parameters were a 500.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pdqhash
import pytest
from PIL import Image
from threatexchange.exchanges.clients.stopncii.api import (
    StopNCIIAPI,
    StopNCIICSPFeedback,
    StopNCIICSPFeedbackValue,
    StopNCIISignalType,
)

import pyhash
from partner_bank import add_partner, partner_client, partner_headers as headers
from pyhash import pdq, vpdq
from server.partner_api import MAX_PAGE_BYTES
from server_client import creds, execute, md5_value, migrate, pdq_like, pdq_value, query, run_cli, snapshot
from server_harness import REPO_ROOT, LiveServer, StartLiveServer

NO_LIMITS = {"KALKAN_RATE_LIMIT_PER_MINUTE": "0", "KALKAN_PARTNER_RATE_LIMIT_PER_MINUTE": "0"}
CORPUS = REPO_ROOT.parent / "shared" / "corpus" / "images"


@pytest.fixture
def server(database_url: str, live_server: StartLiveServer) -> LiveServer:
    return live_server(database_url, env=NO_LIMITS)


def bank(api: StopNCIIAPI) -> dict[tuple[str, str], str]:
    """What the partner's real client ends up with: (signalType, hashValue) -> hashStatus."""
    return {(record.signalType.value, record.hashValue): record.hashStatus.value
            for page in api.fetch_hashes_iter() for record in page.hashRecords}


def with_bits(count: int) -> str:
    """A PDQ-looking value with `count` bits set, spread over the hash."""
    step = 256 / count
    return format(sum(1 << int(i * step) for i in range(count)), "064x")


# --- 6. only values an image can produce ------------------------------------------------------------


def test_pdq_values_no_image_produces_are_refused_everywhere(database_url: str, server: LiveServer) -> None:
    keys = add_partner(database_url, "Example Social")
    forged = ["0" * 63 + "1", with_bits(31), with_bits(129), "f" * 64, "7" * 64]
    with server.client() as http:
        before = asyncio.run(snapshot(database_url))
        for value in forged:
            for path, body, field in [
                ("/api/cases", {"hashes": [{"signal_type": "pdq", "value": value, "quality": 100}]}, "hashes[0].value"),
                ("/v1/SubmitHashes", {"count": 1, "hashRecords": [{"signalType": "ImagePDQ", "hashValue": value}]},
                 "hashRecords[0].hashValue"),
            ]:
                extra = headers(keys, "SubmitHashes") if path.startswith("/v1") else {}
                response = http.post(path, json=body, headers=extra)
                assert response.status_code == 422, (value, path, response.text)
                error = response.json()["error"]
                assert error["field"] == field
                # Neutral: it does not say how to make a value that passes.
                assert error["message"] == "this value is not a PDQ hash that an image produces", error
        assert asyncio.run(snapshot(database_url)) == before
        # The edges of the band are taken: 32 bits (one more than the match threshold) and 128.
        for value in (with_bits(32), with_bits(128)):
            response = http.post("/api/cases", json={"hashes": [{"signal_type": "pdq", "value": value, "quality": 90}]})
            assert response.status_code == 201, response.text
    assert {value for _, value in bank(partner_client(server, keys))} == {with_bits(32), with_bits(128)}


def _dihedral_arrays(path: Path) -> list[np.ndarray]:
    rgb = np.asarray(Image.open(path).convert("RGB"))
    return [np.ascontiguousarray(np.rot90(t, k)) for t in (rgb, rgb.transpose(1, 0, 2)) for k in range(4)]


def test_every_corpus_photo_and_its_transforms_pass_the_band() -> None:
    """The band's measurement, as a test: pyhash and native pdqhash on every corpus photo, in all
    eight orientations, give values the registry takes (the bench, bench/pdq_bits.py, adds
    degenerate images)."""
    photos = sorted(p for p in CORPUS.rglob("*") if p.suffix.lower() in (".jpg", ".png", ".webp"))
    assert len(photos) >= 25
    checked = 0
    for photo in photos:
        for array in _dihedral_arrays(photo):
            ours = pdq.hash_pixels(array.tobytes(), array.shape[1], array.shape[0], 3)
            native, quality = pdqhash.compute(array)
            native_hex = format(int("".join("1" if b else "0" for b in native[::-1]), 2), "064x")
            for value, q in ((ours.hash, ours.quality), (native_hex, quality)):
                if q >= 50:
                    assert pdq.set_bits(value) == 128, (photo, value)
                    assert pyhash.signal_type("pdq").validate(value) == value
                    checked += 1
    assert checked >= 300, checked


def test_the_browser_worker_marks_values_the_registry_refuses(pyodide: Any) -> None:
    """The hashing worker (web/src/py/kalkan_worker.py) asks the registry, so the flow shows such
    a photo as not detailed enough instead of sending it: stripes give pyhash the all-zero hash
    at quality 100, a photo gives an acceptable one."""
    stripes = bytes(((x // 8) % 2) * 255 for _ in range(64) for x in range(64) for _ in range(4))
    photo = np.asarray(Image.open(CORPUS / "bridge-mods" / "aaa-orig.jpg").convert("RGBA").resize((128, 96)))
    result = pyodide.run(
        "import json, types\n"
        "worker = types.ModuleType('kalkan_worker')\n"
        "exec(source, worker.__dict__)\n"
        "result = [json.loads(worker.pdq_rgba(stripes, 64, 64)), json.loads(worker.pdq_rgba(photo, 128, 96))]",
        stripes=stripes, photo=photo.tobytes(),
        source=(REPO_ROOT / "web" / "src" / "py" / "kalkan_worker.py").read_text())
    assert result[0]["quality"] == 100 and result[0]["acceptable"] is False, result[0]
    assert result[1]["acceptable"] is True and pdq.set_bits(result[1]["hash"]) == 128


# --- 7. revoked partners hold nothing up; people's withdrawals stand ------------------------------


def test_revoking_a_partner_withdraws_what_it_alone_submitted(database_url: str, server: LiveServer) -> None:
    rogue, watcher = add_partner(database_url, "Rogue"), add_partner(database_url, "Watcher")
    alone, shared, also_other = pdq_value(1), pdq_value(2), md5_value(3)
    with server.client() as http:
        assert http.post("/api/cases", json={"hashes": [{"signal_type": "pdq", "value": shared, "quality": 90}]}
                         ).status_code == 201
    blocked = StopNCIICSPFeedback(StopNCIICSPFeedbackValue.Blocked)
    partner_client(server, rogue).submit_hashes({(StopNCIISignalType.ImagePDQ, alone): blocked,
                                                 (StopNCIISignalType.ImagePDQ, shared): blocked,
                                                 (StopNCIISignalType.VideoMD5, also_other): blocked})
    partner_client(server, watcher).submit_hashes({(StopNCIISignalType.VideoMD5, also_other): blocked})
    view = partner_client(server, watcher)
    assert set(bank(view).values()) == {"Active"}

    result = run_cli(database_url, server.data_dir, "partners", "revoke", "Rogue")
    assert result.returncode == 0, result.stderr
    assert "1 are now withdrawn from the bank and 2 stay" in result.stdout, result.stdout
    assert bank(view) == {("ImagePDQ", alone): "Withdrawn", ("ImagePDQ", shared): "Active",
                          ("VideoMD5", also_other): "Active"}
    # Its feedback on them stays visible (people were told of it), as feedback, not as a source.
    with httpx.Client(trust_env=False) as http:
        page = http.get(server.url("/v1/FetchHashes"), headers=headers(watcher, "FetchHashes")).json()
    sources = {r["hashValue"]: sorted(f["source"] for f in r["CSPFeedbacks"]) for r in page["hashRecords"]}
    assert sources[alone] == ["Rogue"] and sources[also_other] == ["Rogue", "Watcher"]


def test_a_partner_submission_never_overrides_a_persons_withdrawal(database_url: str, server: LiveServer) -> None:
    keys = add_partner(database_url, "Example Social")
    value = pdq_value(7)
    with server.client() as http:
        case = http.post("/api/cases", json={"hashes": [{"signal_type": "pdq", "value": value, "quality": 90}]}).json()
        assert http.post("/api/cases/withdraw", json=creds(case)).status_code == 200
        record = {"signalType": "ImagePDQ", "hashValue": value, "CSPFeedbacks": [{"feedbackValue": "Blocked"}]}
        submit = {"count": 2, "hashRecords": [{**record, "hashValue": pdq_value(8)}, record]}
        answer = http.post("/v1/SubmitHashes", json=submit, headers=headers(keys, "SubmitHashes"))
        assert answer.status_code == 200, answer.text
        assert answer.json()["count"] == 2 and answer.json()["withdrawnByPerson"] == [1]
        assert "withdrawn by the people" in answer.json()["message"]
        api = partner_client(server, keys)
        assert bank(api) == {("ImagePDQ", value): "Withdrawn", ("ImagePDQ", pdq_value(8)): "Active"}
        # The real client's own submission too, and after purge removed the person's case.
        long_ago = datetime.now(timezone.utc) - timedelta(days=91)
        asyncio.run(execute(database_url, "UPDATE cases SET withdrawn_at = :t", t=long_ago))
        asyncio.run(execute(database_url, "UPDATE case_hashes SET withdrawn_at = :t", t=long_ago))
        assert run_cli(database_url, server.data_dir, "purge", "--older-than", "90d").returncode == 0
        api.submit_hashes({(StopNCIISignalType.ImagePDQ, value): StopNCIICSPFeedback(StopNCIICSPFeedbackValue.Blocked)})
        assert bank(api)[("ImagePDQ", value)] == "Deleted"
        # A new case of a person makes it Active again: that is a person's choice.
        assert http.post("/api/cases", json={"hashes": [{"signal_type": "pdq", "value": value, "quality": 90}]}
                         ).status_code == 201
        assert bank(api)[("ImagePDQ", value)] == "Active"


# --- 8. size caps on every path in, and pages bounded in bytes --------------------------------------


def _vpdq(frames: int, seed: int = 0) -> str:
    """A vPDQ value of `frames` distinct frames, as the registry writes it."""
    raw = json.dumps([f"{pdq_like(hashlib.sha256(b'%d:%d' % (seed, i)).digest())},100,{i}.000"
                      for i in range(frames)])
    return vpdq.to_threatexchange_signal(vpdq.from_threatexchange_signal(raw))


def test_oversized_values_are_refused_on_every_path(database_url: str, server: LiveServer) -> None:
    keys = add_partner(database_url, "Example Social")
    cap = pyhash.signal_type("vpdq").max_length
    frames = 1
    while len(_vpdq(frames + 1)) <= cap:
        frames += 1
    largest, over = _vpdq(frames), _vpdq(frames + 1)
    assert len(over) > cap
    with server.client() as http:
        before = asyncio.run(snapshot(database_url))
        refused = [
            ("/api/cases", {"hashes": [{"signal_type": "vpdq", "value": over}]}, {}, {413, 422}),
            ("/v1/SubmitHashes", {"count": 1, "hashRecords": [{"signalType": "vpdq", "hashValue": over}]},
             headers(keys, "SubmitHashes"), {422}),
            ("/v1/SubmitFeedback", {"count": 1, "hashFeedbacks": [{"hashValue": over, "feedbackValue": "Blocked"}]},
             headers(keys, "SubmitFeedback"), {422}),
        ]
        for path, body, extra, statuses in refused:
            response = http.post(path, json=body, headers=extra)
            assert response.status_code in statuses, (path, response.text[:300])
            if response.status_code == 422:
                assert "at most 64000 characters" in response.json()["error"]["message"]
        assert asyncio.run(snapshot(database_url)) == before
        taken = http.post("/v1/SubmitHashes", headers=headers(keys, "SubmitHashes"),
                          json={"count": 1, "hashRecords": [{"signalType": "vpdq", "hashValue": largest}]})
        assert taken.status_code == 200, taken.text[:300]


def test_fetch_pages_of_long_values_are_bounded_in_bytes(database_url: str, server: LiveServer) -> None:
    """Forty vPDQ values at the cap (~2.6 MB) and PDQ around them: a page of 2,000 records stops
    at MAX_PAGE_BYTES of values, the next page carries on, and nothing is lost or repeated."""
    keys = add_partner(database_url, "Example Social")
    cap = pyhash.signal_type("vpdq").max_length
    frames = cap // 80
    with httpx.Client(trust_env=False, timeout=60) as http:
        submitted = []
        for batch in range(4):
            records = [{"signalType": "vpdq", "hashValue": _vpdq(frames, seed=batch * 10 + i)} for i in range(10)]
            records += [{"signalType": "ImagePDQ", "hashValue": pdq_value(batch * 100 + i)} for i in range(50)]
            response = http.post(server.url("/v1/SubmitHashes"), headers=headers(keys, "SubmitHashes"),
                                 json={"count": len(records), "hashRecords": records})
            assert response.status_code == 200, response.text[:300]
            submitted += [pyhash.signal_type("vpdq" if r["signalType"] == "vpdq" else "pdq").validate(r["hashValue"])
                          for r in records]
        seen: list[str] = []
        sizes = []
        token = None
        while True:
            params = {"pageSize": "2000", "signalTypes": "ImagePDQ,vpdq", **({"nextPageToken": token} if token else {})}
            page = http.get(server.url("/v1/FetchHashes"), params=params, headers=headers(keys, "FetchHashes"))
            assert page.status_code == 200, page.text[:300]
            body = page.json()
            sizes.append(len(page.content))
            values = [r["hashValue"] for r in body["hashRecords"]]
            assert sum(map(len, values)) <= MAX_PAGE_BYTES or len(values) == 1
            seen += values
            token = body["nextPageToken"]
            if not body["hasMoreRecords"]:
                break
    assert sorted(seen) == sorted(submitted) and len(seen) == len(set(seen))
    assert len(sizes) >= 2 and max(sizes) < MAX_PAGE_BYTES + 200_000, sizes


# --- 10. numbers of any length --------------------------------------------------------------------


@pytest.mark.parametrize("digits", [1, 17, 300, 4300, 4301, 6000, 50_000])
def test_numbers_of_any_length_are_a_400_naming_the_field(database_url: str, server: LiveServer, digits: int) -> None:
    keys = add_partner(database_url, "Example Social")
    number = "9" * digits
    with httpx.Client(trust_env=False) as http:
        for name in ("startTimestamp", "pageSize"):
            response = http.get(server.url("/v1/FetchHashes"), params={name: number}, headers=headers(keys, "FetchHashes"))
            if digits == 1:  # 9: a valid timestamp and page size
                assert response.status_code == 200
                continue
            if digits > 16_000:  # past the request head's limit (server/config.py MAX_HEAD_BYTES)
                assert response.status_code == 431, (name, digits, response.text[:200])
                continue
            assert response.status_code == 400, (name, digits, response.text[:200])
            assert response.json()["error"]["field"] == name
        # In JSON bodies: counts and qualities of any length are refused too, never a 500.
        for path, body, extra in [
            ("/v1/SubmitFeedback", f'{{"count": {number}, "hashFeedbacks": [{{"hashValue": "{pdq_value(1)}", '
                                   '"feedbackValue": "Blocked"}]}', headers(keys, "SubmitFeedback")),
            ("/v1/SubmitHashes", f'{{"count": {number}, "hashRecords": [{{"signalType": "ImagePDQ", '
                                 f'"hashValue": "{pdq_value(1)}"}}]}}', headers(keys, "SubmitHashes")),
            ("/api/cases", f'{{"hashes": [{{"signal_type": "pdq", "value": "{pdq_value(1)}", "quality": {number}}}]}}', {}),
        ]:
            response = http.post(server.url(path), content=body, headers={**extra, "Content-Type": "application/json"})
            assert response.status_code in (400, 413, 422), (path, digits, response.text[:200])


def test_a_partners_own_earlier_finding_survives_a_case_opened_and_withdrawn_to_strip_it(
        database_url: str, server: LiveServer) -> None:
    """The attack on the rule above (found in review): anyone with the images opens a case with
    their hash and withdraws it, to take a platform's own report of them out of the bank. A
    submission made before any case held the hash is the platform's own finding and stands."""
    first, second = add_partner(database_url, "First"), add_partner(database_url, "Second")
    value = pdq_value(11)
    found = StopNCIICSPFeedback(StopNCIICSPFeedbackValue.Blocked)
    partner_client(server, first).submit_hashes({(StopNCIISignalType.ImagePDQ, value): found})
    with server.client() as http:
        case = http.post("/api/cases", json={"hashes": [{"signal_type": "pdq", "value": value, "quality": 90}]}).json()
        assert http.post("/api/cases/withdraw", json=creds(case)).status_code == 200
    view = partner_client(server, second)
    assert bank(view)[("ImagePDQ", value)] == "Active"
    # A submission made after the case held it is not the platform's own finding: it does not count.
    later = pdq_value(12)
    with server.client() as http:
        case = http.post("/api/cases", json={"hashes": [{"signal_type": "pdq", "value": later, "quality": 90}]}).json()
        partner_client(server, second).submit_hashes({(StopNCIISignalType.ImagePDQ, later): found})
        assert http.post("/api/cases/withdraw", json=creds(case)).status_code == 200
    assert bank(view)[("ImagePDQ", later)] == "Withdrawn"


# --- the data of a deployment made before these rules ----------------------------------------------


def test_migration_0005_brings_old_data_under_the_new_rules(database_url: str) -> None:
    """A database at revision 0004 with what the old rules allowed: a lock escalated to six days,
    a hash every case withdrew that a partner's later submission kept Active, a revoked partner's
    submission still Active, a partner's own earlier finding (stays), a purged hash."""
    from server.exchange import record_key
    from server.models import value_key

    def at(hours: float) -> datetime:
        return datetime(2026, 6, 1, tzinfo=timezone.utc) + timedelta(hours=hours)

    def run(sql: str, **params: Any) -> None:
        asyncio.run(execute(database_url, sql, **params))

    asyncio.run(migrate(database_url, "0004"))
    run("INSERT INTO pin_attempts (key, failures, lockouts, locked_until, updated_at) VALUES "
        "(:key, 10, 4, :until, :at)", key=b"k" * 32, until=datetime.now(timezone.utc) + timedelta(days=6), at=at(0))
    for partner_id, name, status in ((1, "Kept", "active"), (2, "Gone", "revoked")):
        run("INSERT INTO partners (id, name, status, created_at, keys_issued_at) VALUES (:id, :name, :status, :at, :at)",
            id=partner_id, name=name, status=status, at=at(0))
    run("INSERT INTO cases (id, case_number, pin_hash, status, language, created_at, updated_at, withdrawn_at) "
        "VALUES (1, 'AAAA-AAAA-AAAA-0001', 'x', 'withdrawn', 'tr', :at, :at, :at)", at=at(1))
    values = {name: pdq_value(100 + number) for number, name in enumerate(("late", "revoked", "own", "purged"))}
    # (value, status before, held by the withdrawn case, submitted by partner, when)
    records = [("late", "Active", True, 1, at(2)), ("revoked", "Active", False, 2, at(2)),
               ("own", "Active", True, 1, at(0.5)), ("purged", "Deleted", False, None, None)]
    for number, (name, status, held, partner_id, when) in enumerate(records, start=1):
        run("INSERT INTO exchange_records (id, key_digest, signal_type, value, status, change_seq, modified_at) "
            "VALUES (:id, :digest, 'pdq', :value, :status, :id, 1780000000)",
            id=number, digest=record_key("pdq", values[name]), value=values[name], status=status)
        if held:
            run("INSERT INTO case_hashes (case_id, signal_type, value, value_key, quality, status, added_at, updated_at, "
                "withdrawn_at) VALUES (1, 'pdq', :value, :key, 90, 'withdrawn', :at, :at, :at)",
                value=values[name], key=value_key(values[name]), at=at(1))
        if partner_id:
            run("INSERT INTO partner_feedback (record_id, partner_id, value, tags, submitted, created_at, updated_at) "
                "VALUES (:id, :partner, 'Blocked', '[]', 1, :at, :at)", id=number, partner=partner_id, at=when)
    run("UPDATE exchange_counter SET seq = 4, modified_at = 1780000000")

    asyncio.run(migrate(database_url))
    [(locked_until,)] = asyncio.run(query(database_url, "SELECT locked_until FROM pin_attempts"))
    locked_until = locked_until if isinstance(locked_until, datetime) else datetime.fromisoformat(locked_until)
    if locked_until.tzinfo is None:
        locked_until = locked_until.replace(tzinfo=timezone.utc)
    assert locked_until <= datetime.now(timezone.utc) + timedelta(hours=1)
    rows = asyncio.run(query(database_url, "SELECT value, status, person_withdrawn, change_seq FROM exchange_records"))
    by_name = {name: (status, flag, seq) for name, value in values.items()
               for v, status, flag, seq in rows if v == value}
    assert {name: state[:2] for name, state in by_name.items()} == {
        "late": ("Withdrawn", 1), "revoked": ("Withdrawn", 0), "own": ("Active", 0), "purged": ("Deleted", 1)}
    # What changed got new change numbers, so partners learn of it on their next fetch.
    assert sorted((by_name["late"][2], by_name["revoked"][2])) == [5, 6]
    assert asyncio.run(query(database_url, "SELECT seq FROM exchange_counter")) == [(6,)]


def test_pages_stay_bounded_however_many_cases_and_tags_a_record_has(database_url: str, server: LiveServer) -> None:
    """Found in review: a page was bounded by its hash values only. Anyone can open many cases
    with one hash (each adds a pseudonym to its record), and a partner may tag every record
    with 32 tags of 100 characters: both made pages of many megabytes."""
    from server.exchange import MAX_CASES_LISTED

    keys = add_partner(database_url, "Tagger")
    crowded = pdq_value(1)
    with server.client() as http:
        for _ in range(MAX_CASES_LISTED + 20):
            assert http.post("/api/cases", json={"hashes": [{"signal_type": "pdq", "value": crowded, "quality": 90}]}
                             ).status_code == 201
        values = [pdq_value(1000 + i) for i in range(800)]
        records = [{"signalType": "ImagePDQ", "hashValue": v} for v in values]
        for start in range(0, len(records), 400):
            assert http.post("/v1/SubmitHashes", headers=headers(keys, "SubmitHashes"),
                             json={"count": 400, "hashRecords": records[start:start + 400]}).status_code == 200
        tags = ["ğ" * 98 + f"{i:02d}" for i in range(32)]
        for start in range(0, len(values), 40):  # 40 x 32 x ~600 bytes: under the 1 MB body limit
            response = http.post("/v1/SubmitFeedback", headers=headers(keys, "SubmitFeedback"), json={
                "count": 40, "hashFeedbacks": [{"hashValue": v, "feedbackValue": "Blocked", "tags": tags}
                                               for v in values[start:start + 40]]})
            assert response.status_code == 200, response.text[:300]
        seen: dict[str, dict[str, Any]] = {}
        sizes = []
        token = None
        while True:
            params = {"pageSize": "2000", **({"nextPageToken": token} if token else {})}
            page = http.get("/v1/FetchHashes", params=params, headers=headers(keys, "FetchHashes"))
            assert page.status_code == 200
            sizes.append(len(page.content))
            body = page.json()
            seen |= {record["hashValue"]: record for record in body["hashRecords"]}
            token = body["nextPageToken"]
            if not body["hasMoreRecords"]:
                break
    assert set(seen) == {crowded, *values}
    assert len(seen[crowded]["caseNumbers"]) == MAX_CASES_LISTED and seen[crowded]["hashStatus"] == "Active"
    assert max(sizes) <= MAX_PAGE_BYTES and len(sizes) >= 2, sizes


def test_vpdq_values_follow_pdqs_rules_and_their_cap_once_normalised(database_url: str, server: LiveServer) -> None:
    """Found in review: the registry checked a vPDQ value's length before normalising it, and a
    timestamp of 1.7e308 is written out in 309 digits (a 60,000-character value was stored as
    289,500); its frames' PDQ hashes escaped PDQ's rule (000...001 frames at quality 100)."""
    good = pdq_value(1)

    def value(*frames: tuple[str, int, str]) -> str:
        return json.dumps([f"{h},{q},{t}" for h, q, t in frames])

    refused = [
        value((good, 100, "0.0"), ("0" * 63 + "1", 100, "1.0")),
        value((good, 100, "0.0"), ("f" * 64, 100, "1.0")),
        value((good, 100, "1.7e308")),
        json.dumps([f"{pdq_value(i)},100,1e200" for i in range(200)]),  # short as sent, huge once written out
    ]
    with server.client() as http:
        before = asyncio.run(snapshot(database_url))
        for signal in refused:
            response = http.post("/api/cases", json={"hashes": [{"signal_type": "vpdq", "value": signal}]})
            assert response.status_code == 422 and response.json()["error"]["field"] == "hashes[0].value", (
                signal[:80], response.text[:300])
        assert asyncio.run(snapshot(database_url)) == before
        # A video with black frames (the all-zero hash, as vPDQ's reference gives them) is a video.
        black = value(("0" * 64, 0, "0.0"), (good, 100, "1.0"), ("0" * 64, 0, "2.0"))
        assert http.post("/api/cases", json={"hashes": [{"signal_type": "vpdq", "value": black}]}).status_code == 201
