"""Smoke tests that really run inside Pyodide under Node (see tests/pyodide.py)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from pyodide import LOCAL_PYODIDE, PyodideError, PyodideSession

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_python_version_is_at_least_3_12(pyodide: PyodideSession) -> None:
    version = pyodide.run("import sys; list(sys.version_info[:3])")
    assert version[:2] >= [3, 12]
    assert pyodide.info["python_version"] == ".".join(map(str, version))


def test_runs_in_pyodide_not_cpython(pyodide: PyodideSession) -> None:
    assert pyodide.run("import sys; sys.platform") == "emscripten"


def test_pyodide_package_matches_pinned_version(pyodide: PyodideSession) -> None:
    pinned = json.loads((REPO_ROOT / "package.json").read_text())["dependencies"]["pyodide"]
    assert pyodide.info["pyodide_version"] == pinned


def test_import_pyhash_uses_repo_sources(pyodide: PyodideSession) -> None:
    module_file = pyodide.run("import pyhash; pyhash.__file__")
    assert module_file == "/home/pyodide/pyhash/__init__.py"
    # Every .py file of the repo's pyhash/ was copied, with identical contents.
    for path in sorted((REPO_ROOT / "pyhash").rglob("*.py")):
        rel = path.relative_to(REPO_ROOT).as_posix()
        inside = pyodide.run("open(p, 'rb').read()", p=f"/home/pyodide/{rel}")
        assert inside == path.read_bytes(), rel


def test_md5_matches_cpython(pyodide: PyodideSession) -> None:
    assert pyodide.run('import hashlib; hashlib.md5(b"abc").hexdigest()') == hashlib.md5(b"abc").hexdigest()


def test_md5_of_large_binary_input_matches_cpython(pyodide: PyodideSession) -> None:
    data = bytes(range(256)) * 40_000  # ~10 MB, passed via a temp file, not JSON
    response = pyodide.execute("import hashlib; [len(data), hashlib.md5(data).hexdigest()]", data=data)
    assert response.result == [len(data), hashlib.md5(data).hexdigest()]
    assert response.elapsed_ms > 0


def test_host_file_input_and_pyodide_filesystem(pyodide: PyodideSession, tmp_path: Path) -> None:
    host = tmp_path / "blob.bin"
    host.write_bytes(b"\x00\x01kalkan\xff")
    result = pyodide.run(
        "result = {'global': blob, 'fs': open('/data/in/blob.bin', 'rb').read(), 'n': n}",
        blob=host, files={"/data/in/blob.bin": host}, n=3,
    )
    assert result == {"global": host.read_bytes(), "fs": host.read_bytes(), "n": 3}


def test_exception_inside_pyodide_raises_with_traceback(pyodide: PyodideSession) -> None:
    with pytest.raises(PyodideError) as info:
        pyodide.run("def boom():\n    raise ValueError('nope')\nboom()")
    assert info.value.type_name == "ValueError"
    assert "in boom" in info.value.traceback and "nope" in str(info.value)
    # The session survives a failing snippet.
    assert pyodide.run("1 + 1") == 2


def test_print_output_is_captured_not_mixed_into_protocol(pyodide: PyodideSession) -> None:
    response = pyodide.execute("print('{\"not\": \"protocol\"}'); result = 7")
    assert response.result == 7
    assert response.stdout == '{"not": "protocol"}\n'


def test_loads_from_local_node_modules_without_network(pyodide: PyodideSession) -> None:
    assert Path(pyodide.info["index_url"]) == LOCAL_PYODIDE
    assert (LOCAL_PYODIDE / "pyodide.asm.wasm").is_file()
    assert pyodide.info["network_attempts"] == []
    # Nothing is fetched on demand either: packages outside the stdlib are simply absent, so
    # pyhash must (and does) work without numpy in the browser.
    with pytest.raises(PyodideError) as info:
        pyodide.run("import numpy")
    assert info.value.type_name == "ModuleNotFoundError"
    response = pyodide.execute("import pyhash, hashlib, json; 'ok'")
    assert response.result == "ok"
    assert response.network_attempts == []


def test_network_guard_records_and_refuses_fetch() -> None:
    # Own session: this one deliberately dirties network_attempts, which the shared one asserts empty.
    with PyodideSession() as session:
        assert session.info["network_attempts"] == []
        response = session.execute("import js; js.fetch('http://kalkan.invalid/x.whl'); 'sent'")
        assert response.result == "sent"
        assert response.network_attempts == ["http://kalkan.invalid/x.whl"]
