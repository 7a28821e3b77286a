"""The Starlette application: routes, middleware, and the database opened for its lifetime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from . import api, assets, hashing_page, helplines, offline, pages, partner_api
from .cases import CaseStore
from .config import MAX_BODY_BYTES, Settings
from .db import Database
from .headers import BodyLimit, SecurityHeaders
from .ratelimit import KnownKeys, RateLimiter
from .referrals import ReferralStore


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith(("/api/", partner_api.PREFIX + "/")):
        return JSONResponse({"error": {"code": "http_" + str(exc.status_code), "message": exc.detail}},
                            status_code=exc.status_code, headers=exc.headers)
    return await pages.error_page(request, exc.status_code)


class KalkanApp(Starlette):
    """Security headers (and no-store, and relative redirects) wrap even Starlette's outermost
    error handler, so a 500 carries them too."""

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeaders(super().build_middleware_stack())


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        database = Database(settings.database_url)
        store = CaseStore(database, settings)
        await store.start()
        app.state.cases = store
        app.state.referrals = ReferralStore(database)
        await app.state.referrals.start()
        app.state.helplines = helplines.load(settings.helplines_path)  # by country code
        app.state.partner_api = await partner_api.open_service(database, settings)
        try:
            yield
        finally:
            await app.state.partner_api.close()
            await database.dispose()

    app = KalkanApp(
        routes=[Route("/healthz", healthz), *api.routes, partner_api.mount, *pages.routes, *assets.routes,
                *hashing_page.routes, *offline.routes],
        middleware=[Middleware(BodyLimit, limit=MAX_BODY_BYTES,
                               larger={partner_api.PREFIX + "/": partner_api.MAX_BODY_BYTES})],
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_minute)
    # Failed partner authentications per client: a bucket of its own, so that a flood of bad keys
    # is turned away before any key is looked up, and partners' good requests never count.
    app.state.partner_auth_failures = RateLimiter(settings.partner_auth_failures_per_minute)
    # Subscription keys that authenticated here: they skip that bucket (server/partner_api.py).
    app.state.partner_known_keys = KnownKeys()
    # Wrong keys on helplines' figures pages count like failed partner authentications.
    app.state.referral_auth_failures = RateLimiter(settings.partner_auth_failures_per_minute)
    return app
