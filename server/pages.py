"""Server-rendered pages (Jinja2), usable without JavaScript, in Turkish and English.

The case page takes the case number and PIN from a POSTed form and answers with the page
itself; nothing is kept between requests (no cookies, no session), and the page is never cached.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from . import assets, i18n, validation
from .client_address import rate_limit_key
from .errors import ApiError, InvalidField

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parent / "templates"))
STATIC_DIR = Path(__file__).resolve().parent.parent / "web" / "static"
_QUALITY = re.compile(r"[0-9]{1,3}")  # ASCII digits only: "²".isdigit() is true
QUICK_EXIT_URL = "https://www.google.com/search?q=hava+durumu"  # somewhere unremarkable: the weather
QUICK_EXIT_MODULE = "quick-exit.js"  # web/src/quick-exit.js: what the button does with JavaScript


def quick_exit_script() -> str | None:
    """The quick exit's module for every page's <head>; without a build the button is a plain link."""
    try:
        return assets.asset_url(QUICK_EXIT_MODULE)
    except (assets.AssetsNotBuilt, KeyError):
        return None


def fresh_url(request: Request, language: str) -> str | None:
    """For an answer to a POST (the case page): its GET page, which web/src/quick-exit.js puts in
    place of the history entry, so that the browser keeps no form with the case number and PIN to
    send again on Back or Reload, and a copy restored from the back/forward cache reloads as that
    page. None for any other page: it reloads its own URL."""
    return f"{request.url.path}?lang={language}" if request.method == "POST" else None


def render(request: Request, name: str, language: str, status_code: int = 200, **context: Any) -> Response:
    def t(key: str, **values: object) -> str:
        return i18n.text(key, language, **values)

    other = "en" if language == "tr" else "tr"
    response = TEMPLATES.TemplateResponse(
        request, name, {"t": t, "lang": language, "other_lang": other, "quick_exit": QUICK_EXIT_URL,
                        "quick_exit_script": quick_exit_script(), "fresh_url": fresh_url(request, language),
                        **context},
        status_code=status_code,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def referral_of(request: Request) -> str | None:
    """The helpline's referral code from `?ref=` (e.g. tkdf), if it is one the API would take."""
    value = request.query_params.get("ref")
    return value if value and validation.REF.fullmatch(value) else None


async def landing(request: Request) -> Response:
    return render(request, "landing.html", i18n.language_of(request.query_params.get("lang")),
                  ref=referral_of(request))


async def start(request: Request) -> Response:
    """/start: the person's flow (eligibility, files, consent, case number and PIN) in one page whose
    steps web/src/flow-page.js shows in turn; without JavaScript it says that JavaScript is needed."""
    language = i18n.language_of(request.query_params.get("lang"))
    try:
        script = assets.asset_url("flow-page.js")
    except assets.AssetsNotBuilt:
        script = None  # the page still explains itself and links to the case page
    return render(request, "start.html", language, ref=referral_of(request), script=script,
                  texts=i18n.script_texts(language))


async def case_lookup(request: Request) -> Response:
    return render(request, "case_lookup.html", i18n.language_of(request.query_params.get("lang")))


def _error_message(error: ApiError, language: str) -> str:
    key = f"err_{error.code}"
    if key not in i18n.TEXT:
        key = "err_other"
    if error.code == "locked":
        return i18n.text(key, language, minutes=max(1, round((error.retry_after or 60) / 60)))
    if error.code == "invalid_field":
        return i18n.text(key, language, detail=error.message)
    return i18n.text(key, language)


def parse_pasted_hashes(text: str) -> list[dict[str, Any]]:
    """Lines of `type value [quality]` (what `python -m pyhash` prints) into API hash objects."""
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) not in (2, 3) or (len(fields) == 3 and not _QUALITY.fullmatch(fields[2])):
            raise InvalidField(f"line {number}: expected 'type value' or 'pdq value quality'", field="hashes")
        item: dict[str, Any] = {"signal_type": fields[0].lower(), "value": fields[1]}
        if len(fields) == 3:
            item["quality"] = int(fields[2])
        items.append(item)
    return items


async def case_page(request: Request) -> Response:
    try:
        form = await request.form()
    except ClientDisconnect:
        return Response(status_code=400)  # the person's browser went away mid-request
    language = i18n.language_of(form.get("lang"))
    store = request.app.state.cases
    fields = {"case_number": form.get("case_number", ""), "pin": form.get("pin", "")}
    action = form.get("action", "status")
    notice = None
    try:
        wait = request.app.state.rate_limiter.allow(rate_limit_key(request))
        if wait:
            raise ApiError("rate limited", code="rate_limited", status=429, retry_after=int(wait) + 1)
        if action == "withdraw":
            creds, _ = validation.credentials(fields)
            if form.get("confirm") != "yes":
                raise InvalidField(i18n.text("withdraw_confirm", language), field="confirm")
            await store.withdraw(creds)
            notice = i18n.text("withdrawn_done", language)
        elif action == "add":
            creds, hashes = validation.add_hashes(
                {**fields, "hashes": parse_pasted_hashes(str(form.get("hashes", "")))})
            added = await store.add_hashes(creds, hashes)
            notice = i18n.text("added_done", language, added=added["added"])
        else:
            creds, _ = validation.credentials(fields)
        case = await store.status(creds)
    except ApiError as error:
        return render(request, "case_lookup.html", language, status_code=error.status,
                      error=_error_message(error, language), case_number=str(fields["case_number"])[:40])
    return render(request, "case.html", language, case=case, pin=creds.pin, notice=notice)


async def error_page(request: Request, status_code: int) -> Response:
    language = i18n.language_of(request.query_params.get("lang"))
    return render(request, "error.html", language, status_code=status_code, status_code_shown=status_code)


async def referral_landing(request: Request) -> Response:
    """/r/CODE: the landing page, greeting the person in the helpline's name and language. An
    unknown code gets the plain landing page (it says nothing of which codes exist)."""
    code = request.path_params["code"]
    referral = await request.app.state.referrals.find(code) if validation.REF.fullmatch(code) else None
    chosen = request.query_params.get("lang") or (referral.language if referral else None)
    return render(request, "landing.html", i18n.language_of(chosen), ref=referral.code if referral else None,
                  referral=referral)


async def referral_stats(request: Request) -> Response:
    """/r/CODE/stats: the helpline's weekly figures, opened with its key (sent in the POST body,
    never in a URL; no cookie). A wrong key and an unknown code look alike (401)."""
    code = request.path_params["code"]
    if request.method == "GET":
        return render(request, "referral_stats.html", i18n.language_of(request.query_params.get("lang")), code=code)
    try:
        form = await request.form()
    except ClientDisconnect:
        return Response(status_code=400)
    language = i18n.language_of(form.get("lang"))
    failures = request.app.state.referral_auth_failures
    client = rate_limit_key(request)
    if failures.allow(client):  # taken now, given back if the key is right
        return render(request, "referral_stats.html", language, status_code=429, code=code,
                      error=i18n.text("err_rate_limited", language))
    key = str(form.get("key", ""))[:100]
    weeks = await request.app.state.referrals.stats(code, key) if validation.REF.fullmatch(code) else None
    if weeks is None:
        return render(request, "referral_stats.html", language, status_code=401, code=code,
                      error=i18n.text("referral_stats_wrong", language))
    failures.refund(client)
    return render(request, "referral_stats.html", language, code=code, weeks=list(reversed(weeks)))


routes = [
    Route("/", landing),
    Route("/r/{code}", referral_landing),
    Route("/r/{code}/stats", referral_stats, methods=["GET", "POST"]),
    Route("/start", start),
    Route("/case", case_lookup, methods=["GET"]),
    Route("/case", case_page, methods=["POST"]),
    Mount("/static", StaticFiles(directory=str(STATIC_DIR), check_dir=False), name="static"),
]
