"""Decode image files into the pixels a person sees, and PDQ-hash them (CPython only: Pillow).

The browser hashes what it displays (canvas `getImageData`), so this module reproduces what a
browser shows, and a platform that hashes the same file with `pyhash` gets the same hash:

* Formats: JPEG (incl. MPO), PNG/APNG, GIF, WebP, AVIF, BMP, ICO, TIFF. Other formats Pillow
  knows (EPS, PSD, FITS, ...) are refused: they are not how photos are shared, and some (EPS)
  would run external programs on untrusted input. Animated files: the first frame.
* Transparency (alpha channels, palette/tRNS transparency) is composited onto white, the
  usual page background, so a transparent pixel hashes as white whatever colour it stores.
* Colour: an embedded ICC profile is applied to convert to sRGB, as colour-managed browsers
  do; if the profile is unusable, Pillow's plain conversion is used. CMYK JPEGs: Pillow already
  undoes Adobe's inverted CMYK; with no profile we use Pillow's naive CMYK->RGB, like browsers.
* Deep images are scaled, not clipped, to 8 bits (Pillow's own `convert("L")` clips, which
  turns a 16-bit PNG white): 16-bit samples keep their high byte, as browsers and Pillow's
  16-bit RGB PNG reader do. See `_to_8bit` for 32-bit integer and float images.
* EXIF orientation (tag 274, values 2..8) is applied (`ImageOps.exif_transpose` semantics):
  the "displayed" hash is of the upright image. For orientations other than 1 we also hash the
  stored ("raw") pixels, because a platform that ignores EXIF sees the image that way.
* Size: at most `MAX_PIXELS` (100 megapixels), checked from the header before any pixel is
  decoded, so a decompression bomb is refused without allocating it.
* Damaged input is refused, never partially hashed: a truncated file (Pillow's default,
  `ImageFile.LOAD_TRUNCATED_IMAGES` stays False) raises `DecodeError` rather than hashing
  the grey fill Pillow would give the missing rows.
* Images under 5 pixels on a side raise `ImageTooSmallError` from the hashing functions: PDQ
  gives all of them the same all-zero hash, which identifies nothing.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import BinaryIO, Literal, NamedTuple, Union

from PIL import Image, ImageFile, UnidentifiedImageError

from . import pdq
from .errors import (
    DecodeError,
    ImageTooLargeError,
    ImageTooSmallError,
    PyhashError,
    UnreadableFileError,
    UnsupportedFormatError,
)

try:  # Pillow wheels ship LittleCMS; a build without it just skips colour management.
    from PIL import ImageCms
except ImportError:  # pragma: no cover
    ImageCms = None  # type: ignore[assignment]

MAX_PIXELS = 100_000_000
"""Largest image (width * height) we decode: 100 megapixels, beyond any phone camera."""

FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "AVIF", "BMP", "DIB", "ICO", "TIFF")
"""Pillow format names we open. Everything else is `UnsupportedFormatError`."""

MIN_DIMENSION = pdq.MIN_HASHABLE_DIM

Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, BinaryIO, Image.Image]
Orientation = Literal["displayed", "raw"]

# EXIF orientation -> the transposition that makes the stored pixels upright (as exif_transpose).
_ORIENTATION_FIX = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_EXIF_ORIENTATION_TAG = 0x0112


class DecodedImage(NamedTuple):
    """RGB pixels, 3 bytes each, row-major, no padding: what `pdq.hash_pixels(..., 3)` takes."""

    pixels: bytes
    width: int
    height: int


@dataclass(frozen=True)
class ImageHashResult:
    """One fingerprint of a photo.

    `orientation` is "displayed" (EXIF applied) or "raw" (pixels as stored). `transform` is
    "original", or with `dihedral=True` one of `pdq.DIHEDRAL_NAMES`: the hash of the displayed
    image rotated/flipped that way (for finding rotated or mirrored copies).
    `width`/`height` are those of the hashed image before any dihedral transform.
    """

    signal_type: Literal["pdq"]
    hash: str
    quality: int
    orientation: Orientation
    width: int
    height: int
    transform: str = "original"

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


# ---------------------------------------------------------------------------------------------
# Public API


def decode_image(source: Source, *, orientation: Orientation = "displayed") -> DecodedImage:
    """Decode `source` to RGB pixels as displayed (or as stored, with orientation="raw").

    `source` is a path, the file's bytes, a binary file object, or an already opened Pillow
    image (any mode). Raises `DecodeError` (and subclasses) or `ImageTooLargeError`.
    """
    rgb, exif_orientation = _decode_rgb(source)
    if orientation == "displayed":
        rgb = _apply_orientation(rgb, exif_orientation)
    elif orientation != "raw":
        raise ValueError(f"orientation must be 'displayed' or 'raw', got {orientation!r}")
    return DecodedImage(rgb.tobytes(), rgb.width, rgb.height)


def hash_image_file(source: Source, *, dihedral: bool = False) -> list[ImageHashResult]:
    """PDQ hashes of an image: [displayed] or, when EXIF rotates/flips it, [displayed, raw].

    With `dihedral=True` the 7 other rotations/flips of the displayed image follow the displayed
    hash: the reference's dihedral hashes, from the same DCT (nearly free). They approximate the
    hash of really rotated pixels (6 bits off at 1600x1004, ~25 at 400x251), which is why the
    "raw" hash is computed from the stored pixels instead. Raises `ImageTooSmallError` for images
    under 5 pixels on a side, and the errors of `decode_image` for input that cannot be decoded.
    """
    raw, exif_orientation = _decode_rgb(source)
    if raw.width < MIN_DIMENSION or raw.height < MIN_DIMENSION:
        raise ImageTooSmallError(
            f"The image is too small to fingerprint ({raw.width}x{raw.height} pixels; "
            f"PDQ needs at least {MIN_DIMENSION}x{MIN_DIMENSION}).",
            width=raw.width,
            height=raw.height,
        )
    displayed = _apply_orientation(raw, exif_orientation)
    if dihedral:
        d = pdq.dihedral_pixels(displayed.tobytes(), displayed.width, displayed.height, 3)
        results = [
            ImageHashResult("pdq", d.hashes[name], d.quality, "displayed", displayed.width, displayed.height, name)
            for name in pdq.DIHEDRAL_NAMES
        ]
    else:
        results = [_hash(displayed, "displayed")]
    if exif_orientation in _ORIENTATION_FIX:
        results.append(_hash(raw, "raw"))
    return results


def exif_orientation(source: Source) -> int:
    """The EXIF orientation (1..8) the file declares; 1 when absent or invalid."""
    with _opened(source) as im:
        return _read_orientation(im)


# ---------------------------------------------------------------------------------------------
# Opening: map every way a file can fail onto one plain sentence.


def _hash(im: Image.Image, orientation: Orientation) -> ImageHashResult:
    h = pdq.hash_pixels(im.tobytes(), im.width, im.height, 3)
    return ImageHashResult("pdq", h.hash, h.quality, orientation, im.width, im.height)


def _decode_rgb(source: Source) -> tuple[Image.Image, int]:
    """Decode to an RGB image in stored orientation, plus the EXIF orientation (1..8)."""
    with _opened(source) as im:
        _load(im)
        orientation = _read_orientation(im)  # after load: PNG's eXIf chunk may follow the pixels
        try:
            return _to_display_rgb(im), orientation
        except PyhashError:
            raise
        except Exception as e:  # a mode/profile Pillow can't convert: still a plain message
            raise DecodeError(f"The image could not be converted to colour pixels ({_detail(e)}).") from e


@contextmanager
def _opened(source: Source) -> Iterator[Image.Image]:
    """Open `source` with Pillow (header only) and enforce the pixel cap before decoding."""
    if isinstance(source, Image.Image):
        _check_size(*source.size)
        yield source
        return
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise DecodeError("The file is empty (0 bytes).")
        with _open_pillow(io.BytesIO(data)) as im:
            yield im
        return
    if hasattr(source, "read"):
        # Read it all: Pillow needs to seek, and an image file fits in memory by design.
        try:
            data = source.read()  # type: ignore[union-attr]
        except OSError as e:
            raise UnreadableFileError(f"The file could not be read ({_detail(e)}).") from e
        with _opened(data) as im:
            yield im
        return
    with _open_path(source) as f, _open_pillow(f) as im:
        yield im


@contextmanager
def _open_path(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError as e:
        raise UnreadableFileError("The file does not exist.") from e
    except IsADirectoryError as e:
        raise UnreadableFileError("This is a folder, not a file.") from e
    except PermissionError as e:
        raise UnreadableFileError("Permission denied: this file may not be read.") from e
    except OSError as e:
        raise UnreadableFileError(f"The file could not be read ({_detail(e)}).") from e
    with f:
        if os.fstat(f.fileno()).st_size == 0:
            raise DecodeError("The file is empty (0 bytes).")
        yield f


_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


@contextmanager
def _open_pillow(fp: BinaryIO) -> Iterator[Image.Image]:
    try:
        with warnings.catch_warnings():
            # Pillow warns above its own limit (~89 MP), below our 100 MP cap; we check ourselves.
            # We leave Image.MAX_IMAGE_PIXELS alone: it is process-wide, and other code may rely
            # on it. (catch_warnings is process-wide too, but only for this short header parse.)
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(fp, formats=FORMATS)
    except Image.DecompressionBombError as e:
        # Pillow refuses at open (before decoding) beyond twice its limit; its message has the
        # pixel count but the image object (and so its dimensions) is not available to us.
        m = _BOMB_PIXELS.search(str(e))
        pixels = int(m.group(1)) if m else None
        size = f"{pixels:,} pixels" if pixels else "far more pixels than allowed"
        raise ImageTooLargeError(
            f"The image is too large to process ({size}; the limit is {MAX_PIXELS:,} pixels).",
            pixels=pixels,
            limit=MAX_PIXELS,
        ) from e
    except UnidentifiedImageError as e:
        raise UnsupportedFormatError(
            "This file is not an image in a format pyhash reads (JPEG, PNG, GIF, WebP, AVIF, BMP, ICO, TIFF)."
        ) from e
    except Exception as e:  # plugins raise assorted errors on malformed headers
        raise _damaged(e) from e
    with im:
        _check_size(*im.size)
        yield im


def _check_size(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise ImageTooLargeError(
            f"The image is too large to process ({width}x{height} = {width * height:,} pixels; "
            f"the limit is {MAX_PIXELS:,} pixels).",
            width=width,
            height=height,
            limit=MAX_PIXELS,
        )


def _load(im: Image.Image) -> None:
    """Decode the pixels of the current (first) frame, refusing truncated or damaged data."""
    # Never hash a partial image: a hash of grey-filled rows would match nothing or, worse,
    # other damaged files. Guard against a caller having flipped Pillow's global switch.
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError("pyhash.images requires PIL.ImageFile.LOAD_TRUNCATED_IMAGES to be False")
    try:
        im.load()
    except Exception as e:  # decoders raise OSError, SyntaxError, ValueError, struct.error, ...
        raise _damaged(e) from e


def _damaged(e: Exception) -> DecodeError:
    if "truncated" in str(e).lower() or isinstance(e, EOFError):
        return DecodeError("The image file is incomplete (cut off before the end), so it cannot be fingerprinted.")
    return DecodeError(f"The image data is damaged and cannot be decoded ({_detail(e)}).")


def _read_orientation(im: Image.Image) -> int:
    # Metadata is advisory: a corrupt EXIF block must not stop us hashing good pixels.
    try:
        value = im.getexif().get(_EXIF_ORIENTATION_TAG, 1)
    except Exception:
        return 1
    return value if isinstance(value, int) and value in _ORIENTATION_FIX else 1


def _apply_orientation(im: Image.Image, orientation: int) -> Image.Image:
    method = _ORIENTATION_FIX.get(orientation)
    return im if method is None else im.transpose(method)


def _detail(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:200]


# ---------------------------------------------------------------------------------------------
# Converting any Pillow mode to the RGB a browser would show.


def _to_display_rgb(im: Image.Image) -> Image.Image:
    icc = im.info.get("icc_profile")
    im = _to_8bit(im)
    # Palette/grey/RGB images can carry transparency without an alpha band (tRNS, GIF).
    if im.mode in ("P", "PA", "RGBa") or (im.mode in ("1", "L", "RGB") and "transparency" in im.info):
        im = im.convert("RGBA")
    alpha = im.getchannel("A") if im.mode in ("LA", "RGBA") else None
    if alpha is not None:
        im = im.convert("L" if im.mode == "LA" else "RGB")  # keep grey as grey for grey ICC profiles
    elif im.mode == "1":
        im = im.convert("L")
    elif im.mode not in ("L", "RGB", "CMYK", "LAB"):
        im = im.convert("RGB")  # YCbCr, HSV, RGBX: Pillow's conversions are exact enough
    rgb = _colour_manage(im, icc)
    if alpha is not None:
        if alpha.getextrema() == (255, 255):
            return rgb  # opaque: skip the composite
        background = Image.new("RGB", rgb.size, (255, 255, 255))
        background.paste(rgb, mask=alpha)  # out = colour * a + white * (1 - a)
        return background
    return rgb


def _to_8bit(im: Image.Image) -> Image.Image:
    """Scale 16-bit, 32-bit integer and float images to 8 bits the way a viewer shows them."""
    if im.mode.startswith("I;16"):
        # 16-bit samples: keep the high byte (v // 256), as browsers' 16-bit PNG decoding does.
        return im.convert("I").point(lambda v: v / 256).convert("L")
    if im.mode == "I":
        # Pillow uses "I" for 32-bit integer files (TIFF) and for 8/16-bit data converted in
        # memory; no header says which range is meant, so pick the smallest that fits:
        # up to 255 as is, up to 65535 as 16-bit, else full 32-bit. Negative values are black.
        high = im.getextrema()[1]
        if high <= 255:
            return im.convert("L")
        scale = 256 if high <= 65535 else 1 << 24
        return im.point(lambda v: v / scale).convert("L")
    if im.mode == "F":
        # Float images are 0..1 by convention (TIFF, HDR tools), but Pillow's own F images
        # (e.g. from convert("F")) are 0..255. An image whose values all lie in 0..1 is
        # treated as 0..1; otherwise 0..255, clipped (a 0..255 image with no value above 1 is
        # black either way).
        high = im.getextrema()[1]
        if high <= 1.0:
            return im.point(lambda v: v * 255 + 0.5).convert("L")
        return im.point(lambda v: v + 0.5).convert("L")  # F->L truncates; +0.5 rounds
    return im


_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")) if ImageCms is not None else None


def _colour_manage(im: Image.Image, icc: bytes | None) -> Image.Image:
    """`im` (L, RGB, CMYK or LAB) to sRGB through its embedded ICC profile, if it has a usable one."""
    if icc and ImageCms is not None:
        try:
            profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(im, profile, _SRGB, outputMode="RGB")
        except Exception:
            # Profiles are often broken or don't match the pixel mode (an RGB profile on a
            # grey image): fall through to Pillow's conversion, as browsers ignore such profiles.
            pass
    return im.convert("RGB")
