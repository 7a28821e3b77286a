"""pyhash: perceptual and cryptographic fingerprints of photos and videos.

Standard library only, so the same code runs in CPython and in the browser under Pyodide.
numpy, where importable, accelerates PDQ; Pillow and PyAV decode files in CPython
(`pyhash.images`, `pyhash.video`).
"""
