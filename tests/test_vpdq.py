"""pyhash.vpdq without video files: frame sampling, pruning, matching and serialisation.

Decoded-video tests (corpus, the `vpdq` reference package) are in tests/test_video.py.
"""

from __future__ import annotations

import json

import pytest

from pyhash import pdq
from pyhash.vpdq import (
    VpdqBuilder,
    VpdqFeature,
    VpdqFormatError,
    VpdqMatch,
    compare,
    dump_text,
    from_json_list,
    from_threatexchange_signal,
    hash_frames,
    parse_text,
    prune,
    to_json_list,
    to_threatexchange_signal,
)

W, H = 16, 12  # tiny frames keep PDQ cheap; vPDQ logic does not care about size


def frame(seed: int, width: int = W, height: int = H) -> bytes:
    """A deterministic RGB test pattern; different seeds give unrelated PDQ hashes."""
    return bytes(
        (x * (seed * 7 + 3) + y * (seed * 13 + 5) + c * 91 + (x * y * seed) % 37) % 256
        for y in range(height)
        for x in range(width)
        for c in range(3)
    )


def feature(hex_value: str, quality: int = 100, number: int = 0) -> VpdqFeature:
    return VpdqFeature(number, hex_value, quality, float(number))


def bits(count: int) -> str:
    """A hash whose distance from all-zeros is `count`."""
    return format((1 << count) - 1, "064x")


ZERO = "0" * 64

# First lines of ThreatExchange vpdq/sample-hashes/chair-19-sd-bar.txt (reference output).
REFERENCE_TEXT = (
    "0,100,e271017837246aaccddea259648fb7d62f435c89d9e99b2497763e216c8d055c,0.000\n"
    "1,100,c0f11178372c6aaccddea259648fbfd62f434c89c9e99b249772be216c8d055c,0.033\n"
    "2,100,c0f10b78372c6aacc5dea25b748fb7d22f434c89c9a9db249772b6216c8d855c,0.067\n"
)


# --- building ---------------------------------------------------------------------------


def test_reference_mode_samples_every_int_rate_frames_with_float32_timestamps() -> None:
    # 29.97 fps: the reference's modulus is int(1.0 * 29.97) = 29, timestamps n / 29.97.
    builder = VpdqBuilder(29.97)
    for n in range(100):
        data = frame(n)
        assert builder.wants_frame() == (n % 29 == 0)
        builder.add_frame(data, W, H, 3)
    features = builder.result()
    assert [f.frame_number for f in features] == [0, 29, 58, 87]
    assert [f.timestamp for f in features] == [0.0, 0.968, 1.935, 2.903]
    for f in features:
        expected = pdq.hash_pixels(frame(f.frame_number), W, H, 3)
        assert (f.pdq_hex, f.quality) == (expected.hash, expected.quality)
    assert builder.frames_seen == 100


def test_reference_mode_rates_and_intervals() -> None:
    def numbers(rate: float, seconds: float, count: int) -> list:
        builder = VpdqBuilder(rate, seconds_per_hash=seconds)
        for n in range(count):
            if builder.wants_frame():
                builder.add_frame(frame(n), W, H, 3)
            else:
                builder.skip_frame()
        return [f.frame_number for f in builder.result()]

    assert numbers(30, 1.0, 61) == [0, 30, 60]
    assert numbers(30, 0.5, 31) == [0, 15, 30]
    assert numbers(30, 0, 4) == [0, 1, 2, 3]  # 0 seconds: every frame
    assert numbers(0.5, 1.0, 3) == [0, 1, 2]  # int(0.5) == 0 becomes 1, as in the reference


def test_timestamp_mode_picks_first_frame_at_or_after_each_second() -> None:
    times = [0.0, 0.4, 0.8, 0.9999999, 1.3, 1.7, 2.1, 2.5, 3.05]
    features = hash_frames([(t, frame(i), W, H, 3) for i, t in enumerate(times)])
    assert [(f.frame_number, f.timestamp) for f in features] == [(0, 0.0), (3, 1.0), (6, 2.1), (8, 3.05)]
    with pytest.raises(ValueError, match="timestamp"):
        VpdqBuilder().wants_frame()


def test_channels_rgba_and_grey() -> None:
    rgb = frame(3)
    rgba = b"".join(rgb[i : i + 3] + b"\xff" for i in range(0, len(rgb), 3))
    grey = bytes(rgb[0::3])
    from_rgb = hash_frames([(0.0, rgb, W, H, 3)])[0]
    assert hash_frames([(0.0, rgba, W, H, 4)])[0] == from_rgb
    assert hash_frames([(0.0, grey, W, H, 1)])[0].pdq_hex == pdq.hash_pixels(grey, W, H, 1).hash


def test_builder_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="bytes"):
        VpdqBuilder(30).add_frame(b"\x00" * 10, W, H, 3)
    with pytest.raises(ValueError, match="5x5"):
        VpdqBuilder(30).add_frame(b"\x00" * 48, 4, 4, 3)
    for bad in ({"frame_rate": 0}, {"frame_rate": float("nan")}, {"seconds_per_hash": -1}, {"prune_distance": 300}):
        with pytest.raises(ValueError):
            VpdqBuilder(**bad)


def test_pruning_is_off_by_default_and_drops_near_duplicates() -> None:
    frames = [frame(1), frame(1), frame(2), frame(2), frame(1)]
    stream = [(float(i), data, W, H, 3) for i, data in enumerate(frames)]
    assert len(hash_frames(stream)) == 5
    kept = hash_frames(stream, prune_distance=2)
    assert [f.frame_number for f in kept] == [0, 2, 4]
    assert prune(hash_frames(stream), 2) == kept
    # README: distance <= D_prune is pruned, > D_prune retained.
    seq = [feature(ZERO, number=0), feature(bits(2), number=1), feature(bits(5), number=2)]
    assert [f.frame_number for f in prune(seq, 2)] == [0, 2]


# --- matching ---------------------------------------------------------------------------


def test_distance_threshold_is_inclusive_31() -> None:
    assert compare([feature(ZERO)], [feature(bits(31))]) == VpdqMatch(100.0, 100.0)
    assert compare([feature(ZERO)], [feature(bits(32))]) == VpdqMatch(0.0, 0.0)
    assert compare([feature(ZERO)], [feature(bits(32))], distance_threshold=32) == VpdqMatch(100.0, 100.0)


def test_percentages_dedupe_and_quality_filter() -> None:
    a, b, c = ZERO, "f" * 64, "0f" * 32
    query = [feature(a), feature(a), feature(b), feature(c, quality=49)]  # unique good: a, b
    compared = [feature(a), feature(c), feature(c)]  # unique good: a, c
    result = compare(query, compared)
    assert result == VpdqMatch(query_match_percent=50.0, compared_match_percent=50.0)
    # With the quality filter off, c counts on both sides: query a,b,c -> 2/3; compared a,c -> 2/2.
    result = compare(query, compared, quality_threshold=0)
    assert result.query_match_percent == pytest.approx(200 / 3)
    assert result.compared_match_percent == 100.0


def test_match_decision_uses_readme_thresholds() -> None:
    # Query has extra content: compared fully found (100%), query only half -> still a match.
    match = compare([feature(ZERO), feature("f" * 64)], [feature(ZERO)])
    assert match == VpdqMatch(50.0, 100.0)
    assert match.is_match()  # P_c = 80%, P_q = 0%
    assert not match.is_match(query_threshold=80.0)
    assert not VpdqMatch(100.0, 79.9).is_match()


def test_side_without_good_frames_scores_zero() -> None:
    assert compare([], [feature(ZERO)]) == VpdqMatch(0.0, 0.0)
    assert compare([feature(ZERO, quality=10)], [feature(ZERO)]) == VpdqMatch(0.0, 0.0)


# --- serialisation ----------------------------------------------------------------------


def test_reference_text_round_trip() -> None:
    features = parse_text(REFERENCE_TEXT)
    assert features[1] == VpdqFeature(1, "c0f11178372c6aaccddea259648fbfd62f434c89c9e99b249772be216c8d055c", 100, 0.033)
    assert dump_text(features) == REFERENCE_TEXT
    built = hash_frames([(i / 3, frame(i), W, H, 3) for i in range(7)], 3.0, seconds_per_hash=0)
    assert parse_text(dump_text(built)) == built  # builder timestamps are already at ms precision
    assert parse_text(REFERENCE_TEXT.replace("\n", "\r\n").rstrip()) == features
    assert parse_text(REFERENCE_TEXT.upper())[0].pdq_hex == features[0].pdq_hex  # normalised


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty"),
        ("\n\n", "empty"),
        ("0,100,abc,0.000\n", "line 1: hash must be 64 hexadecimal digits"),
        ("0,100," + "g" * 64 + ",0.000", "line 1: hash"),
        ("0,100," + "a" * 63 + ",0.000", "line 1: hash"),
        ("0,101," + "a" * 64 + ",0.000", "line 1: quality must be from 0 to 100"),
        ("0,-1," + "a" * 64 + ",0.000", "line 1: quality"),
        ("0,ten," + "a" * 64 + ",0.000", "line 1: quality"),
        ("-1,100," + "a" * 64 + ",0.000", "line 1: frame_number"),
        ("1.5,100," + "a" * 64 + ",0.000", "line 1: frame_number"),
        (" 1,100," + "a" * 64 + ",0.000", "line 1: frame_number"),
        ("0,100," + "a" * 64 + ",nan", "line 1: timestamp"),
        ("0,100," + "a" * 64 + ",inf", "line 1: timestamp"),
        ("0,100," + "a" * 64 + ",-1.0", "line 1: timestamp"),
        ("0,100," + "a" * 64 + ",", "line 1: timestamp"),
        ("0,100," + "a" * 64, "line 1: expected 4 comma-separated fields"),
        ("0,100," + "a" * 64 + ",0.000,extra", "line 1: expected 4"),
        (REFERENCE_TEXT + "\n" + REFERENCE_TEXT, "line 4: expected 4"),
        (REFERENCE_TEXT + "3,100,zz,0.1\n", "line 4: hash"),
    ],
)
def test_parse_text_rejects_malformed(text: str, message: str) -> None:
    with pytest.raises(VpdqFormatError, match=message):
        parse_text(text)


def test_parse_text_limits_and_types() -> None:
    with pytest.raises(VpdqFormatError, match="more than the 2 allowed"):
        parse_text(REFERENCE_TEXT, max_features=2)
    with pytest.raises(VpdqFormatError, match="must be a str"):
        parse_text(REFERENCE_TEXT.encode())  # type: ignore[arg-type]
    assert issubclass(VpdqFormatError, ValueError)


def test_json_list_round_trip_and_validation() -> None:
    features = parse_text(REFERENCE_TEXT)
    items = to_json_list(features)
    assert items[0] == {
        "frame_number": 0,
        "quality": 100,
        "hash": "e271017837246aaccddea259648fb7d62f435c89d9e99b2497763e216c8d055c",
        "timestamp": 0.0,
    }
    assert from_json_list(items) == features
    assert from_json_list(json.dumps(items)) == features
    good = items[0]
    bad_cases = [
        ({}, "must be a list"),
        ([], "empty"),
        ("[", "does not parse"),
        ([1], "frame 0: must be an object"),
        ([{**good, "hash": "xyz"}], "frame 0: hash"),
        ([good, {k: v for k, v in good.items() if k != "quality"}], r"frame 1: keys .* missing \['quality'\]"),
        ([{**good, "extra": 1}], "unexpected"),
        ([{**good, "frame_number": True}], "frame_number"),
        ([{**good, "quality": "100"}], "quality"),
        ([{**good, "timestamp": float("nan")}], "timestamp"),
    ]
    for value, message in bad_cases:
        with pytest.raises(VpdqFormatError, match=message):
            from_json_list(value)


def test_threatexchange_signal_round_trip() -> None:
    features = parse_text(REFERENCE_TEXT)
    signal = to_threatexchange_signal(features)
    assert json.loads(signal)[1] == "c0f11178372c6aaccddea259648fbfd62f434c89c9e99b249772be216c8d055c,100,0.033"
    assert from_threatexchange_signal(signal) == features  # frame numbers here happen to be 0,1,2
    # python-threatexchange formats timestamps with "{:.3}", which can give exponents.
    parsed = from_threatexchange_signal(json.dumps([ZERO + ",80,1.23e+02"]))
    assert parsed == [VpdqFeature(0, ZERO, 80, 123.0)]
    for bad in ("", "{}", "[]", "[1]", json.dumps([ZERO + ",80"]), json.dumps(["zz,80,1.0"])):
        with pytest.raises(VpdqFormatError):
            from_threatexchange_signal(bad)


# --- Pyodide ----------------------------------------------------------------------------


def test_builder_gives_same_hashes_in_pyodide(pyodide) -> None:
    frames = [frame(i) for i in range(4)]
    expected = dump_text(hash_frames([(i * 0.5, f, W, H, 3) for i, f in enumerate(frames)], 2.0))
    code = (
        "from pyhash.vpdq import hash_frames, dump_text, parse_text, compare\n"
        "size = w * h * 3\n"
        "frames = [blob[i * size : (i + 1) * size] for i in range(len(blob) // size)]\n"
        "feats = hash_frames([(i * 0.5, f, w, h, 3) for i, f in enumerate(frames)], 2.0)\n"
        "result = [dump_text(feats), compare(feats, parse_text(dump_text(feats))).compared_match_percent]\n"
    )
    assert pyodide.run(code, blob=b"".join(frames), w=W, h=H) == [expected, 100.0]
