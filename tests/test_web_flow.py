"""The person's flow (/ and /start) in real headless Chromium, driven by data-testid only.

- The whole flow in Turkish and English on corpus photos and a video, checked against the case the
  server stored (POST /api/cases/status), with the privacy proof over every request the page and
  its workers made, axe-core on every step (0 violations), and screenshots of every step at phone
  and desktop size (test-artifacts/screenshots/).
- The under-18 route, the eligibility refusals, the page without JavaScript.
- Low-detail photos are warned about and not sent; removing a file; cancelling the hashing.
- A dropped response: the retry (and a reload with the same files) gets the same case, once.
- The whole flow by keyboard alone.
- Adding to an existing case (/start?mode=add) from the case page: the hashes consent showed are
  added; a wrong PIN, a malformed number, a withdrawn, full or locked case and a lost answer are
  refused or retried with nothing added twice; the privacy proof, axe-core and screenshots there too.

axe-core comes from node_modules (package.json pins it) and is evaluated into the page by the test
(never shipped). It is not added as a <script> tag: the page's CSP refuses inline scripts, which is
the point of it, and Playwright's add_script_tag inserts one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import mimetypes
import re
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Page, Route

from server import i18n
from server_client import run_cli
from server_harness import LiveServer
from web_harness import CORPUS, Recorder, click_when_present, sqlite_web_server

IMAGES = CORPUS / "images"
VIDEOS = CORPUS / "videos"
REPO_ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
AXE = REPO_ROOT / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 800}
TIMEOUT_MS = 180_000  # Pyodide boots in each page; the machine is shared
CASE_NUMBER = re.compile(r"[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}")
PIN = re.compile(r"[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}")


# --- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the module, on a SQLite file the tests read to count cases."""
    root = tmp_path_factory.mktemp("flow-server")
    with sqlite_web_server(root, env={"KALKAN_RATE_LIMIT_PER_MINUTE": "0"}) as live:
        live.db_path = root / "kalkan.db"
        # TKDF's referral code, so that a case opened from its link keeps it (unknown codes are not kept).
        added = run_cli(live.database_url, live.data_dir, "referrals", "add", "tkdf", "--name-tr", "TKDF",
                        "--name-en", "TKDF", "--phone", "+902126569696")
        assert added.returncode == 0, added.stderr
        yield live


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport=PHONE, accept_downloads=True)
    context.set_default_timeout(60_000)  # the machine is shared: a busy moment is not a failure
    try:
        yield context
    finally:
        context.close()


# --- driving the flow ------------------------------------------------------------------------------


class Flow:
    """The /start page in `page`: every control reached by its data-testid within the visible step."""

    def __init__(self, page: Page, server: LiveServer, lang: str) -> None:
        self.page = page
        self.server = server
        self.lang = lang
        self.axe_violations: dict[str, list[Any]] = {}
        self.shots: list[Path] = []

    # where we are
    def open(self, ref: str | None = None) -> None:
        query = f"?lang={self.lang}" + (f"&ref={ref}" if ref else "")
        self.page.goto(self.server.url("/start" + query))
        self.page.wait_for_selector("[data-kalkan-flow][data-ready=true]", state="attached")
        self.expect_step("eligibility")

    def step(self) -> str:
        return str(self.page.get_attribute("[data-kalkan-flow]", "data-current-step"))

    def expect_step(self, name: str) -> None:
        self.page.wait_for_selector(f"[data-kalkan-flow][data-current-step={name}]", state="attached", timeout=TIMEOUT_MS)
        assert self.page.locator(f"section[data-step={name}]").is_visible()
        assert self.page.locator("section[data-step]:visible").count() == 1

    def control(self, testid: str) -> Any:
        return self.page.locator(f"[data-step]:not([hidden]) [data-testid={testid}]")

    def click(self, testid: str) -> None:
        self.control(testid).click()

    def csp_violations(self) -> int:
        return int(self.page.get_attribute("[data-kalkan-flow]", "data-csp-violations") or 0)

    # steps
    def confirm_eligibility(self, age: str = "adult", in_images: bool = True, intimate: bool = True) -> None:
        self.control(f"age-{age}").check()
        if in_images:
            self.control("in-images").check()
        if intimate:
            self.control("intimate").check()
        self.click("eligibility-confirm")

    def choose(self, files: Sequence[Path | dict[str, Any]]) -> None:
        self.control("file-input").set_input_files(payloads(files))  # type: ignore[arg-type]
        self.wait_hashed()

    def wait_hashed(self) -> None:
        self.page.wait_for_selector("[data-kalkan-flow][data-pending='0']", state="attached", timeout=TIMEOUT_MS)

    def items(self) -> list[dict[str, Any]]:
        out = []
        for item in self.page.locator("[data-testid=file-item]").all():
            error = item.locator("[data-testid=file-error]")
            out.append({"name": item.get_attribute("data-name"), "state": item.get_attribute("data-state"),
                        "kind": item.get_attribute("data-kind"), "low_quality": item.get_attribute("data-low-quality"),
                        "error": error.get_attribute("data-code") if error.count() else None})
        return out

    def consent_hashes(self) -> list[dict[str, str]]:
        return [{"signal_type": str(li.get_attribute("data-signal-type")), "value": str(li.get_attribute("data-value"))}
                for li in self.page.locator("[data-testid=consent-hash]").all()]

    def codes(self) -> tuple[str, str]:
        return (self.control("case-number").inner_text().strip(), self.control("case-pin").inner_text().strip())

    # evidence
    def checkpoint(self, name: str) -> None:
        """axe-core on the page as it is, and screenshots at phone and desktop size."""
        if not self.page.evaluate("typeof window.axe !== 'undefined'"):
            self.page.evaluate(AXE.read_text())
        violations = self.page.evaluate("""async () => {
            const result = await axe.run(document, { resultTypes: ["violations"] });
            return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ")) }));
        }""")
        if violations:
            self.axe_violations[name] = violations
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        before = self.page.viewport_size
        for size in (PHONE, DESKTOP):
            self.page.set_viewport_size(size)
            path = SCREENSHOTS / f"{self.lang}-{name}-{size['width']}x{size['height']}.png"
            self.page.screenshot(path=str(path), full_page=True)
            self.shots.append(path)
        if before:
            self.page.set_viewport_size(before)


def payloads(files: Sequence[Path | dict[str, Any]]) -> list[dict[str, Any]]:
    """Files as Playwright payloads (paths and payloads cannot be mixed in one call)."""
    return [f if isinstance(f, dict) else
            {"name": f.name, "mimeType": mimetypes.guess_type(f.name)[0] or "", "buffer": f.read_bytes()}
            for f in files]


def case_status(server: LiveServer, case_number: str, pin: str) -> dict[str, Any]:
    with server.client() as client:
        response = client.post("/api/cases/status", json={"case_number": case_number, "pin": pin})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def stored_cases(server: LiveServer) -> list[tuple[str, str, str | None]]:
    """(case_number, language, ref) of every case in the server's database."""
    with sqlite3.connect(f"file:{server.db_path}?mode=ro", uri=True) as db:  # type: ignore[attr-defined]
        return list(db.execute("SELECT case_number, language, ref FROM cases ORDER BY id"))


def drop_files(page: Page, files: Sequence[Path]) -> None:
    """Drops `files` on the files step as a drag from the desktop does (a DataTransfer with Files)."""
    page.evaluate("""(files) => {
        const transfer = new DataTransfer();
        for (const { name, type, data } of files) {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            transfer.items.add(new File([bytes], name, { type }));
        }
        const target = document.querySelector("[data-drop-zone]");
        for (const kind of ["dragenter", "dragover", "drop"]) {
            target.dispatchEvent(new DragEvent(kind, { dataTransfer: transfer, bubbles: true, cancelable: true }));
        }
    }""", [{"name": f.name, "type": mimetypes.guess_type(f.name)[0], "data": base64.b64encode(f.read_bytes()).decode()}
           for f in files])


def flat_png(path: Path, colour: tuple[int, int, int] = (120, 140, 160)) -> Path:
    Image.new("RGB", (320, 240), colour).save(path)
    return path


def assert_private(recorder: Recorder, server: LiveServer, chosen: Sequence[Path], photos: int) -> list[Any]:
    """Every request went to our origin (or is a blob: URL of it); no body carries any 1 KB slice of a chosen file; the
    bodies sent weigh at most 1 KB per photo beyond the videos' own hashes. Returns the POSTs."""
    origin = server.base_url + "/"
    assert recorder.requests, "no request was recorded"
    # blob: URLs (thumbnails, the downloaded text file) are made in the page and never leave it.
    assert [r.url for r in recorder.requests if not r.url.startswith((origin, "blob:" + origin))] == []
    assert any("pyodide.asm.wasm" in r.url for r in recorder.requests)  # the workers' loads are seen
    contents = [p.read_bytes() for p in chosen]
    posts = [r for r in recorder.requests if r.method != "GET"]
    for request in recorder.requests:
        body = request.post_data_buffer or b""
        for content in contents:
            for start in range(0, max(len(content) - 1024, 0) + 1, 512):
                assert content[start:start + 1024] not in body, f"file bytes sent to {request.url}"
    for post in posts:
        body = json.loads(post.post_data_buffer or b"{}")
        other = sum(len(json.dumps(h)) for h in body.get("hashes", []) if h["signal_type"] != "pdq")
        assert len(post.post_data_buffer or b"") - other <= 1024 * photos, "more than 1 KB per photo sent"
    return posts


# --- tests -----------------------------------------------------------------------------------------


def recorded_flow(context: BrowserContext, server: LiveServer, lang: str) -> tuple[Page, Recorder, Flow]:
    """A new page in `context`, every request of the context and page recorded, and the flow's
    driver on it in `lang`."""
    recorder = Recorder()
    recorder.attach(context)
    page = context.new_page()
    recorder.watch(page)
    return page, recorder, Flow(page, server, lang)


@pytest.mark.parametrize("lang", ["tr", "en"])
def test_whole_flow(context: BrowserContext, server: LiveServer, lang: str, tmp_path: Path) -> None:
    """Landing -> eligibility (the under-18 route and back) -> photos and a video -> consent ->
    case number and PIN (copy, download, print) -> case page; the case the server stored holds
    exactly the hashes the consent step showed, with the language and the helpline's ref."""
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page, recorder, flow = recorded_flow(context, server, lang)
    text = i18n.TEXT

    # 1. Landing: keeps ?lang= and ?ref= into the flow.
    page.goto(server.url(f"/?lang={lang}&ref=tkdf"))
    assert page.locator("html").get_attribute("lang") == lang
    assert text["landing_never_1"][lang] in page.inner_text("main")
    assert text["support"][lang] in page.inner_text("footer")
    assert "212 656 96 96" in text["support"][lang].replace("\u00a0", " ")  # the support line stays
    flow.checkpoint("1-landing")
    page.locator("[data-testid=start]").click()
    page.wait_for_url(re.compile(rf"/start\?lang={lang}&ref=tkdf$"))
    page.wait_for_selector("[data-kalkan-flow][data-ready=true]", state="attached")

    # 2. Eligibility, with a detour through the under-18 route and the browser's back button.
    flow.expect_step("eligibility")
    flow.checkpoint("2-eligibility")
    flow.confirm_eligibility(age="minor", in_images=False, intimate=False)
    flow.expect_step("minor")
    flow.checkpoint("2-under-18")
    page.go_back()
    flow.expect_step("eligibility")
    flow.control("age-adult").check()
    flow.click("eligibility-confirm")  # not yet "I am in them": refused, in the page's language
    assert flow.control("eligibility-error").inner_text() == text["flow_elig_need_self"][lang]
    flow.checkpoint("2-eligibility-refused")
    flow.confirm_eligibility()
    flow.expect_step("files")
    assert page.workers  # the hashing engine starts once the person is through eligibility
    flow.checkpoint("3-files-empty")

    # 3-4. Photos (PNG, JPEG, one with EXIF rotation, the same picture twice) and a video.
    photos = [IMAGES / "misc" / "c.png", IMAGES / "bridge-mods" / "aaa-orig.jpg",
              IMAGES / "exif-orientation" / "exif-rotn-6.jpg"]
    again = {"name": "again-c.png", "mimeType": "image/png", "buffer": photos[0].read_bytes()}
    video = VIDEOS / "doorknob-hd-no-bar.mp4"
    flow.control("file-input").set_input_files(payloads([*photos, again, video]))
    flow.checkpoint("3-files-hashing")  # progress bars and the stop button while they show (axe too)
    flow.wait_hashed()
    items = flow.items()
    assert [(i["name"], i["state"], i["kind"]) for i in items] == [
        *[(p.name, "done", "image") for p in photos], ("again-c.png", "done", "image"), (video.name, "done", "video")]
    thumbs = [t.get_attribute("src") or "" for t in page.locator("[data-testid=thumb]").all()]
    assert len(thumbs) == 4 and all(src.startswith("blob:") for src in thumbs)  # made here; videos get a tile
    assert flow.control("next").is_enabled()
    flow.checkpoint("3-files-hashed")
    flow.click("next")

    # 5. Consent: what will be sent, exactly.
    flow.expect_step("consent")
    shown = flow.consent_hashes()
    types = [h["signal_type"] for h in shown]
    assert types.count("pdq") == 4 and "md5" in types  # c (once), aaa-orig, rotn-6 as displayed and as stored
    assert flow.control("consent-ref").inner_text() == "tkdf"
    exact = json.loads(flow.control("consent-body").text_content() or "")
    assert [{"signal_type": h["signal_type"], "value": h["value"]} for h in exact["hashes"]] == shown
    assert all(h["quality"] >= 50 for h in exact["hashes"] if h["signal_type"] == "pdq")
    assert (exact["language"], exact["ref"]) == (lang, "tkdf") and len(exact["idempotency_key"]) >= 16
    flow.click("submit-case")  # consent not given yet: refused, nothing sent
    assert flow.control("submit-error").inner_text().strip() == text["flow_consent_need"][lang]
    assert [r for r in recorder.requests if r.method == "POST"] == []
    page.locator("[data-step=consent] details summary").click()
    flow.checkpoint("4-consent")
    flow.control("consent-confirm").check()

    # 6. Submit: case number and PIN, shown once.
    with page.expect_response("**/api/cases") as answer:
        flow.click("submit-case")
    assert answer.value.status == 201
    flow.expect_step("result")
    case_number, pin = flow.codes()
    assert CASE_NUMBER.fullmatch(case_number) and PIN.fullmatch(pin), (case_number, pin)
    assert page.evaluate("sessionStorage.length") == 0  # the idempotency key is not kept once shown
    flow.checkpoint("5-result")
    flow.click("copy-case-number")
    assert page.evaluate("navigator.clipboard.readText()") == case_number
    flow.click("copy-pin")
    assert page.evaluate("navigator.clipboard.readText()") == pin
    assert flow.control("copy-status").inner_text() == text["flow_result_copied"][lang]
    with page.expect_download() as download:
        flow.click("download-codes")
    saved = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert case_number in saved and pin in saved and f"/case?lang={lang}" in saved
    assert download.value.suggested_filename == text["flow_textfile_name"][lang].format(case_number=case_number)
    flow.click("print-codes")  # headless: returns at once
    page.emulate_media(media="print")
    assert page.locator("[data-testid=case-pin]").is_visible() and page.locator("[data-testid=case-number]").is_visible()
    for hidden in ("copy-pin", "download-codes", "next", "quick-exit"):
        assert not page.locator(f"[data-testid={hidden}]").first.is_visible(), hidden
    page.screenshot(path=str(SCREENSHOTS / f"{lang}-5-result-printed.png"), full_page=True)
    page.emulate_media(media="screen")

    # Back from here shows the number and PIN again, never an empty flow that could send twice.
    page.go_back()
    flow.expect_step("result")
    assert flow.codes() == (case_number, pin)
    # Leaving before "I have saved them" (here: the language switch) asks first; staying keeps them.
    dialogs: list[str] = []
    page.once("dialog", lambda dialog: (dialogs.append(dialog.type), dialog.dismiss()))
    page.locator("header a.lang").click(no_wait_after=True)
    page.wait_for_timeout(500)
    assert dialogs == ["beforeunload"]
    flow.expect_step("result")
    assert flow.codes() == (case_number, pin)

    # 7. What next, and the case page.
    flow.click("next")
    flow.expect_step("done")
    flow.checkpoint("6-done")
    flow.click("case-page-link")
    page.wait_for_url(re.compile(rf"/case\?lang={lang}$"))
    flow.checkpoint("7-case-page")

    # The server holds exactly what the consent step showed, with the language and the ref.
    status = case_status(server, case_number, pin)
    assert sorted((h["signal_type"], h["value"]) for h in status["hashes"]) == \
        sorted((h["signal_type"], h["value"]) for h in shown)
    assert status["language"] == lang
    assert (case_number, lang, "tkdf") in stored_cases(server)

    # Privacy: our origin only, no file bytes, <= 1 KB a photo; no CSP violation, no console error.
    posts = assert_private(recorder, server, [*photos, video], photos=len(photos) + 1)
    assert [p.url for p in posts] == [server.url("/api/cases")]
    assert json.loads(posts[0].post_data_buffer or b"{}") == exact
    assert recorder.console_errors == [] and recorder.page_errors == []
    assert flow.axe_violations == {}, json.dumps(flow.axe_violations, indent=1)


def test_under_18_route_and_refusals(context: BrowserContext, server: LiveServer) -> None:
    """No age chosen, not in the images, not intimate: each refused with a plain reason; under 18
    leads to Take It Down as a plain link (nothing requested from there, nothing booted here)."""
    page, recorder, flow = recorded_flow(context, server, "en")
    flow.open()
    refusals = [({"age": None}, "flow_elig_need_age", "age-adult"),
                ({"age": "adult", "in_images": False}, "flow_elig_need_self", "in-images"),
                ({"age": "adult", "intimate": False}, "flow_elig_need_intimate", "intimate")]
    for choices, key, field in refusals:
        page.reload()
        page.wait_for_selector("[data-kalkan-flow][data-ready=true]", state="attached")
        if choices["age"]:
            flow.confirm_eligibility(**choices)  # type: ignore[arg-type]
        else:
            flow.click("eligibility-confirm")
        flow.expect_step("eligibility")
        assert flow.control("eligibility-error").inner_text() == i18n.TEXT[key]["en"]
        assert page.locator(f"[data-testid={field}]").get_attribute("aria-invalid") == "true"
        assert page.locator(f"[data-testid={field}]:focus").count() == 1
    page.reload()
    page.wait_for_selector("[data-kalkan-flow][data-ready=true]", state="attached")
    flow.confirm_eligibility(age="minor", in_images=True, intimate=True)
    flow.expect_step("minor")
    assert page.locator("#minor-title:focus").count() == 1  # focus moved to the step's heading
    link = flow.control("take-it-down")
    assert link.get_attribute("href") == "https://takeitdown.ncmec.org"
    assert "noreferrer" in (link.get_attribute("rel") or "")
    assert flow.control("file-input").count() == 0  # no way on to the files from here
    flow.click("back")
    flow.expect_step("eligibility")
    assert all(r.url.startswith(server.base_url + "/") for r in recorder.requests)
    assert page.workers == []  # no hashing engine started for this (the offline cache may still fill)
    assert recorder.console_errors == [] and recorder.page_errors == []


def test_without_javascript_the_page_says_so_and_links_the_case_page(browser: Browser, server: LiveServer) -> None:
    for lang in ("tr", "en"):
        context = browser.new_context(java_script_enabled=False, viewport=PHONE)
        try:
            page = context.new_page()
            page.goto(server.url(f"/start?lang={lang}"))
            assert page.locator("[data-testid=needs-js]").inner_text() == i18n.TEXT["flow_needs_js"][lang]
            assert page.locator("[data-testid=case-link]").get_attribute("href") == f"/case?lang={lang}"
            assert page.locator("section[data-step]:visible").count() == 0
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / f"{lang}-0-no-javascript-375x812.png"), full_page=True)
        finally:
            context.close()


def test_landing_keeps_language_and_referral(server: LiveServer) -> None:
    with server.client() as client:
        page = client.get("/?lang=en&ref=tkdf").text
        assert 'href="/start?lang=en&amp;ref=tkdf"' in page
        assert 'href="?lang=tr&amp;ref=tkdf"' in page  # the language switch keeps the ref
        assert 'href="/start?lang=tr"' in client.get("/?ref=NOT%20A%20CODE").text  # a bad ref is dropped
        start = client.get("/start?lang=tr&ref=tkdf")
        assert start.status_code == 200 and start.headers["cache-control"] == "no-store"
        assert "script-src 'self' 'wasm-unsafe-eval'" in start.headers["content-security-policy"]
        assert "img-src 'self' blob:" in start.headers["content-security-policy"]  # the local thumbnails
        assert 'data-ref="tkdf"' in start.text and 'data-lang="tr"' in start.text
        assert 'data-ref=""' in client.get("/start?ref=%3Cscript%3E").text


def test_low_detail_photos_are_warned_and_not_sent_removing_and_cancelling(
        context: BrowserContext, server: LiveServer, tmp_path: Path) -> None:
    page, recorder, flow = recorded_flow(context, server, "tr")
    flow.open()
    flow.confirm_eligibility()
    flow.expect_step("files")

    # Only a flat photo: warned, nothing to send, no way on.
    flat = flat_png(tmp_path / "duvar.png")
    flow.choose([flat])
    [item] = flow.items()
    assert item["state"] == "done" and item["low_quality"] == "true"
    warning = page.locator("[data-testid=file-warning]")
    assert warning.inner_text() == i18n.TEXT["flow_file_low_quality"]["tr"]
    assert int(page.locator("[data-testid=file-item]").get_attribute("data-quality") or 100) < 50
    assert flow.control("next").is_disabled()
    assert flow.control("files-summary").inner_text() == i18n.TEXT["flow_summary_nothing"]["tr"]

    # Two good photos (one dropped on the page, as from a desktop's file manager) and a file that is
    # no photo (a plain error, in Turkish); one photo and the error are removed again: the photo's
    # hash goes and its thumbnail URL is revoked.
    good, removed = IMAGES / "misc" / "c.png", IMAGES / "bridge-mods" / "high-contrast.jpg"
    notes = {"name": "notlar.txt", "mimeType": "text/plain", "buffer": b"not a photo\n" * 100}
    drop_files(page, [good])
    flow.choose([removed, notes])
    assert [(i["name"], i["state"], i["error"]) for i in flow.items()] == [
        (flat.name, "done", None), (good.name, "done", None), (removed.name, "done", None), ("notlar.txt", "error", "not_image")]
    assert "fotoğraf" in page.locator("[data-testid=file-error]").inner_text()  # HashError's text, in Turkish
    assert flow.control("next").is_enabled()  # the problem files are simply not sent
    flow.checkpoint("3-files-warning-and-error")
    page.locator("[data-testid=file-item][data-name='notlar.txt'] [data-testid=remove-file]").click()
    thumb = page.locator(f"[data-testid=file-item][data-name='{removed.name}'] [data-testid=thumb]")
    url = thumb.get_attribute("src")
    load = "url => new Promise((done) => { const i = new Image(); i.onload = () => done('loaded'); i.onerror = () => done('gone'); i.src = url; })"
    assert page.evaluate(load, url) == "loaded"
    page.locator(f"[data-testid=file-item][data-name='{removed.name}'] [data-testid=remove-file]").click()
    assert [i["name"] for i in flow.items()] == [flat.name, good.name]
    assert flow.control("files-announce").text_content() == i18n.TEXT["flow_removed"]["tr"].format(name=removed.name)
    assert page.evaluate(load, url) == "gone"
    assert page.locator(f"[data-testid=file-item][data-name='{good.name}'] [data-testid=remove-file]:focus").count() == 1
    flow.click("next")
    flow.expect_step("consent")
    shown = flow.consent_hashes()
    assert len(shown) == 1 and shown[0]["signal_type"] == "pdq"  # c.png only: not the flat one, not the removed one
    page.go_back()
    flow.expect_step("files")

    # Cancel: files still being fingerprinted leave the list; the engine goes on working after it.
    big = [tmp_path / "buyuk-1.png", tmp_path / "buyuk-2.png"]
    for number, path in enumerate(big):
        Image.effect_noise((3000, 2500), 40 + number).convert("RGB").save(path, compress_level=1)
    # Stop is pressed from inside the page the moment it shows: both photos surely still in the workers.
    click_when_present(page, "[data-testid=cancel-hashing]:not([hidden])")
    flow.control("file-input").set_input_files(big)
    flow.wait_hashed()
    assert [i["name"] for i in flow.items()] == [flat.name, good.name]
    assert flow.control("files-summary").inner_text() == i18n.TEXT["flow_cancelled"]["tr"].format(count=2)
    assert page.locator("[data-testid=file-input]:focus").count() == 1
    assert flow.control("cancel-hashing").is_hidden()
    flow.choose([IMAGES / "modes" / "L.png"])
    assert flow.items()[-1]["state"] == "done"
    assert flow.control("next").is_enabled()
    assert recorder.page_errors == []
    assert [e for e in recorder.console_errors if "ERR_FILE_NOT_FOUND" not in e] == []  # the revoked URL's load
    assert flow.csp_violations() == 0
    assert flow.axe_violations == {}, json.dumps(flow.axe_violations, indent=1)


def test_a_photo_whose_hash_the_registry_refuses_is_warned_not_sent(
        context: BrowserContext, server: LiveServer, tmp_path: Path) -> None:
    """Sharp stripes have plenty of detail (quality 100) but a DCT of exact zeros: pyhash gives the
    all-zero hash, which the server's registry refuses. The worker asks the registry, so the
    person reads that the photo is not detailed enough, and it is not sent."""
    page, _, flow = recorded_flow(context, server, "en")
    flow.open()
    flow.confirm_eligibility()
    flow.expect_step("files")
    stripes = tmp_path / "stripes.png"
    Image.fromarray(((np.arange(512) // 8) % 2 * 255).astype(np.uint8)[None, :].repeat(512, 0)).convert("RGB").save(stripes)
    flow.choose([stripes, IMAGES / "misc" / "c.png"])
    refused, good = flow.items()
    assert (refused["state"], refused["low_quality"], good["low_quality"]) == ("done", "true", None), flow.items()
    item = page.locator(f"[data-testid=file-item][data-name='{stripes.name}']")
    assert item.get_attribute("data-quality") == "100"
    assert item.locator("[data-testid=file-warning]").inner_text() == i18n.TEXT["flow_file_low_quality"]["en"]
    flow.click("next")
    flow.expect_step("consent")
    shown = flow.consent_hashes()
    assert len(shown) == 1 and shown[0]["value"] != "0" * 64


def test_dropped_response_retry_gets_the_same_case(context: BrowserContext, server: LiveServer) -> None:
    """The answer is lost after the server made the case. The person reloads and chooses the same
    photo (the key survives in sessionStorage): lost again; Try again: the case made the first
    time comes back. One case in the database, every request the same body and key."""
    page = context.new_page()
    recorder = Recorder()
    recorder.attach(context)
    recorder.watch(page)
    flow = Flow(page, server, "en")
    photo = IMAGES / "bridge-mods" / "blur-a-little.jpg"
    lost: list[dict[str, Any]] = []

    def lose_two_answers(route: Route) -> None:
        if len(lost) == 2:
            route.continue_()
            return
        response = route.fetch()  # the server handles the request...
        lost.append({"status": response.status, "body": response.json(),
                     "replayed": response.headers.get("idempotent-replayed")})
        route.abort("connectionreset")  # ...and the page never hears back

    def send_until_lost() -> None:
        flow.open(ref="tkdf")
        flow.confirm_eligibility()
        flow.expect_step("files")
        flow.choose([photo])
        flow.click("next")
        flow.expect_step("consent")
        flow.control("consent-confirm").check()
        flow.click("submit-case")
        error = flow.control("submit-error")
        error.wait_for()
        assert error.inner_text().startswith(i18n.TEXT["flow_err_network"]["en"])

    page.route("**/api/cases", lose_two_answers)
    before = len(stored_cases(server))
    send_until_lost()
    assert [(a["status"], a["replayed"]) for a in lost] == [(201, None)]
    assert len(stored_cases(server)) == before + 1
    send_until_lost()  # a reload: the same photo, the same request, the key from sessionStorage
    assert [(a["status"], a["replayed"]) for a in lost] == [(201, None), (201, "true")]
    assert page.locator("[data-testid=retry-submit]:focus").count() == 1
    assert flow.control("submit-case").is_hidden()  # one way to send again: the same request
    flow.checkpoint("4-consent-send-failed")
    with page.expect_response("**/api/cases") as answer:
        flow.click("retry-submit")
    assert answer.value.status == 201 and answer.value.headers.get("idempotent-replayed") == "true"
    flow.expect_step("result")
    assert flow.codes() == (lost[0]["body"]["case_number"], lost[0]["body"]["pin"]) == \
        (lost[1]["body"]["case_number"], lost[1]["body"]["pin"])
    bodies = [json.loads(r.post_data_buffer or b"{}") for r in recorder.requests if r.method == "POST"]
    assert len(bodies) == 3 and bodies[0] == bodies[1] == bodies[2]  # the same key every time
    assert bodies[0]["ref"] == "tkdf"  # also from a page the offline cache served (rendered without it)
    assert len(stored_cases(server)) == before + 1
    case_status(server, *flow.codes())
    assert page.evaluate("sessionStorage.length") == 0
    assert recorder.page_errors == []
    assert flow.axe_violations == {}, json.dumps(flow.axe_violations, indent=1)

    # The quick exit leaves at once, even with the number and PIN on screen: no question asked.
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.type), dialog.accept()))
    # The whole context: the exit also opens the neutral site in a new tab (tests/test_web_quick_exit.py).
    context.route("https://www.google.com/**", lambda route: route.fulfill(status=200, body="", content_type="text/html"))
    page.locator("[data-testid=quick-exit]").click()
    page.wait_for_url("https://www.google.com/**")
    assert dialogs == []


def test_whole_flow_by_keyboard_alone(context: BrowserContext, server: LiveServer) -> None:
    """Tab, Space and Enter only (the file comes from set_input_files on the focused input: the
    OS dialog cannot be driven)."""
    page = context.new_page()
    recorder = Recorder()
    recorder.watch(page)
    flow = Flow(page, server, "tr")
    page.goto(server.url("/?lang=tr"))

    def tab_to(testid: str, limit: int = 40) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            if page.locator(f"[data-testid={testid}]:focus").count():
                return
        raise AssertionError(f"Tab never reached {testid} on step {flow.step()}")

    tab_to("start")
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-kalkan-flow][data-ready=true]", state="attached")
    flow.expect_step("eligibility")
    tab_to("age-adult")
    page.keyboard.press("Space")
    tab_to("in-images")
    page.keyboard.press("Space")
    tab_to("intimate")
    page.keyboard.press("Space")
    tab_to("eligibility-confirm")
    page.keyboard.press("Enter")
    flow.expect_step("files")
    assert page.locator("#files-title:focus").count() == 1
    tab_to("file-input")
    page.locator("[data-testid=file-input]:focus").set_input_files([IMAGES / "misc" / "c.png"])
    flow.wait_hashed()
    tab_to("next")
    page.keyboard.press("Enter")
    flow.expect_step("consent")
    tab_to("consent-confirm")
    page.keyboard.press("Space")
    assert flow.control("consent-confirm").is_checked()
    tab_to("submit-case")
    page.keyboard.press("Enter")
    flow.expect_step("result")
    case_number, pin = flow.codes()
    assert CASE_NUMBER.fullmatch(case_number)
    tab_to("next")
    page.keyboard.press("Enter")
    flow.expect_step("done")
    tab_to("case-page-link")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/case\?lang=tr$"))
    case_status(server, case_number, pin)
    assert recorder.console_errors == [] and recorder.page_errors == []


# --- adding to an existing case (/start?mode=add) ----------------------------------------------------


def api(server: LiveServer, path: str, body: dict[str, Any]) -> httpx.Response:
    with server.client() as client:
        return client.post(path, json=body)


def new_case(server: LiveServer, lang: str, count: int = 1) -> dict[str, Any]:
    """A case opened through the API with `count` distinct MD5 hashes (500 a request, as the API takes)."""
    values = [hashlib.md5(uuid.uuid4().bytes).hexdigest() for _ in range(count)]
    hashes = [{"signal_type": "md5", "value": v} for v in values]
    response = api(server, "/api/cases", {"hashes": hashes[:500], "language": lang})
    assert response.status_code == 201, response.text
    case = response.json()
    for start in range(500, count, 500):
        added = api(server, "/api/cases/hashes", {"case_number": case["case_number"], "pin": case["pin"],
                                                   "hashes": hashes[start:start + 500]})
        assert added.status_code == 200, added.text
    case["hashes"] = hashes
    return case  # type: ignore[no-any-return]


def stored_hashes(server: LiveServer, case: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((h["signal_type"], h["value"]) for h in case_status(server, case["case_number"], case["pin"])["hashes"])


def wrong_pin(pin: str) -> str:
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    return pin[:-1] + alphabet[(alphabet.index(pin[-1]) + 1) % 32]


def secrets_in_urls(recorder: Recorder, *cases: dict[str, Any]) -> list[str]:
    """Request URLs that hold a case number or PIN in any form (they travel only in POST bodies)."""
    forms = {variant for case in cases for code in (case["case_number"], case["pin"])
             for variant in (code, code.replace("-", ""))}
    return [r.url for r in recorder.requests if any(f.lower() in r.url.lower() for f in forms)]


def add_mode_ready(flow: Flow, photos: Sequence[Path]) -> list[dict[str, str]]:
    """Eligibility, the photos, consent ticked: the hashes the consent step shows."""
    flow.confirm_eligibility()
    flow.expect_step("files")
    flow.choose(photos)
    flow.click("next")
    flow.expect_step("consent")
    flow.control("consent-confirm").check()
    return flow.consent_hashes()


def send_add(flow: Flow, case_number: str, pin: str) -> Any:
    """Types the case number and PIN and presses Add: the API's answer."""
    flow.control("add-case-number").fill(case_number)
    flow.control("add-case-pin").fill(pin)
    with flow.page.expect_response("**/api/cases/hashes") as answer:
        flow.click("submit-case")
    flow.page.wait_for_selector("[data-kalkan-flow][data-sending=false]", state="attached")  # the answer is handled
    return answer.value


def test_add_photos_to_a_case_from_the_case_page(context: BrowserContext, server: LiveServer) -> None:
    """The case page (no JS) links to the flow in add mode without the case number or PIN in the
    URL; two photos are fingerprinted, a wrong PIN is refused (nothing added), the right one (typed
    loosely) adds exactly the hashes consent showed; back to the case page by POST."""
    lang = "en"
    text = i18n.TEXT
    page, recorder, flow = recorded_flow(context, server, lang)
    case = new_case(server, lang)

    page.goto(server.url(f"/case?lang={lang}"))
    page.locator("[data-testid=lookup-case-number]").fill(case["case_number"])
    page.locator("[data-testid=lookup-pin]").fill(case["pin"])
    page.locator("[data-testid=lookup-submit]").click()
    add_link = page.locator("[data-testid=add-photos]")
    assert add_link.inner_text() == text["add_photos_button"][lang]
    assert add_link.get_attribute("href") == f"/start?mode=add&lang={lang}"
    assert text["add_lead"][lang] in page.inner_text("main")
    flow.checkpoint("add-0-case-page")
    add_link.click()
    page.wait_for_url(re.compile(rf"/start\?mode=add&lang={lang}$"))
    page.wait_for_selector("[data-kalkan-flow][data-ready=true]", state="attached")
    flow.expect_step("eligibility")
    assert flow.control("add-mode-note").inner_text() == text["flow_add_mode_note"][lang]
    assert page.locator("header a.lang").get_attribute("href") == "/start?lang=tr&mode=add"  # the mode survives a switch
    flow.checkpoint("add-1-eligibility")

    photos = [IMAGES / "misc" / "c.png", IMAGES / "bridge-mods" / "aaa-orig.jpg"]
    flow.confirm_eligibility()
    flow.expect_step("files")
    flow.choose(photos)
    flow.checkpoint("add-2-files")
    flow.click("next")
    flow.expect_step("consent")
    shown = flow.consent_hashes()
    assert [h["signal_type"] for h in shown] == ["pdq", "pdq"]
    assert page.locator("#consent-title").inner_text() == text["flow_add_consent_title"][lang]
    assert flow.control("consent-ref").is_hidden()  # a new case's language and ref are not sent here
    flow.control("add-case-number").fill(case["case_number"])
    exact = json.loads(flow.control("consent-body").text_content() or "")
    assert exact["case_number"] == case["case_number"] and exact["pin"] == "•••••-•••••"
    assert [{"signal_type": h["signal_type"], "value": h["value"]} for h in exact["hashes"]] == shown
    for testid in ("add-case-number", "add-case-pin"):
        assert flow.control(testid).get_attribute("autocomplete") == "off"
        assert flow.control(testid).get_attribute("type") == "text"  # no password manager keeps it
    flow.control("consent-confirm").check()

    # A wrong PIN: the API's one message for a wrong number or PIN, both fields marked, nothing added.
    answer = send_add(flow, case["case_number"], wrong_pin(case["pin"]))
    assert answer.status == 401
    assert flow.control("submit-error").inner_text().strip() == text["err_case_or_pin_wrong"][lang]
    for testid in ("add-case-number", "add-case-pin"):
        assert flow.control(testid).get_attribute("aria-invalid") == "true"
    assert page.locator("[data-testid=add-case-number]:focus").count() == 1
    assert stored_hashes(server, case) == sorted((h["signal_type"], h["value"]) for h in case["hashes"])
    flow.checkpoint("add-3-consent-wrong-pin")

    # The right PIN, typed as people do: small letters, spaces for hyphens, stray spaces around.
    loose_number = " " + case["case_number"].lower().replace("-", " ") + " "
    loose_pin = case["pin"].lower().replace("-", "") + "  "
    answer = send_add(flow, loose_number, loose_pin)
    assert answer.status == 200
    flow.expect_step("added")
    assert flow.control("added-count").inner_text() == "2"
    assert flow.control("added-total").inner_text() == "3"
    assert flow.control("added-already").is_hidden()
    assert page.evaluate("sessionStorage.length") == 0  # nothing of the add is kept in the tab
    flow.checkpoint("add-4-added")
    assert stored_hashes(server, case) == sorted(
        [(h["signal_type"], h["value"]) for h in case["hashes"]] + [(h["signal_type"], h["value"]) for h in shown])

    # The body sent: canonical number and PIN, exactly the hashes shown; nothing else in it.
    sent = [json.loads(r.post_data_buffer or b"{}") for r in recorder.requests
            if r.method == "POST" and r.url == server.url("/api/cases/hashes")]
    assert len(sent) == 2 and sent[1] == {"case_number": case["case_number"], "pin": case["pin"], "hashes": exact["hashes"]}

    assert flow.csp_violations() == 0

    # Back to the case page: a POST, so the case shows without typing again and without a URL holding it.
    with page.expect_navigation():
        flow.click("added-case-page")
    # /case, then /case?lang=en once quick-exit.js dropped the form from the history entry: no code in it.
    assert page.url in (server.url("/case"), server.url(f"/case?lang={lang}"))
    assert page.locator("[data-testid=case-number]").inner_text() == case["case_number"]
    assert len(page.locator("[data-testid=hashes] li").all()) == 3

    # Privacy: our origin only, no 1 KB slice of a photo in any body, <= 1 KB a photo; the case page's
    # own form POSTs (number and PIN, urlencoded) are checked apart; no number or PIN in any URL.
    case_page = server.url("/case")
    flow_only = Recorder(requests=[r for r in recorder.requests if not (r.method == "POST" and r.url == case_page)])
    assert_private(flow_only, server, photos, photos=len(photos))
    assert [len(r.post_data_buffer or b"") < 200 for r in recorder.requests if r.method == "POST" and r.url == case_page] == [True, True]
    assert secrets_in_urls(recorder, case) == []
    assert recorder.page_errors == []
    assert [e for e in recorder.console_errors if "401" not in e] == []  # Chromium logs the refused PIN's 401
    assert flow.axe_violations == {}, json.dumps(flow.axe_violations, indent=1)


def test_add_mode_refusals_and_a_lost_answer(context: BrowserContext, server: LiveServer) -> None:
    """In Turkish, on one page with one photo: a malformed number (nothing sent), a withdrawn case
    (start a new one, linked), a full case, a locked case (when to retry), a lost answer (Try
    again: nothing added twice); the other cases are left as they were."""
    lang = "tr"
    text = i18n.TEXT
    page, recorder, flow = recorded_flow(context, server, lang)
    withdrawn = new_case(server, lang)
    assert api(server, "/api/cases/withdraw", {"case_number": withdrawn["case_number"], "pin": withdrawn["pin"]}).status_code == 200
    full = new_case(server, lang, count=5000)
    locked = new_case(server, lang)
    for _ in range(12):  # wrong PINs until the number locks
        if api(server, "/api/cases/status", {"case_number": locked["case_number"],
                                            "pin": wrong_pin(locked["pin"])}).status_code == 429:
            break
    else:
        raise AssertionError("the case number never locked")
    good = new_case(server, lang)

    page.goto(server.url(f"/start?lang={lang}&mode=add"))
    page.wait_for_selector("[data-kalkan-flow][data-ready=true]", state="attached")
    flow.expect_step("eligibility")
    assert flow.control("add-mode-note").is_visible()
    flow.checkpoint("add-1-eligibility")
    photo = IMAGES / "misc" / "c.png"
    shown = add_mode_ready(flow, [photo])
    assert len(shown) == 1

    # Not a case number: explained at its field, nothing sent.
    flow.control("add-case-number").fill("1234-5678")
    flow.control("add-case-pin").fill(good["pin"])
    flow.click("submit-case")
    assert flow.control("submit-error").inner_text().strip() == text["flow_add_need_case_number"][lang]
    assert flow.control("add-case-number").get_attribute("aria-invalid") == "true"
    assert page.locator("[data-testid=add-case-number]:focus").count() == 1
    assert [r for r in recorder.requests if r.method == "POST"] == []

    # A withdrawn case: start a new case instead, linked.
    assert send_add(flow, withdrawn["case_number"], withdrawn["pin"]).status == 409
    assert flow.control("submit-error").inner_text().strip().startswith(text["flow_add_err_withdrawn"][lang])
    new_case_link = flow.control("start-new-case")
    assert new_case_link.is_visible() and new_case_link.get_attribute("href") == f"/start?lang={lang}"
    assert page.locator("[data-testid=start-new-case]:focus").count() == 1
    flow.checkpoint("add-5-withdrawn")

    # A full case, then a locked one (when to retry: in about an hour, in Turkish).
    assert send_add(flow, full["case_number"], full["pin"]).status == 422
    assert flow.control("submit-error").inner_text().strip().startswith(text["flow_add_err_full"][lang])
    assert flow.control("start-new-case").is_visible()
    assert send_add(flow, locked["case_number"], locked["pin"]).status == 429
    assert flow.control("submit-error").inner_text().strip() == \
        text["flow_add_err_locked"][lang].format(when="60 dakika sonra")
    assert flow.control("start-new-case").is_hidden()
    flow.checkpoint("add-6-locked")

    # The answer is lost after the server added the photo: Try again adds nothing twice.
    lost: list[int] = []

    def lose_answer(route: Route) -> None:
        lost.append(route.fetch().status)
        route.abort("connectionreset")

    page.route("**/api/cases/hashes", lose_answer)
    flow.control("add-case-number").fill(good["case_number"])
    flow.control("add-case-pin").fill(good["pin"])
    flow.click("submit-case")
    flow.control("retry-submit").wait_for()
    assert lost == [200]
    assert flow.control("submit-error").inner_text().strip().startswith(text["flow_add_err_network"][lang])
    assert page.locator("[data-testid=retry-submit]:focus").count() == 1
    flow.checkpoint("add-7-send-failed")
    page.unroute("**/api/cases/hashes")
    with page.expect_response("**/api/cases/hashes") as answer:
        flow.click("retry-submit")
    assert answer.value.status == 200
    page.wait_for_selector("[data-kalkan-flow][data-sending=false]", state="attached")
    flow.expect_step("added")
    assert (flow.control("added-count").inner_text(), flow.control("added-already").inner_text(),
            flow.control("added-total").inner_text()) == ("0", "1", "2")
    flow.checkpoint("add-4-added")

    expected = sorted([(h["signal_type"], h["value"]) for h in good["hashes"]] + [(h["signal_type"], h["value"]) for h in shown])
    assert stored_hashes(server, good) == expected
    assert len(stored_hashes(server, full)) == 5000
    withdrawn_now = case_status(server, withdrawn["case_number"], withdrawn["pin"])
    assert withdrawn_now["status"] == "withdrawn" and len(withdrawn_now["hashes"]) == 1
    assert page.evaluate("sessionStorage.length") == 0
    assert secrets_in_urls(recorder, withdrawn, full, locked, good) == []
    assert_private(recorder, server, [photo], photos=1)
    assert recorder.page_errors == []
    assert flow.csp_violations() == 0
    assert flow.axe_violations == {}, json.dumps(flow.axe_violations, indent=1)


def test_typed_codes_are_read_as_the_server_reads_them() -> None:
    """web/src/case-codes.js against server/codes.py on what people type and paste."""
    from server import codes

    number, pin = "4AYQ-8Q7J-BBKG-4GNK", "RD5EZ-P3XH2"
    typed = [number, pin, number.lower(), pin.lower(), number.replace("-", ""), number.replace("-", " "),
             f"  {number}\n", f"\t{pin}\x1c", "4AYQ 8Q7J BBKG 4GNK", "4ayq-8q7j-bbkg-4gnk-", "OIL0-0000-0000-0000",
             "oil00-00000", "4AYQ-8Q7J-BBKG", "4AYQ-8Q7J-BBKG-4GNKX", "4AYQ-8Q7J-BBKG-4GNU", "4AYQ\t8Q7J-BBKG-4GNK",
             "4AYQ-8Q7J-BBKG-4GNK" + " " * 60, "4ayq-8q7j-bbkg-4gnı", "ＲＤ５ＥＺ-Ｐ３ＸＨ２", "RD5EZ_P3XH2", "", "-" * 10,
             "RD5EZ-P3XH2-", "rd5ez\u00a0p3xh2"]
    script = ("const m = await import(process.argv[1]); const inputs = JSON.parse(process.argv[2]);"
              "console.log(JSON.stringify(inputs.map((s) => [m.normaliseCaseNumber(s), m.normalisePin(s)])));")
    module = (REPO_ROOT / "web" / "src" / "case-codes.js").as_uri()
    out = subprocess.run(["node", "--input-type=module", "-e", script, module, json.dumps(typed)],
                         capture_output=True, text=True, check=True, timeout=60)
    browser = json.loads(out.stdout)
    server_side = [[codes.normalise_case_number(s), codes.normalise_pin(s)] for s in typed]
    assert browser == server_side
    assert server_side[2] == [number, None] and server_side[3] == [None, pin]  # the cases that matter do read
