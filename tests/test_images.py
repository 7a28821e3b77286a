"""pyhash.images: decoding every kind of image file to the pixels a browser shows, then PDQ.

Real files only: the shared corpus, plus files written here with Pillow (or by hand, for what
Pillow can't write: 16-bit RGB PNGs, a decompression-bomb PNG). Distances printed with -s.
"""

from __future__ import annotations

import io
import struct
import time
import tracemalloc
import warnings
import zlib
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import numpy as np
import pdqhash
import pytest
from PIL import Image, ImageCms, ImageOps

from pyhash import images, pdq
from pyhash.errors import (
    DecodeError,
    ImageTooLargeError,
    ImageTooSmallError,
    PyhashError,
    UnreadableFileError,
    UnsupportedFormatError,
)
from pyhash.images import decode_image, hash_image_file

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "images"
MODES = CORPUS / "modes"
ORIGINAL = MODES / "original.jpg"


# ---------------------------------------------------------------------------------------------
# helpers


@lru_cache(maxsize=None)
def hashes_of(path: Path) -> tuple[images.ImageHashResult, ...]:
    return tuple(hash_image_file(path))


def displayed_hash(path: Path) -> str:
    return hashes_of(path)[0].hash


def hash_rgb(im: Image.Image) -> str:
    im = im.convert("RGB")
    return pdq.hash_pixels(im.tobytes(), im.width, im.height, 3).hash


def native_hash(pixels: bytes, width: int, height: int) -> tuple[str, int]:
    """The C++ reference (pdqhash) on the same RGB pixels; its bit vector is bit 255 first."""
    rgb = np.frombuffer(pixels, dtype=np.uint8).reshape(height, width, 3)
    bits, quality = pdqhash.compute(np.ascontiguousarray(rgb))
    return format(int("".join("1" if b else "0" for b in bits), 2), "064x"), int(quality)


def as_image(decoded: images.DecodedImage) -> Image.Image:
    return Image.frombytes("RGB", (decoded.width, decoded.height), decoded.pixels)


def save(im: Image.Image, path: Path, **params: object) -> Path:
    im.save(path, **params)
    return path


def png_bytes(width: int, height: int, bit_depth: int, colour_type: int, rows: Iterable[bytes]) -> bytes:
    """A PNG written by hand (rows without filter byte), for what Pillow can't write."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(b"\x00" + row) for row in rows) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    """The corpus photo, small enough that every per-mode test is quick (400x251)."""
    with Image.open(ORIGINAL) as im:
        return im.convert("RGB").resize((400, 251), Image.Resampling.LANCZOS)


# ---------------------------------------------------------------------------------------------
# Every Pillow mode and format


MODE_FILES = sorted(p.name for p in MODES.iterdir()) if MODES.is_dir() else []


@pytest.mark.parametrize("name", MODE_FILES)
def test_corpus_modes_hash_close_to_the_original(name: str) -> None:
    # The corpus holds the photo converted to each Pillow mode and saved (JPEG/PNG/WebP, some
    # lossy). Seen: 0 bits (L, LA, RGBA, RGB, I, LAB) or 2 bits (1, CMYK, F, HSV, P, PA, YCbCr).
    # The bound 4 leaves room for lossy re-encoding but catches real decoding mistakes, which
    # cost ~128 bits (e.g. a 16-bit image clipped to white, or CMYK left inverted); the
    # match threshold is 31.
    distance = pdq.distance(displayed_hash(MODES / name), displayed_hash(ORIGINAL))
    print(f"\n{name}: {distance} bits from original.jpg")
    assert distance <= 4
    assert hashes_of(MODES / name)[0].quality == 100


# In-memory images in each mode (what a caller handing us a Pillow image may have), compared
# with the RGB photo. Exact conversions give 0 bits; "1" is dithered (6 bits seen).
@pytest.mark.parametrize(
    "mode,bound",
    [("1", 10), ("L", 0), ("LA", 0), ("P", 2), ("PA", 2), ("RGB", 0), ("RGBA", 0), ("RGBa", 0), ("RGBX", 0),
     ("CMYK", 0), ("YCbCr", 2), ("HSV", 2), ("LAB", 2), ("I", 0), ("F", 0)],
)  # fmt: skip
def test_every_pillow_mode_in_memory(photo: Image.Image, mode: str, bound: int) -> None:
    decoded = decode_image(photo.convert(mode))
    distance = pdq.distance(hash_rgb(as_image(decoded)), hash_rgb(photo))
    print(f"\n{mode}: {distance} bits")
    assert distance <= bound


def test_16_bit_grey_png_is_scaled_not_clipped(photo: Image.Image, tmp_path: Path) -> None:
    grey = np.asarray(photo.convert("L"), dtype=np.uint16)
    wide = Image.fromarray(grey * 256 + 200)  # full 16-bit range: high byte = grey, low byte 200
    path = save(wide, tmp_path / "grey16.png")
    with Image.open(path) as im:
        assert im.mode == "I;16"
        # Pillow's own conversion clips to 255: nearly all white. That is what we must not do.
        assert np.asarray(im.convert("L")).mean() > 250
    decoded = as_image(decode_image(path))
    assert decoded.tobytes() == photo.convert("L").convert("RGB").tobytes()  # high byte exactly


def test_16_bit_rgb_png_is_scaled(photo: Image.Image, tmp_path: Path) -> None:
    rgb16 = np.asarray(photo, dtype=np.uint16) * 257
    rows = (row.astype(">u2").tobytes() for row in rgb16)
    path = tmp_path / "rgb16.png"
    path.write_bytes(png_bytes(photo.width, photo.height, 16, 2, rows))
    assert as_image(decode_image(path)).tobytes() == photo.tobytes()


@pytest.mark.parametrize("mode", ["I;16", "I;16B"])
def test_16_bit_tiff(photo: Image.Image, tmp_path: Path, mode: str) -> None:
    grey = np.asarray(photo.convert("L"), dtype=np.uint16) * 257
    # (Pillow's convert("I;16B") would clip to 255: build the big-endian image from bytes.)
    dtype = ">u2" if mode == "I;16B" else "<u2"
    path = save(Image.frombytes(mode, photo.size, grey.astype(dtype).tobytes()), tmp_path / "g.tif")
    with Image.open(path) as im:
        assert im.mode == mode
    assert as_image(decode_image(path)).tobytes() == photo.convert("L").convert("RGB").tobytes()


def test_32_bit_integer_tiff_in_16_bit_range(photo: Image.Image, tmp_path: Path) -> None:
    grey = np.asarray(photo.convert("L"), dtype=np.int32) * 257
    path = save(Image.fromarray(grey), tmp_path / "i32.tif")
    with Image.open(path) as im:
        assert im.mode == "I"
    assert as_image(decode_image(path)).tobytes() == photo.convert("L").convert("RGB").tobytes()


@pytest.mark.parametrize("scale", [1 / 255, 1.0])
def test_float_tiff_0_to_1_and_0_to_255(photo: Image.Image, tmp_path: Path, scale: float) -> None:
    grey = np.asarray(photo.convert("L"), dtype=np.float32)
    path = save(Image.fromarray(grey * np.float32(scale)), tmp_path / "f.tif")
    with Image.open(path) as im:
        assert im.mode == "F"
    got = np.asarray(as_image(decode_image(path)).convert("L"), dtype=int)
    assert np.abs(got - grey.astype(int)).max() <= 1  # float rounding only


@pytest.mark.parametrize("mode,fmt", [("CMYK", "JPEG"), ("CMYK", "TIFF"), ("LAB", "TIFF"), ("YCbCr", "TIFF"),
                                      ("LA", "PNG"), ("P", "GIF"), ("P", "BMP"), ("RGB", "WEBP"), ("RGB", "AVIF"),
                                      ("RGBA", "TIFF"), ("RGB", "ICO")])  # fmt: skip
def test_file_formats_and_modes(photo: Image.Image, tmp_path: Path, mode: str, fmt: str) -> None:
    src = photo.resize((256, 161)) if fmt == "ICO" else photo
    params: dict[str, object] = {"sizes": [(256, 161)]} if fmt == "ICO" else {}
    path = save(src.convert(mode), tmp_path / f"x.{fmt.lower()}", format=fmt, **params)
    distance = pdq.distance(hash_image_file(path)[0].hash, hash_rgb(src))
    print(f"\n{mode} {fmt}: {distance} bits")
    assert distance <= 6  # lossy formats (JPEG, WebP, AVIF, GIF's palette) move a few bits


def test_cmyk_jpeg_adobe_inversion_is_undone() -> None:
    # The corpus CMYK JPEG carries Adobe's marker (inverted CMYK); left inverted it would hash
    # as a negative, ~256 bits away. Pillow undoes the inversion; we rely on that.
    with Image.open(MODES / "CMYK.jpg") as im:
        assert im.mode == "CMYK" and im.info.get("adobe")
    assert pdq.distance(displayed_hash(MODES / "CMYK.jpg"), displayed_hash(ORIGINAL)) <= 4


def test_unsupported_mode_is_a_decode_error(photo: Image.Image) -> None:
    with pytest.raises(DecodeError, match="could not be converted"):
        decode_image(photo.convert("LA").convert("La"))


# ---------------------------------------------------------------------------------------------
# Transparency: composited onto white


def test_alpha_is_composited_onto_white() -> None:
    rgba = Image.new("RGBA", (4, 1))
    rgba.putdata([(0, 0, 0, 0), (0, 0, 0, 255), (200, 100, 0, 128), (10, 20, 30, 255)])
    pixels = list(as_image(decode_image(rgba)).get_flattened_data())
    assert pixels[0] == (255, 255, 255)  # fully transparent black -> white
    assert pixels[1] == (0, 0, 0)
    # colour * a + white * (1 - a), a = 128/255
    expected = tuple(round(c * 128 / 255 + 255 * (1 - 128 / 255)) for c in (200, 100, 0))
    assert all(abs(a - b) <= 1 for a, b in zip(pixels[2], expected))
    assert pixels[3] == (10, 20, 30)


def test_transparent_photo_hashes_as_if_on_white(photo: Image.Image, tmp_path: Path) -> None:
    # Hide half the photo behind alpha 0 with garbage colour; expect the photo pasted on white.
    rgba = photo.convert("RGBA")
    mask = Image.new("L", photo.size, 255)
    mask.paste(0, (0, 0, photo.width // 2, photo.height))
    rgba.putalpha(mask)
    garbage = Image.effect_noise(photo.size, 80).convert("RGB")
    stored = Image.composite(rgba, garbage.convert("RGBA"), mask)  # hidden half: noise colours
    stored.putalpha(mask)
    expected = Image.new("RGB", photo.size, "white")
    expected.paste(photo, mask=mask)
    for fmt in ("PNG", "WEBP", "TIFF"):
        params: dict[str, object] = {"lossless": True} if fmt == "WEBP" else {}
        path = save(stored, tmp_path / f"half.{fmt.lower()}", format=fmt, **params)
        assert as_image(decode_image(path)).tobytes() == expected.tobytes(), fmt


def test_palette_and_trns_transparency_become_white(tmp_path: Path) -> None:
    p = Image.new("P", (6, 6), 1)
    p.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    p.paste(0, (0, 0, 3, 6))  # left half index 0 = black, declared transparent
    for name in ("p.png", "p.gif"):
        path = save(p, tmp_path / name, transparency=0)
        pixels = as_image(decode_image(path))
        assert pixels.getpixel((0, 0)) == (255, 255, 255), name
        assert pixels.getpixel((5, 5)) == (255, 0, 0), name
    # tRNS on an RGB PNG: one colour is transparent
    rgb = Image.new("RGB", (6, 6), (0, 255, 0))
    rgb.paste((1, 2, 3), (0, 0, 3, 6))
    pixels = as_image(decode_image(save(rgb, tmp_path / "trns.png", transparency=(1, 2, 3))))
    assert pixels.getpixel((0, 0)) == (255, 255, 255) and pixels.getpixel((5, 5)) == (0, 255, 0)


# ---------------------------------------------------------------------------------------------
# Animation: first frame


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_animated_files_hash_their_first_frame(photo: Image.Image, tmp_path: Path, fmt: str) -> None:
    first = photo.quantize(256).convert("RGB") if fmt == "GIF" else photo
    second = ImageOps.invert(photo)
    path = save(first, tmp_path / f"anim.{fmt.lower()}", format=fmt, save_all=True, append_images=[second],
                duration=100, loop=0, **({"lossless": True} if fmt == "WEBP" else {}))  # fmt: skip
    with Image.open(path) as im:
        assert getattr(im, "n_frames", 1) == 2
    assert pdq.distance(hash_image_file(path)[0].hash, hash_rgb(first)) <= 2


# ---------------------------------------------------------------------------------------------
# Colour management


def test_embedded_icc_profile_is_applied(photo: Image.Image, tmp_path: Path) -> None:
    with Image.open(CORPUS / "misc" / "c.png") as im:
        p3 = im.info["icc_profile"]  # a Display P3 profile
    path = save(photo, tmp_path / "p3.png", icc_profile=p3)
    expected = ImageCms.profileToProfile(
        photo, ImageCms.ImageCmsProfile(io.BytesIO(p3)), ImageCms.createProfile("sRGB"), outputMode="RGB"
    )
    decoded = as_image(decode_image(path))
    assert decoded.tobytes() == expected.tobytes()
    assert decoded.tobytes() != photo.tobytes()  # the profile did change colours...
    assert pdq.distance(hash_rgb(decoded), hash_rgb(photo)) <= 4  # ...but hardly the hash


def test_broken_icc_profile_is_ignored(photo: Image.Image, tmp_path: Path) -> None:
    path = save(photo, tmp_path / "bad-icc.jpg", quality=95, icc_profile=b"not an ICC profile at all")
    with Image.open(path) as im:
        assert im.info["icc_profile"] == b"not an ICC profile at all"
        plain = im.convert("RGB").tobytes()
    assert decode_image(path).pixels == plain


# ---------------------------------------------------------------------------------------------
# Against the reference on the same pixels, and Pillow's plain decode


@lru_cache(maxsize=1)
def corpus_files() -> list[Path]:
    return sorted(p for p in CORPUS.rglob("*") if p.is_file())


def test_displayed_hash_matches_native_pdqhash_on_the_decoded_pixels() -> None:
    distances = {}
    for path in corpus_files():
        ours = hashes_of(path)[0]
        decoded = decode_image(path)
        reference, quality = native_hash(decoded.pixels, decoded.width, decoded.height)
        if quality == 0:
            continue  # misc/small.jpg is all but black (0..2): median ties make bits arbitrary
        distances[str(path.relative_to(CORPUS))] = pdq.distance(ours.hash, reference)
        assert abs(ours.quality - quality) <= 1
    print("\ndistance to native pdqhash:", distances)
    assert len(distances) >= len(corpus_files()) - 1
    assert max(distances.values()) <= 2


def test_plain_files_decode_exactly_as_pillow_shows_them() -> None:
    # No alpha, no deep samples, no ICC profile: we must add nothing to Pillow's decode.
    checked = 0
    for path in corpus_files():
        with Image.open(path) as im:
            if im.mode not in ("RGB", "L", "P") or "icc_profile" in im.info or "transparency" in im.info:
                continue
            expected = ImageOps.exif_transpose(im).convert("RGB").tobytes()
        assert decode_image(path).pixels == expected, path
        checked += 1
    assert checked >= 20


def test_sources_path_bytes_file_object_agree() -> None:
    path = MODES / "P.png"
    data = path.read_bytes()
    expected = hash_image_file(path)
    assert hash_image_file(str(path)) == expected
    assert hash_image_file(data) == expected
    assert hash_image_file(memoryview(data)) == expected
    assert hash_image_file(io.BytesIO(data)) == expected
    with open(path, "rb") as f:
        assert hash_image_file(f) == expected


# ---------------------------------------------------------------------------------------------
# EXIF orientation


ROTATIONS = {1: None, 3: "rotate180", 6: "rotate270", 8: "rotate90"}


@pytest.mark.parametrize("orientation", ROTATIONS)
def test_corpus_exif_orientation(orientation: int) -> None:
    path = CORPUS / "exif-orientation" / f"exif-rotn-{orientation}.jpg"
    results = hashes_of(path)
    assert [r.orientation for r in results] == (["displayed"] if orientation == 1 else ["displayed", "raw"])
    with Image.open(path) as im:
        assert images.exif_orientation(path) == orientation
        upright = ImageOps.exif_transpose(im).convert("RGB")
    assert decode_image(path).pixels == upright.tobytes()
    assert (results[0].width, results[0].height) == upright.size
    if orientation != 1:
        raw = decode_image(path, orientation="raw")
        assert (raw.width, raw.height) == (4032, 3024)
        assert results[1].hash == pdq.hash_pixels(raw.pixels, raw.width, raw.height, 3).hash
        # Rotating the raw hash by the EXIF rotation gives the displayed one (the dihedral
        # hashes come from one DCT, so a bit or two of rounding differs; 0-2 bits seen).
        rotated = pdq.dihedral_pixels(raw.pixels, raw.width, raw.height, 3).hashes[ROTATIONS[orientation]]
        assert pdq.distance(rotated, results[0].hash) <= 4


def test_corpus_exif_files_are_different_shots() -> None:
    # The four corpus files are separate photos of one desk (different framing), not one
    # picture re-tagged: upright, their hashes are 110-138 bits apart, so they can't be
    # compared with each other. The synthetic test below checks all 8 orientations exactly.
    hashes = [displayed_hash(CORPUS / "exif-orientation" / f"exif-rotn-{n}.jpg") for n in ROTATIONS]
    distances = [pdq.distance(a, b) for i, a in enumerate(hashes) for b in hashes[i + 1 :]]
    print("\npairwise displayed distances of exif-rotn-{1,3,6,8}:", distances)
    assert min(distances) > 31


# EXIF orientation value -> how the upright image is stored (the inverse of what a viewer does).
STORE_AS = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


@pytest.mark.parametrize("orientation", STORE_AS)
@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_every_exif_orientation_gives_the_upright_hash(
    photo: Image.Image, tmp_path: Path, orientation: int, fmt: str
) -> None:
    method = STORE_AS[orientation]
    stored = photo if method is None else photo.transpose(method)
    exif = Image.Exif()
    exif[0x0112] = orientation
    params: dict[str, object] = {"quality": 95} if fmt == "JPEG" else {}
    path = save(stored, tmp_path / f"o{orientation}.{fmt.lower()}", format=fmt, exif=exif, **params)
    results = hash_image_file(path)
    upright = hash_rgb(photo)
    distance = pdq.distance(results[0].hash, upright)
    # PNG is lossless: exact. JPEG re-encodes the rotated pixels: a few bits (0-2 seen).
    assert distance == 0 if fmt == "PNG" else distance <= 4
    if orientation == 1:
        assert len(results) == 1
    else:
        assert [r.orientation for r in results] == ["displayed", "raw"]
        assert pdq.distance(results[1].hash, hash_rgb(stored)) <= (0 if fmt == "PNG" else 4)


@pytest.mark.parametrize("value", [0, 9, 65535])
def test_invalid_exif_orientation_counts_as_upright(photo: Image.Image, tmp_path: Path, value: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = value
    path = save(photo, tmp_path / "odd.png", exif=exif)
    results = hash_image_file(path)
    assert [r.orientation for r in results] == ["displayed"]
    assert results[0].hash == hash_rgb(photo)


def test_dihedral_hashes() -> None:
    results = hash_image_file(ORIGINAL, dihedral=True)
    assert [r.transform for r in results] == list(pdq.DIHEDRAL_NAMES)
    with Image.open(ORIGINAL) as im:
        photo = im.convert("RGB")
    assert results[0].hash == hash_rgb(photo)
    # The reference's dihedral hashes come from the original's DCT, so they only approximate
    # the hash of the rotated pixels (sampling positions differ): 6 bits here at 1600x1004,
    # ~22-26 bits at 400x251. That is why the "raw" EXIF hash is a real hash of the stored pixels.
    distance = pdq.distance(results[2].hash, hash_rgb(photo.transpose(Image.Transpose.ROTATE_180)))
    print(f"\ndihedral rotate180 vs hash of rotated pixels: {distance} bits")
    assert distance <= 12


# ---------------------------------------------------------------------------------------------
# Bad input


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    for source in (path, b""):
        with pytest.raises(DecodeError, match="empty"):
            hash_image_file(source)


@pytest.mark.parametrize("name", ["modes/original.jpg", "misc/wee.jpg", "modes/L.png", "modes/F.webp"])
@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.999])
def test_truncated_files_are_refused(name: str, keep: float) -> None:
    data = (CORPUS / name).read_bytes()
    with pytest.raises(DecodeError) as caught:
        hash_image_file(data[: int(len(data) * keep)])
    # JPEG/PNG say "incomplete"; WebP only reports a broken stream ("damaged")
    assert any(word in str(caught.value) for word in ("incomplete", "damaged", "not an image"))


def test_truncated_jpeg_message(tmp_path: Path) -> None:
    data = ORIGINAL.read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DecodeError, match="incomplete"):
        hash_image_file(path)


def test_text_renamed_jpg(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("Dear diary, this is not a photo.\n" * 20)
    with pytest.raises(UnsupportedFormatError, match="not an image"):
        hash_image_file(path)
    assert issubclass(UnsupportedFormatError, DecodeError)


def test_formats_we_do_not_open(photo: Image.Image, tmp_path: Path) -> None:
    # Pillow reads these, but they aren't how photos are shared (and EPS would run Ghostscript).
    for name in ("x.pcx", "x.ppm", "x.tga"):
        with pytest.raises(UnsupportedFormatError):
            hash_image_file(save(photo, tmp_path / name))
    eps = tmp_path / "x.eps"
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    with pytest.raises(UnsupportedFormatError):
        hash_image_file(eps)


@pytest.mark.parametrize("size", [(1, 1), (4, 4), (4, 100), (100, 4)])
def test_too_small_to_fingerprint(tmp_path: Path, size: tuple[int, int]) -> None:
    path = save(Image.new("RGB", size, "red"), tmp_path / "tiny.png")
    with pytest.raises(ImageTooSmallError, match="too small") as caught:
        hash_image_file(path)
    assert (caught.value.width, caught.value.height) == size
    assert decode_image(path).width == size[0]  # decoding itself is fine: PDQ is what can't


def test_five_pixels_is_enough(tmp_path: Path) -> None:
    im = Image.effect_noise((5, 5), 100).convert("RGB")
    [result] = hash_image_file(save(im, tmp_path / "five.png"))
    assert result.hash != pdq.ZERO_HASH


def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    # 20000x20000 all-black 1-bit PNG: a ~60 KB file that would decode to 400 million pixels.
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bytes(20000, 20000, 1, 0, (bytes(2500) for _ in range(20000))))
    assert path.stat().st_size < 200_000
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ImageTooLargeError) as caught:
            hash_image_file(path)
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < 2 and peak < 20_000_000  # nothing like the 400 MB (or 1.2 GB RGB) decode
    assert "400,000,000 pixels" in str(caught.value) and "100,000,000" in str(caught.value)
    assert caught.value.limit == images.MAX_PIXELS == 100_000_000


def test_just_over_the_cap_names_the_dimensions(tmp_path: Path) -> None:
    # 10001x10000 is within Pillow's own hard limit (~179 MP) but over ours: our check says so.
    path = tmp_path / "big.png"
    path.write_bytes(png_bytes(10001, 10000, 1, 0, (bytes(1251) for _ in range(10000))))
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught_warnings:
        warnings.simplefilter("always")
        with pytest.raises(ImageTooLargeError, match=r"10001x10000 = 100,010,000 pixels.*100,000,000"):
            hash_image_file(path)
    assert time.perf_counter() - start < 2
    # Pillow warns above its own ~89 MP limit; pyhash handles the size itself and stays quiet.
    assert not [w for w in caught_warnings if issubclass(w.category, Image.DecompressionBombWarning)]


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFileError, match="does not exist"):
        hash_image_file(tmp_path / "nope.jpg")
    with pytest.raises(UnreadableFileError, match="folder"):
        hash_image_file(tmp_path)


def test_symlink_loop_is_a_plain_read_error(tmp_path: Path) -> None:
    loop = tmp_path / "loop.jpg"
    loop.symlink_to(loop)
    with pytest.raises(UnreadableFileError, match="could not be read"):
        hash_image_file(loop)


def test_every_error_is_a_value_error_with_a_plain_message() -> None:
    for cls in (DecodeError, UnreadableFileError, UnsupportedFormatError, ImageTooLargeError, ImageTooSmallError):
        assert issubclass(cls, PyhashError) and issubclass(cls, ValueError)


def test_bad_orientation_argument() -> None:
    with pytest.raises(ValueError, match="orientation"):
        decode_image(ORIGINAL, orientation="sideways")  # type: ignore[arg-type]
