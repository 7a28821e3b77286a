"""Helplines' referral codes (`python -m server referrals ...`) and what a helpline may know.

A helpline (TKDF, say) sends people a link with its code (`tkdf`). A case opened through it keeps
the code (only a known, active one; anything else is dropped), so the helpline can see that its
referrals help: cases opened per ISO week, counts below 3 shown as "fewer than 3", never a case
number, a hash, a status or a time finer than a week. It opens its figures with its key, which
is shown once when issued and stored only as a keyed hash (as partners' keys are).
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import secrets
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from .config import Settings
from .models import cases, referrals
from .security import keyed, load_secret
from .validation import REF

FEWER_THAN = 3  # weekly counts below this are shown as "fewer than 3": a single case stays unseen
_NAME_LENGTH = 100


class ReferralError(Exception):
    """A referrals command that cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class Referral:
    code: str
    name: dict[str, str]  # per language
    phone: str  # E.164, for tel: links
    phone_display: str
    language: str  # the landing page's language for people it sends


@dataclass(frozen=True)
class Week:
    year: int  # ISO year and week
    week: int
    cases: int | None  # None: fewer than FEWER_THAN


def active_code(conn: Connection, code: str | None = None) -> str | None:
    """`code` if it is an active referral code, else None: a case keeps only such a code."""
    if code is None:
        return None
    found = conn.execute(select(referrals.c.code).where(referrals.c.code == code,
                                                        referrals.c.status == "active")).scalar()
    return str(found) if found is not None else None


def _now() -> datetime:
    return datetime.now(timezone.utc)


def weekly(created: list[datetime], since: date, today: date) -> list[Week]:
    """Cases per ISO week from the code's first week to this one, small counts hidden."""
    counts = Counter(moment.isocalendar()[:2] for moment in created)
    weeks = []
    monday = since - timedelta(days=since.weekday())
    while monday <= today:
        year, week, _ = monday.isocalendar()
        count = counts.get((year, week), 0)
        weeks.append(Week(year, week, count if count >= FEWER_THAN else None))
        monday += timedelta(days=7)
    return weeks


class ReferralStore:
    def __init__(self, database: Any) -> None:
        self.db = database  # server.db.Database
        self._secret = b""

    async def start(self) -> None:
        self._secret = await load_secret(self.db)

    def _key_hash(self, key: str) -> bytes:
        return keyed(self._secret, "referral-key", key)

    async def find(self, code: str) -> Referral | None:
        row = await self.db.read(lambda conn: conn.execute(
            select(referrals).where(referrals.c.code == code, referrals.c.status == "active")).first())
        if row is None:
            return None
        return Referral(row.code, {"tr": row.name_tr, "en": row.name_en}, row.phone, row.phone_display, row.language)

    async def stats(self, code: str, key: str) -> list[Week] | None:
        """The code's weekly figures if `key` is its key, else None (unknown code or wrong key alike)."""
        def read(conn: Connection) -> tuple[Any, list[datetime]] | None:
            row = conn.execute(select(referrals.c.key_hash, referrals.c.created_at)
                               .where(referrals.c.code == code, referrals.c.status == "active")).first()
            if row is None:
                return None
            created = [moment for (moment,) in conn.execute(select(cases.c.created_at).where(cases.c.ref == code))]
            return row, created

        found = await self.db.read(read)
        if found is None or not hmac.compare_digest(bytes(found[0].key_hash), self._key_hash(key)):
            return None
        row, created = found
        return weekly([_utc(moment) for moment in created], _utc(row.created_at).date(), _now().date())

    # -- the operator's side ------------------------------------------------------------------

    async def add(self, referral: Referral) -> str:
        key = secrets.token_urlsafe(32)

        def add(conn: Connection) -> None:
            if conn.execute(select(func.count()).select_from(referrals)
                            .where(referrals.c.code == referral.code)).scalar_one():
                raise ReferralError(f"the code {referral.code!r} exists already; `rotate` gives it a new key")
            conn.execute(referrals.insert().values(
                code=referral.code, name_tr=referral.name["tr"], name_en=referral.name["en"], phone=referral.phone,
                phone_display=referral.phone_display, language=referral.language, key_hash=self._key_hash(key),
                status="active", created_at=_now()))

        await self.db.write(add)
        return key

    async def rotate(self, code: str) -> str:
        key = secrets.token_urlsafe(32)

        def rotate(conn: Connection) -> None:
            if not conn.execute(update(referrals).where(referrals.c.code == code, referrals.c.status == "active")
                                .values(key_hash=self._key_hash(key))).rowcount:
                raise ReferralError(f"no active referral code {code!r}; `python -m server referrals list` shows them")

        await self.db.write(rotate)
        return key

    async def revoke(self, code: str) -> None:
        def revoke(conn: Connection) -> None:
            if not conn.execute(update(referrals).where(referrals.c.code == code, referrals.c.status == "active")
                                .values(status="revoked", revoked_at=_now())).rowcount:
                raise ReferralError(f"no active referral code {code!r}; `python -m server referrals list` shows them")

        await self.db.write(revoke)

    async def list_all(self) -> list[dict[str, Any]]:
        rows = await self.db.read(lambda conn: conn.execute(select(referrals).order_by(referrals.c.code)).all())
        return [{"code": r.code, "name_tr": r.name_tr, "name_en": r.name_en, "phone": r.phone_display,
                 "language": r.language, "status": r.status} for r in rows]


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


# --- python -m server referrals ... ----------------------------------------------------------------

USAGE = """Referral codes for helplines: links such as /r/tkdf that greet the people they send.

  python -m server referrals add CODE --name-tr NAME --name-en NAME --phone +902126569696
                                 [--phone-display "0212 656 96 96"] [--lang tr] [--json]
  python -m server referrals list [--json]
  python -m server referrals revoke CODE
  python -m server referrals rotate CODE [--json]     a new key; the old one stops working

The key, printed once, opens the helpline's own figures (cases per ISO week, small counts hidden).
It is stored only as a keyed hash: give it to the helpline over a secure channel.
"""


def _referral(args: argparse.Namespace) -> Referral:
    from .helplines import E164  # one rule for phone numbers

    if not REF.fullmatch(args.code):
        raise ReferralError("a code is 1-32 of a-z, 0-9, - and _, starting with a letter or digit (e.g. tkdf)")
    names = {"tr": (args.name_tr or "").strip(), "en": (args.name_en or "").strip()}
    for language, name in names.items():
        if not 1 <= len(name) <= _NAME_LENGTH or not name.isprintable():
            raise ReferralError(f"--name-{language} is 1 to {_NAME_LENGTH} printable characters")
    if not E164.fullmatch(args.phone or ""):
        raise ReferralError("--phone is E.164: + and 8 to 15 digits, e.g. +902126569696")
    if args.lang not in ("tr", "en"):
        raise ReferralError("--lang is tr or en")
    return Referral(args.code, names, args.phone, (args.phone_display or args.phone).strip(), args.lang)


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    from .migrate import migrated

    async with migrated(settings.database_url) as database:
        store = ReferralStore(database)
        await store.start()
        if args.action in ("add", "rotate"):
            key = await (store.add(_referral(args)) if args.action == "add" else store.rotate(args.code))
            if args.json:
                print(json.dumps({"code": args.code, "key": key}))
            else:
                print(f"Referral code {args.code!r} {'added' if args.action == 'add' else 'has a new key'}. "
                      f"Its key is shown only now:\n\n  {key}\n\nLink for people: /r/{args.code}")
        elif args.action == "revoke":
            await store.revoke(args.code)
            print(f"Referral code {args.code!r} revoked: its link greets nobody and its key no longer works.")
        else:
            listed = await store.list_all()
            print(json.dumps(listed) if args.json else "\n".join(
                f"{r['code']}\t{r['status']}\t{r['name_en']}\t{r['phone']}\t{r['language']}" for r in listed)
                or "No referral codes yet: `python -m server referrals add CODE ...` adds one.")
        return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m server referrals", description=USAGE,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["add", "list", "revoke", "rotate"])
    parser.add_argument("code", nargs="?", help="the referral code, e.g. tkdf")
    parser.add_argument("--name-tr")
    parser.add_argument("--name-en")
    parser.add_argument("--phone", help="E.164, e.g. +902126569696")
    parser.add_argument("--phone-display", help="as people write it, e.g. \"0212 656 96 96\"")
    parser.add_argument("--lang", default="tr", help="the language of the page people land on (tr or en)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.action != "list" and not args.code:
        parser.error(f"{args.action} needs the CODE")
    try:
        return asyncio.run(_run(Settings.from_env(), args))
    except ReferralError as error:
        print(f"python -m server referrals {args.action}: {error}", file=sys.stderr)
        return 1
