"""`python -m pyhash`: run as a person would, in a subprocess, on good and bad files together."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image

from pyhash import pdq
from pyhash.images import hash_image_file

REPO_ROOT = Path(__file__).resolve().parent.parent
CORPUS = REPO_ROOT.parent / "shared" / "corpus"
ORIGINAL = CORPUS / "images" / "modes" / "original.jpg"
ROTATED = CORPUS / "images" / "exif-orientation" / "exif-rotn-6.jpg"
VIDEO = CORPUS / "videos" / "doorknob-hd-no-bar.mp4"

HEX64 = re.compile(r"[0-9a-f]{64}")


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pyhash", *map(str, args)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )


def json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def bomb_png(path: Path, side: int = 20000) -> Path:
    """An all-black 1-bit PNG declaring side x side pixels, a few tens of KB on disk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(9)
    row = bytes(1 + (side + 7) // 8)
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    """name -> (path, a phrase its error line must contain)."""
    d = tmp_path_factory.mktemp("bad")
    (d / "notes.jpg").write_text("Dear diary, this is not a photo.\n" * 20)
    (d / "empty.jpg").write_bytes(b"")
    data = ORIGINAL.read_bytes()
    (d / "cut.jpg").write_bytes(data[: len(data) // 2])
    Image.new("RGB", (4, 4), "red").save(d / "tiny.png")
    Image.new("RGB", (1, 1), "red").save(d / "dot.png")
    (d / "folder").mkdir()
    lines = "\n".join(f"line {i}" for i in range(200))
    (d / "readme.txt").write_text(lines)  # FFmpeg would open this as ANSI-art "video"
    return {
        "text": (d / "notes.jpg", "not a photo or video"),
        "empty": (d / "empty.jpg", "empty"),
        "truncated": (d / "cut.jpg", "incomplete"),
        "tiny": (d / "tiny.png", "too small to fingerprint (4x4"),
        "dot": (d / "dot.png", "too small to fingerprint (1x1"),
        "missing": (d / "missing.jpg", "does not exist"),
        "folder": (d / "folder", "folder"),
        "txt": (d / "readme.txt", "not a photo or video"),
        "bomb": (bomb_png(d / "bomb.png"), "400,000,000 pixels; the limit is 100,000,000"),
    }


def test_mixed_good_and_bad_files_json(bad_files: dict[str, tuple[Path, str]]) -> None:
    bad = list(bad_files.values())
    # good and bad interleaved: a failure must not stop the files after it
    args = [ORIGINAL, *[p for p, _ in bad[:4]], ROTATED, *[p for p, _ in bad[4:]]]
    result = run("--json", *args)
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr

    records = json_lines(result.stdout)
    assert [(r["path"], r["orientation"]) for r in records] == [
        (str(ORIGINAL), "displayed"),
        (str(ROTATED), "displayed"),
        (str(ROTATED), "raw"),
    ]
    for record in records:
        assert set(record) == {"path", "signal_type", "hash", "quality", "orientation"}
        assert record["signal_type"] == "pdq" and HEX64.fullmatch(record["hash"])
        assert isinstance(record["quality"], int) and 0 <= record["quality"] <= 100
    assert records[0]["hash"] == hash_image_file(ORIGINAL)[0].hash
    assert [r["hash"] for r in records[1:]] == [r.hash for r in hash_image_file(ROTATED)]

    errors = result.stderr.splitlines()
    assert len(errors) == len(bad)  # exactly one line per bad file, in order
    for line, (path, phrase) in zip(errors, bad):
        assert line.startswith(f"{path}: "), line
        assert phrase in line, line


def test_all_good_files_exit_0_human_format() -> None:
    result = run(ORIGINAL, ROTATED)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    displayed = hash_image_file(ORIGINAL)[0]
    assert lines[0] == f"{ORIGINAL}  pdq  {displayed.hash}  quality {displayed.quality}"
    assert lines[2].startswith(f"{ROTATED}  pdq  ") and "as stored, EXIF rotation ignored" in lines[2]


def test_low_quality_is_flagged_for_people(tmp_path: Path) -> None:
    flat = tmp_path / "flat.png"
    Image.new("RGB", (64, 64), (40, 40, 40)).save(flat)
    result = run(flat)
    assert result.returncode == 0
    assert "quality 0  (low quality: matches may be unreliable)" in result.stdout
    [record] = json_lines(run("--json", flat).stdout)
    assert record["quality"] == 0  # JSON carries the number; the note is for people only


def test_dihedral(tmp_path: Path) -> None:
    result = run("--json", "--dihedral", ROTATED)
    assert result.returncode == 0, result.stderr
    records = json_lines(result.stdout)
    assert [r.get("transform", "original") for r in records] == [*pdq.DIHEDRAL_NAMES, "original"]
    assert [r["orientation"] for r in records] == ["displayed"] * 8 + ["raw"]
    # EXIF 6 stores the picture turned a quarter: the displayed image's rotate90 ~ the raw hash
    by_transform = {r.get("transform"): r["hash"] for r in records[:8]}
    assert pdq.distance(by_transform["rotate90"], records[8]["hash"]) <= 4


def test_video_gives_md5_and_vpdq() -> None:
    result = run("--json", VIDEO)
    assert result.returncode == 0, result.stderr
    md5, vpdq = json_lines(result.stdout)
    assert md5 == {"path": str(VIDEO), "signal_type": "md5", "hash": hashlib.md5(VIDEO.read_bytes()).hexdigest()}
    assert set(vpdq) == {"path", "signal_type", "hash"} and vpdq["signal_type"] == "vpdq"
    frames = vpdq["hash"]
    assert frames and all(set(f) == {"frame_number", "quality", "hash", "timestamp"} for f in frames)
    assert all(HEX64.fullmatch(f["hash"]) for f in frames)
    human = run(VIDEO)
    assert human.returncode == 0
    lines = human.stdout.splitlines()
    assert lines[0] == f"{VIDEO}  md5  {md5['hash']}"
    assert len(lines) == 1 + len(frames) and all("  vpdq  " in line for line in lines[1:])


def test_help_describes_behaviour() -> None:
    result = run("--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for phrase in ("100 megapixels", "EXIF", "white background", "--json", '"orientation": "raw"',
                   "too small", "16-bit", "first frame", "exit status", "MD5", "vPDQ"):  # fmt: skip
        assert phrase in text, phrase


def test_usage_errors_exit_2_without_traceback() -> None:
    for args in ([], ["--nope", str(ORIGINAL)]):
        result = run(*args)
        assert result.returncode == 2
        assert "usage:" in result.stderr and "Traceback" not in result.stderr


def test_undecodable_file_name_is_printed_escaped(tmp_path: Path) -> None:
    name = os.fsdecode(b"caf\xe9-photo.jpg")  # not UTF-8: surrogate-escaped by Python
    shutil.copy(ORIGINAL, tmp_path / name)
    for extra in ([], ["--json"]):
        result = run(*extra, tmp_path / name, tmp_path / os.fsdecode(b"\xff-missing.jpg"))
        assert result.returncode == 1
        assert "Traceback" not in result.stdout + result.stderr
        assert "caf" in result.stdout and "does not exist" in result.stderr


def test_closed_stdout_is_not_a_traceback() -> None:
    # `python -m pyhash *.jpg | head -1`: the reader leaves early.
    proc = subprocess.Popen(
        [sys.executable, "-m", "pyhash", *[str(ORIGINAL)] * 50],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr


def _without_read_override() -> list[str] | None:
    """A command prefix that runs as root minus the capability to read any file (setpriv)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    drop = "-dac_override,-dac_read_search"
    prefix = [setpriv, f"--bounding-set={drop}", f"--inh-caps={drop}"]
    probe = subprocess.run([*prefix, sys.executable, "-c", "pass"], capture_output=True, timeout=60)
    return prefix if probe.returncode == 0 else None


def test_permission_denied(tmp_path: Path) -> None:
    secret = tmp_path / "secret.jpg"
    shutil.copy(ORIGINAL, secret)
    secret.chmod(0)
    command = [sys.executable, "-m", "pyhash", str(secret)]
    if os.geteuid() == 0:
        # root reads anything: run the CLI as root without the capabilities that allow it
        prefix = _without_read_override()
        # setpriv is in util-linux, which every Debian system has.
        assert prefix is not None, "running as root: setpriv is needed to drop CAP_DAC_OVERRIDE"
        command = prefix + command
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr == f"{secret}: Permission denied: this file may not be read.\n"
    assert "Traceback" not in result.stdout + result.stderr
