"""Settings, from the environment (KALKAN_*) with command-line overrides.

Everything has a safe default so `python -m server` runs on a fresh machine: SQLite in a data
directory, loopback only.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from .client_address import IPNetwork, parse_trusted_proxies

REPO_ROOT = Path(__file__).resolve().parent.parent

MAX_BODY_BYTES = 64 * 1024  # request bodies over this are refused (413)
# A request's line and headers over this are refused (431) and the connection closed. A real
# request here is well under 2 KB (no cookies; the longest values are a page token and two
# partner keys); 16 KB is h11's and Node's default. httptools itself has no limit at all.
MAX_HEAD_BYTES = 16 * 1024
# While an answer waits on a client that is not taking it (see Settings.send_timeout_seconds),
# the client must take at least this much of it in every send timeout, or all of it: 16 KB in
# 30 s is 4.4 kbit/s, a tenth of GPRS, so every real link passes, and a client that opens its
# window a few bytes at a time to keep a connection does not.
MIN_SEND_BYTES = 16 * 1024
MAX_HASHES_PER_REQUEST = 500
MAX_HASHES_PER_CASE = 5000  # documented in docs/api.md
MIN_PDQ_QUALITY = 50  # below this an image has too little detail to be recognised reliably
MAX_PIN_FAILURES = 10  # wrong PINs in a row before a case number is locked
# How long a lock lasts: always the same, never escalating. A PIN is 50 random bits, so someone
# guessing at MAX_PIN_FAILURES per lock needs 2**49 / 10 locks on average: 6.4 billion years
# at an hour each, and still 1.8 million years if locks lasted a second. Longer locks, or locks
# that grow, add nothing against guessing; they only let anyone who knows a case number keep
# its owner out of it. An hour is short enough for that not to matter much, and shows clearly
# in the answer's Retry-After.
PIN_LOCK_SECONDS = 3600
# A creation retried with the same idempotency key (a lost response) is answered with the same
# case number and PIN for this long, and never once the case is withdrawn; later the key only
# gets a 409 without codes. A day covers any retry a person's browser makes.
IDEMPOTENCY_REPLAY_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Settings:
    database_url: str
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8000
    # Requests per minute one client (by salted address hash, memory only) may make to /api and
    # the case page's POSTs; 0 turns the limit off (benchmarks on loopback).
    rate_limit_per_minute: int = 120
    # Partner API requests per minute per partner (memory only, per process); a full sync of a
    # million hashes is about 1,250 requests. 0 turns it off.
    partner_rate_limit_per_minute: int = 6000
    # How long MAX_PIN_FAILURES wrong PINs lock a case number (see PIN_LOCK_SECONDS).
    pin_lock_seconds: int = PIN_LOCK_SECONDS
    # Failed partner authentications (401s) per minute per client, counted apart from requests
    # and checked before a key is looked up, so a flood of bad keys costs no database read. A
    # partner with a wrong key sees 20 clear 401s before it is made to wait; keys are 256 random
    # bits, so this is about load, not guessing. 0 turns it off.
    partner_auth_failures_per_minute: int = 20
    # Reverse proxies whose X-Forwarded-For names the client, for rate limiting only (see
    # server/client_address.py); empty: the TCP peer is the client.
    trusted_proxies: tuple[IPNetwork, ...] = ()
    # The HTTP edge (server/http_limits.py). A request's head must arrive within
    # head_timeout_seconds of the connection opening (or of its first byte on a kept-alive
    # connection): a real client sends it in one packet at once, 10 s covers a bad mobile link,
    # and a slowloris holds a connection no longer. Its body must follow within
    # body_timeout_seconds: 64 KB (the largest a person sends) in 30 s is 17 kbit/s, slower than
    # 2G; partners send up to 1 MB from servers. Idle kept-alive connections close after
    # keep_alive_seconds (uvicorn's default; browsers and partner syncs reuse a connection at
    # once). A worker holds at most max_connections connections and closes new ones beyond:
    # under the usual 1,024 open files, with room for the database; each slow connection holds at
    # most a head (16 KB) or uvicorn's 64 KB body buffer plus one read until its timeout.
    head_timeout_seconds: int = 10
    body_timeout_seconds: int = 30
    keep_alive_seconds: int = 5
    max_connections: int = 512
    # An answer the client does not take: once the system's send buffer for a connection is full
    # and more waits, the client must take MIN_SEND_BYTES of it (or all) within
    # send_timeout_seconds, again and again, or the connection is dropped. Without it a client
    # that never reads (a 4 KB receive window, a big file) held its connection for ever, and ten
    # of them filled a 10-connection worker. It is a floor on the rate, not a deadline for the
    # answer, so a slow link downloading a 10 MB file is never cut off; 30 s covers a mobile
    # link stalled in a tunnel or a handover (nginx's send_timeout is 60 s, any progress).
    send_timeout_seconds: int = 30
    # Open connections per client (its address, IPv6 by /64; memory only, never stored or logged)
    # per worker, so one client cannot take all max_connections: a browser opens at most 6 to a
    # host and a partner's sync one, so 32 leaves room for a few people behind one NAT, and it
    # takes 16 clients to fill 512. A trusted proxy is never capped: every client comes through it.
    max_connections_per_client: int = 32
    # The helpline directory (server/helplines.py); KALKAN_HELPLINES names an operator's own file.
    helplines_path: Path = REPO_ROOT / "server" / "helplines.toml"
    # Argon2id for PINs: one pass over 2 MiB, ~1.2 ms per hash here. PINs are 50 random bits,
    # not chosen by people, so even this puts an offline search of a stolen database at ~40,000
    # CPU-years per case (2^49 guesses on average), and memory-hardness keeps GPUs from making
    # that cheap; more passes would only buy a PIN that is never reused anywhere a few more
    # years, at the price of the server's throughput (every creation and every PIN check pays
    # it). Online guessing is stopped by the lockout, not by this cost.
    argon2_time_cost: int = 1
    argon2_memory_kib: int = 2048
    argon2_parallelism: int = 1
    extra: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def from_env(env: dict[str, str] | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        data_dir = Path(env.get("KALKAN_DATA_DIR") or REPO_ROOT / "data")
        url = env.get("KALKAN_DATABASE_URL") or f"sqlite+aiosqlite:///{data_dir / 'kalkan.db'}"
        return Settings(
            database_url=url,
            data_dir=data_dir,
            host=env.get("KALKAN_HOST", "127.0.0.1"),
            port=_setting(env, "KALKAN_PORT", _port, 8000),
            rate_limit_per_minute=_setting(env, "KALKAN_RATE_LIMIT_PER_MINUTE", _count, 120),
            partner_rate_limit_per_minute=_setting(env, "KALKAN_PARTNER_RATE_LIMIT_PER_MINUTE", _count, 6000),
            pin_lock_seconds=_setting(env, "KALKAN_PIN_LOCK_SECONDS", _positive, PIN_LOCK_SECONDS),
            partner_auth_failures_per_minute=_setting(env, "KALKAN_PARTNER_AUTH_FAILURES_PER_MINUTE", _count, 20),
            trusted_proxies=_setting(env, "KALKAN_TRUSTED_PROXIES", parse_trusted_proxies, ()),
            head_timeout_seconds=_setting(env, "KALKAN_HEAD_TIMEOUT_SECONDS", _positive, 10),
            body_timeout_seconds=_setting(env, "KALKAN_BODY_TIMEOUT_SECONDS", _positive, 30),
            keep_alive_seconds=_setting(env, "KALKAN_KEEP_ALIVE_SECONDS", _positive, 5),
            max_connections=_setting(env, "KALKAN_MAX_CONNECTIONS", _positive, 512),
            send_timeout_seconds=_setting(env, "KALKAN_SEND_TIMEOUT_SECONDS", _positive, 30),
            max_connections_per_client=_setting(env, "KALKAN_MAX_CONNECTIONS_PER_CLIENT", _positive, 32),
            helplines_path=Path(env.get("KALKAN_HELPLINES") or REPO_ROOT / "server" / "helplines.toml"),
        )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


class SettingError(ValueError):
    """A KALKAN_* variable that cannot be read; the message names it and its rule."""


T = TypeVar("T")


def _setting(env: dict[str, str], name: str, parse: Callable[[str], T], default: T) -> T:
    text = env.get(name, "")
    if not text.strip():
        return default
    try:
        return parse(text)
    except ValueError as error:
        raise SettingError(f"{name}={text[:80]!r}: {error}") from None


def _whole(text: str, low: int, high: int | None, rule: str) -> int:
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or int(text[:19]) < low or (high is not None and int(text[:19]) > high):
        raise ValueError(f"must be a whole number, {rule}")
    if len(text) > 18:  # before int(), which refuses over 4,300 digits with a message of its own
        raise ValueError("must be a whole number of at most 18 digits")
    return int(text)


def _count(text: str) -> int:
    return _whole(text, 0, None, "0 or more")


def _positive(text: str) -> int:
    return _whole(text, 1, None, "1 or more")


def _port(text: str) -> int:
    return _whole(text, 1, 65535, "from 1 to 65535 (a TCP port)")
