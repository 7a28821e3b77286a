"""`python -m pyhash [--json] FILE...`: print the fingerprints of photos and videos.

One line per hash on stdout; one line per file that failed on stderr (`path: message`),
never a traceback. Exit status 0 when every file was hashed, 1 when any failed, 2 for a
usage error. See `DESCRIPTION` below (the --help text) for what is hashed and how.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any, TextIO

from .errors import PyhashError, UnsupportedFormatError

DESCRIPTION = """\
Print the fingerprints (hashes) of photos and videos. Only hashes are printed; nothing is
uploaded or written anywhere.

Photos (JPEG, PNG, GIF, WebP, AVIF, BMP, ICO, TIFF) get a PDQ perceptual hash of the picture
as a browser displays it:
  * EXIF rotation/mirroring is applied first. If the file is stored rotated (EXIF orientation
    other than 1), a second hash of the pixels as stored is printed too ("raw" orientation),
    for sites that ignore EXIF.
  * Transparent areas are placed on a white background.
  * 16-bit and floating-point images are scaled to 8 bits; embedded colour (ICC) profiles
    are applied. Animated images: the first frame.
  * Images larger than 100 megapixels are refused before decoding. Images smaller than
    5x5 pixels are reported as too small to fingerprint. Damaged or cut-off files are
    refused rather than partly hashed.
  * quality (0-100) says how much detail PDQ found; below 50 matches are unreliable.

Videos (MP4/MOV/3GP, WebM/MKV, AVI, MPEG, FLV, WMV, Ogg) get an MD5 of the file's bytes
(finds exact copies) and a vPDQ hash (PDQ of one frame per second).
"""

EPILOG = """\
output:
  default  one readable line per hash: PATH  TYPE  HASH  details
  --json   one JSON object per line, e.g.
           {"path": "a.jpg", "signal_type": "pdq", "hash": "<64 hex>", "quality": 100,
            "orientation": "displayed"}
           a stored-rotated photo adds the same with "orientation": "raw";
           --dihedral adds lines with "transform": "rotate90" etc.
           a video gives {"path", "signal_type": "md5", "hash": "<32 hex>"} and
           {"path", "signal_type": "vpdq", "hash": [{"frame_number", "quality", "hash",
           "timestamp"}, ...]}

exit status: 0 all files hashed, 1 some file could not be hashed (reason on stderr),
2 bad command line.
"""

# FFmpeg demuxers we treat as video. FFmpeg also "opens" stills (image2, *_pipe) and text
# (tty: .txt, .nfo as ANSI art); those are refused, so a text file renamed .jpg is reported
# as not an image rather than as a damaged video.
VIDEO_CONTAINERS = frozenset(
    {"mov", "mp4", "3gp", "matroska", "webm", "avi", "mpeg", "mpegts", "flv", "asf", "ogg", "mxf", "dv", "nut"}
)

LOW_QUALITY = 50  # PDQ's usual cut-off: below it, a hash says little about the picture

Record = dict[str, Any]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pyhash",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="photo or video files")
    parser.add_argument("--json", action="store_true", help="print one JSON object per line (see below)")
    parser.add_argument(
        "--dihedral",
        action="store_true",
        help="also print the PDQ hashes of the photo's 7 other rotations and mirror images",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Paths may hold bytes that aren't valid UTF-8: print them escaped rather than crash.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    # Pillow/FFmpeg warnings about odd metadata are noise for a person; failures are errors.
    warnings.simplefilter("ignore")
    failed = False
    try:
        for path in args.files:
            try:
                records = fingerprint(path, dihedral=args.dihedral)
            except PyhashError as error:
                failed = True
                _error(path, str(error))
                continue
            except Exception as error:  # a bug, or a decoder failing in a way we didn't foresee
                failed = True
                _error(path, f"unexpected error ({type(error).__name__}: {_first_line(error)}); please report it")
                continue
            for record in records:
                print(json.dumps(record) if args.json else human_line(record), flush=True)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: stop quietly, and don't let the interpreter's
        # final flush raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 1 if failed else 0


def fingerprint(path: str, *, dihedral: bool = False) -> list[Record]:
    """The output records for one file: photo hashes, or md5 + vpdq for a video."""
    try:
        from . import images  # needs Pillow
    except ImportError:
        raise PyhashError("Reading photos needs Pillow: pip install 'kalkan[decode]'.") from None
    try:
        results = images.hash_image_file(path, dihedral=dihedral)
    except UnsupportedFormatError:
        if not _is_video(path):
            raise UnsupportedFormatError(
                "This file is not a photo or video that pyhash can read "
                "(photos: JPEG, PNG, GIF, WebP, AVIF, BMP, ICO, TIFF; videos: MP4, MOV, WebM, MKV, AVI, ...)."
            ) from None
        return _video_records(path)
    records = []
    for r in results:
        record: Record = {
            "path": path,
            "signal_type": r.signal_type,
            "hash": r.hash,
            "quality": r.quality,
            "orientation": r.orientation,
        }
        if r.transform != "original":
            record["transform"] = r.transform
        records.append(record)
    return records


def _is_video(path: str) -> bool:
    try:
        import av
    except ImportError:
        raise PyhashError(
            "This file is not a photo pyhash can read, and checking for video needs PyAV: "
            "pip install 'kalkan[decode]'."
        ) from None
    try:
        with av.open(os.fspath(path)) as container:
            names = set(container.format.name.split(","))
            return bool(names & VIDEO_CONTAINERS) and bool(container.streams.video)
    except Exception:  # FFmpeg can't open it either: not a video
        return False


def _video_records(path: str) -> list[Record]:
    from . import vpdq
    from .video import hash_video_file

    hashes = hash_video_file(path)
    return [
        {"path": path, "signal_type": "md5", "hash": hashes.md5},
        {"path": path, "signal_type": "vpdq", "hash": vpdq.to_json_list(hashes.vpdq)},
    ]


def human_line(record: Record) -> str:
    """One readable line for a record; a vPDQ record gets one line per hashed frame."""
    path, kind, value = record["path"], record["signal_type"], record["hash"]
    if kind == "vpdq":
        return "\n".join(
            f"{path}  vpdq  {f['hash']}  quality {f['quality']}  frame {f['frame_number']} at {f['timestamp']:.3f}s"
            + _quality_note(f["quality"])
            for f in value
        ) or f"{path}  vpdq  (no frames)"
    if kind != "pdq":
        return f"{path}  {kind}  {value}"
    notes = ""
    if record.get("orientation") == "raw":
        notes += "  (as stored, EXIF rotation ignored)"
    if "transform" in record:
        notes += f"  ({record['transform'].replace('_', ' ')})"
    return f"{path}  pdq  {value}  quality {record['quality']}{notes}{_quality_note(record['quality'])}"


def _quality_note(quality: int) -> str:
    return "  (low quality: matches may be unreliable)" if quality < LOW_QUALITY else ""


def _error(path: str, message: str, stream: TextIO | None = None) -> None:
    print(f"{path}: {message}", file=stream or sys.stderr, flush=True)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else "no details"
