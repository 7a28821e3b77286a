"""The server's own pages (server/pages.py, templates/): landing, and the no-JavaScript case page.

The case page is a plain HTML form POSTed to /case (action=status|add|withdraw); these tests
submit it as a browser without JavaScript does. In-process and on a live uvicorn, on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from server_client import (
    compact,
    create_case,
    creds,
    in_process,
    md5,
    md5_value,
    new_key,
    other_pin,
    pdq,
    pdq_value,
    query,
    snapshot,
)

pytestmark = pytest.mark.anyio

TEXT = {
    "tr": {
        "landing": "Mahrem görüntülerinizin paylaşılmasını durdurun",
        "case_title": "Başvurunuz",
        "quick_exit": "Hızlı çıkış",
        "active": "Etkin: platformlar bu parmak izlerini arıyor",
        "withdrawn": "Geri çekildi",
        "added_2": "2 yeni parmak izi eklendi.",
        "withdrawn_done": "Başvurunuz geri çekildi.",
        "wrong": "Bu başvuru numarası ve PIN ile bir başvuru bulunamadı. İkisini de kontrol edip tekrar deneyin.",
        "locked": "Bu başvuru numarası için çok fazla yanlış PIN girildi. Yaklaşık 60 dakika sonra tekrar deneyin.",
        "low_quality": "Bu görüntüde tanınması için yeterli ayrıntı yok.",
        "invalid": "Girdiğiniz bilgiler geçersiz",
        "not_found": "Bu sayfa bulunamadı.",
    },
    "en": {
        "landing": "Stop your intimate images being shared",
        "case_title": "Your case",
        "quick_exit": "Quick exit",
        "active": "Active: platforms are looking for these fingerprints",
        "withdrawn": "Withdrawn",
        "added_2": "2 new fingerprints added.",
        "withdrawn_done": "Your case is withdrawn.",
        "wrong": "No case matches this case number and PIN. Check both and try again.",
        "locked": "Too many wrong PINs for this case number. Try again in about 60 minutes.",
        "low_quality": "This image has too little detail to be recognised.",
        "invalid": "Something you entered is not valid",
        "not_found": "This page was not found.",
    },
}


@pytest.fixture
async def client(database_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    async with in_process(database_url, tmp_path / "data") as c:
        yield c


class Page(HTMLParser):
    """What a browser would see: text, links, forms and their fields, and the tags used."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.source = source
        self.lang: str | None = None
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.forms: list[dict[str, Any]] = []
        self.text_parts: list[str] = []
        self.by_testid: dict[str, str] = {}
        self._testid_stack: list[str | None] = []
        self.feed(source)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "html":
            self.lang = a.get("lang")
        if tag == "form":
            self.forms.append({"method": a.get("method"), "action": a.get("action"), "fields": {}})
        if tag in ("input", "textarea", "button") and self.forms and a.get("name"):
            self.forms[-1]["fields"].setdefault(a["name"], []).append(a)
        if tag not in ("input", "meta", "link", "br", "img"):
            self._testid_stack.append(a.get("data-testid"))
            if a.get("data-testid"):
                self.by_testid[a["data-testid"]] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag not in ("input", "meta", "link", "br", "img") and self._testid_stack:
            self._testid_stack.pop()

    def handle_data(self, data: str) -> None:
        self.text_parts.append(data)
        for testid in self._testid_stack:
            if testid:
                self.by_testid[testid] += data

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.text_parts).split())

    def urls(self) -> list[str]:
        return [v for _, a in self.tags for k, v in a.items() if k in ("href", "src", "action", "formaction") and v]

    def quick_exit(self) -> dict[str, str | None]:
        links = [a for tag, a in self.tags if tag == "a" and a.get("data-testid") == "quick-exit"]
        assert len(links) == 1, "no quick-exit link"
        return links[0]


def check_page(r: httpx.Response, language: str, status: int = 200) -> Page:
    """Every page: HTML in the right language, not cached, no cookie, a quick exit, no inline script."""
    assert r.status_code == status, (r.status_code, r.text[:500])
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["cache-control"] == "no-store"
    assert "set-cookie" not in r.headers
    page = Page(r.text)
    assert page.lang == language
    exit_link = page.quick_exit()
    assert exit_link["href"] and exit_link["href"].startswith("https://") and "kalkan" not in exit_link["href"].lower()
    assert "noreferrer" in (exit_link.get("rel") or "")
    assert TEXT[language]["quick_exit"] in page.by_testid["quick-exit"]
    # Works without JavaScript (the quick exit's module only enhances its link), and nothing inline
    # that the CSP would block: the one script there may be is that module, a file from /assets/.
    scripts = [a for tag, a in page.tags if tag == "script"]
    assert all(a.get("type") == "module" and (a.get("src") or "").startswith("/assets/quick-exit.") for a in scripts), scripts
    for tag, attrs in page.tags:
        assert "style" not in attrs and not any(k.startswith("on") for k in attrs), (tag, attrs)
    return page


def assert_private(page: Page, case: dict[str, Any]) -> None:
    """The case number and PIN are never in a URL (links, form actions)."""
    for url in page.urls():
        for secret in (case["case_number"], compact(case["case_number"]), case["pin"], compact(case["pin"])):
            assert secret.lower() not in url.lower(), url
    for form in page.forms:
        assert form["method"] == "post" or not {"pin", "case_number"} & set(form["fields"]), form


async def post_case(client: httpx.AsyncClient, language: str, **fields: Any) -> httpx.Response:
    return await client.post("/case", data={"lang": language, **fields})


# --- landing and lookup -----------------------------------------------------------------------


@pytest.mark.parametrize("query_string, language", [("", "tr"), ("?lang=tr", "tr"), ("?lang=en", "en"),
                                                     ("?lang=de", "tr"), ("?lang=EN", "tr")])
async def test_landing_page(client: httpx.AsyncClient, query_string: str, language: str) -> None:
    page = check_page(await client.get("/" + query_string), language)
    assert TEXT[language]["landing"] in page.text
    assert f"/case?lang={language}" in page.urls()
    other = "en" if language == "tr" else "tr"
    assert f"?lang={other}" in page.urls()  # the language switch


@pytest.mark.parametrize("language", ["tr", "en"])
async def test_case_lookup_page(client: httpx.AsyncClient, language: str) -> None:
    page = check_page(await client.get(f"/case?lang={language}"), language)
    assert TEXT[language]["case_title"] in page.text
    [form] = page.forms
    assert (form["method"], form["action"]) == ("post", "/case")
    fields = form["fields"]
    assert fields["lang"][0]["value"] == language and fields["lang"][0]["type"] == "hidden"
    assert "case_number" in fields and fields["pin"][0]["type"] == "password"
    assert fields["action"][0]["value"] == "status"


# --- the no-JavaScript case page ----------------------------------------------------------------


@pytest.mark.parametrize("language", ["tr", "en"])
async def test_case_page_shows_adds_and_withdraws(any_client: httpx.AsyncClient, database_url: str,
                                                  language: str) -> None:
    c = any_client
    t = TEXT[language]
    case = await create_case(c, [pdq(1), md5(1)], language=language)

    page = check_page(await post_case(c, language, action="status", **creds(case)), language)
    assert page.by_testid["case-number"] == case["case_number"]
    assert page.by_testid["case-status"] == t["active"]
    assert f"({2})" in page.text and pdq_value(1)[:16] in page.by_testid["hashes"]
    assert md5_value(1)[:16] in page.by_testid["hashes"]
    assert_private(page, case)
    # Adding photos opens the browser flow in add mode: it asks for the number and PIN itself.
    assert f"/start?mode=add&lang={language}" in page.urls()
    # The add and withdraw forms carry the case, for the next POST.
    actions = {f["fields"]["action"][0]["value"]: f for f in page.forms if "action" in f["fields"]}
    assert set(actions) == {"add", "withdraw"}
    for form in actions.values():
        assert form["fields"]["case_number"][0]["value"] == case["case_number"]
        assert form["fields"]["lang"][0]["value"] == language

    # Add: what `python -m pyhash` prints, pasted; one line already in the case; blank lines.
    pasted = f"pdq {pdq_value(2)} 90\n\n  MD5   {md5_value(2).upper()}  \nmd5 {md5_value(1)}\n"
    page = check_page(await post_case(c, language, action="add", hashes=pasted, **creds(case)), language)
    assert t["added_2"] in page.text
    assert page.by_testid["case-status"] == t["active"]
    shown = (await c.post("/api/cases/status", json=creds(case))).json()
    assert [(h["signal_type"], h["value"]) for h in shown["hashes"]] == [
        ("pdq", pdq_value(1)), ("md5", md5_value(1)), ("pdq", pdq_value(2)), ("md5", md5_value(2))]
    assert_private(page, case)

    # Withdraw needs the confirmation box; without it nothing happens.
    before = await snapshot(database_url)
    page = check_page(await post_case(c, language, action="withdraw", **creds(case)), language, 422)
    assert page.by_testid["case-error"]
    assert await snapshot(database_url) == before
    page = check_page(await post_case(c, language, action="withdraw", confirm="yes", **creds(case)), language)
    assert t["withdrawn_done"] in page.text
    assert page.by_testid["case-status"] == t["withdrawn"]
    assert not [f for f in page.forms if "action" in f["fields"]]  # nothing left to add or withdraw
    assert not [url for url in page.urls() if "mode=add" in url]
    assert_private(page, case)
    rows = await query(database_url, "SELECT status FROM case_hashes")
    assert rows == [("withdrawn",)] * 4  # tombstones


@pytest.mark.parametrize("language", ["tr", "en"])
async def test_wrong_pin_shows_a_translated_error(any_client: httpx.AsyncClient, database_url: str,
                                                  language: str) -> None:
    case = await create_case(any_client, [md5(1)])
    wrong = await post_case(any_client, language, action="status", case_number=case["case_number"],
                            pin=other_pin(case["pin"]))
    page = check_page(wrong, language, 401)
    assert page.by_testid["case-error"] == TEXT[language]["wrong"]
    assert other_pin(case["pin"]) not in wrong.text and case["pin"] not in wrong.text
    assert case["case_number"] not in page.by_testid["case-error"]
    assert_private(page, case)
    # An unknown case number gets the same page (apart from the number typed, kept in its field).
    unknown_number = "ZZZZ-ZZZZ-ZZZZ-ZZZZ"
    unknown = await post_case(any_client, language, action="status", case_number=unknown_number, pin=case["pin"])
    assert unknown.status_code == 401
    assert unknown.text.replace(unknown_number, "N") == wrong.text.replace(case["case_number"], "N")
    for action in ("add", "withdraw"):
        r = await post_case(any_client, language, action=action, case_number=case["case_number"],
                            pin=other_pin(case["pin"]), hashes=f"md5 {md5_value(2)}", confirm="yes")
        assert Page(r.text).by_testid["case-error"] == TEXT[language]["wrong"]
    assert (await any_client.post("/api/cases/status", json=creds(case))).json()["status"] == "active"


@pytest.mark.parametrize("language", ["tr", "en"])
async def test_lockout_on_the_page(client: httpx.AsyncClient, language: str) -> None:
    case = await create_case(client, [md5(1)])
    for _ in range(10):
        await post_case(client, language, action="status", case_number=case["case_number"], pin=other_pin(case["pin"]))
    page = check_page(await post_case(client, language, action="status", **creds(case)), language, 429)
    assert page.by_testid["case-error"] == TEXT[language]["locked"]


async def test_the_page_forgives_typed_input(client: httpx.AsyncClient) -> None:
    for _ in range(60):
        case = await create_case(client, [md5(1)], idempotency_key=new_key(), pin="O0O1I-ABCDE")
        if "0" in case["case_number"]:
            break
    else:
        pytest.fail("60 case numbers without a 0")
    typed_number = compact(case["case_number"]).lower().replace("0", "o")
    page = check_page(await post_case(client, "en", action="status", case_number=typed_number, pin="oo01l abcde"),
                      "en")
    assert page.by_testid["case-number"] == case["case_number"]


BAD_LINES = [
    ("low quality", lambda: f"pdq {pdq_value(3)} 40", "low_quality"),
    ("pdq without quality", lambda: f"pdq {pdq_value(3)}", "invalid"),
    ("unknown type", lambda: f"sha1 {md5_value(3)}", "invalid"),
    ("not hex", lambda: "md5 " + "x" * 32, "invalid"),
    ("one word", lambda: "nonsense", "invalid"),
    ("four words", lambda: f"pdq {pdq_value(3)} 90 extra", "invalid"),
    ("quality a word", lambda: f"pdq {pdq_value(3)} good", "invalid"),
    ("quality 101", lambda: f"pdq {pdq_value(3)} 101", "invalid"),
    ("quality superscript digit", lambda: f"pdq {pdq_value(3)} ²", "invalid"),
    ("quality Arabic-Indic digits", lambda: f"pdq {pdq_value(3)} ٩٠", "invalid"),
    ("quality of 5000 digits", lambda: f"pdq {pdq_value(3)} {'9' * 5000}", "invalid"),
    ("a good line then a bad one", lambda: f"md5 {md5_value(3)}\npdq {pdq_value(3)} 10", "low_quality"),
    ("nothing pasted", lambda: "   \n", "invalid"),
    ("501 lines", lambda: "\n".join(f"md5 {md5_value(i)}" for i in range(501)), "invalid"),
]


@pytest.mark.parametrize("label, lines, kind", BAD_LINES, ids=[b[0] for b in BAD_LINES])
async def test_bad_pasted_hashes_are_refused_in_the_persons_language(client: httpx.AsyncClient, database_url: str,
                                                                     label: str, lines: Any, kind: str) -> None:
    case = await create_case(client, [md5(1)])
    before = await snapshot(database_url)
    for language in ("tr", "en"):
        r = await post_case(client, language, action="add", hashes=lines(), **creds(case))
        assert r.status_code == 422, (label, r.status_code, r.text[:300])
        page = check_page(r, language, 422)
        assert TEXT[language][kind] in page.by_testid["case-error"], page.by_testid["case-error"]
        assert case["pin"] not in r.text
    assert await snapshot(database_url) == before


@pytest.mark.parametrize("fields", [
    {},
    {"action": "status"},
    {"action": "status", "case_number": "", "pin": ""},
    {"action": "status", "case_number": "ZZZZ\u200b-ZZZZ-ZZZZ-ZZZZ", "pin": "AAAAA-BBBBB"},
    {"action": "status", "case_number": "ＺＺＺＺ-ZZZZ-ZZZZ-ZZZZ", "pin": "AAAAA-BBBBB"},
    {"action": "status", "case_number": "x" * 5000, "pin": "AAAAA-BBBBB"},
    {"action": "explode", "case_number": "ZZZZ-ZZZZ-ZZZZ-ZZZZ", "pin": "nope"},
    {"action": "withdraw", "case_number": "ZZZZ-ZZZZ-ZZZZ-ZZZZ", "pin": "AAAAA-BBBBB"},
], ids=["empty", "no fields", "blank fields", "zero-width", "fullwidth", "long", "odd action", "no confirm"])
async def test_odd_forms_get_a_page_not_a_crash(client: httpx.AsyncClient, database_url: str,
                                                fields: dict[str, str]) -> None:
    before = await snapshot(database_url)
    for language in ("tr", "en"):
        r = await post_case(client, language, **fields)
        assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
        page = check_page(r, language, r.status_code)
        assert page.by_testid["case-error"]
        assert "x" * 100 not in r.text  # what was typed is echoed at most briefly
    assert await snapshot(database_url) == before


async def test_a_multipart_form_works_too(client: httpx.AsyncClient) -> None:
    case = await create_case(client, [md5(1)])
    r = await client.post("/case", files={"lang": (None, "en"), "action": (None, "status"),
                                          "case_number": (None, case["case_number"]), "pin": (None, case["pin"])})
    assert check_page(r, "en").by_testid["case-number"] == case["case_number"]
    r = await client.post("/case", files={"lang": (None, "en"), "case_number": ("a.txt", b"x", "text/plain"),
                                          "pin": (None, case["pin"])})
    assert 400 <= r.status_code < 500
    check_page(r, "en", r.status_code)


@pytest.mark.parametrize("path, status", [("/nothing-here", 404), ("/static/nothing.css", 404),
                                          ("/case/XXXX", 404)])
@pytest.mark.parametrize("language", ["tr", "en"])
async def test_error_pages(client: httpx.AsyncClient, path: str, status: int, language: str) -> None:
    page = check_page(await client.get(f"{path}?lang={language}"), language, status)
    assert TEXT[language]["not_found"] in page.text


async def test_other_methods_get_a_page(client: httpx.AsyncClient) -> None:
    for method, path in (("PUT", "/case"), ("DELETE", "/"), ("POST", "/")):
        r = await client.request(method, path)
        assert r.status_code == 405, (method, path, r.status_code)
        check_page(r, "tr", 405)


async def test_static_files_are_served(client: httpx.AsyncClient) -> None:
    r = await client.get("/static/kalkan.css")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/css")
    page = Page((await client.get("/")).text)
    assert "/static/kalkan.css" in page.urls()
