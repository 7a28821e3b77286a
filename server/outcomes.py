"""What platforms reported on a person's case, in plain words with dates (Turkish and English).

Partners send feedback per hash (SubmitFeedback). For the person, per platform: the latest state
among their case's hashes ("found, under review", "removed", "reviewed, not removed"), when it was
first found and when that state was reached, and how many of their files are in each state when
they differ. Platform names are shown as the operator configured them.

A case sees only what platforms reported while it held the hash: feedback whose last report came
after the case added that hash, dated no earlier than that. Several cases may hold one hash (the
person's, and an abuser's who holds the same images); feedback sent before a case had the hash
is about the others, and showing it would tell that case that someone else reported the images.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.engine import Connection

from . import i18n
from .models import case_hashes, exchange_records, partner_feedback, partners

# Partner feedback values that tell the person something, and what we call them. The others
# (None, Unknown, QualityUnknown: tags only; Withdrawn, Deleted: the platform dropped the hash
# after the case was withdrawn) say nothing about their images.
STATES = {"PendingReview": "under_review", "Blocked": "removed", "NotBlocked": "not_removed"}
# Dates as people in Turkey read them: Turkey keeps UTC+3 all year (no summer time since 2016).
LOCAL_TIME = timezone(timedelta(hours=3))


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _iso(moment: datetime) -> str:
    return _utc(moment).isoformat(timespec="seconds").replace("+00:00", "Z")


def date_words(moment: datetime, language: str) -> str:
    local = _utc(moment).astimezone(LOCAL_TIME)
    month = i18n.text(f"month_{local.month}", language)
    return f"{local.day} {month} {local.year}"


def describe(state: str, found_at: datetime, changed_at: datetime, counts: dict[str, int], language: str) -> str:
    """One sentence, e.g. "found on 3 March 2025, removed on 5 March 2025"."""
    found, changed = date_words(found_at, language), date_words(changed_at, language)
    key = f"outcome_{state}_same_day" if found == changed and state != "under_review" else f"outcome_{state}"
    sentence = i18n.text(key, language, found=found, changed=changed)
    if len(counts) > 1:  # the platform's files are not all in the same state: say how many are where
        parts = ", ".join(i18n.text(f"outcome_count_{name}", language, n=count)
                          for name, count in sorted(counts.items(), key=lambda item: -item[1]))
        sentence += " " + i18n.text("outcome_counts", language, parts=parts)
    return sentence


def _seen(report: datetime, since: datetime, *later: datetime) -> datetime:
    """A report's date as a case holding the hash since `since` may see it: one made before then
    shows as the first of the `later` reports (in order) made since."""
    return report if report >= since else _seen(later[0], since, *later[1:])


def for_case(conn: Connection, case_id: int) -> list[dict[str, Any]]:
    found = conn.execute(
        select(partners.c.name, partner_feedback.c.value, partner_feedback.c.created_at,
               partner_feedback.c.updated_at, partner_feedback.c.reported_at, case_hashes.c.added_at)
        .select_from(case_hashes.join(exchange_records, and_(exchange_records.c.signal_type == case_hashes.c.signal_type,
                                                             exchange_records.c.value == case_hashes.c.value))
                     .join(partner_feedback, partner_feedback.c.record_id == exchange_records.c.id)
                     .join(partners, partners.c.id == partner_feedback.c.partner_id))
        .where(case_hashes.c.case_id == case_id, partner_feedback.c.value.in_(list(STATES)),
               partner_feedback.c.reported_at >= case_hashes.c.added_at)).all()
    by_platform: dict[str, list[tuple[str, datetime, datetime]]] = {}  # (value, found, changed) as seen
    for row in found:
        since, last = _utc(row.added_at), _utc(row.reported_at)
        if last < since:  # SQLite compares the stored text; this compares the moments
            continue
        by_platform.setdefault(row.name, []).append(
            (row.value, _seen(_utc(row.created_at), since, _utc(row.updated_at), last),
             _seen(_utc(row.updated_at), since, last)))
    outcomes = []
    for platform in sorted(by_platform, key=str.casefold):
        reports = by_platform[platform]
        latest_value, _, changed_at = max(reports, key=lambda report: report[2])
        found_at = min(report[1] for report in reports)
        counts: dict[str, int] = {}
        for value, _, _ in reports:
            counts[STATES[value]] = counts.get(STATES[value], 0) + 1
        state = STATES[latest_value]
        outcomes.append({
            "platform": platform,
            "state": state,  # under_review | removed | not_removed
            "found_at": _iso(found_at),
            "updated_at": _iso(changed_at),
            "counts": counts,  # files of the case per state
            "text": {language: describe(state, found_at, changed_at, counts, language)
                     for language in i18n.LANGUAGES},
        })
    return outcomes
