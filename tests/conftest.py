"""Shared pytest fixtures for Kalkan's tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# tests/pyodide.py is a plain module (also used by bench/ scripts); make it importable whether
# or not tests/ is a package.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pyodide import PyodideSession  # noqa: E402


@pytest.fixture(scope="session")
def pyodide() -> Iterator[PyodideSession]:
    """One Pyodide (Node) process for the whole test session: booting takes seconds.

    `pyodide.run(code, **inputs)` runs `code` in a fresh namespace inside Pyodide, with the repo's
    pyhash/ importable, and returns the JSON-decoded `result` variable or last expression.
    See tests/pyodide.py for inputs (JSON values, bytes, host file paths) and `execute()` timing.
    """
    session = PyodideSession()
    try:
        yield session
    finally:
        session.close()
