"""/hashing: the page that fingerprints chosen files in the browser (web/src/hashing-page.js).

A working page for the browser tests and bench/web_bench.py; the person's full flow (steps,
consent, submit) builds on the same worker in a later page. Nothing is posted from here.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from . import assets, i18n, pages


async def hashing(request: Request) -> Response:
    try:
        script = assets.asset_url("hashing-page.js")
    except assets.AssetsNotBuilt as exc:
        return PlainTextResponse(f"The web assets are not built: {exc}", status_code=503,
                                 headers={"Cache-Control": "no-store"})
    return pages.render(request, "hashing.html", i18n.language_of(request.query_params.get("lang")),
                        script=script)


routes = [Route("/hashing", hashing)]
