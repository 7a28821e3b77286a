"""What every answer carries, and the request-body cap, as plain ASGI middleware.

Every answer has the security headers, and `Cache-Control: no-store` unless it set a cache policy
of its own (the built assets' immutable one, the service worker's): a refusal or an error page
must not be kept by a browser or a proxy any more than a case page. Redirects are relative, so
that no Location is ever built from the request's Host header. Answers uvicorn would give before
the application runs (an invalid request, an oversized head, a timeout) are written by
server/http_limits.py with the same headers (`refusal_headers`).
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit, urlunsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Only our own origin, no inline script. Self-hosted Pyodide needs to compile WebAssembly
# ('wasm-unsafe-eval') and runs in workers; thumbnails are blob: URLs made in the page.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self' 'wasm-unsafe-eval'",
    "worker-src 'self'",
    "style-src 'self'",
    "img-src 'self' blob: data:",
    "media-src 'self' blob:",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"strict-transport-security", b"max-age=63072000; includeSubDomains"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


SECURITY_HEADER_NAMES = frozenset(name for name, _ in SECURITY_HEADERS)
NO_STORE: tuple[bytes, bytes] = (b"cache-control", b"no-store")


def refusal_headers() -> list[tuple[bytes, bytes]]:
    """The headers of an answer that has no cache policy of its own."""
    return [*SECURITY_HEADERS, NO_STORE]


def error_body(code: str, message: str) -> bytes:
    """The JSON refusal every path uses: {"error": {"code", "message"}}, ASCII only."""
    return json.dumps({"error": {"code": code, "message": message}}, ensure_ascii=True,
                      separators=(",", ":")).encode("ascii")


def relative_location(location: bytes, own_hosts: set[str]) -> bytes:
    """`location` without scheme and host when it points at this server (as Starlette's slash
    redirects do, from the Host header); an address elsewhere is left as it is."""
    try:
        parts = urlsplit(location.decode("latin-1"))
    except ValueError:
        return location
    if parts.netloc and parts.netloc.lower() not in own_hosts:
        return location
    # Never "//..." or "/\...": a browser reads either as the name of another host.
    path = "/" + parts.path.lstrip("/\\")
    return urlunsplit(("", "", path, parts.query, parts.fragment)).encode("latin-1")


def _own_hosts(scope: Scope) -> set[str]:
    """What a URL built for this request may name as its host: the Host header, or the server's
    own address when there is none."""
    hosts = {value.decode("latin-1").lower() for name, value in scope.get("headers", []) if name == b"host"}
    server = scope.get("server")
    if server:
        host, port = server[0], server[1]
        hosts |= {str(host), f"{host}:{port}", f"[{host}]:{port}"}
    return hosts


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(name, value) for name, value in message.get("headers", [])
                           if name not in SECURITY_HEADER_NAMES]
                if not any(name == b"cache-control" for name, _ in headers):
                    headers.append(NO_STORE)
                headers = [(name, relative_location(value, _own_hosts(scope)) if name == b"location" else value)
                           for name, value in headers]
                message["headers"] = headers + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Refuse bodies over `limit` bytes, by Content-Length up front or while streaming;
    `larger` gives paths under a prefix another limit (the partner API's batches)."""

    def __init__(self, app: ASGIApp, limit: int, larger: dict[str, int] | None = None) -> None:
        self.app = app
        self.limit = limit
        self.larger = dict(larger or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = next((size for prefix, size in self.larger.items() if scope["path"].startswith(prefix)), self.limit)
        for name, value in scope.get("headers", []):
            if name == b"content-length" and (not value.isdigit() or int(value) > limit):
                await _too_large(send, limit)
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge()
            return message

        try:
            await self.app(scope, limited_receive, send)
        except BodyTooLarge:
            await _too_large(send, limit)


async def _too_large(send: Send, limit: int) -> None:
    body = error_body("body_too_large", f"The request body is larger than {limit // 1024} KB.")
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
