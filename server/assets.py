"""The browser's assets (web/dist/, built by `python3 build.py web`) at /assets/.

Every file there has a content-hashed name (or sits in a content-hashed directory), so it is
served with a year-long immutable cache lifetime: a new build has new names. The precompressed
copies beside each file are chosen by Accept-Encoding (brotli, then gzip, then none) with
`Content-Encoding` and `Vary: Accept-Encoding`; nothing is compressed per request. Only files the
build's manifest lists are served. Security headers come from the middleware like everywhere.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

DIST = Path(__file__).resolve().parent.parent / "web" / "dist"
PREFIX = "/assets/"
IMMUTABLE = "public, max-age=31536000, immutable"
ENCODINGS = (("br", ".br"), ("gzip", ".gz"))  # in order of preference


class AssetsNotBuilt(RuntimeError):
    """web/dist has no manifest: `python3 build.py web` (run and test do it) builds it."""


_cache: dict[str, Any] = {"key": None, "manifest": None}


def manifest() -> dict[str, Any]:
    """web/dist/manifest.json, re-read when the build replaces it."""
    path = DIST / "manifest.json"
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise AssetsNotBuilt(f"{path} is missing: run `python3 build.py web`") from None
    key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
    if _cache["key"] != key:
        _cache["manifest"] = json.loads(path.read_text())
        _cache["key"] = key
    return _cache["manifest"]  # type: ignore[no-any-return]


def asset_url(name: str) -> str:
    """URL of the built asset with logical name `name` (e.g. "hashing-page.js")."""
    return PREFIX + manifest()["files"][name]


def accepted_encodings(header: str) -> set[str]:
    """Codings the client accepts (q > 0) from an Accept-Encoding header value."""
    accepted: set[str] = set()
    refused: set[str] = set()
    for part in header.split(","):
        token, *params = [p.strip() for p in part.split(";")]
        token = token.lower()
        if not token:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        (accepted if q > 0 else refused).add(token)
    if "*" in accepted:
        accepted |= {coding for coding, _ in ENCODINGS if coding not in refused}
    return accepted


async def serve_asset(request: Request) -> Response:
    rel = request.path_params["path"]
    try:
        info = manifest()["assets"].get(rel)
    except AssetsNotBuilt:
        info = None
    if info is None:  # unknown names (and so any "..", hidden or partial file) are simply absent
        raise HTTPException(status_code=404)
    path = DIST / rel
    accepted = accepted_encodings(request.headers.get("accept-encoding", ""))
    headers = {"Cache-Control": IMMUTABLE, "Vary": "Accept-Encoding"}
    for coding, suffix in ENCODINGS:
        if coding in accepted and coding in info["encodings"]:
            path = path.with_name(path.name + suffix)
            headers["Content-Encoding"] = coding
            break
    if not os.path.isfile(path):
        raise HTTPException(status_code=404)
    return FileResponse(path, media_type=info["type"], headers=headers)


routes = [Route(PREFIX + "{path:path}", serve_asset, methods=["GET", "HEAD"])]
