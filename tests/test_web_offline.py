"""The service worker (/sw.js, server/offline.py, web/src/service-worker.js) in real Chromium:
after a first visit, a repeat visit of the hashing page costs no network bytes and the page
loads and hashes with the server gone; nothing about a case is ever stored.

Bytes are counted twice: by a TCP proxy between Chromium and the server (everything the
browser took from the network, service worker and update checks included) and, for the page
itself, from DevTools' Network.loadingFinished events (encodedDataLength of every response not
served by the service worker).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext

from pyhash import pdq
from pyhash.images import decode_image
from server import offline
from server_harness import LiveServer
from web_harness import CORPUS, CountingProxy, HashingPage, Recorder, sqlite_web_server

IMAGES = CORPUS / "images"
READY = "html[data-offline=ready]"


def cpython_hash(path) -> str:  # type: ignore[no-untyped-def]
    decoded = decode_image(path)
    return pdq.hash_pixels(decoded.pixels, decoded.width, decoded.height, 3).hash


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with sqlite_web_server(tmp_path_factory.mktemp("web-offline-server")) as server:
        yield server


@pytest.fixture
def proxy(web_server: LiveServer) -> Iterator[CountingProxy]:
    counting = CountingProxy(web_server.port)
    try:
        yield counting
    finally:
        counting.stop()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    fresh = browser.new_context()  # its own HTTP cache and service workers: a first visit
    try:
        yield fresh
    finally:
        fresh.close()


def cache_contents(page: Any) -> dict[str, list[str]]:
    """The service worker's caches: name -> stored URLs (DevTools evaluation; the page's CSP
    forbids eval for page scripts, not for the debugger)."""
    return page.evaluate("""async () => {
        const out = {};
        for (const name of await caches.keys()) {
            out[name] = (await (await caches.open(name)).keys()).map((r) => r.url);
        }
        return out;
    }""")


def test_repeat_visit_costs_no_network_bytes_and_the_page_works_offline(context: BrowserContext, proxy: CountingProxy) -> None:
    recorder = Recorder()
    recorder.attach(context)
    tab = context.new_page()
    recorder.watch(tab)
    page = HashingPage(tab, proxy.base_url)

    # First visit: the page boots; once loaded it registers the worker, which precaches.
    page.open()
    tab.wait_for_selector(READY, state="attached", timeout=120_000)
    proxy.wait_quiet()
    first_visit = proxy.bytes_down
    first_requests = list(proxy.requests)
    assert "GET /sw.js HTTP/1.1" in first_requests
    # Precaching re-reads what the page already loaded from the HTTP cache: no asset twice.
    assets = [r for r in first_requests if r.startswith("GET /assets/")]
    assert len(assets) == len(set(assets)), sorted(assets)
    assert first_visit <= 4_200_000, first_visit  # the 4 MB cold-visit budget, plus the precached pages

    # Repeat visit (a reload in the same browser): nothing from the network.
    proxy.reset()
    cdp = context.new_cdp_session(tab)
    cdp.send("Network.enable")
    responses: dict[str, dict] = {}
    finished: list[dict] = []
    cdp.on("Network.responseReceived", lambda e: responses.__setitem__(e["requestId"], e["response"]))
    cdp.on("Network.loadingFinished", lambda e: finished.append(e))
    page.open()
    [photo] = page.hash([IMAGES / "modes" / "L.png"])
    assert photo.hash("displayed")["value"] == cpython_hash(IMAGES / "modes" / "L.png")
    proxy.wait_quiet(seconds=3)  # the browser's own /sw.js update check would come after the load
    page_bytes = sum(e["encodedDataLength"] for e in finished
                     if not responses.get(e["requestId"], {}).get("fromServiceWorker"))
    from_worker = sum(1 for r in responses.values() if r.get("fromServiceWorker"))
    # Nothing reaches the network, not even the update check of /sw.js (answered from the HTTP
    # cache for a day: server/offline.py).
    assert proxy.requests == [] and proxy.bytes_down == 0, (proxy.bytes_down, proxy.requests)
    assert page_bytes == 0
    assert from_worker >= 3  # the page, its scripts, the stylesheet (workers' loads are not in this session)

    repeat_bytes, repeat_requests = proxy.bytes_down, list(proxy.requests)

    # A day later the cached /sw.js has expired (emulated by clearing the HTTP cache; the
    # worker's own caches stay): the next visit's update check reaches the server again, which is
    # how a new deployment gets through. Nothing else is fetched.
    cdp.send("Network.clearBrowserCache")
    page.open()
    proxy.wait_quiet(seconds=3)
    assert proxy.requests == ["GET /sw.js HTTP/1.1"], proxy.requests

    # Offline: the server unreachable (proxy gone) and the browser told it is offline.
    proxy.stop()
    context.set_offline(True)
    page.open(lang="tr")
    assert tab.locator("html").get_attribute("lang") == "tr"
    [photo] = page.hash([IMAGES / "modes" / "RGBA.png"])
    assert photo.state == "done"
    assert photo.hash("displayed")["value"] == cpython_hash(IMAGES / "modes" / "RGBA.png")
    for path in offline.OFFLINE_PAGES:  # the other precached pages load offline too
        response = tab.goto(f"{proxy.base_url}{path}?lang=en")
        assert response is not None and response.status == 200 and response.from_service_worker, path
    assert recorder.page_errors == []
    print(f"\nfirst visit: {first_visit} bytes in {len(first_requests)} requests; repeat visit: "
          f"{page_bytes} page bytes, {repeat_bytes} bytes on the network ({repeat_requests})")


def test_a_page_that_renders_a_parameter_is_fetched_not_served_from_the_cache(context: BrowserContext, proxy: CountingProxy) -> None:
    """The landing page puts the helpline's `ref` into its Start link: with `ref` in the URL it
    comes from the network (a cached copy would lose it), and only when offline from the cache."""
    tab = context.new_page()
    HashingPage(tab, proxy.base_url).open()
    tab.wait_for_selector(READY, state="attached", timeout=120_000)
    proxy.wait_quiet()
    proxy.reset()
    tab.goto(f"{proxy.base_url}/?lang=en&ref=tkdf")
    assert tab.get_attribute("[data-testid=start]", "href") == "/start?lang=en&ref=tkdf"
    assert "GET /?lang=en&ref=tkdf HTTP/1.1" in proxy.requests  # the worker fetched it
    proxy.reset()
    response = tab.goto(f"{proxy.base_url}/?lang=en")  # nothing the cached copy lacks
    assert response is not None and response.from_service_worker
    assert not any(r.startswith("GET /?") for r in proxy.requests)
    proxy.stop()
    context.set_offline(True)
    response = tab.goto(f"{proxy.base_url}/?lang=tr&ref=tkdf")
    assert response is not None and response.status == 200 and response.from_service_worker
    assert tab.get_attribute("[data-testid=start]", "href") == "/start?lang=tr"  # offline: the page, without ref


def served_config(base_url: str) -> dict[str, Any]:
    """The configuration the server puts in front of the worker script."""
    text = httpx.get(base_url + offline.SCRIPT_PATH).text
    return json.loads(re.match(r"self\.KALKAN_OFFLINE = (\{.*?\});\n", text).group(1))  # type: ignore[union-attr]


def test_nothing_about_a_case_is_ever_stored(context: BrowserContext, proxy: CountingProxy) -> None:
    """A case is opened and read back through the controlled page (fetch goes through the
    service worker), then shown on the case page (a POSTed form); afterwards the cache holds
    exactly the precache list and the page's case number appears in none of it."""
    tab = context.new_page()
    page = HashingPage(tab, proxy.base_url)
    page.open()
    tab.wait_for_selector(READY, state="attached", timeout=120_000)
    created = tab.evaluate("""async () => {
        const post = (path, body) => fetch(path, {method: "POST", headers: {"Content-Type": "application/json"},
                                                  body: JSON.stringify(body)}).then((r) => r.json());
        const hash = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
        const made = await post("/api/cases", {hashes: [{signal_type: "pdq", value: hash, quality: 100}], language: "en"});
        const status = await post("/api/cases/status", {case_number: made.case_number, pin: made.pin});
        return {made, status};
    }""")
    case_number, pin = created["made"]["case_number"], created["made"]["pin"]
    assert created["status"]["hashes"][0]["signal_type"] == "pdq"
    tab.goto(f"{proxy.base_url}/case?lang=en")
    tab.fill("[data-testid=lookup-case-number]", case_number)
    tab.fill("[data-testid=lookup-pin]", pin)
    with tab.expect_navigation():
        tab.click("[data-testid=lookup-submit]")
    assert case_number in tab.content()  # the case page, answered by the network
    stored: list[str] = []
    for urls in cache_contents(tab).values():
        stored += urls
    config = served_config(proxy.base_url)
    paths = sorted(url.removeprefix(proxy.base_url) for url in stored)
    assert paths == sorted([*config["pages"], *config["assets"], "/static/kalkan.css"])
    assert not any(p.startswith(("/case", "/api/")) for p in paths)
    bodies = tab.evaluate("""async () => {
        const texts = [];
        for (const name of await caches.keys()) {
            const cache = await caches.open(name);
            for (const request of await cache.keys()) {
                if (!request.url.includes("/assets/pyodide")) texts.push(await (await cache.match(request)).text());
            }
        }
        return texts;
    }""")
    assert bodies and not any(case_number in text or pin in text for text in bodies)


def test_worker_script_is_served_fresh_from_the_root_with_its_precache_list(web_server: LiveServer) -> None:
    with httpx.Client(base_url=web_server.base_url) as client:
        response = client.get("/sw.js")
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/javascript; charset=utf-8"
        assert response.headers["cache-control"] == f"max-age={offline.SCRIPT_MAX_AGE_SECONDS}"
        assert offline.SCRIPT_MAX_AGE_SECONDS <= 24 * 60 * 60  # browsers ignore anything longer
        assert "worker-src 'self'" in response.headers["content-security-policy"]
        etag = response.headers["etag"]
        config = json.loads(re.match(r"self\.KALKAN_OFFLINE = (\{.*?\});\n", response.text).group(1))  # type: ignore[union-attr]
        again = client.get("/sw.js", headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        pages = client.get("/hashing?lang=en").text
    assert config["pages"][:2] == ["/?lang=tr", "/?lang=en"]
    assert "/hashing?lang=tr" in config["pages"] and "/hashing?lang=en" in config["pages"]
    assert not any(p.startswith(("/case", "/api")) for p in config["pages"])
    assert all(a.startswith("/assets/") for a in config["assets"])
    assert etag == f'"{config["version"]}"'
    assert re.search(r'<script type="module" src="/assets/offline\.[0-9a-f]{16}\.js"></script>', pages)


def test_a_new_build_or_page_change_is_a_new_worker_version(monkeypatch: pytest.MonkeyPatch) -> None:
    """The browser installs a new worker only when /sw.js changes: any new build (every asset
    name is content-hashed) or any change of the pages' sources must change the version."""
    from server import assets
    from server.app import create_app

    app = create_app()
    before = offline.worker_config(app)["version"]
    built = assets.manifest()
    monkeypatch.setattr(assets, "manifest", lambda: {**built, "files": {**built["files"], "x.js": "x.0123.js"}})
    after_build = offline.worker_config(app)["version"]
    monkeypatch.setattr(assets, "manifest", lambda: built)
    monkeypatch.setattr(offline, "page_sources_digest", lambda: "changed templates")
    offline._version_cache["key"] = None
    after_pages = offline.worker_config(app)["version"]
    assert len({before, after_build, after_pages}) == 3
