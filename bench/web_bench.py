"""The hashing page in headless Chromium: visit bytes, time to Pyodide ready, PDQ and vPDQ time.

    python3 build.py web && .venv/bin/python bench/web_bench.py [--workers N] [--runs 3]

Starts the real server on loopback (SQLite in a temp dir) behind a byte-counting proxy (every
byte the browser takes from the network: page, workers, service worker), opens /hashing in
Debian's Chromium and measures:

- cold visit (fresh browser context): bytes transferred, time until every worker's Pyodide is
  ready (and the service worker has precached);
- repeat visit (reload, same context): bytes, time to ready (service worker + V8's code cache);
- PDQ of generated 1, 12 and 48 MP JPEGs, decode included, next to pyhash in CPython (pure and
  numpy) and native pdqhash on the same pixels (Pillow's decode reported apart);
- vPDQ of a corpus video, next to pyhash in CPython (PyAV decode) and Meta's `vpdq` if installed.

Prints the machine's load first: figures taken on a busy machine are not the page's speed.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pdqhash
from PIL import Image
from playwright.sync_api import sync_playwright

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests")]

from pyhash import pdq  # noqa: E402
from pyhash.video import vpdq_video_file  # noqa: E402
from server_harness import LiveServer, sqlite_url  # noqa: E402
from web_harness import CORPUS, CountingProxy, HashingPage  # noqa: E402

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
SIZES = {"1 MP": (1200, 834), "12 MP": (4000, 3000), "48 MP": (8000, 6000)}
VIDEO = CORPUS / "videos" / "chair-orig-22-sd-bar.mp4"
TARGETS = {"ready_ms": 2000, "12 MP": 1000, "cold_bytes": 4_000_000, "repeat_bytes": 0}


def photo(width: int, height: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(max(2, height // 50), max(2, width // 50), 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(small).resize((width, height), Image.BICUBIC).save(out, "JPEG", quality=90)
    return out.getvalue()


def median_time(fn: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def browser_figures(files: dict[str, Path], workers: int | None, runs: int) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="kalkan-bench-"))
    server = LiveServer(sqlite_url(root / "kalkan.db"), data_dir=root / "data", log_dir=root)
    server.start()
    proxy = CountingProxy(server.port)
    figures: dict[str, Any] = {}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            context = browser.new_context()
            page = HashingPage(context.new_page(), proxy.base_url)
            figures["cold_wall_s"] = page.open(workers=workers)
            figures["cold_ready_ms"] = page.ready_ms
            figures["cold_first_ready_ms"] = page.first_ready_ms
            figures["boot"] = page.boot
            figures["workers"] = page.attribute("workers")
            page.page.wait_for_selector("html[data-offline=ready]", state="attached", timeout=120_000)
            proxy.wait_quiet()
            figures["cold_bytes"] = proxy.bytes_down
            figures["cold_requests"] = len(proxy.requests)

            for label, path in files.items():
                totals, decodes, hashes = [], [], []
                for _ in range(runs):
                    [result] = page.hash([path])
                    assert result.state == "done", result
                    totals.append(result.timings["total-ms"])
                    decodes.append(result.timings["decode-ms"])
                    hashes.append(result.timings["hash-ms"])
                figures[label] = {"total": statistics.median(totals), "decode": statistics.median(decodes),
                                  "hash": statistics.median(hashes)}
            [video] = page.hash([VIDEO], timeout_s=600)
            assert video.video is not None, video
            figures["video"] = {"total": video.timings["total-ms"], "vpdq": video.timings["vpdq-ms"],
                                "spent": video.video.get("spent"), "frames": len(video.video["frames"])}

            proxy.reset()
            figures["repeat_wall_s"] = page.open(workers=workers)
            figures["repeat_ready_ms"] = page.ready_ms
            figures["repeat_first_ready_ms"] = page.first_ready_ms
            proxy.wait_quiet(seconds=3)
            figures["repeat_bytes"] = proxy.bytes_down
            figures["repeat_requests"] = list(proxy.requests)
            browser.close()
    finally:
        proxy.stop()
        server.stop()
    return figures


def cpython_figures(files: dict[str, Path], runs: int) -> dict[str, dict[str, float]]:
    out = {}
    for label, path in files.items():
        decode = median_time(lambda: np.asarray(Image.open(path).convert("RGB")), runs)
        rgb = np.asarray(Image.open(path).convert("RGB"))
        h, w = rgb.shape[:2]
        rgba = np.dstack([rgb, np.full((h, w), 255, np.uint8)]).tobytes()
        out[label] = {
            "pillow_decode": decode,
            "pure": median_time(lambda: pdq.hash_rgba(rgba, w, h, backend="pure"), runs),
            "numpy": median_time(lambda: pdq.hash_rgba(rgba, w, h, backend="numpy"), runs),
            "native": median_time(lambda: pdqhash.compute(np.ascontiguousarray(rgb)), runs),
        }
    return out


def video_reference_figures() -> dict[str, float]:
    out = {"pyhash": median_time(lambda: vpdq_video_file(VIDEO), 1)}
    try:
        import vpdq  # Meta's reference (the "reference" extra)
    except ImportError:
        return out
    out["vpdq"] = median_time(lambda: vpdq.computeHash(str(VIDEO)), 1)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=0, help="hashing workers (default: the page's choice)")
    parser.add_argument("--runs", type=int, default=3, help="hashes per size (median reported)")
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs"
          + ("  (busy: these figures understate the page's speed)" if load[0] >= 1 else ""))
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for label, (w, h) in SIZES.items():
            files[label] = Path(tmp) / f"{label.replace(' ', '')}.jpg"
            files[label].write_bytes(photo(w, h, seed=w))
        web = browser_figures(files, args.workers or None, args.runs)
        native = cpython_figures(files, args.runs)
    video = video_reference_figures()

    print(f"\nChromium {web['workers']} workers. Cold visit: {web['cold_bytes'] / 1e6:.2f} MB in "
          f"{web['cold_requests']} requests (target <= {TARGETS['cold_bytes'] / 1e6:.0f} MB), Pyodide ready in "
          f"{web['cold_ready_ms']} ms, first worker {web['cold_first_ready_ms']} ms (target <= {TARGETS['ready_ms']} ms; "
          f"navigation to ready {web['cold_wall_s']:.2f} s)")
    print(f"  boot per worker: {web['boot']}")
    print(f"Repeat visit: {web['repeat_bytes']} bytes on the network ({len(web['repeat_requests'])} requests: "
          f"{sorted(set(web['repeat_requests']))}), Pyodide ready in {web['repeat_ready_ms']} ms, first worker "
          f"{web['repeat_first_ready_ms']} ms")

    print(f"\n{'PDQ, ms (median)':14}{'Chromium':>10}{'decode':>8}{'hash':>8}{'Pillow':>8}{'CPython':>9}"
          f"{'numpy':>8}{'native':>8}{'Chr/native':>12}{'Chr/CPy':>9}")
    for label in files:
        b, n = web[label], native[label]
        native_total = (n["pillow_decode"] + n["native"]) * 1000
        cpython_total = (n["pillow_decode"] + n["pure"]) * 1000
        print(f"{label:14}{b['total']:10.0f}{b['decode']:8.0f}{b['hash']:8.0f}{n['pillow_decode'] * 1000:8.0f}"
              f"{n['pure'] * 1000:9.0f}{n['numpy'] * 1000:8.0f}{n['native'] * 1000:8.0f}"
              f"{b['total'] / native_total:12.1f}{b['total'] / cpython_total:9.2f}")
    print("  (ratios: Chromium decode+hash over Pillow decode + native / + pyhash CPython pure)")
    target_12 = web["12 MP"]["total"]
    print(f"  12 MP in Chromium: {target_12:.0f} ms decode included (target <= {TARGETS['12 MP']} ms)")

    v = web["video"]
    line = (f"\nvPDQ of {VIDEO.name} ({v['frames']} frames hashed): Chromium {v['vpdq']} ms "
            f"(spent: {v['spent']}), pyhash CPython + PyAV {video['pyhash'] * 1000:.0f} ms")
    if "vpdq" in video:
        line += f", Meta's vpdq {video['vpdq'] * 1000:.0f} ms"
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
