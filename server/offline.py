"""Offline use of the hashing pages: the service worker at /sw.js and what it precaches.

After a first visit, the hashing pages load with no network at all: the service worker
(web/src/sw/service-worker.js, built into web/dist) serves them and every built asset from its
cache. What it may keep is decided here, in one place:

- `OFFLINE_PAGES`, each in every language (`?lang=tr`, `?lang=en`): pages that hold nothing
  about a person. Never a case page, never an /api/ answer, never a POST answer; the worker
  passes everything else straight to the network and stores nothing else.
- every file of the build manifest (content-hashed names: the same URL is always the same bytes).

Freshness: the worker script is served with `Cache-Control: max-age=86400` and an ETag, and the
page registers it with `updateViaCache: "all"`. So the browser's own update check after each
navigation is answered from its HTTP cache for a day: a repeat visit within a day sends nothing at
all (no request is also no trace in a network log). Once a day has passed, the check is a
conditional GET (304 and no body while nothing changed); browsers cap a worker script's lifetime at
24 hours whatever the header says, so this is the longest the choice allows. The script carries a
version made of the asset build's digest and a digest of the server's page sources (templates,
texts, page code). A deployment changes the version, so within a day of it the new worker installs
in the background (reusing cached assets whose names did not change), takes over at once, and the
person sees the new pages on their *next* visit: the price of serving HTML with no round trip.
First visits always get the deployment at once.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import assets, i18n, pages

# Pages that work offline after a first visit, each in every language. Only pages with a route
# in the running app are precached (the list may name a page before it is built).
OFFLINE_PAGES = ("/", "/start", "/hashing")
# Query parameters a page's own script reads (its HTML is the same with or without them): a page
# asked for with only these and `lang` is served from the cache. Any other parameter sends the
# request to the network first (the cached copy only when offline): e.g. the landing page
# renders `ref` into its Start link, which a cached copy would drop.
SCRIPT_PARAMS: dict[str, tuple[str, ...]] = {
    "/start": ("ref", "mode"),  # web/src/flow-page.js reads both from its own URL
    "/hashing": ("workers", "maxMegapixels", "cancelGraceMs"),  # test and bench knobs
}
# Pages that register the worker (a script tag from base.html). The landing page stays free of
# script (it works without JavaScript); it is precached when a hashing page registers.
REGISTERING_PAGES = ("/start", "/hashing")
SCRIPT_PATH = "/sw.js"  # at the root, so its scope covers every page
# How long the browser may answer its update check of /sw.js from its HTTP cache: the 24 h cap
# browsers apply to worker scripts (see the module docstring for the trade).
SCRIPT_MAX_AGE_SECONDS = 24 * 60 * 60
WORKER_LOGICAL_NAME = "service-worker.js"
OFFLINE_MODULE = "offline.js"
SERVER_DIR = Path(__file__).resolve().parent
# Sources whose change may change a page's HTML: a new digest means a new worker version.
PAGE_SOURCES = ("*.py", "templates/**/*")

_version_cache: dict[str, Any] = {"key": None, "value": None}


def page_sources_digest() -> str:
    digest = hashlib.sha256()
    for pattern in PAGE_SOURCES:
        for path in sorted(SERVER_DIR.glob(pattern)):
            if path.is_file():
                digest.update(str(path.relative_to(SERVER_DIR)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def precache_pages(app: Any) -> list[str]:
    """The page URLs to precache: OFFLINE_PAGES that the app routes, in every language."""
    routed = {getattr(route, "path", None) for route in app.routes}
    return [f"{path}?lang={language}" for path in OFFLINE_PAGES if path in routed for language in i18n.LANGUAGES]


def worker_config(app: Any) -> dict[str, Any]:
    """What the service worker is told: its version and the URLs it precaches."""
    manifest = assets.manifest()
    page_urls = precache_pages(app)
    key = (id(manifest), tuple(page_urls))
    if _version_cache["key"] != key:  # the build or the routes changed (sources: at restart)
        build = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()
        seed = json.dumps([build, page_sources_digest(), page_urls, SCRIPT_PARAMS]).encode()
        _version_cache["value"] = hashlib.sha256(seed).hexdigest()[:20]
        _version_cache["key"] = key
    return {
        "version": _version_cache["value"],
        "assets": sorted(assets.PREFIX + name for name in manifest["assets"]),
        "pages": page_urls,
        "scriptParams": {path: list(names) for path, names in SCRIPT_PARAMS.items()},
        "languages": list(i18n.LANGUAGES),
        "defaultLanguage": i18n.DEFAULT_LANGUAGE,
    }


def _worker_script(config: dict[str, Any]) -> str:
    """The script /sw.js sends: its config, then the built worker; read once per version."""
    if _version_cache.get("script_version") != config["version"]:
        source = (assets.DIST / assets.manifest()["files"][WORKER_LOGICAL_NAME]).read_text()
        _version_cache["script"] = f"self.KALKAN_OFFLINE = {json.dumps(config, separators=(',', ':'))};\n{source}"
        _version_cache["script_version"] = config["version"]
    return str(_version_cache["script"])


async def service_worker(request: Request) -> Response:
    try:
        config = worker_config(request.app)
        etag = f'"{config["version"]}"'
        headers = {"Cache-Control": f"max-age={SCRIPT_MAX_AGE_SECONDS}", "ETag": etag}
        if etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        body = _worker_script(config)
    except (assets.AssetsNotBuilt, KeyError, FileNotFoundError):
        return Response(status_code=404, headers={"Cache-Control": "no-store"})
    return Response(body, media_type="text/javascript; charset=utf-8", headers=headers)


def offline_script(request: Request) -> str:
    """For base.html: the URL of the module that registers the worker, on the pages that do."""
    if request.url.path not in REGISTERING_PAGES:
        return ""
    try:
        return assets.asset_url(OFFLINE_MODULE)
    except (assets.AssetsNotBuilt, KeyError):
        return ""


pages.TEMPLATES.env.globals["offline_script"] = offline_script
routes = [Route(SCRIPT_PATH, service_worker, methods=["GET", "HEAD"])]
