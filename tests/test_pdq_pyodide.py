"""pyhash's PDQ inside Pyodide (the browser's interpreter) equals CPython's, bit for bit."""

from __future__ import annotations

import numpy as np

from pdq_corpus import Sample, corpus_samples, generated_samples
from pyhash import pdq

HASH_IN_PYODIDE = """
from pyhash import pdq
r = pdq.hash_rgba(data, width, height)
d = pdq.dihedral_pixels(data, width, height, 4)
result = [r.hash, r.quality, d.hashes, d.quality]
"""


def chosen_samples() -> list[Sample]:
    corpus = {s.name: s for s in corpus_samples()}
    picked = [corpus["corpus/bridge-mods/aaa-orig.jpg"], corpus["corpus/exif-orientation/exif-rotn-6.jpg"]]
    wanted = {"noise 5x5", "text 17x31", "gradient 129x255", "stripes 1023x769", "blobs 1279x2049", "bars 640x480"}
    picked += [s for s in generated_samples() if s.name in wanted]
    rng = np.random.default_rng(3)
    picked.append(Sample("noise 4x4 (too small)", rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)))
    return picked


def test_pyodide_hashes_equal_cpython_pure_and_numpy(pyodide) -> None:
    samples = chosen_samples()
    assert len(samples) == 9
    for sample in samples:
        w, h = sample.size
        rgba = sample.rgba_bytes()
        in_browser = pyodide.run(HASH_IN_PYODIDE, data=rgba, width=w, height=h)
        pure = pdq.hash_rgba(rgba, w, h, backend="pure")
        fast = pdq.hash_rgba(rgba, w, h, backend="numpy")
        dihedral = pdq.dihedral_pixels(rgba, w, h, 4, backend="pure")
        assert in_browser == [pure.hash, pure.quality, dihedral.hashes, dihedral.quality], sample.name
        assert (fast.hash, fast.quality) == (pure.hash, pure.quality), sample.name


def test_pyodide_has_no_numpy_so_the_pure_path_ran(pyodide) -> None:
    assert pyodide.run("import importlib.util\nresult = importlib.util.find_spec('numpy') is None") is True
