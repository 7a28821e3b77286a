"""pyhash: perceptual and cryptographic fingerprints of photos and videos.

Standard library only, so the same code runs in CPython and in the browser under Pyodide.
numpy, where importable, accelerates PDQ; Pillow and PyAV decode files in CPython
(`pyhash.images`, `pyhash.video`).
"""

from .signals import SIGNAL_TYPES, InvalidHashError, SignalType
from .signals import by_wire_name as signal_type_by_wire_name
from .signals import get as signal_type

__all__ = ["SIGNAL_TYPES", "SignalType", "InvalidHashError", "signal_type", "signal_type_by_wire_name"]
