"""Partners (platforms that sync hashes) and their keys; `python -m server partners ...`.

A partner has a subscription key (header Ocp-Apim-Subscription-Key: who is calling) and one
function key per endpoint (header x-functions-key: what it may call), as StopNCII's API does.
Keys are shown once, when issued, and stored only as keyed hashes.

Why HMAC-SHA256 and not argon2, as for PINs: these keys are 256 random bits, not something a
person chose or a 50-bit PIN, so no amount of hashing speed helps anyone search for one; a slow
salted hash would only cost every request milliseconds, and a salt would stop us finding the key
by its hash (an indexed lookup). The server secret in the key only adds a little: it lives in
the same database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection

from .config import Settings
from .errors import ApiError
from . import exchange
from .models import exchange_records, partner_feedback, partner_keys, partners
from .security import keyed, load_secret

ENDPOINTS = ("FetchHashes", "SubmitFeedback", "SubmitHashes")
SUBSCRIPTION = "subscription"
SUBSCRIPTION_HEADER = "Ocp-Apim-Subscription-Key"
FUNCTION_HEADER = "x-functions-key"
MAX_NAME = 64


@dataclass(frozen=True)
class Partner:
    id: int
    name: str


@dataclass(frozen=True)
class IssuedKeys:
    name: str
    subscription_key: str
    function_keys: dict[str, str]

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "subscription_key": self.subscription_key, "function_keys": self.function_keys}


@dataclass(frozen=True)
class Revoked:
    name: str
    withdrawn: int  # records it alone held up, now Withdrawn for every partner
    still_held: int  # records it submitted that cases or other partners still hold Active


class PartnerError(Exception):
    """A partners command that cannot be done; the message says why and what to do."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


def new_key() -> str:
    return secrets.token_urlsafe(32)  # 256 random bits, 43 URL-safe characters


def check_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME:
        raise PartnerError(f"a partner name is 1 to {MAX_NAME} characters, got {len(name)}")
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise PartnerError("a partner name may not contain control or invisible characters")
    return name


class PartnerStore:
    """Partners and keys in the database; `authenticate` answers the partner API's requests."""

    def __init__(self, database: Any) -> None:
        self.db = database  # server.db.Database
        self._secret = b""

    async def start(self) -> None:
        self._secret = await load_secret(self.db)

    @property
    def secret(self) -> bytes:
        return self._secret

    def key_hash(self, key: str) -> bytes:
        return keyed(self._secret, "partner-key", key)

    # -- the API's side ---------------------------------------------------------------------

    async def authenticate(self, subscription_key: str | None, function_key: str | None, endpoint: str) -> Partner:
        """The calling partner, if its subscription key is valid and its function key opens
        `endpoint`: else 401 (missing, unknown or revoked key) or 403 (a key of this partner that
        opens another endpoint)."""
        if not subscription_key:
            raise ApiError(f"send your subscription key in the {SUBSCRIPTION_HEADER} header",
                           field=SUBSCRIPTION_HEADER, code="unauthorized", status=401)
        if not function_key:
            raise ApiError(f"send your {endpoint} function key in the {FUNCTION_HEADER} header",
                           field=FUNCTION_HEADER, code="unauthorized", status=401)
        wanted = [self.key_hash(subscription_key), self.key_hash(function_key)]
        rows = await self.db.read(lambda conn: conn.execute(
            select(partner_keys.c.key_hash, partner_keys.c.purpose, partners.c.id, partners.c.name)
            .join(partners, partners.c.id == partner_keys.c.partner_id)
            .where(partner_keys.c.key_hash.in_(wanted), partners.c.status == "active")).all())
        by_hash = {row.key_hash: row for row in rows}
        subscription = by_hash.get(self.key_hash(subscription_key))
        if subscription is None or subscription.purpose != SUBSCRIPTION:
            raise ApiError(f"the {SUBSCRIPTION_HEADER} key is not a valid subscription key (unknown or revoked)",
                           field=SUBSCRIPTION_HEADER, code="unauthorized", status=401)
        function = by_hash.get(self.key_hash(function_key))
        if function is None or function.id != subscription.id:
            raise ApiError(f"the {FUNCTION_HEADER} key is not one of this partner's keys (unknown or revoked)",
                           field=FUNCTION_HEADER, code="unauthorized", status=401)
        if function.purpose != endpoint:
            opens = "no endpoint" if function.purpose == SUBSCRIPTION else function.purpose
            raise ApiError(f"this {FUNCTION_HEADER} key opens {opens}, not {endpoint}: send the {endpoint} key",
                           field=FUNCTION_HEADER, code="forbidden", status=403)
        return Partner(subscription.id, subscription.name)

    # -- the operator's side ------------------------------------------------------------------

    def _issue(self, conn: Connection, partner_id: int, name: str, moment: datetime) -> IssuedKeys:
        """New keys for the partner, stored as keyed hashes; the keys themselves are returned once."""
        keys = IssuedKeys(name, new_key(), {endpoint: new_key() for endpoint in ENDPOINTS})
        rows = [{"key_hash": self.key_hash(keys.subscription_key), "partner_id": partner_id,
                 "purpose": SUBSCRIPTION, "created_at": moment}]
        rows += [{"key_hash": self.key_hash(key), "partner_id": partner_id, "purpose": endpoint, "created_at": moment}
                 for endpoint, key in keys.function_keys.items()]
        conn.execute(partner_keys.insert(), rows)
        return keys

    async def add(self, name: str) -> IssuedKeys:
        name = check_name(name)
        moment = _now()

        def add(conn: Connection) -> IssuedKeys:
            existing = conn.execute(select(partners.c.name, partners.c.status)
                                    .where(func.lower(partners.c.name) == name.lower())).first()
            if existing is not None:
                raise PartnerError(f"a partner named {existing.name!r} exists already ({existing.status}); "
                                   "`rotate` issues it new keys, or choose another name")
            partner_id = conn.execute(partners.insert().values(
                name=name, status="active", created_at=moment, keys_issued_at=moment)
                .returning(partners.c.id)).scalar_one()
            return self._issue(conn, partner_id, name, moment)

        return await self.db.write(add)

    async def rotate(self, name: str) -> IssuedKeys:
        """New keys for every endpoint; the old ones stop working at once."""
        moment = _now()

        def rotate(conn: Connection) -> IssuedKeys:
            partner = _find(conn, name)
            if partner.status != "active":
                raise PartnerError(f"partner {partner.name!r} is revoked; add it again under a new name")
            conn.execute(delete(partner_keys).where(partner_keys.c.partner_id == partner.id))
            keys = self._issue(conn, partner.id, partner.name, moment)
            conn.execute(update(partners).where(partners.c.id == partner.id).values(keys_issued_at=moment))
            return keys

        return await self.db.write(rotate)

    async def revoke(self, name: str) -> Revoked:
        """The partner's keys stop working at once, and the hashes it submitted itself no longer
        hold anything Active: each turns Withdrawn unless a case or another partner still holds
        it. Its feedback stays (people were told of it)."""
        moment = _now()

        def revoke(conn: Connection) -> Revoked:
            partner = _find(conn, name)
            conn.execute(delete(partner_keys).where(partner_keys.c.partner_id == partner.id))
            conn.execute(update(partners).where(partners.c.id == partner.id)
                         .values(status="revoked", revoked_at=func.coalesce(partners.c.revoked_at, moment)))
            submitted = [(row.signal_type, row.value) for row in conn.execute(
                select(exchange_records.c.signal_type, exchange_records.c.value)
                .join(partner_feedback, partner_feedback.c.record_id == exchange_records.c.id)
                .where(partner_feedback.c.partner_id == partner.id, partner_feedback.c.submitted == 1))]
            statuses = exchange.hashes_changed(conn, submitted)
            still_active = sum(status == exchange.ACTIVE for status, _ in statuses.values())
            return Revoked(str(partner.name), len(statuses) - still_active, still_active)

        return await self.db.write(revoke)

    async def list_partners(self) -> list[dict[str, Any]]:
        rows = await self.db.read(lambda conn: conn.execute(select(partners).order_by(partners.c.name)).all())
        return [{"name": row.name, "status": row.status, "created_at": _day(row.created_at),
                 "keys_issued_at": _day(row.keys_issued_at), "revoked_at": _day(row.revoked_at)} for row in rows]


def _find(conn: Connection, name: str) -> Any:
    partner = conn.execute(select(partners).where(partners.c.name == name.strip())).first()
    if partner is None:
        raise PartnerError(f"no partner named {name.strip()!r}; `python -m server partners list` shows them")
    return partner


def _day(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


# --- python -m server partners ... ---------------------------------------------------------------

USAGE = """Partners: platforms that sync hashes over the partner API (docs/partner-api.md).

  python -m server partners add NAME [--json]      a new partner; prints its keys, once
  python -m server partners list [--json]          every partner, active or revoked
  python -m server partners revoke NAME            its keys stop working at once; the hashes it
                                                   submitted are withdrawn unless others hold them
  python -m server partners rotate NAME [--json]   new keys; the old ones stop working at once

NAME is shown to people whose hashes the partner reports on, exactly as typed (e.g. "Example
Social"). Keys are stored only as keyed hashes: copy them when they are printed.
"""


def _print_keys(keys: IssuedKeys, as_json: bool, verb: str) -> None:
    if as_json:
        print(json.dumps(keys.as_json()))
        return
    print(f"Partner {keys.name!r} {verb}. Its keys are shown only now; give them to the platform over a "
          "secure channel.\n")
    print(f"  subscription key ({SUBSCRIPTION_HEADER}):  {keys.subscription_key}")
    for endpoint, key in keys.function_keys.items():
        print(f"  {endpoint} key ({FUNCTION_HEADER}):{' ' * (16 - len(endpoint))}{key}")
    print("\npython-threatexchange / HMA (StopNCII exchange), with this server's address:")
    print(f"  TX_STOPNCII_KEYS=\"{keys.function_keys['FetchHashes']},{keys.subscription_key},"
          "https://YOUR-KALKAN-HOST/v1\"")


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    from .migrate import migrated

    async with migrated(settings.database_url) as database:
        store = PartnerStore(database)
        await store.start()
        if args.action == "add":
            _print_keys(await store.add(args.name), args.json, "added")
        elif args.action == "rotate":
            _print_keys(await store.rotate(args.name), args.json, "has new keys (the old ones no longer work)")
        elif args.action == "revoke":
            revoked = await store.revoke(args.name)
            print(f"Partner {revoked.name!r} revoked: its keys no longer work. Of the hashes it submitted, "
                  f"{revoked.withdrawn} are now withdrawn from the bank and {revoked.still_held} stay, "
                  "held by people's cases or other partners.")
        else:
            listed = await store.list_partners()
            if args.json:
                print(json.dumps(listed))
            elif not listed:
                print("No partners yet: `python -m server partners add NAME` adds one.")
            else:
                for row in listed:
                    since = f"revoked {row['revoked_at']}" if row["status"] == "revoked" else \
                        f"keys issued {row['keys_issued_at']}"
                    print(f"{row['name']}\t{row['status']}\tadded {row['created_at']}\t{since}")
        return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m server partners", description=USAGE,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["add", "list", "revoke", "rotate"])
    parser.add_argument("name", nargs="?", help="the partner's name, as people will see it")
    parser.add_argument("--json", action="store_true", help="print one JSON object (add, rotate, list)")
    args = parser.parse_args(argv)
    if args.action != "list" and not args.name:
        parser.error(f"{args.action} needs the partner's NAME")
    try:
        return asyncio.run(_run(Settings.from_env(), args))
    except PartnerError as error:
        print(f"python -m server partners {args.action}: {error}", file=sys.stderr)
        return 1
