"""Privacy and security of the case server: headers on every response, nothing about the person
(address, user agent, referrer) in the database or the logs, and no case number or PIN in logs.

In-process and on a live uvicorn (`python -m server`), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from server_client import (
    compact,
    create_case,
    creds,
    execute,
    in_process,
    md5,
    md5_value,
    new_key,
    other_pin,
    pdq,
    snapshot,
    sqlite_path,
)
from server_harness import CLIENT_ADDRESS, CLIENT_USER_AGENT, LiveServer, StartLiveServer

pytestmark = pytest.mark.anyio

REFERRER = "https://referrer.example/from-kalkan-test-4e1b7"
FORWARDED_FOR = "203.0.113.77"  # what a client may claim in X-Forwarded-For: not trusted, not kept
PERSONAL_HEADERS = {
    "Referer": REFERRER,
    "X-Forwarded-For": FORWARDED_FOR,
    "X-Real-IP": FORWARDED_FOR,
    "Forwarded": f"for={FORWARDED_FOR};proto=https",
    "Accept-Language": "tr-TR,tr;q=0.9",
}


# --- security headers ---------------------------------------------------------------------------


def check_headers(r: httpx.Response, what: str) -> list[str]:
    """What is wrong with the security headers of response `r` (empty: nothing)."""
    problems = []
    h = r.headers

    def one(name: str) -> str | None:
        values = h.get_list(name)
        if len(values) != 1:
            problems.append(f"{what}: {len(values)} {name} headers")
            return None
        return values[0]

    csp = one("content-security-policy")
    if csp is not None:
        directives = {d.split()[0]: d.split()[1:] for d in (p.strip() for p in csp.split(";")) if d}
        if "'self'" not in directives.get("default-src", []):
            problems.append(f"{what}: CSP without default-src 'self': {csp}")
        if directives.get("frame-ancestors") != ["'none'"]:
            problems.append(f"{what}: CSP without frame-ancestors 'none'")
        if "'unsafe-inline'" in csp or "'unsafe-eval'" in csp or "*" in csp or "data:" in directives.get("script-src", []):
            problems.append(f"{what}: CSP allows inline or foreign script: {csp}")
    hsts = one("strict-transport-security")
    if hsts is not None:
        match = re.search(r"max-age=(\d+)", hsts)
        if not match or int(match.group(1)) < 31536000:
            problems.append(f"{what}: HSTS {hsts!r} shorter than a year")
    if one("referrer-policy") not in (None, "no-referrer"):
        problems.append(f"{what}: Referrer-Policy {h.get('referrer-policy')}")
    if one("x-content-type-options") not in (None, "nosniff"):
        problems.append(f"{what}: X-Content-Type-Options {h.get('x-content-type-options')}")
    permissions = one("permissions-policy")
    if permissions is not None:
        for feature in ("camera", "microphone", "geolocation"):
            if f"{feature}=()" not in permissions.replace(" ", ""):
                problems.append(f"{what}: Permissions-Policy does not deny {feature}: {permissions}")
    if one("cross-origin-opener-policy") not in (None, "same-origin"):
        problems.append(f"{what}: Cross-Origin-Opener-Policy {h.get('cross-origin-opener-policy')}")
    if "set-cookie" in h:
        problems.append(f"{what}: sets a cookie")
    if "location" in h:
        problems.append(f"{what}: redirects to {h['location']}")
    if "server" in h:
        problems.append(f"{what}: names its server software: {h['server']}")
    return problems


async def every_kind_of_response(c: httpx.AsyncClient) -> list[tuple[str, httpx.Response]]:
    """One of each response the server gives: pages, API answers and refusals, files, errors."""
    case = await create_case(c, [pdq(1), md5(1)], idempotency_key=(key := new_key()))
    locked = await create_case(c, [md5(2)])
    for _ in range(10):
        await c.post("/api/cases/status", json=creds(locked, pin=other_pin(locked["pin"])))
    big = b'{"hashes": [' + b" " * 70000 + b"]}"

    async def chunks():  # type: ignore[no-untyped-def]
        for i in range(0, len(big), 8192):
            yield big[i:i + 8192]

    JSON = {"Content-Type": "application/json"}
    requests: list[tuple[str, Any]] = [
        ("GET / (tr)", c.get("/")),
        ("GET / (en)", c.get("/?lang=en")),
        ("HEAD /", c.head("/")),
        ("GET /case", c.get("/case")),
        ("POST /case status", c.post("/case", data={"action": "status", **creds(case)})),
        ("POST /case add", c.post("/case", data={"action": "add", "hashes": f"md5 {md5_value(3)}", **creds(case)})),
        ("POST /case wrong PIN", c.post("/case", data={"action": "status", **creds(case, pin=other_pin(case["pin"]))})),
        ("POST /case locked", c.post("/case", data={"action": "status", **creds(locked)})),
        ("POST /case bad", c.post("/case", data={"action": "status", "case_number": "x"})),
        ("POST /case 413", c.post("/case", content=b"a=" + b"b" * 70000,
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})),
        ("PUT /case 405", c.put("/case")),
        ("GET /healthz", c.get("/healthz")),
        ("GET /static/kalkan.css", c.get("/static/kalkan.css")),
        ("GET /hashing", c.get("/hashing")),  # 200, or 503 where web/dist is not built
        ("GET /hashing (en)", c.get("/hashing?lang=en")),
        ("GET /assets/ 404", c.get("/assets/no-such-file.0000000000000000.js")),
        ("GET /assets/ traversal", c.get("/assets/..%2f..%2fserver%2fconfig.py")),
        ("GET /static/ 404", c.get("/static/missing.js")),
        ("GET /../ traversal", c.get("/static/..%2f..%2fserver%2fconfig.py")),
        ("GET 404 page", c.get("/no-such-page")),
        ("POST /api/cases 201", c.post("/api/cases", json={"hashes": [md5(4)]})),
        ("POST /api/cases replayed", c.post("/api/cases", json={"hashes": [pdq(1), md5(1)], "idempotency_key": key})),
        ("POST /api/cases 409", c.post("/api/cases", json={"hashes": [md5(5)], "idempotency_key": key})),
        ("POST /api/cases 422", c.post("/api/cases", json={"hashes": [pdq(9, 10)]})),
        ("POST /api/cases 400", c.post("/api/cases", content=b"{", headers=JSON)),
        ("POST /api/cases 415", c.post("/api/cases", content=b"{}")),
        ("POST /api/cases 413", c.post("/api/cases", content=big, headers=JSON)),
        ("POST /api/cases 413 chunked", c.post("/api/cases", content=chunks(), headers=JSON)),
        ("POST status 200", c.post("/api/cases/status", json=creds(case))),
        ("POST status 401", c.post("/api/cases/status", json=creds(case, pin=other_pin(case["pin"])))),
        ("POST status 429", c.post("/api/cases/status", json=creds(locked))),
        ("POST hashes 200", c.post("/api/cases/hashes", json=creds(case, hashes=[md5(6)]))),
        ("GET /api/cases 405", c.get("/api/cases")),
        ("OPTIONS /api/cases", c.options("/api/cases")),
        ("GET /api/ 404", c.get("/api/missing")),
        ("POST withdraw 200", c.post("/api/cases/withdraw", json=creds(case))),
        ("POST hashes 409 withdrawn", c.post("/api/cases/hashes", json=creds(case, hashes=[md5(7)]))),
    ]
    try:  # the built browser assets, when `python3 build.py web` has made them
        from server import assets

        script = assets.asset_url("hashing-page.js")
        requests += [("GET built asset (br)", c.get(script, headers={"Accept-Encoding": "br"})),
                     ("GET built asset (identity)", c.get(script, headers={"Accept-Encoding": "identity"}))]
    except assets.AssetsNotBuilt:
        pass
    responses = []
    for label, pending in requests:
        responses.append((label, await pending))
    return responses


async def test_every_response_carries_the_security_headers(any_client: httpx.AsyncClient) -> None:
    responses = await every_kind_of_response(any_client)
    statuses = {r.status_code for _, r in responses}
    assert {200, 201, 400, 401, 404, 405, 409, 413, 415, 422, 429} <= statuses, statuses
    problems = [p for label, r in responses for p in check_headers(r, f"{label} ({r.status_code})")]
    assert not problems, "\n".join(problems)
    for label in ("GET /../ traversal", "GET /assets/ traversal"):
        traversal = dict(responses)[label]
        assert traversal.status_code == 404 and "KALKAN_" not in traversal.text, label


async def test_a_database_failure_still_answers_with_the_headers(database_url: str, tmp_path: Path) -> None:
    """Even a 500 (here: the cases table is gone) carries every security header and nothing of
    the request."""
    async with in_process(database_url, tmp_path / "data") as c:
        case = await create_case(c, [md5(1)])
        await execute(database_url, "ALTER TABLE cases RENAME TO cases_away")
        try:
            failures = [("status", await c.post("/api/cases/status", json=creds(case))),
                        ("create", await c.post("/api/cases", json={"hashes": [md5(2)]})),
                        ("page", await c.post("/case", data={"action": "status", **creds(case)}))]
        finally:
            await execute(database_url, "ALTER TABLE cases_away RENAME TO cases")
        for label, r in failures:
            assert r.status_code >= 500, (label, r.status_code)
            for secret in (case["case_number"], case["pin"], md5_value(2)):
                assert secret not in r.text, label
        problems = [p for label, r in failures for p in check_headers(r, f"{label} ({r.status_code})")]
        assert not problems, "\n".join(problems)
        assert (await c.post("/api/cases/status", json=creds(case))).status_code == 200  # back to normal


# --- nothing about the person is kept ----------------------------------------------------------


def markers() -> dict[str, list[bytes]]:
    """What must never be stored or logged, in the forms it could take (text, packed, hex)."""
    def forms(address: str) -> list[bytes]:
        packed = ipaddress.ip_address(address).packed
        return [address.encode(), packed, packed.hex().encode()]

    return {
        "client address": forms(CLIENT_ADDRESS),
        "user agent": [CLIENT_USER_AGENT.encode(), b"ua-5f1c9e"],
        "referrer": [REFERRER.encode(), b"from-kalkan-test-4e1b7"],
        "forwarded-for address": forms(FORWARDED_FOR),
        # As text only: 7f 00 00 01 is too ordinary a byte sequence to look for in binary files.
        "loopback address": [b"127.0.0.1"],
    }


def table_bytes(tables: dict[str, list[tuple[Any, ...]]]) -> bytes:
    """Every value of every row: bytes as they are (and in hex), everything else as UTF-8 text."""
    parts = []
    for rows in tables.values():
        for row in rows:
            for value in row:
                if isinstance(value, (bytes, bytearray, memoryview)):
                    parts += [bytes(value), bytes(value).hex().encode()]
                else:
                    parts.append(str(value).encode())
    return b"\n".join(parts)


def find_markers(data: bytes, where: str) -> list[str]:
    found = []
    for name, forms in markers().items():
        for form in forms:
            if form in data:
                found.append(f"{where} contains the {name} ({form!r})")
    return found


def personal_client(server: LiveServer) -> httpx.AsyncClient:
    """The harness's client (from CLIENT_ADDRESS, as CLIENT_USER_AGENT) sending PERSONAL_HEADERS too."""
    client = server.async_client()
    client.headers.update(PERSONAL_HEADERS)
    return client


def files_of(url: str) -> dict[str, bytes]:
    path = sqlite_path(url)
    if path is None:
        return {}
    return {p.name: p.read_bytes() for p in sorted(path.parent.glob(path.name + "*"))}


async def use_everything(server: LiveServer) -> list[dict[str, Any]]:
    """A person's whole journey and some of its errors, with identifying headers on every request."""
    made = []
    async with personal_client(server) as c:
        assert (await c.get("/")).status_code == 200
        assert (await c.get("/case?lang=en")).status_code == 200
        case = await create_case(c, [pdq(1), md5(1)], language="tr", ref="tkdf", idempotency_key=(key := new_key()))
        made.append(case)
        assert (await c.post("/api/cases", json={"hashes": [pdq(1), md5(1)], "language": "tr", "ref": "tkdf",
                                                  "idempotency_key": key})).status_code == 201
        made.append(await create_case(c, [md5(2)], idempotency_key=new_key(), pin="P1NNE-DSELF"))
        made.append(await create_case(c, [md5(3)]))
        assert (await c.post("/api/cases/status", json=creds(case))).status_code == 200
        assert (await c.post("/api/cases/hashes", json=creds(case, hashes=[pdq(2)]))).status_code == 200
        for _ in range(11):  # a lockout row
            await c.post("/api/cases/status", json=creds(made[2], pin=other_pin(made[2]["pin"])))
        assert (await c.post("/api/cases/status", json={"case_number": "ZZZZ-ZZZZ-ZZZZ-ZZZZ",
                                                         "pin": "AAAAA-BBBBB"})).status_code == 401
        assert (await c.post("/case", data={"action": "status", **creds(made[1])})).status_code == 200
        assert (await c.post("/case", data={"action": "add", "hashes": f"md5 {md5_value(9)}",
                                            **creds(made[1])})).status_code == 200
        assert (await c.post("/case", data={"action": "withdraw", "confirm": "yes", **creds(made[1])})).status_code == 200
        assert (await c.post("/case", data={"action": "status", **creds(case, pin=other_pin(case["pin"]))})).status_code == 401
        assert (await c.post("/api/cases", content=b"{", headers={"Content-Type": "application/json"})).status_code == 400
        assert (await c.post("/api/cases", json={"hashes": [pdq(3, 20)]})).status_code == 422
        assert (await c.post("/api/cases", content=b" " * 70000, headers={"Content-Type": "application/json"})).status_code == 413
        assert (await c.get("/missing")).status_code == 404
        assert (await c.post("/api/cases/withdraw", json=creds(case))).status_code == 200
    # A client that hangs up mid-request, and one that speaks no HTTP: both end up in logs if anything does.
    for payload in (b"POST /api/cases HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 100\r\nUser-Agent: " + CLIENT_USER_AGENT.encode() + b"\r\n\r\n{\"hashes\"",
                    b"NOT HTTP AT ALL \x00\x01\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", server.port), source_address=(CLIENT_ADDRESS, 0)) as sock:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(5)
            try:
                while sock.recv(4096):
                    pass
            except OSError:
                pass
    return made


async def test_no_address_user_agent_or_referrer_is_stored_or_logged(database_url: str,
                                                                    live_server: StartLiveServer) -> None:
    server = live_server(database_url)  # the default rate limit: it sees every address, keeps none
    made = await use_everything(server)
    await asyncio.sleep(0.2)
    problems = []
    for name, data in files_of(database_url).items():  # while running: the WAL holds the latest writes
        problems += find_markers(data, f"{name} (server running)")
    server.stop()
    for name, data in files_of(database_url).items():
        problems += find_markers(data, name)
    tables = await snapshot(database_url)
    assert tables["cases"] and tables["case_hashes"] and tables["pin_attempts"] and tables["idempotency"]
    problems += find_markers(table_bytes(tables), "the database tables")

    logs = server.logs()
    banner = f"Kalkan serving on http://127.0.0.1:{server.port}/"
    assert banner in logs, "the server's output was not captured"
    # The one address the server may print is the one it listens on, once, in its start-up line.
    problems += find_markers(logs.replace(banner, "").encode(), "the server's logs")
    for case in made:
        for secret in (case["case_number"], compact(case["case_number"]), case["pin"], compact(case["pin"])):
            if secret in logs:
                problems.append("the server's logs contain a case number or PIN")
    assert not problems, "\n".join(problems)


async def test_a_database_failure_logs_no_case_number_pin_or_address(database_url: str,
                                                                    live_server: StartLiveServer) -> None:
    """Errors get logged with their exception text; SQL errors must not carry the parameters (the
    case number looked up, the case number and PIN hash being inserted) into the log."""
    server = live_server(database_url, env={"KALKAN_RATE_LIMIT_PER_MINUTE": "0"})

    async def send(method: str, path: str, **kwargs: Any) -> httpx.Response:
        # A fresh connection each time: uvicorn closes the connection after an unhandled error.
        async with personal_client(server) as c:
            return await c.request(method, path, **kwargs)

    case = (await send("POST", "/api/cases", json={"hashes": [md5(1)]})).json()
    await execute(database_url, "ALTER TABLE cases RENAME TO cases_away")
    try:
        looked_up = await send("POST", "/api/cases/status", json=creds(case))
        created = await send("POST", "/api/cases", json={"hashes": [md5(2)], "idempotency_key": new_key()})
        page = await send("POST", "/case", data={"action": "status", **creds(case)})
    finally:
        await execute(database_url, "ALTER TABLE cases_away RENAME TO cases")
    assert looked_up.status_code >= 500 and created.status_code >= 500 and page.status_code >= 500
    assert (await send("POST", "/api/cases/status", json=creds(case))).status_code == 200
    server.stop()
    logs = server.logs()
    assert "Traceback" in logs or "Exception" in logs, "the failures were not logged at all"
    problems = find_markers(logs.replace(f"Kalkan serving on http://127.0.0.1:{server.port}/", "").encode(),
                            "the server's logs")
    if case["case_number"] in logs or compact(case["case_number"]) in logs:
        problems.append("the server's logs contain the case number")
    if case["pin"] in logs:
        problems.append("the server's logs contain the PIN")
    if "$argon2id$" in logs:
        problems.append("the server's logs contain a PIN hash")
    assert not problems, "\n".join(problems) + "\n--- logs:\n" + logs[-3000:]


async def test_requests_carry_no_secret_in_the_url(database_url: str, tmp_path: Path) -> None:
    """Case number and PIN travel in POST bodies only: GET with them in the query is not an API."""
    async with in_process(database_url, tmp_path / "data") as any_client:
        await _no_secret_in_the_url(any_client)


async def _no_secret_in_the_url(any_client: httpx.AsyncClient) -> None:
    case = await create_case(any_client, [md5(1)])
    for path in (f"/api/cases/status?case_number={case['case_number']}&pin={case['pin']}",
                 f"/api/cases/{case['case_number']}"):
        r = await any_client.get(path)
        assert r.status_code in (404, 405)
        assert case["case_number"] not in r.text and case["pin"] not in r.text
    r = await any_client.get(f"/case?case_number={case['case_number']}&pin={case['pin']}")
    assert r.status_code == 200 and case["pin"] not in r.text  # the lookup form, empty
