"""`python -m server`: serve (the default), migrate the database, purge old tombstones."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from datetime import timedelta

from .config import Settings, SettingError

DESCRIPTION = """Kalkan's case server.

  python -m server [--host H] [--port P] [--workers N]   migrate the database, then serve
  python -m server migrate                              only bring the database schema up to date
  python -m server purge --older-than 90d               delete withdrawn hashes and cases for good
  python -m server partners add|list|revoke|rotate ...  platforms on the partner API (partners --help)
  python -m server referrals add|list|revoke|rotate ... helplines' referral codes (referrals --help)

Environment: KALKAN_DATABASE_URL (default: SQLite at $KALKAN_DATA_DIR/kalkan.db; PostgreSQL as
postgresql+asyncpg://user@host/db), KALKAN_DATA_DIR (default ./data in the repository),
KALKAN_HOST (127.0.0.1), KALKAN_PORT (8000), KALKAN_RATE_LIMIT_PER_MINUTE (120; 0 = off),
KALKAN_PARTNER_RATE_LIMIT_PER_MINUTE (6000 per partner), KALKAN_PARTNER_AUTH_FAILURES_PER_MINUTE
(20 failed partner authentications per client; 0 = off; a subscription key that has
authenticated is not held to it), KALKAN_HELPLINES (the helpline directory, default
server/helplines.toml; checked at start), KALKAN_PIN_LOCK_SECONDS (3600: how long 10 wrong PINs in a
row lock a case number; locks never grow). Numbers are whole; a bad one stops the server.

Behind a reverse proxy: KALKAN_TRUSTED_PROXIES, the proxies' addresses or networks
(e.g. "10.0.0.0/8, 192.0.2.7"); only from those is X-Forwarded-For believed, and only to tell
clients apart for the rate limits (IPv6 by /64). Default: none, the TCP peer is the client.

Connections (per worker): KALKAN_HEAD_TIMEOUT_SECONDS (10: request line and headers, from the
connection's opening), KALKAN_BODY_TIMEOUT_SECONDS (30: the body, after the headers),
KALKAN_KEEP_ALIVE_SECONDS (5: idle between requests), KALKAN_SEND_TIMEOUT_SECONDS (30: a client
that takes less than 16 KB of a waiting answer in this time is dropped), KALKAN_MAX_CONNECTIONS
(512: new ones beyond are closed at once), KALKAN_MAX_CONNECTIONS_PER_CLIENT (32 per client
address or IPv6 /64; a trusted proxy is never capped). Request heads over 16 KB get 431, bodies
over 64 KB 413 (1 MB for the partner API). See docs/api.md.

No access log is written: client addresses and user agents are never logged or stored.
"""


def parse_duration(text: str) -> timedelta:
    match = re.fullmatch(r"(\d+)([dhms])", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r}: use a number and a unit, e.g. 90d, 12h, 30m")
    amount, unit = int(match.group(1)), match.group(2)
    return timedelta(**{{"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}[unit]: amount})


async def _migrate(settings: Settings) -> None:
    from .db import create_engine
    from .migrate import upgrade

    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


async def _purge(settings: Settings, older_than: timedelta) -> dict[str, int]:
    from .cases import CaseStore
    from .db import Database

    database = Database(settings.database_url)
    try:
        store = CaseStore(database, settings)
        await store.start()
        return await store.purge(older_than)
    finally:
        await database.dispose()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["partners"]:  # a command of its own, with its own arguments
        from .partners import main as partners_main

        return partners_main(argv[1:])
    if argv[:1] == ["referrals"]:
        from .referrals import main as referrals_main

        return referrals_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m server", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate", "purge"])
    parser.add_argument("--host", help="address to listen on (default $KALKAN_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default $KALKAN_PORT or 8000)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1; keep 1 on SQLite, see docs/api.md)")
    parser.add_argument("--older-than", type=parse_duration, default=None,
                        help="purge: withdrawn longer ago than this (e.g. 90d)")
    args = parser.parse_args(argv)
    # Flags become environment so uvicorn's worker processes build the same settings.
    if args.host:
        os.environ["KALKAN_HOST"] = args.host
    if args.port is not None:  # --port 0 too: refused below with the rule, never quietly the default
        os.environ["KALKAN_PORT"] = str(args.port)
    try:
        settings = Settings.from_env()
    except SettingError as error:
        parser.error(str(error))  # exits 2, naming the variable and its rule

    if args.command == "purge":
        if args.older_than is None:
            parser.error("purge needs --older-than, e.g. --older-than 90d")
        counts = asyncio.run(_purge(settings, args.older_than))
        print("purged: " + ", ".join(f"{n} {what}" for what, n in counts.items()))
        return 0
    if args.command == "serve":
        from .helplines import HelplineDataError, load

        try:
            load(settings.helplines_path)  # a directory with a wrong number must never go live
        except HelplineDataError as error:
            print(f"python -m server: the helpline directory is not valid, so the server does not start: {error}",
                  file=sys.stderr)
            return 2
    asyncio.run(_migrate(settings))
    if args.command == "migrate":
        print("database schema is up to date")
        return 0

    print(f"Kalkan serving on http://{settings.host}:{settings.port}/ "
          f"({'SQLite' if settings.is_sqlite else 'PostgreSQL'})", file=sys.stderr, flush=True)
    return _serve(settings, args.workers)


def _serve(settings: Settings, workers: int) -> int:
    import socket

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from .http_limits import ConnectionLimits, LimitedConfig

    # proxy_headers=False: uvicorn would put X-Forwarded-For's address into every request's
    # scope; Kalkan reads it only to tell clients apart for rate limiting (server/client_address.py).
    config = LimitedConfig("server.app:create_app", limits=ConnectionLimits.from_settings(settings), factory=True,
                           host=settings.host, port=settings.port, workers=workers, access_log=False,
                           server_header=False, proxy_headers=False, log_level="warning",
                           timeout_keep_alive=settings.keep_alive_seconds)
    if workers <= 1:
        server = uvicorn.Server(config)
        server.run()
        return 0 if server.started else 3  # uvicorn's own exit code for a failed start
    # uvicorn binds the shared listening socket with protocol 0; the workers' accepted sockets
    # inherit it, and asyncio sets TCP_NODELAY only on sockets whose protocol says TCP
    # (Kludex/uvicorn#3149). Without it every answer on a kept-alive connection after the first
    # waits ~40 ms for the client's delayed ACK. Rewrap the same descriptor with IPPROTO_TCP.
    bound = config.bind_socket()
    listening = socket.socket(bound.family, bound.type, socket.IPPROTO_TCP, fileno=bound.detach())
    listening.set_inheritable(True)
    Multiprocess(config, sockets=[listening]).run()
    return 0
