"""Images for PDQ conformance: the shared corpus plus generated ones, as RGB pixels.

Shared by tests/test_pdq.py and bench/ so both measure the same pictures.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps

REPO_ROOT = Path(__file__).resolve().parent.parent
CORPUS = REPO_ROOT.parent / "shared" / "corpus" / "images"


@dataclass(frozen=True)
class Sample:
    name: str
    rgb: np.ndarray  # height x width x 3, uint8

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.shape[1], self.rgb.shape[0]

    def rgba_bytes(self) -> bytes:
        h, w, _ = self.rgb.shape
        rgba = np.empty((h, w, 4), dtype=np.uint8)
        rgba[..., :3] = self.rgb
        rgba[..., 3] = 255
        return rgba.tobytes()


def corpus_samples() -> Iterator[Sample]:
    for path in sorted(CORPUS.rglob("*")):
        if not path.is_file():
            continue
        with Image.open(path) as im:
            # Pixels as displayed; the decoder's own choices are tested in test_images.py.
            rgb = ImageOps.exif_transpose(im).convert("RGB")
            yield Sample(f"corpus/{path.relative_to(CORPUS)}", np.asarray(rgb))


def _noise(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _gradient(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    fx, fy = rng.uniform(0.5, 6.0, 2)
    phase = rng.uniform(0, 6.28, 3)
    channels = [
        127.5 + 127.5 * np.sin(2 * np.pi * (fx * x / w + fy * y / h) + p) * ((x + y) / (w + h)) for p in phase
    ]
    return np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.uint8)


def _stripes(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Soft stripes at a random angle, in two random colours."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    angle = rng.uniform(0.1, 1.4)  # avoid the axes and the diagonal: see _bars
    period = rng.uniform(2.5, max(3.0, min(w, h) / 3))
    profile = 0.5 + 0.5 * np.sin(2 * np.pi * (x * np.cos(angle) + y * np.sin(angle)) / period)
    colour_a, colour_b = rng.integers(0, 256, (2, 3))
    return (profile[..., None] * colour_a + (1 - profile[..., None]) * colour_b).astype(np.uint8)


def _bars(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Hard two-colour bars along an axis or the diagonal: mathematically degenerate for PDQ.

    A picture that varies along one axis only has an all-zero 16x16 DCT once PDQ drops the DC
    row and column (diagonal bars zero many coefficients), so every bit at the median is decided
    by rounding noise, in the float32 reference as much as here.
    """
    y, x = np.mgrid[0:h, 0:w]
    period = int(rng.integers(2, max(3, min(w, h) // 3)))
    direction = int(rng.integers(0, 3))
    coordinate = (x, y, x + y)[direction]
    band = (coordinate // period) % 2
    colour_a, colour_b = rng.integers(0, 256, (2, 3))
    return np.where(band[..., None] == 1, colour_a, colour_b).astype(np.uint8)


def _blobs(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    small = rng.integers(0, 256, (max(2, h // 40), max(2, w // 40), 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.BICUBIC))


def _text(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    im = Image.new("RGB", (w, h), tuple(int(v) for v in rng.integers(180, 256, 3)))
    draw = ImageDraw.Draw(im)
    for row in range(0, h, 14):
        words = " ".join("".join(chr(int(c)) for c in rng.integers(97, 123, int(rng.integers(2, 9)))) for _ in range(12))
        draw.text((int(rng.integers(0, 8)), row), words, fill=tuple(int(v) for v in rng.integers(0, 90, 3)))
    return np.asarray(im)


GENERATORS = {"noise": _noise, "gradient": _gradient, "stripes": _stripes, "blobs": _blobs, "text": _text, "bars": _bars}

# Odd and even sizes, both sides of the filter-window steps (multiples of 128) and of 64.
SIZES = [
    (5, 5), (5, 9), (9, 5), (7, 13), (17, 31), (63, 64), (64, 64), (65, 63), (100, 37), (127, 129),
    (128, 128), (129, 255), (256, 257), (300, 200), (333, 777), (640, 480), (1001, 999),
    (1023, 769), (1920, 1080), (1279, 2049), (3000, 4000),
]

PILLOW_MODES = ["1", "L", "LA", "P", "PA", "RGBA", "CMYK", "YCbCr", "HSV", "LAB", "I", "F"]


def generated_samples(seed: int = 20261125) -> Iterator[Sample]:
    rng = np.random.default_rng(seed)
    for w, h in SIZES:
        for kind, make in GENERATORS.items():
            yield Sample(f"{kind} {w}x{h}", make(rng, w, h))
    # Every Pillow mode, round-tripped to RGB as a decoder would hand it over.
    base = Image.fromarray(_gradient(rng, 701, 467))
    for mode in PILLOW_MODES:
        yield Sample(f"mode {mode} 701x467", np.asarray(base.convert(mode).convert("RGB")))
    # One very large photo-like image: the top of the range the tests cover.
    yield Sample("blobs 8000x6000", _blobs(rng, 8000, 6000))
