"""The Python half of the hashing worker (web/src/hash-worker.js), run in Pyodide.

The worker hands over pixel and file bytes as JavaScript typed arrays (JsProxy objects); each
is copied once into the WebAssembly heap (`to_bytes`), which is the only copy Pyodide allows, and
pyhash reads it through a memoryview. Results go back as JSON text: PDQ's integer sums can
exceed 2**53, which JavaScript numbers cannot hold.

Large photos are split into row bands across several workers: `band_sums` gives the exact
integer sums of one band, the bands' sums add up element-wise to the whole image's, and
`finish` turns them into the hash (see docs/pyhash.md, "How it stays exact and fast").

Videos: the worker decodes frames with WebCodecs (web/src/video.js) and offers each one, in
order, to a `pyhash.vpdq.VpdqBuilder` here, which decides which frames are hashed exactly as
Meta's reference does; `vpdq_finish` returns the signal string the server's registry accepts.
"""

from __future__ import annotations

import json

import pyhash
from pyhash import pdq, vpdq
from pyhash.md5 import MD5Hasher

_md5: dict[int, MD5Hasher] = {}
_vpdq: dict[int, vpdq.VpdqBuilder] = {}


def _view(data: object) -> memoryview:
    to_bytes = getattr(data, "to_bytes", None)
    return memoryview(to_bytes() if to_bytes is not None else data)  # type: ignore[arg-type]


def _acceptable(value: str) -> bool:
    """Whether the server's registry takes this value (an image of exact symmetries or almost
    no detail can give one it does not): the flow then says so instead of sending it."""
    try:
        pyhash.signal_type("pdq").validate(value)
    except pyhash.InvalidHashError:
        return False
    return True


def _result(h: pdq.PDQHash) -> str:
    return json.dumps({"hash": h.hash, "quality": h.quality, "acceptable": _acceptable(h.hash)})


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


def vpdq_start(job: int, frame_rate: float | None) -> None:
    """A builder for one video; frame_rate None samples by the frames' timestamps instead."""
    _vpdq[job] = vpdq.VpdqBuilder(frame_rate if frame_rate else None)


def vpdq_wants(job: int, seconds: float) -> bool:
    return _vpdq[job].wants_frame(seconds)


def vpdq_skip(job: int) -> None:
    _vpdq[job].skip_frame()


def vpdq_add(job: int, data: object, width: int, height: int, channels: int, seconds: float) -> None:
    _vpdq[job].add_frame(_view(data), width, height, channels, seconds)


def vpdq_finish(job: int) -> str:
    """{"signal": python-threatexchange's vPDQ signal string, "frames": the features as JSON}."""
    features = _vpdq.pop(job).result()
    return json.dumps({"signal": vpdq.to_threatexchange_signal(features), "frames": vpdq.to_json_list(features)})


def vpdq_cancel(job: int) -> None:
    _vpdq.pop(job, None)
