"""A helpline's referral link (/r/CODE) and its figures page (/r/CODE/stats), on a live server:
the greeting in the helpline's language with a tappable number, the code travelling into the
case, the figures opened with the key (never a case number or hash), wrong keys refused and
limited; then the pages in Chromium, tr and en, phone and desktop: axe-core and screenshots."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser

from server import i18n
from server_client import md5, run_cli
from server_harness import LiveServer, StartLiveServer

REPO_ROOT = Path(__file__).resolve().parent.parent
AXE = REPO_ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
TKDF = ["--name-tr", "Türkiye Kadın Dernekleri Federasyonu", "--name-en", "Federation of Women's Associations of Turkey",
        "--phone", "+902126569696", "--phone-display", "0212 656 96 96", "--lang", "tr"]


@pytest.fixture
def helpline(sqlite_database_url: str, live_server: StartLiveServer, tmp_path: Path) -> tuple[LiveServer, str]:
    server = live_server(sqlite_database_url, env={"KALKAN_RATE_LIMIT_PER_MINUTE": "0"})
    result = run_cli(sqlite_database_url, server.data_dir, "referrals", "add", "tkdf", *TKDF, "--json")
    assert result.returncode == 0, result.stderr
    return server, str(json.loads(result.stdout)["key"])


def test_the_link_greets_in_the_helplines_name_and_the_case_counts(helpline: tuple[LiveServer, str]) -> None:
    server, key = helpline
    with server.client() as http:
        page = http.get("/r/tkdf")
        assert page.status_code == 200 and '<html lang="tr"' in page.text
        assert i18n.text("referral_sent_you", "tr", name="Türkiye Kadın Dernekleri Federasyonu") in page.text
        assert 'href="tel:+902126569696"' in page.text and "0212 656 96 96" in page.text
        start = re.search(r'href="(/start\?[^"]+)"', page.text)
        assert start and "ref=tkdf" in start.group(1)
        english = http.get("/r/tkdf?lang=en")
        assert i18n.text("referral_sent_you", "en", name="Federation of Women&#39;s Associations of Turkey") in english.text
        # An unknown code: the plain landing page, which says nothing of which codes exist.
        plain = http.get("/r/nobody")
        assert plain.status_code == 200 and 'data-testid="referral"' not in plain.text and "ref=nobody" not in plain.text
        # Cases opened through the link keep the code; the flow sends what the link gave it.
        made = [http.post("/api/cases", json={"hashes": [md5(i)], "ref": "tkdf"}).json() for i in range(3)]
        http.post("/api/cases", json={"hashes": [md5(9)], "ref": "nobody"})
        figures = http.post("/r/tkdf/stats", data={"key": key, "lang": "en"})
        assert figures.status_code == 200, figures.text
        rows = re.findall(r"<tr><td>([^<]+)</td>\s*<td>([^<]+)</td></tr>", figures.text)
        assert rows and rows[0][1] == "3", rows  # this week: the three referred cases, not the fourth
        for case in made:
            assert case["case_number"] not in figures.text and case["pin"] not in figures.text
        assert "md5" not in figures.text and "Cache-Control" not in figures.text  # no hash, and no-store below
        assert figures.headers["cache-control"] == "no-store"


def test_wrong_keys_are_refused_alike_and_limited(helpline: tuple[LiveServer, str]) -> None:
    server, key = helpline
    with server.client() as http:
        wrong = http.post("/r/tkdf/stats", data={"key": "x" * 43, "lang": "tr"})
        unknown = http.post("/r/nobody/stats", data={"key": key, "lang": "tr"})
        assert wrong.status_code == unknown.status_code == 401
        assert i18n.text("referral_stats_wrong", "tr") in wrong.text and "Sayıları göster" in wrong.text
        answers = [http.post("/r/tkdf/stats", data={"key": "y" * 43}).status_code for _ in range(25)]
        assert 429 in answers and set(answers) <= {401, 429}, answers
        assert key not in http.get("/r/tkdf/stats").text  # the key travels only in the POST body


@pytest.mark.parametrize("lang", ["tr", "en"])
def test_the_pages_in_chromium(browser: Browser, helpline: tuple[LiveServer, str], lang: str) -> None:
    server, key = helpline
    with server.client() as http:
        for i in range(4):
            http.post("/api/cases", json={"hashes": [md5(i)], "ref": "tkdf"})
    context = browser.new_context(viewport={"width": 375, "height": 812}, has_touch=True, device_scale_factor=2)
    page = context.new_page()
    violations: dict[str, Any] = {}

    def check(name: str) -> None:
        page.evaluate(AXE.read_text())
        found = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
                              ".map((v) => ({id: v.id, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' '))}))")
        if found:
            violations[name] = found
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for width, height in ((375, 812), (1280, 800)):
            page.set_viewport_size({"width": width, "height": height})
            page.screenshot(path=str(SCREENSHOTS / f"{lang}-referral-{name}-{width}x{height}.png"), full_page=True)
        page.set_viewport_size({"width": 375, "height": 812})

    page.goto(server.url(f"/r/tkdf?lang={lang}"))
    phone = page.locator("[data-testid=referral-phone]").bounding_box()
    assert phone is not None and phone["height"] >= 48
    check("landing")
    page.goto(server.url(f"/r/tkdf/stats?lang={lang}"))
    page.locator("[data-testid=referral-key]").fill(key)
    page.locator("[data-testid=referral-show]").click()
    page.locator("[data-testid=referral-weeks]").wait_for()
    assert page.locator("[data-testid=referral-weeks] tbody tr").first.locator("td").nth(1).inner_text() == "4"
    check("stats")
    context.close()
    assert violations == {}, json.dumps(violations, indent=1)
