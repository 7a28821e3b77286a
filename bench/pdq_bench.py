"""PDQ speed: pyhash in Pyodide (Node), CPython pure, numpy, and native C++ `pdqhash`, side by side.

    .venv/bin/python bench/pdq_bench.py [--sizes 1,4,12,48] [--repeat 3]

Each size is a real photo (the corpus bridge) scaled up to that many megapixels. Times are the
median of --repeat runs of hashing RGBA pixels already in memory (decoding is not timed; native
gets the RGB array it expects, and its own luma conversion is timed as part of it). The last
column says whether every path produced the same hash (native: its distance from ours).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pdqhash
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from pyhash import pdq  # noqa: E402
from pyodide import PyodideSession  # noqa: E402

PHOTO = REPO.parent / "shared" / "corpus" / "images" / "bridge-mods" / "aaa-orig.jpg"


def photo_of(megapixels: float) -> Image.Image:
    with Image.open(PHOTO) as im:
        base = im.convert("RGB")
    scale = (megapixels * 1e6 / (base.width * base.height)) ** 0.5
    return base.resize((round(base.width * scale), round(base.height * scale)), Image.BICUBIC)


def timed(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), result


def native_hex(rgb: np.ndarray) -> str:
    bits, _ = pdqhash.compute(rgb)
    return format(int("".join("1" if b else "0" for b in bits), 2), "064x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,4,12,48", help="megapixels, comma-separated (default 1,4,12,48)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the median is shown")
    args = parser.parse_args()

    with PyodideSession() as py:
        print(f"Pyodide {py.info['pyodide_version']} (Python {py.info['python_version']}) under Node; "
              f"CPython {sys.version.split()[0]}; numpy {np.__version__}; pdqhash {pdqhash.__version__}")
        header = f"{'size':>16} {'pyodide ms':>11} {'pure ms':>9} {'numpy ms':>9} {'native ms':>10}" \
                 f" {'pyodide/nat':>11} {'pure/nat':>9} {'numpy/nat':>9}  agree"
        print(header)
        for mp in (float(s) for s in args.sizes.split(",")):
            image = photo_of(mp)
            w, h = image.size
            rgb = np.asarray(image)
            rgba = image.convert("RGBA").tobytes()
            pdqhash.compute(rgb)  # warm native's first-call allocation
            native_ms, native = timed(lambda: native_hex(rgb), args.repeat)
            pure_ms, pure = timed(lambda: pdq.hash_rgba(rgba, w, h, backend="pure"), args.repeat)
            numpy_ms, fast = timed(lambda: pdq.hash_rgba(rgba, w, h, backend="numpy"), args.repeat)
            in_pyodide = []
            for _ in range(args.repeat):
                response = py.execute(
                    "from pyhash import pdq\nresult = pdq.hash_rgba(data, width, height).hash",
                    data=rgba, width=w, height=h, timeout=600,
                )
                in_pyodide.append((response.elapsed_ms, response.result))
            pyodide_ms = statistics.median(t for t, _ in in_pyodide)
            same = all(r == pure.hash for _, r in in_pyodide) and fast.hash == pure.hash
            agree = f"{'yes' if same else 'NO'}, native at {pdq.distance(native, pure.hash)} bits"
            print(f"{f'{w}x{h} {w * h / 1e6:.1f}MP':>16} {pyodide_ms:>11.0f} {pure_ms:>9.0f} {numpy_ms:>9.0f}"
                  f" {native_ms:>10.0f} {pyodide_ms / native_ms:>11.2f} {pure_ms / native_ms:>9.2f}"
                  f" {numpy_ms / native_ms:>9.2f}  {agree}", flush=True)


if __name__ == "__main__":
    main()
