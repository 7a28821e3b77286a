"""Driving the /hashing page in headless Chromium (Playwright) for tests and bench/web_bench.py.

The page's CSP forbids eval, so Playwright's wait_for_function cannot run there; everything here
waits on selectors and reads data-* attributes, which needs no script in the page.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Request

REPO_ROOT = Path(__file__).resolve().parent.parent
CORPUS = REPO_ROOT.parent / "shared" / "corpus"
TERMINAL = "[data-testid=file-result][data-state=done], [data-testid=file-result][data-state=error]"


@dataclass
class FileResult:
    name: str
    state: str  # "done" or "error"
    kind: str | None
    hashes: list[dict[str, Any]]
    error_code: str | None
    error_text: str | None
    timings: dict[str, int]
    note_code: str | None = None  # a video without vPDQ: why (its MD5 still counts)
    note_text: str | None = None
    video: dict[str, Any] | None = None  # what the worker decoded: codec, size, frameRate, frames

    def hash(self, orientation: str = "displayed") -> dict[str, Any]:
        found = [h for h in self.hashes if h.get("orientation") == orientation]
        assert len(found) == 1, f"{self.name}: no single {orientation} hash in {self.hashes}"
        return found[0]


@dataclass
class Recorder:
    """Everything a context's pages and workers requested, and what went wrong in them."""

    requests: list[Request] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def attach(self, context: BrowserContext) -> None:
        context.on("request", lambda request: self.requests.append(request))  # workers' requests included

    def watch(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on("worker", lambda worker: worker.on("console", self._console))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        url = (message.location or {}).get("url", "")
        if url.endswith("/favicon.ico"):
            return  # Chromium asks for /favicon.ico on its own; it is our origin and a 404
        self.console_errors.append(f"{message.text} ({url})")


class HashingPage:
    """The /hashing page in `page`: open(), wait_ready(), hash(paths) -> [FileResult]."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url.rstrip("/")
        self.ready_ms: int | None = None  # until every worker's Pyodide is ready
        self.first_ready_ms: int | None = None  # until the first one is (files hash from then on)
        self.boot: str | None = None

    def open(self, lang: str = "en", workers: int | None = None, timeout_s: float = 120, **knobs: object) -> float:
        """Loads the page and waits until every worker's Pyodide is ready; returns seconds.
        `knobs` become query parameters (maxMegapixels=50, cancelGraceMs=500)."""
        started = time.monotonic()
        query = f"?lang={lang}" + (f"&workers={workers}" if workers else "")
        query += "".join(f"&{name}={value}" for name, value in knobs.items())
        self.page.goto(f"{self.base_url}/hashing{query}")
        status = self.page.wait_for_selector(
            "[data-testid=pyodide-status][data-state=ready], [data-testid=pyodide-status][data-state=failed]",
            state="attached", timeout=timeout_s * 1000)
        assert status is not None
        assert status.get_attribute("data-state") == "ready", status.inner_text()
        self.ready_ms = int(status.get_attribute("data-ready-ms") or 0)
        self.first_ready_ms = int(status.get_attribute("data-first-ready-ms") or 0)
        self.boot = status.get_attribute("data-boot")
        return time.monotonic() - started

    def csp_violations(self) -> int:
        return int(self.page.get_attribute("[data-kalkan-hashing]", "data-csp-violations") or 0)

    def hash(self, files: Sequence[Path | dict[str, Any]], timeout_s: float = 180) -> list[FileResult]:
        """Chooses `files` (paths, or Playwright file payloads {name, mimeType, buffer}) in the
        file input and waits for each one's result."""
        first = self.choose(files)
        return self.wait_results(first, len(files), timeout_s)

    def choose(self, files: Sequence[Path | dict[str, Any]]) -> int:
        """Chooses `files` without waiting; returns the index of the first one's result item."""
        before = self.page.locator("[data-testid=file-result]").count()
        self.page.set_input_files("[data-testid=file-input]", list(files))  # type: ignore[arg-type]
        return before

    def item(self, index: int) -> Any:
        return self.page.locator(f"[data-testid=file-result][data-index='{index}']")

    def wait_state(self, index: int, states: Sequence[str], timeout_s: float = 120) -> str:
        """Waits until result item `index` is in one of `states` (queued, decoding, hashing,
        frames, done, error); returns that state."""
        selector = ", ".join(f"[data-testid=file-result][data-index='{index}'][data-state={s}]" for s in states)
        found = self.page.wait_for_selector(selector, state="attached", timeout=timeout_s * 1000)
        assert found is not None
        return str(found.get_attribute("data-state"))

    def cancel_in_state(self, index: int, state: str) -> None:
        """Clicks result item `index`'s Cancel button as soon as the item is in `state` (now or
        later), from inside the page (click_when_present); the item's state right after the click
        is kept in its data-state-after-click."""
        item = f"[data-testid=file-result][data-index='{index}']"
        click_when_present(self.page, f"{item}[data-state={state}] [data-testid=file-cancel]", note_state_of=item)

    def wait_results(self, first: int, count: int, timeout_s: float = 180) -> list[FileResult]:
        deadline = time.monotonic() + timeout_s
        terminal = self.page.locator(TERMINAL)
        while terminal.count() < first + count:
            assert time.monotonic() < deadline, f"files not hashed within {timeout_s:g} s"
            time.sleep(0.05)
        return [self._read(self.item(i)) for i in range(first, first + count)]

    def attribute(self, name: str) -> str | None:
        """A data-* attribute of the page's root element (data-workers, data-replaced-workers...)."""
        return self.page.get_attribute("[data-kalkan-hashing]", f"data-{name}")

    @staticmethod
    def _read(item: Any) -> FileResult:
        hashes = []
        for h in item.locator("[data-testid=hash]").all():
            entry: dict[str, Any] = {"signal_type": h.get_attribute("data-signal-type"),
                                     "value": h.get_attribute("data-value")}
            if (quality := h.get_attribute("data-quality")) is not None:
                entry["quality"] = int(quality)
            for name in ("orientation", "bands", "frames"):
                if (value := h.get_attribute(f"data-{name}")) is not None:
                    entry[name] = value if name == "orientation" else int(value)
            hashes.append(entry)
        error = item.locator("[data-testid=file-error]")
        has_error = error.count() > 0
        timings = {}
        for name in ("decode-ms", "hash-ms", "total-ms", "md5-ms", "vpdq-ms"):
            if (value := item.get_attribute(f"data-{name}")) is not None:
                timings[name] = int(value)
        note = item.locator("[data-testid=file-note]")
        has_note = note.count() > 0
        video = item.get_attribute("data-video")
        return FileResult(
            name=str(item.get_attribute("data-name")), state=str(item.get_attribute("data-state")),
            kind=item.get_attribute("data-kind"), hashes=hashes,
            error_code=error.get_attribute("data-code") if has_error else None,
            error_text=error.inner_text() if has_error else None, timings=timings,
            note_code=note.get_attribute("data-code") if has_note else None,
            note_text=note.inner_text() if has_note else None,
            video=json.loads(video) if video else None)


class CountingProxy:
    """A loopback TCP proxy in front of the server that counts every byte it carries and the
    request line of every HTTP request: what the browser really took from the network, from
    the page, its workers and its service worker alike (including the browser's own update
    checks of /sw.js, which no page-level event reports). stop() takes the "network" away:
    new connections are refused and open ones cut."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.bytes_down = 0  # server -> browser
        self.bytes_up = 0
        self.requests: list[str] = []  # "GET /path HTTP/1.1"
        self._running = True
        threading.Thread(target=self._accept, daemon=True, name="counting-proxy").start()

    def reset(self) -> None:
        with self._lock:
            self.bytes_down = self.bytes_up = 0
            self.requests = []

    def wait_quiet(self, seconds: float = 1.5, timeout_s: float = 60) -> None:
        """Waits until no byte has moved for `seconds` (background fetches have finished)."""
        deadline = time.monotonic() + timeout_s
        last = (-1, -1)
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            now = (self.bytes_down, self.bytes_up)
            if now != last:
                last, quiet_since = now, time.monotonic()
            elif time.monotonic() - quiet_since >= seconds:
                return
            time.sleep(0.1)
        raise AssertionError("the network did not go quiet")

    def stop(self) -> None:
        self._running = False
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def _accept(self) -> None:
        while self._running:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, up: bool) -> None:
        try:
            while data := source.recv(65536):
                with self._lock:
                    if up:
                        self.bytes_up += len(data)
                        # Request lines (loopback HTTP/1.1: plain text; bodies here are tiny).
                        for line in data.split(b"\r\n"):
                            if line[:8].split(b" ")[0] in (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE") and line.endswith((b"HTTP/1.1", b"HTTP/1.0")):
                                self.requests.append(line.decode("latin-1"))
                    else:
                        self.bytes_down += len(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def click_when_present(page: Page, selector: str, note_state_of: str | None = None) -> None:
    """Clicks the element `selector` matches from inside the page as soon as there is one (now
    or after a later change to the page). A click from Playwright lands only after a round trip,
    by which time a fast machine may have moved on: CI once fingerprinted two photos before the
    Stop button could be clicked. With `note_state_of` (a selector), that element's data-state
    once the click's promise callbacks have run, before any worker message or timer, is kept in
    its data-state-after-click: what the person saw at once."""
    page.evaluate("""([selector, noteStateOf]) => {
        const clickIfThere = () => {
            const target = document.querySelector(selector);
            if (!target) return false;
            const noted = noteStateOf && document.querySelector(noteStateOf);
            target.click();
            if (noted) setTimeout(() => { noted.dataset.stateAfterClick = noted.dataset.state; }, 0);
            return true;
        };
        if (clickIfThere()) return;
        const observer = new MutationObserver(() => { if (clickIfThere()) observer.disconnect(); });
        observer.observe(document.body, { subtree: true, childList: true, attributes: true });
    }""", [selector, note_state_of])


@contextmanager
def sqlite_web_server(root: Path, env: dict[str, str] | None = None) -> Iterator[Any]:
    """A real server on loopback over SQLite in `root` (the database file: `root / "kalkan.db"`),
    for a module of browser tests; `env` adds settings (KALKAN_...)."""
    from server_harness import LiveServer, sqlite_url

    server = LiveServer(sqlite_url(root / "kalkan.db"), data_dir=root / "data", log_dir=root, env=env)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def open_hashing_page(browser: Browser, base_url: str) -> Iterator[tuple["HashingPage", "Recorder"]]:
    """One /hashing page with Pyodide booted and every request recorded, in its own context."""
    context = browser.new_context()
    recorder = Recorder()
    recorder.attach(context)
    tab = context.new_page()
    recorder.watch(tab)
    hashing_page = HashingPage(tab, base_url)
    hashing_page.open()
    try:
        yield hashing_page, recorder
    finally:
        context.close()
