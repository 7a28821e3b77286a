"""/assets/: the built web/dist served with the right encoding, type, caching and headers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from server_harness import LiveServer
from web_harness import sqlite_web_server

DIST = Path(__file__).resolve().parent.parent / "web" / "dist"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with sqlite_web_server(tmp_path_factory.mktemp("assets-server")) as live:
        yield live


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((DIST / "manifest.json").read_text())


def wasm_path(manifest: dict) -> str:
    return manifest["pyodide"]["dir"] + "pyodide.asm.wasm"


def test_encoding_is_negotiated_with_vary_and_immutable_caching(server: LiveServer, manifest: dict) -> None:
    rel = wasm_path(manifest)
    raw = (DIST / rel).read_bytes()
    with server.client() as client:
        for accept, coding, suffix in [("gzip, deflate, br", "br", ".br"), ("gzip", "gzip", ".gz"),
                                       ("br;q=0, gzip;q=1", "gzip", ".gz"), ("identity", None, ""), ("", None, ""),
                                       ("*", "br", ".br")]:
            response = client.get(f"/assets/{rel}", headers={"Accept-Encoding": accept})
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/wasm"
            assert response.headers.get("content-encoding") == coding, accept
            assert response.headers["vary"] == "Accept-Encoding"
            assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
            assert "'wasm-unsafe-eval'" in response.headers["content-security-policy"]
            assert response.headers["x-content-type-options"] == "nosniff"
            assert int(response.headers["content-length"]) == (DIST / (rel + suffix)).stat().st_size
        response = client.get(f"/assets/{rel}", headers={"Accept-Encoding": "gzip"})
        assert response.content == raw  # httpx decodes gzip: the .gz copy is the same file
    assert manifest["assets"][rel]["encodings"]["br"] < 0.35 * len(raw)


def test_content_types_and_hashed_names(server: LiveServer, manifest: dict) -> None:
    with server.client() as client:
        for logical, name in manifest["files"].items():
            response = client.head(f"/assets/{name}", headers={"Accept-Encoding": "br"})
            assert response.status_code == 200, name
            expected = "text/css; charset=utf-8" if logical.endswith(".css") else "text/javascript; charset=utf-8"
            assert response.headers["content-type"] == expected
            assert name != logical and name.split(".")[-2] not in ("", logical)  # content hash in the name
        archive = client.head(f"/assets/{manifest['pyodide']['python_archive']}")
        assert archive.headers["content-type"] == "application/zip"


def test_only_manifest_files_are_served(server: LiveServer) -> None:
    with server.client() as client:
        for path in ["/assets/manifest.json", "/assets/.build-stamp", "/assets/../server/app.py",
                     "/assets/%2e%2e/pyproject.toml", "/assets/nope.js", "/assets/"]:
            assert client.get(path).status_code == 404, path


def test_hashing_page_loads_its_hashed_script(server: LiveServer, manifest: dict) -> None:
    with server.client() as client:
        page = client.get("/hashing?lang=en")
    assert page.status_code == 200
    assert f'src="/assets/{manifest["files"]["hashing-page.js"]}"' in page.text
    assert 'data-testid="file-input"' in page.text
    assert "<script>" not in page.text  # no inline script: the CSP forbids it
