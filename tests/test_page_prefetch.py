"""FetchHashes reads a partner's next page ahead (server/page_prefetch.py).

The keeper of pages read ahead on its own (asyncio only), then the app on a real SQLite bank
(lifespan running, through httpx's ASGITransport, so the test can see which answers were read
ahead): pages read ahead are served, and a record changed after its page was read ahead comes
again on a later page, so the partner ends with the database's state. The live tests with the
real client (test_partner_api.py) page through the same code on uvicorn.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx

from partner_bank import BANK_PIN, add_partner, seed_bank
from server.app import create_app
from server.config import Settings
from server.page_prefetch import PageKey, PagePrefetch
from server_client import query

KEY = PageKey(partner_id=1, after_seq=10, timestamp=0, type_mask=3, size=800)


async def _value(value: str, delay: float = 0.0) -> str:
    await asyncio.sleep(delay)
    return value


async def _fails() -> str:
    raise RuntimeError("the database went away")


def test_a_page_read_ahead_is_served_once_and_only_for_its_own_key() -> None:
    async def run() -> None:
        prefetch: PagePrefetch[str] = PagePrefetch()
        prefetch.start(KEY, lambda: _value("page 2", delay=0.01))
        assert await prefetch.take(KEY._replace(size=100)) is None  # another size is another page
        assert await prefetch.take(KEY) == "page 2"  # waits for the read still running
        assert await prefetch.take(KEY) is None  # taken: the next request reads it itself
        assert prefetch.served == 1

    asyncio.run(run())


def test_old_failed_replaced_and_evicted_pages_are_not_served() -> None:
    async def run() -> None:
        prefetch: PagePrefetch[str] = PagePrefetch(max_pages=2, max_age_s=0.05)
        prefetch.start(KEY, lambda: _value("old"))
        await asyncio.sleep(0.1)
        assert await prefetch.take(KEY) is None  # kept too long: read afresh

        prefetch = PagePrefetch(max_pages=2)
        prefetch.start(KEY, _fails)
        assert await prefetch.take(KEY) is None  # the request reads the page itself

        later = KEY._replace(after_seq=20)
        prefetch.start(KEY, lambda: _value("first", delay=10))
        replaced = prefetch._ahead[KEY.partner_id].task
        prefetch.start(later, lambda: _value("second"))  # one page ahead per partner
        await asyncio.sleep(0)
        assert replaced.cancelled()
        assert await prefetch.take(KEY) is None
        assert await prefetch.take(later) == "second"

        for partner in (1, 2, 3):  # at most max_pages in all: the oldest goes
            prefetch.start(KEY._replace(partner_id=partner), lambda: _value("p", delay=10))
        assert sorted(prefetch._ahead) == [2, 3]
        pending = [ahead.task for ahead in prefetch._ahead.values()]
        await prefetch.close()
        assert all(task.cancelled() for task in pending) and prefetch._ahead == {}
        assert prefetch.served == 1

    asyncio.run(run())


def test_pages_read_ahead_are_served_and_a_change_meanwhile_comes_on_a_later_page(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'kalkan.db'}"
    bank = seed_bank(url, 400, 5)  # 2,000 records: four pages of 500
    keys = add_partner(url, "Example Social")
    headers = {"Ocp-Apim-Subscription-Key": keys["subscription_key"],
               "x-functions-key": keys["function_keys"]["FetchHashes"]}
    holder = {value: bank.case_numbers[case] for case, held in enumerate(bank.keys) for _, value in held}

    async def run() -> tuple[dict[str, dict[str, Any]], int, int]:
        app = create_app(Settings(database_url=url, data_dir=tmp_path / "data", rate_limit_per_minute=0,
                                  partner_rate_limit_per_minute=0))
        async with app.router.lifespan_context(app):
            prefetch = app.state.partner_api.prefetch
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:

                async def fetch(**params: Any) -> dict[str, Any]:
                    response = await http.get("/v1/FetchHashes", params={"pageSize": 500, **params}, headers=headers)
                    assert response.status_code == 200, response.text
                    return response.json()

                seen: dict[str, dict[str, Any]] = {}
                page = await fetch(startTimestamp=10)
                assert page["hasMoreRecords"] and page["count"] == 500
                seen.update((r["hashValue"], r) for r in page["hashRecords"])
                # Page 2 has been read ahead (a private look: the test waits for that read).
                await asyncio.wait([prefetch._ahead[1].task])
                ahead = json.loads(prefetch._ahead[1].task.result().body)
                changed = ahead["hashRecords"][0]["hashValue"]
                withdrawn = await http.post("/api/cases/withdraw",
                                            json={"case_number": holder[changed], "pin": BANK_PIN})
                assert withdrawn.status_code == 200, withdrawn.text

                page = await fetch(nextPageToken=page["nextPageToken"])
                assert page == ahead and prefetch.served == 1  # as read ahead: the snapshot before
                assert next(r for r in page["hashRecords"] if r["hashValue"] == changed)["hashStatus"] == "Active"
                seen.update((r["hashValue"], r) for r in page["hashRecords"])
                pages = 2
                while page["hasMoreRecords"]:
                    page = await fetch(nextPageToken=page["nextPageToken"])
                    seen.update((r["hashValue"], r) for r in page["hashRecords"])
                    pages += 1
                return seen, pages, prefetch.served

    seen, pages, served = asyncio.run(run())
    assert pages == 5  # four pages of the bank, then the withdrawn case's records again
    assert served == pages - 1  # every page after the first was read ahead
    database = {value: status for value, status in asyncio.run(query(url, "SELECT value, status FROM exchange_records"))}
    assert {value: record["hashStatus"] for value, record in seen.items()} == database
    changed_case = [value for value, number in holder.items() if number == holder[next(
        value for value, record in seen.items() if record["hashStatus"] == "Withdrawn")]]
    assert len(changed_case) == 5 and all(seen[value]["hashStatus"] == "Withdrawn" for value in changed_case)
