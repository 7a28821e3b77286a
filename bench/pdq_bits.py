"""How many bits PDQ hashes set: the measurement behind pyhash.pdq's MIN_SET_BITS/MAX_SET_BITS.

PDQ sets a bit for each DCT coefficient above the median (the 128th smallest of 256), so a hash
has at most 128 bits set, and exactly 128 unless coefficients tie with the median. This hashes
the corpus photos (all eight dihedral transforms), mirrored copies of them (exact symmetries make
odd-frequency coefficients zero: ties) and synthetic degenerate images (gradients, stripes,
checkerboards, noise, drawn text), with pyhash and with native pdqhash side by side, and prints
the bit counts that are not 128 and the extremes at quality >= 50 for each.

    .venv/bin/python bench/pdq_bits.py [--corpus ../shared/corpus/images]

Takes about a minute here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pdqhash
from PIL import Image, ImageDraw

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from pyhash import pdq  # noqa: E402


def native_hash(rgb: np.ndarray) -> tuple[str, int]:
    bits, quality = pdqhash.compute(rgb)
    return format(int("".join("1" if b else "0" for b in bits[::-1]), 2), "064x"), int(quality)


def measured(name: str, rgb: np.ndarray) -> tuple[str, int, int, int, int]:
    rgb = np.ascontiguousarray(rgb.astype(np.uint8))
    ours = pdq.hash_pixels(rgb.tobytes(), rgb.shape[1], rgb.shape[0], 3)
    native, quality = native_hash(rgb)
    return name, pdq.set_bits(ours.hash), ours.quality, pdq.set_bits(native), quality


def corpus_images(corpus: Path) -> list[tuple[str, np.ndarray]]:
    out = []
    for path in sorted(p for p in corpus.rglob("*") if p.is_file()):
        try:
            rgb = np.asarray(Image.open(path).convert("RGB"))
        except OSError:
            continue
        name = str(path.relative_to(corpus))
        for k in range(4):
            out.append((f"{name} rot{k * 90}", np.rot90(rgb, k)))
            out.append((f"{name} rot{k * 90} transposed", np.rot90(rgb, k).transpose(1, 0, 2)))
        half = rgb[:, : rgb.shape[1] // 2]
        mirrored = np.concatenate([half, half[:, ::-1]], axis=1)
        out.append((f"{name} mirrored", mirrored))
        top = mirrored[: mirrored.shape[0] // 2]
        out.append((f"{name} mirrored both ways", np.concatenate([top, top[::-1]], axis=0)))
    return out


def synthetic_images() -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(1)
    size = 512
    x = np.linspace(0, 255, size)
    grey = {
        "horizontal gradient": np.tile(x, (size, 1)),
        "vertical gradient": np.tile(x[:, None], (1, size)),
        "diagonal gradient": np.add.outer(x, x) / 2,
        "radial": np.hypot(*np.meshgrid(x - 128, x - 128)),
        "stripes 8 px": ((np.arange(size) // 8) % 2 * 255)[None, :].repeat(size, 0),
        "stripes 64 px": ((np.arange(size) // 64) % 2 * 255)[None, :].repeat(size, 0),
        "checkerboard 16 px": ((np.arange(size)[:, None] // 16 + np.arange(size)[None, :] // 16) % 2) * 255,
        "checkerboard 64 px": ((np.arange(size)[:, None] // 64 + np.arange(size)[None, :] // 64) % 2) * 255,
        "noise": rng.integers(0, 256, (size, size)),
        "binary noise": rng.integers(0, 2, (size, size)) * 255,
        "half black": np.where(np.arange(size)[None, :] < size // 2, 0, 255).repeat(size, 0),
        "white square": np.pad(np.full((size // 2, size // 2), 255), size // 4),
    }
    out = [(name, np.stack([np.asarray(g, dtype=float)] * 3, -1)) for name, g in grey.items()]
    for i in range(40):  # a few words and boxes on a flat background
        im = Image.new("RGB", (600, 400), (255, 255, 255))
        draw = ImageDraw.Draw(im)
        for j in range(int(rng.integers(1, 12))):
            draw.text((int(rng.integers(0, 550)), int(rng.integers(0, 380))), f"Kalkan {j}", fill=(0, 0, 0))
        for _ in range(int(rng.integers(0, 4))):
            x0, y0 = (int(v) for v in rng.integers(0, 500, 2))
            draw.rectangle([x0, y0, x0 + 80, y0 + 40], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        out.append((f"drawn text {i}", np.asarray(im)))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=REPO_ROOT.parent / "shared" / "corpus" / "images")
    args = parser.parse_args()
    rows = [measured(name, rgb) for name, rgb in corpus_images(args.corpus) + synthetic_images()]
    print(f"{len(rows)} images; rows whose hash does not set exactly 128 bits:")
    print(f"  {'image':46} {'pyhash bits':>11} {'quality':>7}   {'native bits':>11} {'quality':>7}")
    for name, ours, our_quality, native, native_quality in rows:
        if ours != 128 or native != 128:
            print(f"  {name[:46]:46} {ours:>11} {our_quality:>7}   {native:>11} {native_quality:>7}")
    for label, bits_at, quality_at in (("pyhash", 1, 2), ("native pdqhash", 3, 4)):
        usable = [row[bits_at] for row in rows if row[quality_at] >= 50 and row[bits_at] > 0]
        print(f"{label}: quality >= 50 and not all-zero: {len(usable)} hashes, {min(usable)} to {max(usable)} bits set")
    print(f"band taken by pyhash/signals.py: {pdq.MIN_SET_BITS} to {pdq.MAX_SET_BITS} bits")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
