"""The hashing page in headless Chromium: cold-visit bytes, time to Pyodide ready, PDQ time.

    python3 build.py web && .venv/bin/python bench/web_bench.py [--workers N] [--runs 3]

Starts the real server on loopback (SQLite in a temp dir), opens /hashing in Debian's Chromium
(a fresh context per cold visit), hashes generated 1- and 12-MP JPEGs and prints, next to the
browser's figures, pyhash in CPython (pure and numpy) and native pdqhash on the same pixels.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pdqhash
from PIL import Image
from playwright.sync_api import sync_playwright

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests")]

from pyhash import pdq  # noqa: E402
from server_harness import LiveServer, sqlite_url  # noqa: E402
from web_harness import HashingPage, Recorder  # noqa: E402

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


def photo(width: int, height: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(max(2, height // 50), max(2, width // 50), 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(small).resize((width, height), Image.BICUBIC).save(out, "JPEG", quality=90)
    return out.getvalue()


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=0, help="hashing workers (default: the page's choice)")
    parser.add_argument("--runs", type=int, default=3, help="hashes per size (median reported)")
    args = parser.parse_args()
    sizes = {"1 MP": (1200, 834), "12 MP": (4000, 3000)}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = {}
        for label, (w, h) in sizes.items():
            files[label] = root / f"{label.replace(' ', '')}.jpg"
            files[label].write_bytes(photo(w, h, seed=w))
        server = LiveServer(sqlite_url(root / "kalkan.db"), data_dir=root / "data", log_dir=root)
        server.start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                context = browser.new_context()
                responses: list = []
                context.on("response", lambda response: responses.append(response))
                recorder = Recorder()
                recorder.attach(context)
                page = context.new_page()
                hashing = HashingPage(page, server.base_url)
                hashing.open(workers=args.workers or None)
                cold_bytes = sum(r.request.sizes()["responseBodySize"] for r in responses)
                workers = page.get_attribute("[data-kalkan-hashing]", "data-workers")
                print(f"cold visit: {cold_bytes / 1e6:.2f} MB transferred in {len(responses)} responses; "
                      f"Pyodide ready in {hashing.ready_ms} ms with {workers} workers")
                print(f"  per worker: {hashing.boot}")
                browser_ms: dict[str, list[int]] = {}
                for label, path in files.items():
                    for _ in range(args.runs):
                        [result] = hashing.hash([path])
                        assert result.state == "done", result
                        browser_ms.setdefault(label, []).append(result.timings["hash-ms"])
                        browser_ms.setdefault(label + " decode", []).append(result.timings["decode-ms"])
                browser.close()
        finally:
            server.stop()

        print(f"\n{'PDQ, ms (median)':24}{'Chromium':>9}{'decode':>9}{'CPython':>9}{'numpy':>9}{'native':>9}")
        for label, path in files.items():
            rgb = np.asarray(Image.open(path).convert("RGB"))
            h, w = rgb.shape[:2]
            rgba = np.dstack([rgb, np.full((h, w), 255, np.uint8)]).tobytes()
            timings = {}
            for name, fn in {
                "pure": lambda: pdq.hash_rgba(rgba, w, h, backend="pure"),
                "numpy": lambda: pdq.hash_rgba(rgba, w, h, backend="numpy"),
                "native": lambda: pdqhash.compute(np.ascontiguousarray(rgb)),
            }.items():
                runs = []
                for _ in range(args.runs):
                    t = time.perf_counter()
                    fn()
                    runs.append(time.perf_counter() - t)
                timings[name] = statistics.median(runs)
            print(f"{label:24}{statistics.median(browser_ms[label]):9.0f}"
                  f"{statistics.median(browser_ms[label + ' decode']):9.0f}"
                  f"{ms(timings['pure']):>9}{ms(timings['numpy']):>9}{ms(timings['native']):>9}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
