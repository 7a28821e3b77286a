"""The JSON API for people's cases: /api/cases, /api/cases/status, /hashes, /withdraw.

Case number and PIN travel only in POST bodies: never in URLs, logs or error messages.
"""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import validation
from .cases import CaseStore
from .client_address import rate_limit_key
from .errors import ApiError

JSON_TYPES = ("application/json",)


class AsciiJSONResponse(JSONResponse):
    """Errors echo what the client sent (an unknown field's name), which may be any code point,
    lone surrogates included: escaped to ASCII it always encodes."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def error_response(error: ApiError) -> JSONResponse:
    headers = {"Cache-Control": "no-store"}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return AsciiJSONResponse(error.body(), status_code=error.status, headers=headers)


async def read_json(request: Request) -> Any:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in JSON_TYPES:
        raise ApiError("Send the body as JSON with Content-Type: application/json.",
                       code="unsupported_media_type", status=415)
    return validation.parse_json(await request.body())


def endpoint(handler: Callable[[Request, CaseStore, Any], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """JSON in, JSON out; every refusal becomes an ApiError response and changes nothing."""

    async def run(request: Request) -> Response:
        wait = request.app.state.rate_limiter.allow(rate_limit_key(request))
        try:
            if wait:
                raise ApiError("Too many requests from this connection. Wait a moment and try again.",
                               code="rate_limited", status=429, retry_after=int(wait) + 1)
            body = await read_json(request)
            response = await handler(request, request.app.state.cases, body)
        except ApiError as error:
            return error_response(error)
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is listening any more; not our error
        response.headers["Cache-Control"] = "no-store"
        return response

    return run


@endpoint
async def create_case(request: Request, store: CaseStore, body: Any) -> Response:
    created = await store.create(validation.create_case(body))
    headers = {"Idempotent-Replayed": "true"} if created.replayed else None
    return JSONResponse(created.body, status_code=201, headers=headers)


@endpoint
async def case_status(request: Request, store: CaseStore, body: Any) -> Response:
    creds, _ = validation.credentials(body)
    return JSONResponse(await store.status(creds))


@endpoint
async def add_hashes(request: Request, store: CaseStore, body: Any) -> Response:
    creds, hashes = validation.add_hashes(body)
    return JSONResponse(await store.add_hashes(creds, hashes))


@endpoint
async def withdraw(request: Request, store: CaseStore, body: Any) -> Response:
    creds, _ = validation.credentials(body)
    return JSONResponse(await store.withdraw(creds))


routes = [
    Route("/api/cases", create_case, methods=["POST"]),
    Route("/api/cases/status", case_status, methods=["POST"]),
    Route("/api/cases/hashes", add_hashes, methods=["POST"]),
    Route("/api/cases/withdraw", withdraw, methods=["POST"]),
]
