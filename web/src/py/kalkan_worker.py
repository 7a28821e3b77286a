"""The Python half of the hashing worker (web/src/hash-worker.js), run in Pyodide.

The worker hands over pixel and file bytes as JavaScript typed arrays (JsProxy objects); each
is copied once into the WebAssembly heap (`to_bytes`), which is the only copy Pyodide allows, and
pyhash reads it through a memoryview. Results go back as JSON text: PDQ's integer sums can
exceed 2**53, which JavaScript numbers cannot hold.

Large photos are split into row bands across several workers: `band_sums` gives the exact
integer sums of one band, the bands' sums add up element-wise to the whole image's, and
`finish` turns them into the hash (see docs/pyhash.md, "How it stays exact and fast").
"""

from __future__ import annotations

import json

from pyhash import pdq
from pyhash.md5 import MD5Hasher

_md5: dict[int, MD5Hasher] = {}


def _view(data: object) -> memoryview:
    to_bytes = getattr(data, "to_bytes", None)
    return memoryview(to_bytes() if to_bytes is not None else data)  # type: ignore[arg-type]


def _result(h: pdq.PDQHash) -> str:
    return json.dumps({"hash": h.hash, "quality": h.quality})


def pdq_rgba(data: object, width: int, height: int) -> str:
    """PDQ of a whole RGBA image (getImageData's bytes, alpha already composited on white)."""
    return _result(pdq.hash_rgba(_view(data), width, height, backend="pure"))


def band_sums(data: object, width: int, height: int, row_start: int, row_stop: int) -> str:
    """Exact integer sums of rows [row_start, row_stop) of a width x height RGBA image, given
    only those rows' bytes."""
    return json.dumps(pdq.band_sums(_view(data), width, height, row_start, row_stop))


def finish(bands: object, width: int, height: int) -> str:
    """The PDQ hash from the JSON sums of bands that together cover every row once."""
    parts = [json.loads(str(text)) for text in bands]  # type: ignore[attr-defined]
    total = [sum(column) for column in zip(*parts)]
    return _result(pdq.hash_from_sums(total, width, height))


def md5_start(job: int) -> None:
    _md5[job] = MD5Hasher()


def md5_update(job: int, chunk: object) -> None:
    _md5[job].update(_view(chunk))


def md5_finish(job: int) -> str:
    return _md5.pop(job).hexdigest()


def md5_cancel(job: int) -> None:
    _md5.pop(job, None)
