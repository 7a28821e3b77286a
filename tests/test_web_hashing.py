"""The hashing page in real headless Chromium: privacy, fidelity against CPython pyhash and native
pdqhash, per-file errors, video MD5, and a 12-MP photo split across workers.

The server is the real one (`python -m server`) serving web/dist (built by build.py's test
setup); Pyodide runs from the trimmed standard library archive, so every hash here also proves
that archive holds what pyhash needs.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import subprocess
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pdqhash
import pytest
from PIL import Image
from playwright.sync_api import Browser, BrowserType

from pyhash import pdq
from pyhash.images import decode_image
from server_harness import LiveServer
from web_harness import CORPUS, HashingPage, Recorder, open_hashing_page, sqlite_web_server

IMAGES = CORPUS / "images"
VIDEOS = CORPUS / "videos"
REPO_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO_ROOT / "build" / "test-artifacts"


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with sqlite_web_server(tmp_path_factory.mktemp("web-server")) as server:
        yield server


@pytest.fixture(scope="module")
def hashing(browser: Browser, web_server: LiveServer) -> Iterator[tuple[HashingPage, Recorder]]:
    """One page with Pyodide booted, shared by the tests that only hash files."""
    with open_hashing_page(browser, web_server.base_url) as opened:
        yield opened


def native_hex(rgb: np.ndarray) -> str:
    bits, _ = pdqhash.compute(np.ascontiguousarray(rgb))
    return format(int("".join("1" if b else "0" for b in bits), 2), "064x")


def cpython_hash(path: Path, orientation: str = "displayed") -> pdq.PDQHash:
    decoded = decode_image(path, orientation=orientation)  # type: ignore[arg-type]
    return pdq.hash_pixels(decoded.pixels, decoded.width, decoded.height, 3)


def test_browser_smoke(browser: Browser, web_server: LiveServer) -> None:
    assert browser.browser_type.name == "chromium"
    assert int(browser.version.split(".")[0]) >= 120
    page = browser.new_page()
    try:
        response = page.goto(web_server.url("/hashing?lang=en"))
        assert response is not None and response.status == 200
        assert page.locator("[data-testid=file-input]").get_attribute("type") == "file"
        assert page.locator("[data-testid=file-input]").get_attribute("multiple") is not None
    finally:
        page.close()


def test_privacy_every_request_is_ours_and_carries_no_file_bytes(browser: Browser, web_server: LiveServer) -> None:
    """A cold visit (fresh context): Pyodide, photos, a video, error files. Every request from the
    page and its workers goes to our origin, none carries a 1 KB slice of any chosen file, no
    CSP violation or console error happens, and the cold visit transfers at most 4 MB."""
    context = browser.new_context()
    recorder = Recorder()
    recorder.attach(context)
    responses: list = []
    context.on("response", lambda response: responses.append(response))
    page = context.new_page()
    recorder.watch(page)
    try:
        hashing_page = HashingPage(page, web_server.base_url)
        hashing_page.open()
        chosen = [IMAGES / "bridge-mods" / "aaa-orig.jpg", IMAGES / "modes" / "RGBA.png",
                  IMAGES / "exif-orientation" / "exif-rotn-6.jpg", VIDEOS / "doorknob-hd-no-bar.mp4"]
        results = hashing_page.hash(chosen)
        assert [r.state for r in results] == ["done"] * 4, results
        assert results[3].kind == "video"
        # Bytes transferred on this cold visit (encoded body sizes, headers aside).
        transferred = 0
        for response in responses:
            transferred += response.request.sizes()["responseBodySize"]
        contents = [p.read_bytes() for p in chosen]
        csp_violations = hashing_page.csp_violations()
    finally:
        context.close()

    origin = web_server.base_url + "/"
    assert recorder.requests, "no request was recorded"
    foreign = [r.url for r in recorder.requests if not r.url.startswith(origin)]
    assert foreign == []
    assert any("pyodide.asm.wasm" in r.url for r in recorder.requests)  # the workers' loads are seen
    for request in recorder.requests:
        body = request.post_data_buffer or b""
        if not body:
            continue
        for content in contents:
            for start in range(0, max(len(content) - 1024, 0) + 1, 512):
                assert content[start:start + 1024] not in body, f"file bytes sent to {request.url}"
    assert [r.method for r in recorder.requests if r.method != "GET"] == []
    assert recorder.console_errors == []
    assert recorder.page_errors == []
    assert csp_violations == 0
    assert transferred <= 4_000_000, f"cold visit transferred {transferred} bytes"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "web-cold-visit.json").write_text(json.dumps(
        {"transferred_bytes": transferred, "requests": len(recorder.requests),
         "pyodide_ready_ms": hashing_page.ready_ms, "boot": hashing_page.boot}, indent=1))


def test_png_hashes_equal_cpython_pyhash_exactly(hashing: tuple[HashingPage, Recorder]) -> None:
    page, recorder = hashing
    pngs = sorted(IMAGES.rglob("*.png"))
    assert len(pngs) >= 5
    results = page.hash(pngs)
    for path, result in zip(pngs, results):
        assert result.state == "done", (path, result)
        expected = cpython_hash(path)
        got = result.hash("displayed")
        assert (got["value"], got["quality"]) == (expected.hash, expected.quality), path
    assert recorder.console_errors == [] and recorder.page_errors == []


def test_jpeg_hashes_within_two_bits_of_native_pdqhash(hashing: tuple[HashingPage, Recorder]) -> None:
    page, _ = hashing
    jpegs = sorted(p for p in IMAGES.rglob("*.jpg") if "exif-orientation" not in p.parts)
    results = page.hash(jpegs)
    distances = {}
    for path, result in zip(jpegs, results):
        assert result.state == "done", (path, result)
        decoded = decode_image(path)
        rgb = np.frombuffer(decoded.pixels, dtype=np.uint8).reshape(decoded.height, decoded.width, 3)
        if pdq.hash_pixels(decoded.pixels, decoded.width, decoded.height, 3).quality == 0:
            continue  # misc/small.jpg is all but black: median ties make its bits arbitrary everywhere
        distances[path.name] = pdq.distance(result.hash("displayed")["value"], native_hex(rgb))
    assert len(distances) >= 15
    assert max(distances.values()) <= 2, distances


def test_exif_photos_as_displayed_match_the_cli_and_report_the_raw_variant(hashing: tuple[HashingPage, Recorder]) -> None:
    page, _ = hashing
    photos = sorted((IMAGES / "exif-orientation").glob("*.jpg"))
    results = page.hash(photos)
    for path, result in zip(photos, results):
        assert result.state == "done", (path, result)
        cli = {h.orientation: h for h in __import__("pyhash.images", fromlist=["x"]).hash_image_file(path)}
        assert pdq.distance(result.hash("displayed")["value"], cli["displayed"].hash) <= 2, path
        if "raw" in cli:
            assert pdq.distance(result.hash("raw")["value"], cli["raw"].hash) <= 2, path
        else:
            assert [h["orientation"] for h in result.hashes] == ["displayed"]
    assert sum(1 for r in results if len(r.hashes) == 2) == 3  # rotn-3, -6, -8


def test_errors_are_per_file_and_the_other_files_still_hash(hashing: tuple[HashingPage, Recorder]) -> None:
    page, recorder = hashing
    good = IMAGES / "modes" / "L.png"
    files = [
        {"name": "empty.jpg", "mimeType": "image/jpeg", "buffer": b""},
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not a photo at all\n" * 50},
        {"name": "broken.png", "mimeType": "image/png", "buffer": b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8},
        {"name": "photo.heic", "mimeType": "image/heic", "buffer": b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + b"\0" * 500},
        {"name": "tiny.png", "mimeType": "image/png", "buffer": _png(3, 3)},
        {"name": good.name, "mimeType": "image/png", "buffer": good.read_bytes()},
    ]
    results = page.hash(files)
    codes = {r.name: r.error_code for r in results}
    assert codes == {"empty.jpg": "empty", "notes.txt": "not_image", "broken.png": "damaged",
                     "photo.heic": "unsupported_format", "tiny.png": "too_small", "L.png": None}
    for result in results[:-1]:
        assert result.state == "error" and result.error_text and len(result.error_text) > 30, result
        assert "Error" not in (result.error_text or "")  # a sentence for people, not an exception
    assert "screenshot" in (results[2].error_text or "")
    assert results[-1].hash("displayed")["value"] == cpython_hash(good).hash
    assert recorder.page_errors == []


def test_video_md5_is_streamed_and_exact(hashing: tuple[HashingPage, Recorder]) -> None:
    page, _ = hashing
    video = VIDEOS / "chair-orig-22-sd-bar.mp4"  # 2.6 MB: three 1 MiB chunks
    [result] = page.hash([video])
    assert result.state == "done" and result.kind == "video"
    assert result.hashes[0] == {"signal_type": "md5", "value": hashlib.md5(video.read_bytes()).hexdigest()}
    assert [h["signal_type"] for h in result.hashes] == ["md5", "vpdq"]  # vPDQ: tests/test_web_video.py


def test_12_megapixel_photo_is_split_across_workers_and_exact(hashing: tuple[HashingPage, Recorder], tmp_path: Path) -> None:
    page, _ = hashing
    rng = np.random.default_rng(12)
    small = rng.integers(0, 256, size=(60, 80, 3), dtype=np.uint8)
    photo = Image.fromarray(small).resize((4000, 3000), Image.BICUBIC)
    path = tmp_path / "twelve.png"
    photo.save(path, compress_level=1)
    [result] = page.hash([path])
    assert result.state == "done", result
    got = result.hash("displayed")
    assert got["bands"] == int(page.page.get_attribute("[data-kalkan-hashing]", "data-workers") or 0) >= 2
    assert got["value"] == cpython_hash(path).hash  # lossless: bands add up to the exact hash
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "web-12mp.json").write_text(json.dumps({"timings_ms": result.timings, "bands": got["bands"]}))
    print(f"\n12 MP in Chromium: {result.timings} ({got['bands']} bands)")


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


# --- cancelling -------------------------------------------------------------------------------


@pytest.fixture
def one_worker_page(browser: Browser, web_server: LiveServer) -> Iterator[Callable[..., HashingPage]]:
    """Opens /hashing with one worker (so files queue behind each other) and page knobs."""
    contexts = []

    def open_page(**knobs: object) -> HashingPage:
        context = browser.new_context()
        contexts.append(context)
        page = HashingPage(context.new_page(), web_server.base_url)
        page.open(workers=1, **knobs)
        return page

    try:
        yield open_page
    finally:
        for context in contexts:
            context.close()


def _sparse_video(path: Path, size: int) -> Path:
    """A file that sniffs as an MP4 (ftyp box) and is `size` bytes of mostly zeros: MD5 must read
    all of it, which takes far longer than the test waits, yet costs no disk space."""
    with path.open("wb") as out:
        out.write(b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2")
        out.truncate(size)
    return path


def test_cancel_drops_queued_files_and_stops_running_work_at_a_safe_point(
        one_worker_page: Callable[..., HashingPage], tmp_path: Path) -> None:
    """One worker, three files: a huge video is cancelled mid-MD5 (the worker stops between
    chunks, it is not replaced), the photo queued behind it is cancelled before it starts, and
    the third file then hashes exactly."""
    page = one_worker_page(cancelGraceMs=600_000)  # never terminate: prove the cooperative stop
    huge = _sparse_video(tmp_path / "huge.mp4", 16 << 30)
    queued, last = IMAGES / "modes" / "L.png", IMAGES / "modes" / "RGBA.png"
    first = page.choose([huge, queued, last])
    assert page.wait_state(first, ["hashing"]) == "hashing"  # MD5 under way
    assert page.item(first + 1).get_attribute("data-state") == "queued"
    clicked = time.monotonic()
    page.item(first + 1).locator("[data-testid=file-cancel]").click()
    page.item(first).locator("[data-testid=file-cancel]").click()
    big, photo, other = page.wait_results(first, 3, timeout_s=60)
    elapsed = time.monotonic() - clicked
    assert (big.state, big.error_code) == ("error", "cancelled"), big
    assert (photo.state, photo.error_code) == ("error", "cancelled"), photo
    assert "nothing about it is kept" in (big.error_text or "")
    assert other.state == "done" and other.hash("displayed")["value"] == cpython_hash(last).hash
    # 16 GB of MD5 takes minutes; the worker was free for the next file within seconds.
    assert elapsed < 30, elapsed
    assert page.attribute("replaced-workers") == "0"


def test_cancel_replaces_a_worker_stuck_in_one_long_python_call(
        one_worker_page: Callable[..., HashingPage], tmp_path: Path) -> None:
    """A 64-MP photo on one worker is one long synchronous PDQ call with no safe point in it:
    after cancelGraceMs the worker is terminated and a fresh one booted, which then hashes the
    file queued behind. The call takes about a second here; the grace is short enough that it
    cannot end within it however quickly this machine hashes (at 300 ms it once did)."""
    page = one_worker_page(cancelGraceMs=50, lang="tr")
    rng = np.random.default_rng(48)
    path = tmp_path / "sixty-four.png"
    Image.fromarray(rng.integers(0, 256, size=(80, 80, 3), dtype=np.uint8)).resize((8000, 8000)).save(path, compress_level=1)
    after = IMAGES / "modes" / "L.png"
    first = page.choose([path, after])
    page.cancel_in_state(first, "hashing")  # decoded; Python runs
    page.page.wait_for_selector(f"[data-testid=file-result][data-index='{first}'][data-state-after-click]",
                                state="attached", timeout=120_000)
    assert page.item(first).get_attribute("data-state-after-click") == "error"  # the person hears at once
    cancelled, later = page.wait_results(first, 2, timeout_s=180)
    assert cancelled.error_code == "cancelled" and "İptal edildi" in (cancelled.error_text or "")
    assert later.state == "done" and later.hash("displayed")["value"] == cpython_hash(after).hash
    assert page.attribute("replaced-workers") == "1"


# --- a photo too large for the device's memory -----------------------------------------------


def _huge_png(path: Path, width: int, height: int) -> Path:
    """A grey width x height PNG written row by row: 100 MP in ~100 KB, without 100 MB of RAM."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(9)
    row = b"\0" + bytes(range(256)) * (width // 256) + bytes(width % 256)  # filter 0, a ramp
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


@pytest.fixture
def low_end_browser(browser_type: BrowserType, browser_type_launch_args: dict[str, Any]) -> Iterator[Browser]:
    """Debian's Chromium in its low-end device mode (--enable-low-end-device-mode: the browser
    simulates a device with little memory, as on low-end Android phones, and reports so in
    navigator.deviceMemory)."""
    args = [*browser_type_launch_args.get("args", []), "--enable-low-end-device-mode"]
    low_end = browser_type.launch(**{**browser_type_launch_args, "args": args})
    try:
        yield low_end
    finally:
        low_end.close()


def test_a_100_megapixel_photo_on_a_memory_limited_page_is_refused_before_decoding(
        low_end_browser: Browser, web_server: LiveServer, tmp_path: Path) -> None:
    """On a device that reports little memory (Chromium's low-end device mode), HashPool derives
    a pixel budget below 100 MP from navigator.deviceMemory. A 10000 x 10000 PNG is refused from
    its header with a plain message, never decoded, and the photos chosen with it still hash."""
    context = low_end_browser.new_context()
    try:
        tab = context.new_page()
        page = HashingPage(tab, web_server.base_url)
        page.open(workers=1)
        device_memory_gb = tab.evaluate("navigator.deviceMemory")
        assert device_memory_gb is not None and device_memory_gb < 4, device_memory_gb
        limit = int(page.attribute("max-pixels") or 0)
        assert 4_000_000 <= limit < 100_000_000, limit  # the budget, not pyhash's own 100 MP ceiling
        huge = _huge_png(tmp_path / "hundred-megapixels.png", 10_000, 10_000)
        assert huge.stat().st_size < 1_000_000
        before, after = IMAGES / "modes" / "L.png", IMAGES / "modes" / "RGBA.png"
        started = time.monotonic()
        results = page.hash([before, huge, after])
        assert [r.state for r in results] == ["done", "error", "done"], results
        refused = results[1]
        assert refused.error_code == "too_large"
        assert "100 megapixels" in (refused.error_text or "")
        assert f"limit here is {limit // 1_000_000} megapixels" in (refused.error_text or "")
        assert "screenshot" in (refused.error_text or "")
        assert refused.timings == {}  # no decode or hash timing: the worker never saw it
        assert results[0].hash("displayed")["value"] == cpython_hash(before).hash
        assert results[2].hash("displayed")["value"] == cpython_hash(after).hash
        assert time.monotonic() - started < 60
    finally:
        context.close()


def test_the_page_knob_sets_the_pixel_budget(one_worker_page: Callable[..., HashingPage], tmp_path: Path) -> None:
    """?maxMegapixels=N (tests, bench) stands for a smaller device on any browser."""
    page = one_worker_page(maxMegapixels=50)
    assert page.attribute("max-pixels") == "50000000"
    [result] = page.hash([_huge_png(tmp_path / "sixty.png", 6_000, 10_000)])
    assert result.error_code == "too_large" and "limit here is 50 megapixels" in (result.error_text or "")


def test_no_device_decodes_more_than_100_megapixels(hashing: tuple[HashingPage, Recorder], tmp_path: Path) -> None:
    """pyhash's own limit holds on a page with plenty of memory too (checked from the header)."""
    page, _ = hashing
    assert int(page.attribute("max-pixels") or 0) == 100_000_000  # this machine reports >= 8 GB
    [result] = page.hash([_huge_png(tmp_path / "over.png", 10_000, 10_001)])
    assert result.error_code == "too_large" and "100 megapixels" in (result.error_text or "")


def test_pixel_budget_follows_device_memory() -> None:
    """HashPool's default limit from navigator.deviceMemory (GB): 16 bytes a pixel, a fifth of
    memory, between 4 and 100 MP; computed by the module itself under Node."""
    script = ("const m = await import(process.argv[1]);"
              "console.log(JSON.stringify([0.25, 0.5, 1, 2, 4, 8, 16, undefined].map((g) => m.defaultMaxPixels(g))));")
    done = subprocess.run(["node", "--input-type=module", "-e", script, str(REPO_ROOT / "web" / "src" / "hasher.js")],
                          capture_output=True, text=True, check=True)
    limits = json.loads(done.stdout)
    assert limits == [4_000_000, 6_710_886, 13_421_772, 26_843_545, 53_687_091, 100_000_000, 100_000_000, 53_687_091]
