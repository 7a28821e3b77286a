"""vPDQ in real headless Chromium against CPython pyhash on the shared video corpus.

The browser demuxes the MP4 itself (web/src/mp4.js), decodes with WebCodecs and converts frames
with BT.601 as Meta's reference does (web/src/video.js); pyhash.vpdq picks the frames and PDQ
hashes them in the worker. The decoders differ (Chromium's vs PyAV's FFmpeg builds) and so does
the YUV->RGB rounding, so frame hashes are compared by distance, the frame choice exactly.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import statistics
from collections.abc import Iterator
from pathlib import Path

import av
import pytest
from playwright.sync_api import Browser

from pyhash import pdq, signals, vpdq
from pyhash.video import vpdq_video_file
from server_harness import LiveServer
from web_harness import CORPUS, FileResult, HashingPage, Recorder, open_hashing_page, sqlite_web_server

VIDEOS = CORPUS / "videos"
REPO_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO_ROOT / "build" / "test-artifacts"
IN_PHASE = ["chair-20-sd-bar.mp4", "chair-22-sd-grey-bar.mp4", "chair-22-with-small-logo-bar.mp4",
            "chair-orig-22-sd-bar.mp4"]  # the same scene, re-encoded: they match each other
OTHER = "doorknob-hd-no-bar.mp4"
VPDQ = signals.get("vpdq")
GOOD = vpdq.QUALITY_THRESHOLD  # frames below this quality take no part in matching


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with sqlite_web_server(tmp_path_factory.mktemp("web-video-server")) as server:
        yield server


@pytest.fixture(scope="module")
def page(browser: Browser, web_server: LiveServer) -> Iterator[tuple[HashingPage, Recorder]]:
    with open_hashing_page(browser, web_server.base_url) as opened:
        yield opened


@pytest.fixture(scope="module")
def corpus(page: tuple[HashingPage, Recorder]) -> dict[str, tuple[FileResult, list[vpdq.VpdqFeature]]]:
    """Every corpus video hashed once in the browser, next to CPython pyhash's vPDQ of it."""
    hashing_page, recorder = page
    paths = sorted(VIDEOS.glob("*.mp4"))
    assert len(paths) == 6
    results = hashing_page.hash(paths, timeout_s=600)
    assert recorder.console_errors == [] and recorder.page_errors == []
    return {path.name: (result, vpdq_video_file(path)) for path, result in zip(paths, results)}


def browser_vpdq(result: FileResult) -> str:
    found = [h["value"] for h in result.hashes if h["signal_type"] == "vpdq"]
    assert len(found) == 1, (result.name, result.hashes, result.note_code, result.note_text)
    return found[0]


def test_browser_vpdq_samples_the_frames_cpython_samples_and_hashes_them_alike(corpus) -> None:  # type: ignore[no-untyped-def]
    distances: dict[str, list[int]] = {}
    report = {}
    for name, (result, expected) in corpus.items():
        assert result.state == "done" and result.kind == "video", result
        assert result.hashes[0] == {"signal_type": "md5", "value": hashlib.md5((VIDEOS / name).read_bytes()).hexdigest()}
        value = browser_vpdq(result)
        assert VPDQ.validate(value) == value  # exactly what the server's registry accepts
        got = vpdq.from_threatexchange_signal(value)
        assert result.video is not None and result.video["frameRate"] == 30
        assert [f["frame_number"] for f in result.video["frames"]] == [f.frame_number for f in expected], name
        assert [f.timestamp for f in got] == [f.timestamp for f in expected], name
        assert result.video["decodedFrames"] == av.open(str(VIDEOS / name)).streams.video[0].frames
        good = [pdq.distance(a.pdq_hex, b.pdq_hex) for a, b in zip(got, expected) if min(a.quality, b.quality) >= GOOD]
        distances[name] = good
        # Quality is computed from the same 64x64 the hash comes from: equal or within a point or two.
        assert all(abs(a.quality - b.quality) <= 3 for a, b in zip(got, expected)), name
        match = vpdq.compare(got, expected)
        assert match.is_match() and VPDQ.matches(value, vpdq.to_threatexchange_signal(expected)), (name, match)
        report[name] = {"frames": len(got), "good_frame_distances": good, "match": match.__dict__,
                        "timings_ms": result.timings, "codec": result.video["codec"]}
    every = [d for ds in distances.values() for d in ds]
    assert len(every) >= 100
    assert max(every) <= 8, distances  # PDQ's own match threshold is 31
    assert statistics.mean(every) <= 2.0, distances
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    histogram = {d: every.count(d) for d in sorted(set(every))}
    (ARTIFACTS / "web-vpdq.json").write_text(json.dumps({"distance_histogram": histogram, "videos": report}, indent=1))
    print(f"\nbrowser vs CPython vPDQ, per good frame: distance histogram {histogram} over {len(every)} frames")


def test_browser_vpdq_matches_reencoded_copies_hashed_by_cpython(corpus) -> None:  # type: ignore[no-untyped-def]
    """What a platform does: the person's (browser) hash against its own (CPython) hashes."""
    for query, compared in itertools.permutations(IN_PHASE, 2):
        mine = browser_vpdq(corpus[query][0])
        theirs = vpdq.to_threatexchange_signal(corpus[compared][1])
        assert VPDQ.matches(mine, theirs), (query, compared, VPDQ.distance(mine, theirs))
    for name in IN_PHASE:
        mine = browser_vpdq(corpus[name][0])
        assert not VPDQ.matches(mine, vpdq.to_threatexchange_signal(corpus[OTHER][1]))
        assert not VPDQ.matches(browser_vpdq(corpus[OTHER][0]), vpdq.to_threatexchange_signal(corpus[name][1]))


def test_videos_whose_frames_cannot_be_read_still_get_their_md5_and_a_plain_note(
        page: tuple[HashingPage, Recorder], tmp_path: Path) -> None:
    hashing_page, _ = page
    source = VIDEOS / "chair-orig-22-sd-bar.mp4"
    # Cut short: the index (moov) at the end of this file is lost.
    truncated = tmp_path / "cut-short.mp4"
    truncated.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    # The same frames in a Matroska container (remuxed, not re-encoded): not MP4, so not demuxed here.
    matroska = tmp_path / "remuxed.mkv"
    with av.open(str(source)) as src, av.open(str(matroska), "w", format="matroska") as out:
        stream = out.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    results = hashing_page.hash([truncated, matroska])
    expected_notes = {"cut-short.mp4": "video_damaged", "remuxed.mkv": "video_container_unsupported"}
    for path, result in zip([truncated, matroska], results):
        assert result.state == "done" and result.kind == "video", result
        assert result.hashes == [{"signal_type": "md5", "value": hashlib.md5(path.read_bytes()).hexdigest()}]
        assert result.note_code == expected_notes[path.name], result
        assert "MD5" in (result.note_text or "") and len(result.note_text or "") > 80


def test_cancelling_a_video_stops_its_decoding_between_frames(browser: Browser, web_server: LiveServer) -> None:
    """Cancelled while its frames are being decoded: the worker stops at the next frame (it is
    not replaced) and hashes the next file."""
    context = browser.new_context()
    try:
        page = HashingPage(context.new_page(), web_server.base_url)
        page.open(workers=1, cancelGraceMs=600_000)
        video, photo = VIDEOS / "chair-orig-22-sd-bar.mp4", CORPUS / "images" / "modes" / "L.png"
        first = page.choose([video, photo])
        page.cancel_in_state(first, "frames")
        cancelled, after = page.wait_results(first, 2, timeout_s=60)
        assert cancelled.error_code == "cancelled"
        assert after.state == "done" and after.hashes[0]["signal_type"] == "pdq"
        assert page.attribute("replaced-workers") == "0"
    finally:
        context.close()
