"""FetchHashes reads a partner's next page while the partner parses the one it just got.

A sync is a loop: ask for a page, parse it, ask for the next. python-threatexchange takes about
twice as long to parse a page into its dataclasses as the server takes to read it, and done one
after the other each side waits for the other. So after answering a page that has more, the server
starts reading the next one (same partner, position, signal types and size) and keeps it briefly;
the request for it takes it instead of reading it then. Client and server then work at the same
time, on two cores (bench/partner_bench.py shows both).

Consistency: a page read ahead is read in one snapshot like any page, a moment before it is asked
for: it is the answer the partner would have got by asking at that moment, which it could have.
Records changed since then got higher change numbers, so they come on a later page, which is
what keyset paging rests on (docs/partner-api.md): nothing is skipped and the last page leaves
the partner with the state as of its snapshot. A page kept longer than `max_age_s` is read afresh
instead, so a client that pauses between pages is not served an old one.

Bounds: one page ahead per partner (a new one replaces it), `max_pages` in all; kept in this
process's memory only, never stored. With `--workers N`, a request that reaches another process
than the one that read ahead reads its page itself (the work read ahead is wasted).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, NamedTuple, TypeVar

T = TypeVar("T")


class PageKey(NamedTuple):
    """Everything a page's answer depends on, as its nextPageToken carries it (and the size).
    A first page has no after_seq: it starts at the first change at or after `timestamp`."""

    partner_id: int
    after_seq: int | None
    timestamp: int
    type_mask: int
    size: int


class _Ahead(NamedTuple):
    key: PageKey
    started: float
    task: asyncio.Task[Any]


def _retrieve(task: asyncio.Task[object]) -> None:
    # A page nobody asked for (the client stopped) may have failed: no "never retrieved" warning.
    if not task.cancelled():
        task.exception()


class PagePrefetch(Generic[T]):
    def __init__(self, *, max_pages: int = 16, max_age_s: float = 10.0) -> None:
        self.max_pages = max_pages
        self.max_age_s = max_age_s
        self._ahead: dict[int, _Ahead] = {}  # by partner id, oldest first
        self.served = 0  # pages answered from what was read ahead (tests, bench)

    def start(self, key: PageKey, read: Callable[[], Awaitable[T]]) -> None:
        """Start reading the page `key` names; replaces what this partner had read ahead."""
        self._drop(key.partner_id)
        while len(self._ahead) >= self.max_pages:
            self._drop(next(iter(self._ahead)))
        task = asyncio.ensure_future(read())
        task.add_done_callback(_retrieve)
        self._ahead[key.partner_id] = _Ahead(key, time.monotonic(), task)

    async def take(self, key: PageKey) -> T | None:
        """The page `key` names if it was read ahead, in time, without error; else None (the
        caller reads it itself)."""
        ahead = self._ahead.get(key.partner_id)
        if ahead is None or ahead.key != key:
            return None
        del self._ahead[key.partner_id]
        if time.monotonic() - ahead.started > self.max_age_s:
            ahead.task.cancel()
            return None
        # wait() rather than awaiting the task: if the read failed or was cancelled, the request
        # reads the page itself; only this request's own cancellation propagates.
        await asyncio.wait([ahead.task])
        if ahead.task.cancelled() or ahead.task.exception() is not None:
            return None
        self.served += 1
        return ahead.task.result()

    async def close(self) -> None:
        tasks = [ahead.task for ahead in self._ahead.values()]
        self._ahead.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _drop(self, partner_id: int) -> None:
        ahead = self._ahead.pop(partner_id, None)
        if ahead is not None:
            ahead.task.cancel()
