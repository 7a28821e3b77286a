"""Fingerprint a video file in CPython: MD5 of its bytes and vPDQ of its frames.

Decoding uses PyAV (FFmpeg), imported only when a video is hashed, so the rest of pyhash stays
standard-library only. Decoding mirrors the vPDQ reference (`vpdq/cpp/hashing/filehasher.cpp`,
`ffmpegwrapper.cpp`) so our frame hashes equal the `vpdq` package's:

* the first video stream; audio and every other stream are never decoded (PyAV's demuxer
  discards their packets);
* frame rate = the stream's average rate, else its real base rate; frames are numbered in
  decoder output order and sampled by `pyhash.vpdq.VpdqBuilder` exactly as the reference does;
* each sampled frame converted to RGB24 at the stream's coded size with swscale's AREA flag,
  BT.601 coefficients and the range implied by the pixel format, ignoring colour tags,
  as the reference's `sws_getContext` does.
If a stream reports no frame rate, frames are sampled by their presentation time (`frame.time`).
"""

from __future__ import annotations

import os
from typing import Any, List, NamedTuple, Optional, Union

from .errors import DecodeError, ImageTooSmallError, UnreadableFileError, UnsupportedFormatError
from .md5 import md5_file
from .vpdq import MIN_FRAME_SIDE, VpdqBuilder, VpdqFeature

__all__ = ["VideoHashes", "hash_video_file", "vpdq_video_file"]

PathLike = Union[str, "os.PathLike[str]"]


class VideoHashes(NamedTuple):
    md5: str  # lowercase hex of the file's bytes
    vpdq: List[VpdqFeature]


def hash_video_file(
    path: PathLike, *, seconds_per_hash: float = 1.0, prune_distance: Optional[int] = None
) -> VideoHashes:
    """MD5 and vPDQ of the video at `path`. Raises a `pyhash.errors.PyhashError` subclass."""
    try:
        # Read once for MD5 (constant memory), then again by FFmpeg: the demuxer seeks
        # (e.g. to an index at the end), so one pass could not feed both in order.
        md5 = md5_file(path)
    except IsADirectoryError:
        raise UnreadableFileError("This is a folder, not a video file.") from None
    except OSError as error:
        raise UnreadableFileError(f"The file could not be read: {error.strerror or error}.") from None
    return VideoHashes(md5, vpdq_video_file(path, seconds_per_hash=seconds_per_hash, prune_distance=prune_distance))


def vpdq_video_file(
    path: PathLike, *, seconds_per_hash: float = 1.0, prune_distance: Optional[int] = None
) -> List[VpdqFeature]:
    """vPDQ features of the video at `path`, one per sampled frame, in frame order."""
    av = _import_av()
    try:
        container = av.open(os.fspath(path), mode="r")
    except IsADirectoryError:
        raise UnreadableFileError("This is a folder, not a video file.") from None
    except OSError as error:  # includes av's FileNotFoundError/PermissionError
        raise UnreadableFileError(f"The file could not be read: {error.strerror or error}.") from None
    except av.FFmpegError:
        raise UnsupportedFormatError("This file is not a video pyhash can read, or its header is damaged.") from None
    with container:
        if not container.streams.video:
            raise UnsupportedFormatError("This file has no video track.")
        stream = container.streams.video[0]
        # Slice threads, as the reference uses: with frame threads FFmpeg reports no error for
        # a truncated file and we would silently hash only its first part.
        stream.thread_type = "SLICE"
        builder = VpdqBuilder(_frame_rate(stream), seconds_per_hash=seconds_per_hash, prune_distance=prune_distance)
        width, height = stream.codec_context.width, stream.codec_context.height
        if width < MIN_FRAME_SIDE or height < MIN_FRAME_SIDE:
            raise ImageTooSmallError(
                f"The video is {width}x{height} pixels; vPDQ needs at least {MIN_FRAME_SIDE} on each side.",
                width=width,
                height=height,
            )
        try:
            for frame in container.decode(stream):
                timestamp = frame.time
                if timestamp is None and builder.frame_rate is None:
                    raise DecodeError("The video gives neither a frame rate nor frame times to sample by.")
                if not builder.wants_frame(timestamp):
                    builder.skip_frame(timestamp)
                    continue
                builder.add_frame(_rgb24(frame, width, height), width, height, 3, timestamp)
        except av.FFmpegError:
            raise DecodeError(
                f"The video is damaged or cut short: decoding failed after {builder.frames_seen} frames."
            ) from None
    if builder.frames_seen == 0:
        raise DecodeError("The video has no frames that could be decoded.")
    return builder.result()


def _import_av() -> Any:
    try:
        import av  # PyAV: bundles FFmpeg, ships wheels; only needed here
    except ImportError as error:
        raise ImportError("Hashing videos needs PyAV: pip install 'kalkan[decode]' (or av).") from error
    return av


def _frame_rate(stream: Any) -> Optional[float]:
    """The reference's rate: avg_frame_rate, else r_frame_rate; None when neither is known."""
    for rate in (stream.average_rate, stream.base_rate):
        if rate:  # Fractions; None or 0 when the container doesn't say
            return float(rate)
    return None


def _rgb24(frame: Any, width: int, height: int) -> bytes:
    """The frame as tightly packed RGB24 rows, converted the way the reference converts."""
    # Full-range ("J") YUV formats are the only ones old swscale treats as full range.
    full_range = frame.format.name.startswith("yuvj")
    rgb = frame.reformat(
        width=width,
        height=height,
        format="rgb24",
        interpolation="AREA",
        src_colorspace="ITU601",
        src_color_range="JPEG" if full_range else "MPEG",
    )
    plane = rgb.planes[0]
    row = width * 3
    view = memoryview(plane)
    if plane.line_size == row:
        return bytes(view[: row * height])
    # Rows are padded for alignment: drop the padding, PDQ wants packed pixels.
    stride = plane.line_size
    return b"".join(view[y * stride : y * stride + row] for y in range(height))
