"""The quick exit (web/src/quick-exit.js, the button in server/templates/base.html) in real Chromium.

The attack it answers (issue 10, item 14): after "Quick exit", the browser's Back brought the case
page back (number, status, every fingerprint, the PIN in the withdraw form) and the flow with its
answers still ticked. Here, as someone who picks up the phone afterwards would:

- the case page (opened through the lookup form) and every step of /start (eligibility, files,
  consent, the case number and PIN, done) and of adding to a case (consent with the number and PIN
  typed, added): quick exit, then Back until the history leaves our origin or runs out; at every
  stop, and in every copy the back/forward cache restores at the moment it is shown, no case
  number, PIN, fingerprint, thumbnail, ticked answer or Kalkan storage is in the page, its fields
  or its DOM. Each twice: in a Chromium whose Back loads pages again (Playwright's default; its
  request interception also makes Back send a POST answer's form again, as Reload on "Confirm
  form resubmission" would) and in one with the back/forward cache on, as a phone's Chrome has it;
- the exit replaced the history entry (Back never leads to the page that was left) and opened the
  neutral site in a new tab too; the flow's "are you sure" guard never asks;
- Escape pressed twice within 1.5 s leaves; once, or twice too slowly, does not;
- the button is at least 48x48 and on screen (on top, not covered) at the bottom of the landing,
  lookup and case pages and of every step exited from, at phone (375x812) and desktop size, with
  its one-line hint;
- afterwards a new page on our origin finds no Cache Storage and no service worker registration,
  also when the exit came while the worker was still precaching;
- without JavaScript it is still a plain link to the neutral site; pages load the module from
  /assets/ only (no inline script), and a POST answer names its GET page.

The neutral site is an external host: every request outside loopback is answered by the test
(context.route) and the browser resolves no other host name, so nothing leaves this machine.
Screenshots at 375x812 (as a phone: touch, no hover), 320x640 and 1280x800, in Turkish and English,
go to test-artifacts/screenshots/*-quick-exit-*.png.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, BrowserType, Error, Page, Route

from pyhash import pdq
from pyhash.images import decode_image
from server import i18n, pages
from server_harness import LiveServer
from test_web_flow import Flow, payloads
from web_harness import CORPUS, Recorder, sqlite_web_server

PHOTO = CORPUS / "images" / "misc" / "c.png"
REPO_ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 800}
TIMEOUT_MS = 180_000  # Pyodide boots in each flow page; the machine is shared
NEUTRAL = urlsplit(pages.QUICK_EXIT_URL)
NEUTRAL_ORIGIN = f"{NEUTRAL.scheme}://{NEUTRAL.netloc}"
NEUTRAL_PAGE = "<!doctype html><title>weather</title><p>Sunny, 21 °C</p>"
READY = "[data-kalkan-flow][data-ready=true]"


# --- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with sqlite_web_server(tmp_path_factory.mktemp("quick-exit-server"), env={"KALKAN_RATE_LIMIT_PER_MINUTE": "0"}) as live:
        yield live


LOOPBACK_ONLY = "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"
# What a phone's Chrome does and Playwright turns off: the back/forward cache (Playwright launches
# with --disable-back-forward-cache), also for no-store pages whose cookies did not change (a
# rollout behind a field trial, which Playwright also disables). With it, Back shows the copy kept
# in memory; without it, Back loads the page again.
BFCACHE_FEATURE = "--enable-features=CacheControlNoStoreEnterBackForwardCache:level/restore-unless-cookie-change"


def launch(browser_type: BrowserType, launch_args: dict[str, Any], *, bfcache: bool) -> Browser:
    """Chromium that resolves no host name but loopback: a speculative connection to the neutral
    site (Chromium may preconnect to a link on hover) cannot leave this machine either."""
    args = [*launch_args.get("args", []), LOOPBACK_ONLY, *([BFCACHE_FEATURE] if bfcache else [])]
    extra = {"ignore_default_args": ["--disable-back-forward-cache"]} if bfcache else {}
    return browser_type.launch(**{**launch_args, "args": args, **extra})


@pytest.fixture(scope="module")
def loopback_browser(browser_type: BrowserType, browser_type_launch_args: dict[str, Any]) -> Iterator[Browser]:
    launched = launch(browser_type, browser_type_launch_args, bfcache=False)
    try:
        yield launched
    finally:
        launched.close()


@pytest.fixture(scope="module")
def bfcache_browser(browser_type: BrowserType, browser_type_launch_args: dict[str, Any]) -> Iterator[Browser]:
    launched = launch(browser_type, browser_type_launch_args, bfcache=True)
    try:
        yield launched
    finally:
        launched.close()


class Outside:
    """Answers every request that is not for our server: the neutral site with a small page,
    anything else refused (and noted: nothing else may be asked for)."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.neutral: list[str] = []
        self.refused: list[str] = []

    def is_outside(self, url: str) -> bool:
        return not url.startswith((self.origin + "/", "blob:", "data:", "about:", "chrome-error:"))

    def handle(self, route: Route) -> None:
        url = route.request.url
        if url.startswith(NEUTRAL_ORIGIN + "/"):
            self.neutral.append(url)
            route.fulfill(status=200, body=NEUTRAL_PAGE, content_type="text/html; charset=utf-8")
        else:
            self.refused.append(url)
            route.abort()


@pytest.fixture
def outside(server: LiveServer) -> Outside:
    return Outside(server.base_url)


@pytest.fixture(params=["reload", "bfcache"])
def context(request: pytest.FixtureRequest, outside: Outside) -> Iterator[BrowserContext]:
    """A phone-sized context whose Back reloads pages ("reload") or restores them from the
    back/forward cache ("bfcache"); every request outside loopback answered by `outside`."""
    browser: Browser = request.getfixturevalue("bfcache_browser" if request.param == "bfcache" else "loopback_browser")
    context = browser.new_context(viewport=PHONE)
    context.set_default_timeout(60_000)  # the machine is shared: a busy moment is not a failure
    context.route(outside.is_outside, outside.handle)
    try:
        yield context
    finally:
        context.close()
    assert outside.refused == [], outside.refused


# --- what must never survive the exit --------------------------------------------------------------


SNAPSHOT = """() => ({
    url: location.href,
    html: document.documentElement ? document.documentElement.outerHTML : "",
    text: document.body ? document.body.innerText : "",
    values: [...document.querySelectorAll("input, textarea, select")].map((e) => e.value),
    ticked: [...document.querySelectorAll("input[type=checkbox], input[type=radio]")].filter((e) => e.checked)
        .map((e) => e.name || e.dataset.testid || "?"),
    files: [...document.querySelectorAll("input[type=file]")].reduce((n, e) => n + (e.files ? e.files.length : 0), 0),
    images: [...document.images].map((i) => i.src),
    storage: (() => { try { return [...Object.keys(sessionStorage), ...Object.keys(localStorage)]; } catch { return []; } })(),
    blank: Boolean(document.body) && document.body.children.length === 0,
})"""


class Secrets:
    """What the person's data looks like in a page: codes in any spelling, fingerprints in full
    and as the case page shows them (their first 16 characters)."""

    def __init__(self) -> None:
        self.words: set[str] = set()

    def add_code(self, code: str) -> None:
        self.words |= {code, code.replace("-", ""), code.lower(), code.replace("-", "").lower()}

    def add_hash(self, value: str) -> None:
        self.words |= {value, value[:16]}

    def found_in(self, snapshot: dict[str, Any]) -> list[str]:
        problems = []
        haystack = "\n".join([snapshot["html"], snapshot["text"], *snapshot["values"]]).lower()
        problems += [f"{word!r} in the page" for word in sorted(self.words) if word.lower() in haystack]
        problems += [f"answer ticked: {name}" for name in snapshot["ticked"]]
        problems += [f"{snapshot['files']} chosen file(s) in a file input"] if snapshot["files"] else []
        problems += [f"thumbnail {src}" for src in snapshot["images"] if src.startswith("blob:")]
        problems += [f"thumbnail element {m}" for m in re.findall(r'data-testid="(thumb|file-item)"', snapshot["html"])]
        problems += [f"stored in the tab: {key}" for key in snapshot["storage"]]
        return problems


def snapshot(page: Page, tries: int = 40) -> dict[str, Any] | None:
    """The page as it is now; None while it is between documents (a restored copy replacing
    itself with a fresh one)."""
    for _ in range(tries):
        try:
            return page.evaluate(SNAPSHOT)  # type: ignore[no-any-return]
        except Error as error:
            if "context was destroyed" not in str(error) and "navigat" not in str(error).lower():
                raise
            time.sleep(0.05)
    return None


def navigation_history(page: Page) -> tuple[int, list[str]]:
    """(current index, URLs) of the tab's session history, as the browser keeps it."""
    cdp = page.context.new_cdp_session(page)
    try:
        history = cdp.send("Page.getNavigationHistory")
    finally:
        cdp.detach()
    return history["currentIndex"], [entry["url"] for entry in history["entries"]]


class RestoredCopies:
    """What every copy the back/forward cache gives back holds, at the very moment it is shown:
    the page is paused (DevTools' event listener breakpoint) as its pageshow event starts, before
    any script of the page can react, and read there."""

    def __init__(self, page: Page) -> None:
        self.shots: list[dict[str, Any]] = []
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.on("Debugger.paused", self._paused)
        self.cdp.send("Debugger.enable")
        self.cdp.send("DOMDebugger.setEventListenerBreakpoint", {"eventName": "pageshow"})

    def _paused(self, event: dict[str, Any]) -> None:
        try:
            frame = event["callFrames"][0]["callFrameId"]  # quick-exit.js's listener, `(event) => ...`
            persisted = self.cdp.send("Debugger.evaluateOnCallFrame", {
                "callFrameId": frame, "expression": "event.persisted", "returnByValue": True})
            if persisted.get("result", {}).get("value") is True:
                shot = self.cdp.send("Runtime.evaluate", {"expression": f"({SNAPSHOT})()", "returnByValue": True})
                self.shots.append(shot["result"]["value"])
        finally:
            self.cdp.send("Debugger.resume")

    def close(self) -> None:
        self.cdp.detach()


def press_back_until_gone(page: Page, origin: str, secrets: Secrets) -> list[str]:
    """Back, Back, Back... as someone looking through the phone would, until the history leaves
    `origin` or runs out. Every stop is checked at once and again once it settled, and every copy
    the back/forward cache restores as it is shown (RestoredCopies). Returns the stops: "at once:
    URL", "settled: URL" ("(blank)": nothing in its body), "restored copy: URL"."""
    stops: list[str] = []
    problems: list[str] = []
    restored = RestoredCopies(page)
    for _ in range(30):
        index, urls = navigation_history(page)
        if index == 0:
            break
        try:
            page.go_back(wait_until="commit", timeout=30_000)
        except Error as error:  # e.g. a POST answer the browser will not send again: its error page
            if "ERR_CACHE_MISS" not in str(error) and "interrupted" not in str(error):
                raise
        for moment in ("at once", "settled"):
            if moment == "settled":
                time.sleep(0.4)  # a restored copy reloads itself (pageshow): let that land
                try:
                    page.wait_for_load_state("load", timeout=30_000)
                except Error:
                    pass
            shot = snapshot(page)
            if shot is None:
                continue
            stops.append(f"{moment}: {shot['url']}" + (" (blank)" if shot["blank"] else ""))
            problems += [f"{shot['url']} ({moment}): {p}" for p in secrets.found_in(shot)]
        if not page.url.startswith(origin + "/"):
            break  # left our origin: what lies further back is not ours
    restored.close()
    for shot in restored.shots:
        stops.append(f"restored copy: {shot['url']}" + (" (blank)" if shot["blank"] else ""))
        problems += [f"{shot['url']} (restored copy): {p}" for p in secrets.found_in(shot)]
        if not shot["blank"]:
            problems.append(f"{shot['url']} (restored copy): not blank")
    assert problems == [], "\n".join(problems + ["stops:", *stops])
    assert any(origin in stop for stop in stops), stops  # Back did reach our pages
    print("\n  " + "\n  ".join(stops))
    return stops


def quick_exit(page: Page, how: str = "button") -> None:
    """Presses the quick exit and waits until the tab shows the neutral site; the history entry
    was replaced (the tab has as many entries as before and Back leads to the page before)."""
    before = len(navigation_history(page)[1])
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.type), dialog.accept()))
    if how == "button":
        page.locator("[data-testid=quick-exit]").click()
    else:
        page.keyboard.press("Escape")
        page.keyboard.press("Escape")
    page.wait_for_url(NEUTRAL_ORIGIN + "/**", timeout=30_000)
    assert dialogs == []  # never "are you sure?"
    index, urls = navigation_history(page)
    assert len(urls) == before and index == len(urls) - 1 and urls[-1].startswith(NEUTRAL_ORIGIN), urls


def assert_exit_on_screen(page: Page, lang: str) -> None:
    """At the bottom of the page as it is, at phone and desktop size: the button is >= 48x48, in
    the viewport, on top of everything (what a finger there hits), and its hint is visible."""
    before = page.viewport_size
    for size in (PHONE, DESKTOP):
        page.set_viewport_size(size)
        page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
        page.wait_for_timeout(50)
        scrolled = page.evaluate("window.scrollY")
        exit_button = page.locator("[data-testid=quick-exit]")
        box = exit_button.bounding_box()
        assert box is not None
        assert box["width"] >= 48 and box["height"] >= 48, box
        assert box["x"] >= 0 and box["y"] >= 0, box
        assert box["x"] + box["width"] <= size["width"] and box["y"] + box["height"] <= size["height"], (box, size)
        hit = page.evaluate("""([x, y]) => Boolean(document.elementFromPoint(x, y)?.closest("[data-testid=quick-exit]"))""",
                            [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2])
        assert hit, "something covers the quick exit"
        hint = page.locator("[data-testid=quick-exit-hint]")
        assert hint.is_visible() and hint.inner_text().strip() == i18n.TEXT["quick_exit_hint"][lang]
        tall = page.evaluate("document.documentElement.scrollHeight") > size["height"] * 1.2
        assert scrolled > 0 or not tall  # the check above really was at the bottom of a long page
    if before:
        page.set_viewport_size(before)
    page.evaluate("window.scrollTo(0, 0)")


# --- driving the pages -----------------------------------------------------------------------------


def new_case(server: LiveServer, lang: str) -> dict[str, Any]:
    """A case opened through the API with two MD5 fingerprints (any bytes make a valid MD5)."""
    hashes = [{"signal_type": "md5", "value": hashlib.md5(uuid.uuid4().bytes).hexdigest()} for _ in range(2)]
    with server.client() as client:
        response = client.post("/api/cases", json={"hashes": hashes, "language": lang})
    assert response.status_code == 201, response.text
    return {**response.json(), "hashes": hashes}


def case_secrets(case: dict[str, Any]) -> Secrets:
    secrets = Secrets()
    secrets.add_code(case["case_number"])
    secrets.add_code(case["pin"])
    for h in case["hashes"]:
        secrets.add_hash(h["value"])
    return secrets


def open_case_page(page: Page, server: LiveServer, case: dict[str, Any], lang: str, check_exit: bool = False) -> None:
    """As a person does: the landing page, the lookup form typed in, the case page (a POST answer).
    `check_exit`: the quick exit is on screen at the bottom of the first two as well."""
    page.goto(server.url(f"/?lang={lang}"))
    if check_exit:
        wait_exit_ready(page)
        assert_exit_on_screen(page, lang)
    page.locator("[data-testid=case-link]").click()
    page.wait_for_url(re.compile(r"/case\?lang="))
    if check_exit:
        wait_exit_ready(page)
        assert_exit_on_screen(page, lang)
    page.locator("[data-testid=lookup-case-number]").fill(case["case_number"])
    page.locator("[data-testid=lookup-pin]").fill(case["pin"])
    with page.expect_navigation():
        page.locator("[data-testid=lookup-submit]").click()
    assert page.locator("[data-testid=case-number]").inner_text() == case["case_number"]
    assert case["pin"] in page.content()  # the withdraw form carries it: the attack's prize


def photo_hash() -> str:
    decoded = decode_image(PHOTO)
    return str(pdq.hash_pixels(decoded.pixels, decoded.width, decoded.height, 3).hash)


def wait_exit_ready(page: Page) -> None:
    """The quick exit's script has run (before that the button is a plain link, which is fine for a
    person but not what these tests check)."""
    page.wait_for_selector("html[data-quick-exit-state=ready]", state="attached")


# --- tests -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["tr", "en"])
def test_back_after_the_exit_from_the_case_page_shows_nothing_of_the_case(
        context: BrowserContext, server: LiveServer, outside: Outside, lang: str) -> None:
    case = new_case(server, lang)
    page = context.new_page()
    recorder = Recorder()
    recorder.watch(page)
    open_case_page(page, server, case, lang, check_exit=True)
    wait_exit_ready(page)
    assert_exit_on_screen(page, lang)
    with context.expect_page() as new_tab:
        quick_exit(page)
    new_tab.value.wait_for_load_state()
    assert new_tab.value.url.startswith(NEUTRAL_ORIGIN)  # the neutral site in a new tab as well
    stops = press_back_until_gone(page, server.base_url, case_secrets(case))
    assert any("/case" in stop for stop in stops), stops
    assert outside.neutral and all(url.startswith(NEUTRAL_ORIGIN) for url in outside.neutral)
    assert recorder.page_errors == []


def test_escape_twice_leaves_once_or_slowly_does_not(context: BrowserContext, server: LiveServer) -> None:
    case = new_case(server, "en")
    page = context.new_page()
    open_case_page(page, server, case, "en")
    wait_exit_ready(page)
    page.keyboard.press("Escape")
    page.wait_for_timeout(1800)
    page.keyboard.press("Escape")  # 1.8 s after the first: a new first press, not a second
    page.wait_for_timeout(500)
    assert page.url == server.url("/case?lang=en")  # the POST answer's entry, as a GET (quick-exit.js)
    assert page.locator("[data-testid=case-number]").inner_text() == case["case_number"]
    page.locator("[data-testid=withdraw-confirm]").focus()  # from inside a form as well
    quick_exit(page, how="escape")
    press_back_until_gone(page, server.base_url, case_secrets(case))


FLOW_STEPS = ["eligibility", "files", "consent", "result", "done"]


@pytest.mark.parametrize("step", FLOW_STEPS)
def test_back_after_the_exit_from_each_flow_step_shows_nothing(
        context: BrowserContext, server: LiveServer, step: str) -> None:
    lang = "tr" if step in ("files", "result") else "en"
    page = context.new_page()
    recorder = Recorder()
    recorder.watch(page)
    flow = Flow(page, server, lang)
    secrets = Secrets()
    secrets.add_hash(photo_hash())

    page.goto(server.url(f"/?lang={lang}"))
    page.locator("[data-testid=start]").click()
    page.wait_for_selector(READY, state="attached")
    wait_exit_ready(page)
    flow.expect_step("eligibility")
    flow.control("age-adult").check()
    flow.control("in-images").check()
    flow.control("intimate").check()
    if step != "eligibility":
        flow.click("eligibility-confirm")
        flow.expect_step("files")
        flow.control("file-input").set_input_files(payloads([PHOTO]))
        flow.wait_hashed()
        assert page.locator("[data-testid=thumb]").count() == 1  # a thumbnail made here, from the photo
    if step in ("consent", "result", "done"):
        flow.click("next")
        flow.expect_step("consent")
        assert [h["value"] for h in flow.consent_hashes()] == [photo_hash()]  # what Secrets looks for
        flow.control("consent-confirm").check()
    if step in ("result", "done"):
        with page.expect_response("**/api/cases") as answer:
            flow.click("submit-case")
        assert answer.value.status == 201
        flow.expect_step("result")
        case_number, pin = flow.codes()
        secrets.add_code(case_number)
        secrets.add_code(pin)
    if step == "done":
        flow.click("next")
    flow.expect_step(step)
    assert_exit_on_screen(page, lang)  # consent is the longest step (~2,000 px at phone size)
    quick_exit(page)
    stops = press_back_until_gone(page, server.base_url, secrets)
    # The exit took the place of the step it left; the flow's earlier steps are entries of their own.
    assert any("/start" in stop for stop in stops) or step == "eligibility", stops
    assert recorder.page_errors == []


@pytest.mark.parametrize("step", ["consent", "added"])
def test_back_after_the_exit_while_adding_to_a_case_shows_nothing(
        context: BrowserContext, server: LiveServer, step: str) -> None:
    """From the case page to the flow in add mode: the number and PIN typed on the send step (and,
    once added, kept in memory for "Back to your case") never come back either."""
    case = new_case(server, "en")
    page = context.new_page()
    flow = Flow(page, server, "en")
    secrets = case_secrets(case)
    secrets.add_hash(photo_hash())
    open_case_page(page, server, case, "en")
    page.locator("[data-testid=add-photos]").click()
    page.wait_for_selector(READY, state="attached")
    wait_exit_ready(page)
    flow.confirm_eligibility()
    flow.expect_step("files")
    flow.choose([PHOTO])
    flow.click("next")
    flow.expect_step("consent")
    flow.control("consent-confirm").check()
    flow.control("add-case-number").fill(case["case_number"])
    flow.control("add-case-pin").fill(case["pin"])
    if step == "added":
        with page.expect_response("**/api/cases/hashes") as answer:
            flow.click("submit-case")
        assert answer.value.status == 200
    flow.expect_step(step)
    assert_exit_on_screen(page, "en")
    quick_exit(page)
    stops = press_back_until_gone(page, server.base_url, secrets)
    assert any("mode=add" in stop for stop in stops) and any("/case" in stop for stop in stops), stops


WORKER_STATE = """() => navigator.serviceWorker.getRegistration().then((r) =>
    !r ? "none" : r.installing ? "installing" : r.waiting ? "waiting" : r.active ? "active" : "none")"""


@pytest.mark.parametrize("when", ["precached", "precaching"])
def test_the_exit_deletes_what_kalkan_stored_in_the_browser(context: BrowserContext, server: LiveServer, when: str) -> None:
    """The flow's offline cache and service worker, and anything in the tab's storage: gone, as a
    new page on our origin sees it (that page registers nothing itself); also when the exit comes
    while the worker is still installing, precaching megabytes (it must not write on after it)."""
    page = context.new_page()
    page.goto(server.url("/?lang=en"))  # a page of ours to come back to in this tab
    page.goto(server.url("/start?lang=en"))
    wait_exit_ready(page)
    page.evaluate("""() => { sessionStorage.setItem("kalkan.pendingCase", "{}"); localStorage.setItem("kalkan.x", "1"); }""")
    if when == "precached":
        page.wait_for_selector("html[data-offline=ready]", state="attached", timeout=TIMEOUT_MS)
        assert page.evaluate("caches.keys()") != []
    else:
        deadline = time.monotonic() + 60
        while page.evaluate(WORKER_STATE) != "installing":
            assert time.monotonic() < deadline, page.evaluate(WORKER_STATE)
            time.sleep(0.01)
    assert page.evaluate("navigator.serviceWorker.getRegistrations().then((r) => r.length)") == 1
    quick_exit(page)

    later = context.new_page()
    later.goto(server.url("/case?lang=en"))
    later.wait_for_timeout(2000)  # time for a precache that went on after the exit to show
    assert later.evaluate("caches.keys()") == []
    assert later.evaluate("navigator.serviceWorker.getRegistrations().then((r) => r.length)") == 0
    assert later.evaluate("localStorage.length") == 0
    page.go_back()  # the exited tab's own sessionStorage, from one of our pages
    page.wait_for_load_state()
    assert page.url.startswith(server.base_url)
    assert page.evaluate("sessionStorage.length") == 0


def test_without_javascript_the_exit_is_a_plain_link(loopback_browser: Browser, server: LiveServer, outside: Outside) -> None:
    context = loopback_browser.new_context(java_script_enabled=False, viewport=PHONE)
    context.route(outside.is_outside, outside.handle)
    try:
        page = context.new_page()
        page.goto(server.url("/case?lang=tr"))
        link = page.locator("[data-testid=quick-exit]")
        assert link.get_attribute("href") == pages.QUICK_EXIT_URL
        assert link.bounding_box()["height"] >= 48  # type: ignore[index]
        link.click()
        page.wait_for_url(NEUTRAL_ORIGIN + "/**")
    finally:
        context.close()
    assert outside.refused == []


def test_pages_load_the_exit_script_from_assets_only(server: LiveServer) -> None:
    """Every page type carries the module (no inline script: the CSP allows only 'self');
    answers to a POST say where a copy restored from memory should reload from."""
    with httpx.Client(base_url=server.base_url) as client:
        bodies = [client.get(path).text for path in ("/?lang=en", "/start?lang=en", "/case?lang=en", "/hashing?lang=en", "/nope")]
        bodies.append(client.post("/case", data={"lang": "en", "case_number": "x", "pin": "y"}).text)
    for body in bodies:
        assert re.search(r'<script type="module" src="/assets/quick-exit\.[0-9a-f]{16}\.js"></script>', body)
        for attributes in re.findall(r"<script\b([^>]*)>", body):  # files from /assets/, or data (the flow's texts)
            assert 'src="/assets/' in attributes or 'type="application/json"' in attributes, attributes
    assert 'data-fresh-url="/case?lang=en"' in bodies[-1]
    assert "data-fresh-url" not in bodies[2]


@pytest.mark.parametrize("lang", ["tr", "en"])
def test_screenshots_of_the_quick_exit(loopback_browser: Browser, server: LiveServer, outside: Outside, lang: str) -> None:
    """As a phone shows it (touch, no hover: no Escape hint) at 375x812 and 320x640: the header at
    the bottom of the case page and of the consent step; the desktop header with the Escape hint.
    In test-artifacts/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def shot(page: Page, name: str) -> None:
        size = page.viewport_size or PHONE
        page.screenshot(path=str(SCREENSHOTS / f"{lang}-quick-exit-{name}-{size['width']}x{size['height']}.png"))

    phone = loopback_browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=1)
    phone.route(outside.is_outside, outside.handle)
    try:
        page = phone.new_page()
        open_case_page(page, server, new_case(server, lang), lang)
        wait_exit_ready(page)
        shot(page, "case")
        assert page.locator("[data-testid=quick-exit-keys]").is_hidden()  # no keyboard, no Escape hint
        page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
        shot(page, "case-bottom")
        page.set_viewport_size({"width": 320, "height": 640})
        shot(page, "case-bottom")
        page.set_viewport_size(PHONE)

        flow = Flow(page, server, lang)
        flow.open()
        wait_exit_ready(page)
        flow.confirm_eligibility()
        flow.expect_step("files")
        flow.choose([PHOTO])
        flow.click("next")
        flow.expect_step("consent")
        page.locator("[data-step=consent] details summary").click()
        page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
        shot(page, "consent-bottom")
        page.locator("[data-testid=quick-exit]").tap()  # a finger, not a mouse
        page.wait_for_url(NEUTRAL_ORIGIN + "/**")
    finally:
        phone.close()

    desktop = loopback_browser.new_context(viewport=DESKTOP)
    try:
        page = desktop.new_page()
        page.goto(server.url(f"/?lang={lang}"))
        wait_exit_ready(page)
        assert page.locator("[data-testid=quick-exit-keys]").inner_text() == i18n.TEXT["quick_exit_keys"][lang]
        shot(page, "landing")
    finally:
        desktop.close()
