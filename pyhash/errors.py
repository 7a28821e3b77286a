"""Errors pyhash raises for input it cannot fingerprint.

Every message is a plain sentence a person can act on; it never names the file (the caller
knows which file it passed, and the CLI prints `path: message`). All errors derive from
`PyhashError`, a `ValueError`, so a caller can catch the lot with one clause.

    PyhashError (ValueError)
    ├── DecodeError                 the input cannot be turned into pixels
    │   ├── UnreadableFileError     missing file, no permission, a folder, ...
    │   └── UnsupportedFormatError  not an image (or video) format pyhash can read
    ├── ImageTooLargeError          more pixels than the documented cap (decompression bombs)
    └── ImageTooSmallError          under 5 pixels on a side: PDQ has nothing to fingerprint
"""

from __future__ import annotations


class PyhashError(ValueError):
    """Base class: the input can't be fingerprinted. `str(error)` is the person-facing message."""


class DecodeError(PyhashError):
    """The input could not be decoded into pixels (damaged, truncated, empty, unreadable)."""


class UnreadableFileError(DecodeError):
    """The file could not be read at all: it is missing, a folder, or not readable by us."""


class UnsupportedFormatError(DecodeError):
    """The data is not in a format pyhash recognises (e.g. a text file renamed .jpg)."""


class ImageTooLargeError(PyhashError):
    """The image declares more pixels than pyhash will decode (checked before decoding)."""

    def __init__(self, message: str, *, width: int | None = None, height: int | None = None,
                 pixels: int | None = None, limit: int) -> None:
        super().__init__(message)
        self.width = width
        self.height = height
        self.pixels = pixels if pixels is not None or width is None or height is None else width * height
        self.limit = limit


class ImageTooSmallError(PyhashError):
    """The image is too small for PDQ (which gives every such image the same all-zero hash)."""

    def __init__(self, message: str, *, width: int, height: int) -> None:
        super().__init__(message)
        self.width = width
        self.height = height
