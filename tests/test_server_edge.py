"""The HTTP edge of the real server (`python -m server` under uvicorn, on loopback): what an attacker
can do before the application has even decided anything. Issue 10, items 9, 11, 12 and 13:

- a flood of bad partner keys is rate-limited per client (item 9);
- oversized request heads, slow and idle connections, and too many connections are bounded
  (item 11): a bounded slowloris (20 sockets) is closed within the documented timeouts while
  other clients are served;
- behind a trusted reverse proxy each person has their own rate-limit bucket, IPv6 by /64, and
  a client that is not a trusted proxy cannot pick its bucket with X-Forwarded-For (item 12);
- every answer, uvicorn's own 400 included, carries the security headers and a cache policy, and
  redirects are relative (item 13);
- and from the review of that work: a client that stops reading a big answer is dropped at the
  send timeout, one client cannot hold every connection (a trusted proxy is never capped), a
  partner whose key authenticated is served through a flood of bad keys from its own address,
  and number settings that cannot be read stop the server with their name and rule.

Every connection goes to 127.0.0.1 only, from loopback addresses; every loop is bounded in count
and in time.
"""

from __future__ import annotations

import asyncio
import json
import select
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from partner_bank import add_partner
from server.config import Settings
from server.headers import SECURITY_HEADERS
from server_client import execute, in_process, md5, snapshot
from server_harness import CLIENT_ADDRESS, HOST, REPO_ROOT, LiveServer, StartLiveServer

# The limits docs/api.md documents (test_the_documented_limits_are_the_defaults keeps them equal).
HEAD_TIMEOUT = 10.0  # seconds from a connection's opening to the end of its request's head
BODY_TIMEOUT = 30.0  # seconds from the end of the head to the end of the body
KEEP_ALIVE = 5.0  # seconds an idle kept-alive connection stays open
MAX_HEAD_BYTES = 16 * 1024  # request line and headers
MAX_CONNECTIONS = 512  # open connections per worker
PARTNER_AUTH_FAILURES_PER_MINUTE = 20
SLACK = 1.5  # how much later than its timeout a connection may be closed (a loaded 2-core machine)

OTHER_ADDRESS = "127.88.0.1"  # a second loopback client, neither the harness's nor the server's
BAD_KEYS = {"Ocp-Apim-Subscription-Key": "x" * 43, "x-functions-key": "y" * 43}


# --- raw connections ------------------------------------------------------------------------------


def connect(port: int, source: str = HOST) -> socket.socket:
    sock = socket.create_connection((HOST, port), timeout=5, source_address=(source, 0))
    sock.setblocking(False)
    return sock


def exchange(port: int, data: bytes, *, wait: float = 5.0) -> bytes:
    """Send `data` on a new connection; everything the server answers until it closes (or `wait`)."""
    sock = socket.create_connection((HOST, port), timeout=wait)
    try:
        try:
            sock.sendall(data)
        except OSError:
            pass  # the server closed early: read what it said before it did
        return read_until_closed(sock, wait)
    finally:
        sock.close()


def read_until_closed(sock: socket.socket, wait: float) -> bytes:
    sock.settimeout(wait)
    received = bytearray()
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, socket.timeout, ConnectionResetError):
            break
        if not chunk:
            break
        received += chunk
    return bytes(received)


def parse_response(raw: bytes) -> tuple[int, dict[str, list[str]], bytes]:
    """(status, headers by lower-case name, body) of the first HTTP response in `raw`."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 "), raw[:200]
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return int(lines[0].split()[1]), headers, body


def header_problems(headers: dict[str, list[str]], what: str) -> list[str]:
    """Security headers (each exactly once, as server/headers.py has them) and Cache-Control."""
    problems = []
    for name, value in SECURITY_HEADERS:
        if headers.get(name.decode()) != [value.decode()]:
            problems.append(f"{what}: {name.decode()} is {headers.get(name.decode())}")
    if headers.get("cache-control") != ["no-store"]:
        problems.append(f"{what}: Cache-Control is {headers.get('cache-control')}")
    return problems


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def get(server: LiveServer, path: str, *, source: str = HOST, **kwargs: Any) -> httpx.Response:
    with httpx.Client(base_url=server.base_url, trust_env=False,
                      transport=httpx.HTTPTransport(local_address=source)) as client:
        return client.get(path, **kwargs)


def test_the_documented_limits_are_the_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.head_timeout_seconds == HEAD_TIMEOUT
    assert settings.body_timeout_seconds == BODY_TIMEOUT
    assert settings.keep_alive_seconds == KEEP_ALIVE
    assert settings.max_connections == MAX_CONNECTIONS
    assert settings.partner_auth_failures_per_minute == PARTNER_AUTH_FAILURES_PER_MINUTE
    assert settings.send_timeout_seconds == SEND_TIMEOUT
    assert settings.max_connections_per_client == MAX_CONNECTIONS_PER_CLIENT
    from server.config import MAX_HEAD_BYTES as configured, MIN_SEND_BYTES

    assert configured == MAX_HEAD_BYTES
    assert MIN_SEND_BYTES == 16 * 1024
    docs = (REPO_ROOT / "docs" / "api.md").read_text()
    for text in ("16 KB", "10 s", "30 s", "5 s", "512", "KALKAN_TRUSTED_PROXIES", "KALKAN_SEND_TIMEOUT_SECONDS",
                 "KALKAN_MAX_CONNECTIONS_PER_CLIENT", f"| {MAX_CONNECTIONS_PER_CLIENT} |", "30 s for every 16 KB"):
        assert text in docs, text
    from server.cli import DESCRIPTION

    for text in ("KALKAN_SEND_TIMEOUT_SECONDS (30", f"KALKAN_MAX_CONNECTIONS_PER_CLIENT ({MAX_CONNECTIONS_PER_CLIENT}"):
        assert text in DESCRIPTION, text


# --- item 9: a flood of bad partner keys ------------------------------------------------------------


def test_a_flood_of_bad_partner_keys_gets_429_and_good_partners_are_served(database_url: str,
                                                                         live_server: StartLiveServer) -> None:
    server = live_server(database_url)  # the default limits
    good = add_partner(database_url, "Example Social")
    good_headers = {"Ocp-Apim-Subscription-Key": good["subscription_key"],
                    "x-functions-key": good["function_keys"]["FetchHashes"]}
    statuses = []
    with server.client() as attacker:
        deadline = time.monotonic() + 60
        for _ in range(PARTNER_AUTH_FAILURES_PER_MINUTE + 30):
            assert time.monotonic() < deadline
            statuses.append((refused := attacker.get("/v1/FetchHashes", headers=BAD_KEYS)).status_code)
        assert statuses.count(401) == PARTNER_AUTH_FAILURES_PER_MINUTE, statuses
        assert statuses[PARTNER_AUTH_FAILURES_PER_MINUTE:] == [429] * 30, statuses
        error = refused.json()["error"]
        assert error["code"] == "rate_limited" and error["field"] == "Ocp-Apim-Subscription-Key", error
        assert str(PARTNER_AUTH_FAILURES_PER_MINUTE) in error["message"], error
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert not header_problems({k: refused.headers.get_list(k) for k in refused.headers}, "429")
        # Checked before authenticating: the flooding client costs no key lookup, whatever it sends.
        assert attacker.get("/v1/FetchHashes", headers=good_headers).status_code == 429
    # A good partner on another address is served, and its successes count against nothing.
    with httpx.Client(base_url=server.base_url, trust_env=False,
                      transport=httpx.HTTPTransport(local_address=OTHER_ADDRESS)) as partner:
        for _ in range(PARTNER_AUTH_FAILURES_PER_MINUTE + 5):
            assert partner.get("/v1/FetchHashes", headers=good_headers).status_code == 200
        assert partner.get("/v1/FetchHashes", headers=BAD_KEYS).status_code == 401


def test_bad_keys_sent_all_at_once_cannot_slip_past_the_limit(database_url: str,
                                                             live_server: StartLiveServer) -> None:
    """60 bad-key requests in flight together: only the limit's 20 reach the key lookup."""
    # 60 connections from one address are over the per-client cap (32), which is not what this is about.
    server = live_server(database_url, env={"KALKAN_MAX_CONNECTIONS_PER_CLIENT": "64"})

    async def flood() -> list[int]:
        async with httpx.AsyncClient(base_url=server.base_url, trust_env=False, timeout=30,
                                     limits=httpx.Limits(max_connections=60),
                                     transport=httpx.AsyncHTTPTransport(local_address=OTHER_ADDRESS)) as c:
            answers = await asyncio.wait_for(
                asyncio.gather(*(c.get("/v1/FetchHashes", headers=BAD_KEYS) for _ in range(60))), 60)
        return [r.status_code for r in answers]

    statuses = asyncio.run(flood())
    assert set(statuses) == {401, 429}, statuses
    # The bucket refills by one every 3 s: a burst that took a little while may see one more.
    assert PARTNER_AUTH_FAILURES_PER_MINUTE <= statuses.count(401) <= PARTNER_AUTH_FAILURES_PER_MINUTE + 1, statuses


# --- item 11: request heads, slow and idle connections, connection count ---------------------------


def test_an_oversized_request_head_is_refused_and_costs_no_memory(sqlite_database_url: str,
                                                                  live_server: StartLiveServer) -> None:
    server = live_server(sqlite_database_url)
    just_fits = b"GET /healthz HTTP/1.1\r\nHost: kalkan\r\nX-Pad: " + b"a" * (MAX_HEAD_BYTES - 200) + b"\r\n\r\n"
    assert parse_response(exchange(server.port, just_fits, wait=2))[0] == 200
    for what, request in [
        ("header", b"GET /healthz HTTP/1.1\r\nHost: kalkan\r\nX-Pad: " + b"a" * (MAX_HEAD_BYTES + 4096) + b"\r\n\r\n"),
        ("many headers", b"GET /healthz HTTP/1.1\r\nHost: kalkan\r\n" + b"X-A: b\r\n" * 3000 + b"\r\n"),
        ("URL", b"GET /healthz?" + b"a" * (MAX_HEAD_BYTES + 4096) + b" HTTP/1.1\r\nHost: kalkan\r\n\r\n"),
    ]:
        status, headers, body = parse_response(exchange(server.port, request))
        assert status == 431, (what, status)
        assert headers.get("connection") == ["close"], what
        assert not header_problems(headers, what)
        error = json.loads(body)["error"]
        assert error["code"] == "request_head_too_large" and "16 KB" in error["message"], error

    # The attack: a 64 MB header, streamed. The server hangs up after 16 KB and keeps nothing.
    before = rss_kib(server.pid)  # type: ignore[arg-type]
    sock = socket.create_connection((HOST, server.port), timeout=5)
    sent = 0
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: kalkan\r\nX-Pad: ")
        piece = b"a" * 65536
        deadline = time.monotonic() + 20
        while sent < 64 * 1024 * 1024 and time.monotonic() < deadline:
            sock.sendall(piece)
            sent += len(piece)
    except OSError:
        pass  # hung up on
    finally:
        sock.close()
    assert sent < 32 * 1024 * 1024, f"the server took {sent} bytes of one header"
    assert rss_kib(server.pid) - before < 16 * 1024  # type: ignore[arg-type]
    assert get(server, "/healthz").status_code == 200


def test_a_slowloris_is_closed_in_time_and_others_are_served(sqlite_database_url: str,
                                                             live_server: StartLiveServer) -> None:
    """20 slow sockets with the default limits: 8 that send nothing, 8 that trickle a request
    head a byte at a time, 4 kept alive after an answer and then idle."""
    server = live_server(sqlite_database_url)
    opened: dict[socket.socket, float] = {}
    trickling: list[socket.socket] = []
    closed_after: dict[socket.socket, float] = {}
    timeout_of: dict[socket.socket, float] = {}
    answers: dict[socket.socket, bytes] = {}
    try:
        for _ in range(8):
            sock = connect(server.port)
            opened[sock], timeout_of[sock] = time.monotonic(), HEAD_TIMEOUT
        for _ in range(8):
            sock = connect(server.port)
            sock.send(b"GET /healthz HTTP/1.1\r\nHost: kalkan\r\nX-Slow: ")
            opened[sock], timeout_of[sock] = time.monotonic(), HEAD_TIMEOUT
            trickling.append(sock)
        for _ in range(4):
            sock = socket.create_connection((HOST, server.port), timeout=5)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: kalkan\r\n\r\n")
            response = b""
            while not response.endswith(b"ok"):
                response += sock.recv(4096)
            sock.setblocking(False)
            opened[sock], timeout_of[sock] = time.monotonic(), KEEP_ALIVE
        served = []
        deadline = time.monotonic() + HEAD_TIMEOUT + SLACK + 3
        last_trickle = 0.0
        while len(closed_after) < len(opened) and time.monotonic() < deadline:
            now = time.monotonic()
            if now - last_trickle >= 0.5:
                last_trickle = now
                for sock in trickling:
                    if sock not in closed_after:
                        try:
                            sock.send(b"a")
                        except OSError:
                            closed_after[sock] = now - opened[sock]
                # Meanwhile someone else is served, at once.
                started = time.monotonic()
                served.append((get(server, "/healthz", source=OTHER_ADDRESS).status_code,
                               time.monotonic() - started))
            readable, _, _ = select.select([s for s in opened if s not in closed_after], [], [], 0.1)
            for sock in readable:
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                if chunk:
                    answers[sock] = answers.get(sock, b"") + chunk
                else:
                    closed_after[sock] = time.monotonic() - opened[sock]
        open_still = [timeout_of[s] for s in opened if s not in closed_after]
        assert not open_still, f"{len(open_still)} of 20 slow sockets still open after {HEAD_TIMEOUT + SLACK + 3} s"
        late = [(round(closed_after[s], 2), timeout_of[s]) for s in opened if closed_after[s] > timeout_of[s] + SLACK]
        assert not late, f"closed later than their timeout (seconds, timeout): {late}"
        early = [(round(closed_after[s], 2), timeout_of[s]) for s in opened if closed_after[s] < timeout_of[s] - SLACK]
        assert not early, f"closed before their timeout: {early}"
        assert served and all(status == 200 and took < 1.0 for status, took in served), served
        # Those that had started a request are told why; those that sent nothing are just closed.
        for sock in trickling:
            status, headers, body = parse_response(answers[sock])
            assert status == 408 and not header_problems(headers, "408"), answers[sock][:300]
            assert str(int(HEAD_TIMEOUT)) in json.loads(body)["error"]["message"]
        assert not any(answers.get(s) for s in opened if s not in trickling and timeout_of[s] == HEAD_TIMEOUT)
    finally:
        for sock in opened:
            sock.close()


def test_a_slow_body_is_cut_off_at_the_body_timeout(sqlite_database_url: str, live_server: StartLiveServer) -> None:
    server = live_server(sqlite_database_url, env={"KALKAN_BODY_TIMEOUT_SECONDS": "2"})
    sock = socket.create_connection((HOST, server.port), timeout=5)
    try:
        sock.sendall(b"POST /api/cases HTTP/1.1\r\nHost: kalkan\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 400\r\n\r\n{")
        started = time.monotonic()
        sock.setblocking(False)
        answer = b""
        closed = None
        while closed is None and time.monotonic() - started < 2 + SLACK + 2:
            try:
                sock.send(b" ")
            except OSError:
                closed = time.monotonic() - started
                break
            readable, _, _ = select.select([sock], [], [], 0.25)
            if readable:
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                answer += chunk
                if not chunk:
                    closed = time.monotonic() - started
        assert closed is not None and 2 - SLACK < closed < 2 + SLACK, closed
        status, headers, body = parse_response(answer)
        assert status == 408 and not header_problems(headers, "408")
        assert json.loads(body)["error"]["code"] == "request_timeout"
    finally:
        sock.close()
    assert get(server, "/healthz").status_code == 200


def test_connections_beyond_the_limit_are_closed_at_once(sqlite_database_url: str,
                                                         live_server: StartLiveServer) -> None:
    server = live_server(sqlite_database_url, env={"KALKAN_MAX_CONNECTIONS": "6", "KALKAN_HEAD_TIMEOUT_SECONDS": "3"})
    holding = [connect(server.port) for _ in range(6)]
    try:
        time.sleep(0.3)  # all six accepted
        extra = socket.create_connection((HOST, server.port), timeout=5)
        try:
            extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: kalkan\r\n\r\n")
            started = time.monotonic()
            assert read_until_closed(extra, 3) == b""
            assert time.monotonic() - started < 1.0
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            extra.close()
        # The idle six are closed at the head timeout; then everyone is served again.
        time.sleep(3 + SLACK)
        assert get(server, "/healthz").status_code == 200
    finally:
        for sock in holding:
            sock.close()


# --- item 12: behind a trusted reverse proxy ------------------------------------------------------


def test_behind_a_trusted_proxy_each_person_has_their_own_bucket(database_url: str,
                                                                 live_server: StartLiveServer) -> None:
    server = live_server(database_url, env={
        "KALKAN_TRUSTED_PROXIES": f"{CLIENT_ADDRESS}, 10.0.0.0/8",  # the harness's client is the proxy
        "KALKAN_RATE_LIMIT_PER_MINUTE": "3", "KALKAN_PARTNER_AUTH_FAILURES_PER_MINUTE": "2"})
    with server.client() as proxy:
        def status(forwarded_for: str | None, path: str = "/api/cases/status") -> int:
            headers = {"X-Forwarded-For": forwarded_for} if forwarded_for is not None else {}
            if path == "/case":
                return proxy.post(path, data={"case_number": "x", "pin": "y"}, headers=headers).status_code
            return proxy.post(path, json={}, headers=headers).status_code

        assert [status("198.51.100.1") for _ in range(4)] == [422, 422, 422, 429]
        assert status("198.51.100.1", "/case") == 429  # the case page shares the person's bucket
        assert status("198.51.100.2") == 422  # someone else behind the same proxy
        assert status("198.51.100.2", "/case") == 422
        # The proxy appends the address it saw: what the client itself sent is further left.
        assert status("203.0.113.9, 198.51.100.1") == 429
        assert status("198.51.100.1, 203.0.113.9") == 422
        # Trusted proxies in the chain are skipped: the rightmost untrusted address is the client.
        assert status("198.51.100.1, 10.1.2.3") == 429
        # IPv6 clients are bucketed by /64: one person's addresses come from one /64.
        assert [status("2001:db8:1:2::1") for _ in range(3)] == [422] * 3
        assert status("2001:db8:1:2:ffff:ffff:ffff:ffff") == 429
        assert status("[2001:db8:1:3::1]:443") == 422
        assert status("::ffff:198.51.100.1") == 429  # an IPv4 address written as IPv6 is that address
        # No header from a trusted proxy: the proxy itself is the client.
        assert [status(None) for _ in range(4)] == [422, 422, 422, 429]
        # The partner API's failed authentications too.
        assert [proxy.get("/v1/FetchHashes", headers={**BAD_KEYS, "X-Forwarded-For": "198.51.100.7"}).status_code
                for _ in range(3)] == [401, 401, 429]
        assert proxy.get("/v1/FetchHashes", headers={**BAD_KEYS, "X-Forwarded-For": "198.51.100.8"}).status_code == 401

    # A client that is not a trusted proxy cannot choose its bucket with the header.
    with httpx.Client(base_url=server.base_url, trust_env=False,
                      transport=httpx.HTTPTransport(local_address=OTHER_ADDRESS)) as direct:
        statuses = [direct.post("/api/cases/status", json={}, headers={"X-Forwarded-For": f"198.51.100.{100 + i}"})
                    .status_code for i in range(4)]
        assert statuses == [422, 422, 422, 429]

    # Addresses are still never stored or logged.
    server.stop()
    stored = json.dumps(asyncio.run(snapshot(database_url)), default=repr)
    for address in ("198.51.100.", "203.0.113.9", "2001:db8", "10.1.2.3", OTHER_ADDRESS, CLIENT_ADDRESS):
        assert address not in server.logs(), address
        assert address not in stored, address


@pytest.mark.parametrize(("peer", "forwarded_for", "key"), [
    ("192.0.2.1", ["198.51.100.1"], "192.0.2.1"),  # an untrusted peer is the client, whatever it claims
    ("10.0.0.5", [], "10.0.0.5"),  # a trusted proxy that names nobody is the client
    ("10.0.0.5", ["198.51.100.1"], "198.51.100.1"),
    ("10.0.0.5", ["203.0.113.9, 198.51.100.1"], "198.51.100.1"),  # rightmost untrusted
    ("10.0.0.5", ["198.51.100.1", "10.9.9.9"], "198.51.100.1"),  # several headers are one list
    ("10.0.0.5", ["10.1.1.1, 10.2.2.2"], "10.1.1.1"),  # all trusted: the leftmost
    ("10.0.0.5", ["198.51.100.1, unknown"], "10.0.0.5"),  # unreadable: the proxy that passed it on
    ("10.0.0.5", ["198.51.100.1, , 10.2.2.2"], "10.2.2.2"),
    ("10.0.0.5", ["198.51.100.1:5123"], "198.51.100.1"),
    ("10.0.0.5", ["[2001:db8:a:b:1:2:3:4]:443"], "2001:db8:a:b::/64"),
    ("10.0.0.5", ["::ffff:198.51.100.1"], "198.51.100.1"),
    ("2001:db8:ffff::1", ["198.51.100.1"], "2001:db8:ffff::/64"),  # an IPv6 peer, untrusted
    ("::ffff:10.0.0.5", ["198.51.100.1"], "198.51.100.1"),  # a dual-stack socket's IPv4 peer
    ("testclient", ["198.51.100.1"], "testclient"),
])
def test_the_client_key_is_the_rightmost_untrusted_address(peer: str, forwarded_for: list[str], key: str) -> None:
    from server.client_address import bucket, client_address, parse_trusted_proxies

    proxies = parse_trusted_proxies("10.0.0.0/8, 2001:db8:eeee::/48")
    assert bucket(client_address(peer, forwarded_for, proxies)) == key


def test_a_bad_trusted_proxies_setting_stops_the_server_with_a_clear_message(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "KALKAN_DATA_DIR": str(tmp_path), "KALKAN_TRUSTED_PROXIES": "10.0.0.0/8, proxy.local"}
    ran = subprocess.run([sys.executable, "-m", "server", "migrate"], cwd=REPO_ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert ran.returncode == 2, ran
    assert "KALKAN_TRUSTED_PROXIES" in ran.stderr and "'proxy.local'" in ran.stderr, ran.stderr
    assert "Traceback" not in ran.stderr
    assert not (tmp_path / "kalkan.db").exists()


# --- item 13: every answer carries the headers; redirects are relative ------------------------------


def test_uvicorns_own_400_carries_the_security_headers(sqlite_database_url: str,
                                                       live_server: StartLiveServer) -> None:
    server = live_server(sqlite_database_url)
    for what, request in [("header without a colon", b"GET / HTTP/1.1\r\nHost: kalkan\r\nNo colon here\r\n\r\n"),
                          ("not HTTP", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"),
                          ("bad method", b"G(T / HTTP/1.1\r\nHost: kalkan\r\n\r\n")]:
        status, headers, body = parse_response(exchange(server.port, request))
        assert status == 400, what
        assert not header_problems(headers, what)
        error = json.loads(body)["error"]
        assert error["code"] == "invalid_http" and error["message"], error
    assert get(server, "/healthz").status_code == 200


@pytest.mark.anyio
async def test_413_405_and_500_say_no_store(database_url: str, tmp_path: Path) -> None:
    async with in_process(database_url, tmp_path / "data") as c:
        answers = {"413": await c.post("/api/cases", content=b"{" + b" " * 70000 + b"}",
                                       headers={"Content-Type": "application/json"}),
                   "405 api": await c.get("/api/cases"),
                   "405 page": await c.put("/case"),
                   "405 partner": await c.post("/v1/FetchHashes"),
                   "404 partner": await c.get("/v1/Nothing")}
        await execute(database_url, "ALTER TABLE cases RENAME TO cases_away")
        try:
            answers["500"] = await c.post("/api/cases", json={"hashes": [md5(1)]})
        finally:
            await execute(database_url, "ALTER TABLE cases_away RENAME TO cases")
    assert [r.status_code for r in answers.values()][:-1] == [413, 405, 405, 405, 404]
    assert answers["500"].status_code >= 500
    for what, r in answers.items():
        assert r.headers.get_list("cache-control") == ["no-store"], what
        assert not header_problems({k: r.headers.get_list(k) for k in r.headers}, what)


def test_redirects_are_relative_whatever_the_host_header(sqlite_database_url: str,
                                                         live_server: StartLiveServer) -> None:
    server = live_server(sqlite_database_url)
    for path, location in [("/static", "/static/"), ("/start/", "/start"), ("/start/?lang=en", "/start?lang=en"),
                           ("/case/", "/case")]:
        r = get(server, path, headers={"Host": "evil.example"}, follow_redirects=False)
        assert r.status_code in (307, 308), (path, r.status_code)
        assert r.headers.get_list("location") == [location], (path, r.headers.get("location"))
        assert not header_problems({k: r.headers.get_list(k) for k in r.headers}, path)


def test_assets_keep_their_own_cache_policy(sqlite_database_url: str, live_server: StartLiveServer) -> None:
    from server import assets

    try:
        script = assets.asset_url("hashing-page.js")
    except assets.AssetsNotBuilt:
        pytest.skip("web/dist is not built (python3 build.py web)")
    server = live_server(sqlite_database_url)
    r = get(server, script)
    assert r.status_code == 200 and r.headers.get_list("cache-control") == [assets.IMMUTABLE]


# --- the review of the edge: slow readers, one client's share, good partners in a flood, settings ----

SEND_TIMEOUT = 30.0  # seconds a connection may go without the client taking its answer
MAX_CONNECTIONS_PER_CLIENT = 32  # open connections per client address (IPv6 /64) per worker
TCP_ESTABLISHED = 1  # tcpi_state in Linux's struct tcp_info


def tcp_state(sock: socket.socket) -> int:
    """The kernel's state of our end of `sock` (read without reading from it)."""
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


def established(socks: list[socket.socket]) -> int:
    return sum(tcp_state(sock) == TCP_ESTABLISHED for sock in socks)


def big_asset() -> str:
    """The largest file the server sends (Pyodide's 9.6 MB WebAssembly), as a path."""
    from server import assets

    try:
        return assets.PREFIX + assets.manifest()["pyodide"]["dir"] + "pyodide.asm.wasm"
    except assets.AssetsNotBuilt:
        pytest.skip("web/dist is not built (python3 build.py web)")


def slow_reader(port: int, path: str, *, source: str = CLIENT_ADDRESS,
                receive_buffer: int | None = 4096) -> socket.socket:
    """A connection that asks for `path` (uncompressed) with a small receive window."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)  # before connecting: the window
    sock.bind((source, 0))
    sock.settimeout(5)
    sock.connect((HOST, port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: kalkan\r\nAccept-Encoding: identity\r\n\r\n".encode())
    sock.setblocking(False)
    return sock


def test_slow_readers_are_dropped_at_the_send_timeout_and_others_are_served(sqlite_database_url: str,
                                                                            live_server: StartLiveServer) -> None:
    """Review A: 9 sockets with a 4 KB receive window ask for the 9.6 MB file and never read,
    on a server that holds 10 connections; a tenth reads it slowly but steadily. The 9 are cut
    off at the send timeout (2 s here), the steady reader is not, and others are served."""
    path = big_asset()
    send_timeout = 2.0
    server = live_server(sqlite_database_url, env={"KALKAN_MAX_CONNECTIONS": "10",
                                                   "KALKAN_SEND_TIMEOUT_SECONDS": str(int(send_timeout))})
    stalled = [slow_reader(server.port, path) for _ in range(9)]
    steady = slow_reader(server.port, path, receive_buffer=None)
    steady_bytes = 0
    try:
        started = time.monotonic()
        # The first period may see the OS take a little more; the second never does.
        deadline = started + 2 * send_timeout + SLACK + 2
        first_closed = None
        while established(stalled) and time.monotonic() < deadline:
            try:
                steady_bytes += len(steady.recv(16384))  # ~64 KB/s: slow, but far above the minimum
            except BlockingIOError:
                pass
            if first_closed is None and established(stalled) < len(stalled):
                first_closed = time.monotonic() - started
            time.sleep(0.25)
        took = time.monotonic() - started
        assert not established(stalled), f"{established(stalled)} of 9 readers that never read still hold " \
                                         f"their connection after {took:.1f} s"
        assert first_closed is None or first_closed >= send_timeout - SLACK, first_closed
        # The slots are free again: someone else is served at once, from the same worker.
        assert get(server, "/healthz", source=OTHER_ADDRESS).status_code == 200
        # A client that keeps reading, however slowly, keeps its connection.
        while time.monotonic() - started < 3 * send_timeout:
            try:
                steady_bytes += len(steady.recv(16384))
            except BlockingIOError:
                pass
            time.sleep(0.25)
        assert tcp_state(steady) == TCP_ESTABLISHED, steady_bytes
        assert steady_bytes > 16384 * 3 * send_timeout, steady_bytes
    finally:
        for sock in [*stalled, steady]:
            sock.close()
    assert server.running and get(server, "/healthz").status_code == 200


def test_one_client_cannot_take_every_connection(sqlite_database_url: str, live_server: StartLiveServer) -> None:
    """Review A: one address holds at most KALKAN_MAX_CONNECTIONS_PER_CLIENT; beyond, its new
    connections are closed at once, and everyone else still gets a slot."""
    server = live_server(sqlite_database_url, env={"KALKAN_MAX_CONNECTIONS": "10",
                                                   "KALKAN_MAX_CONNECTIONS_PER_CLIENT": "4"})
    holding = [connect(server.port, CLIENT_ADDRESS) for _ in range(10)]
    try:
        time.sleep(0.5)  # all accepted, the ones over the cap closed
        assert established(holding) == 4, [tcp_state(s) for s in holding]
        assert get(server, "/healthz", source=OTHER_ADDRESS).status_code == 200
        # A slot given back is the client's again.
        for sock in [s for s in holding if tcp_state(s) == TCP_ESTABLISHED][:2]:
            sock.close()
        time.sleep(0.3)
        assert get(server, "/healthz", source=CLIENT_ADDRESS).status_code == 200
    finally:
        for sock in holding:
            sock.close()


def test_a_trusted_proxy_is_never_capped_per_client(sqlite_database_url: str, live_server: StartLiveServer) -> None:
    """Every client arrives through the proxy: capping its address would cap them all together."""
    server = live_server(sqlite_database_url, env={"KALKAN_MAX_CONNECTIONS": "10",
                                                   "KALKAN_MAX_CONNECTIONS_PER_CLIENT": "4",
                                                   "KALKAN_TRUSTED_PROXIES": CLIENT_ADDRESS})
    holding = [connect(server.port, CLIENT_ADDRESS) for _ in range(8)]
    try:
        time.sleep(0.5)
        assert established(holding) == 8, [tcp_state(s) for s in holding]
        assert get(server, "/healthz", source=CLIENT_ADDRESS).status_code == 200
    finally:
        for sock in holding:
            sock.close()


@pytest.mark.parametrize(("peer", "key"), [
    ("192.0.2.1", "192.0.2.1"),
    ("2001:db8:1:2::1", "2001:db8:1:2::/64"),  # a home or phone has a whole /64
    ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
    ("::ffff:192.0.2.1", "192.0.2.1"),
    ("10.0.0.5", None),  # a trusted proxy: not capped
    ("::ffff:10.0.0.5", None),
    ("2001:db8:eeee:1::7", None),
    (None, None),  # not an IP peer (a Unix socket)
])
def test_the_connection_key_is_the_peer_or_its_64_and_never_a_trusted_proxy(peer: str | None, key: str | None) -> None:
    from server.client_address import connection_key, parse_trusted_proxies

    assert connection_key(peer, parse_trusted_proxies("10.0.0.0/8, 2001:db8:eeee::/48")) == key


def test_a_known_partner_is_served_through_a_flood_of_bad_keys_from_its_address(database_url: str,
                                                                                live_server: StartLiveServer) -> None:
    """Review B: a shared egress (or a proxy not in KALKAN_TRUSTED_PROXIES) puts the partner and
    the flood on one address. A subscription key that authenticated here skips the pre-check;
    every other key keeps it, and a revoked key is refused at once and loses the exemption."""
    server = live_server(database_url)
    good = add_partner(database_url, "Example Social")
    good_headers = {"Ocp-Apim-Subscription-Key": good["subscription_key"],
                    "x-functions-key": good["function_keys"]["FetchHashes"]}
    with server.client() as shared:
        assert shared.get("/v1/FetchHashes", headers=good_headers).status_code == 200
        statuses = [shared.get("/v1/FetchHashes", headers=BAD_KEYS).status_code
                    for _ in range(PARTNER_AUTH_FAILURES_PER_MINUTE + 5)]
        assert statuses == [401] * PARTNER_AUTH_FAILURES_PER_MINUTE + [429] * 5, statuses
        for _ in range(5):
            assert shared.get("/v1/FetchHashes", headers=good_headers).status_code == 200
        # The same subscription key opens the partner's other endpoints too.
        feedback = shared.post("/v1/SubmitFeedback", json={"count": 0, "hashFeedbacks": []},
                               headers={**good_headers, "x-functions-key": good["function_keys"]["SubmitFeedback"]})
        assert feedback.status_code != 429, feedback.text
        # The flood itself is still turned away before any lookup.
        assert shared.get("/v1/FetchHashes", headers=BAD_KEYS).status_code == 429
        other = {**BAD_KEYS, "Ocp-Apim-Subscription-Key": "z" * 43}
        assert shared.get("/v1/FetchHashes", headers=other).status_code == 429
        # Revoked: the database says so on the very next request, and the key is known no more.
        ran = subprocess.run([sys.executable, "-m", "server", "partners", "revoke", "Example Social"], cwd=REPO_ROOT,
                             env={**server.env}, capture_output=True, text=True, timeout=60)
        assert ran.returncode == 0, ran.stderr
        revoked = shared.get("/v1/FetchHashes", headers=good_headers)
        assert revoked.status_code == 401, revoked.text
        assert shared.get("/v1/FetchHashes", headers=good_headers).status_code == 429


@pytest.mark.parametrize(("name", "value", "rule"), [
    ("KALKAN_PORT", "abc", "1 to 65535"),
    ("KALKAN_PORT", "0", "1 to 65535"),
    ("KALKAN_PORT", "65536", "1 to 65535"),
    ("KALKAN_PORT", "-80", "1 to 65535"),
    ("KALKAN_RATE_LIMIT_PER_MINUTE", "abc", "0 or more"),
    ("KALKAN_RATE_LIMIT_PER_MINUTE", "-1", "0 or more"),
    ("KALKAN_PARTNER_RATE_LIMIT_PER_MINUTE", "-5", "0 or more"),
    ("KALKAN_PARTNER_RATE_LIMIT_PER_MINUTE", "6e3", "0 or more"),
    ("KALKAN_MAX_CONNECTIONS", "-1", "1 or more"),  # a positive setting never says "0 or more"
    ("KALKAN_HEAD_TIMEOUT_SECONDS", "ten", "1 or more"),
    ("KALKAN_SEND_TIMEOUT_SECONDS", "0", "1 or more"),
    ("KALKAN_MAX_CONNECTIONS_PER_CLIENT", "-2", "1 or more"),
])
def test_a_bad_number_setting_names_the_variable_and_its_rule(name: str, value: str, rule: str) -> None:
    from server.config import SettingError

    with pytest.raises(SettingError) as refused:
        Settings.from_env({name: value})
    assert str(refused.value).startswith(f"{name}={value!r}: "), refused.value
    assert rule in str(refused.value), refused.value
    assert Settings.from_env({"KALKAN_PORT": "8443", "KALKAN_RATE_LIMIT_PER_MINUTE": "0",
                              "KALKAN_PARTNER_RATE_LIMIT_PER_MINUTE": "0"}).port == 8443


@pytest.mark.parametrize(("command", "name", "value"), [
    ("serve", "KALKAN_PORT", "abc"),
    ("migrate", "KALKAN_RATE_LIMIT_PER_MINUTE", "-1"),
])
def test_the_server_refuses_to_start_on_a_bad_number_setting(tmp_path: Path, command: str, name: str,
                                                             value: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "KALKAN_DATA_DIR": str(tmp_path), name: value}
    ran = subprocess.run([sys.executable, "-m", "server", command], cwd=REPO_ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert ran.returncode == 2, ran
    assert f"{name}={value!r}" in ran.stderr and "whole number" in ran.stderr, ran.stderr
    assert "Traceback" not in ran.stderr
    assert not (tmp_path / "kalkan.db").exists()
