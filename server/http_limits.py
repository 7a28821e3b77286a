"""Limits on connections, enforced where uvicorn reads them: the size of a request's head, the
time its head and body may take, idle connections, and how many connections a worker holds.

uvicorn's own options do not do this with httptools, the parser the server runs on (read in
uvicorn 0.54's protocols/http/httptools_impl.py):

- `h11_max_incomplete_event_size` bounds a request's head under h11 only; httptools has no limit
  at all (a 64 MB header was read whole: RSS 85 -> 202 MB).
- `timeout_keep_alive` is armed only once an answer has been sent. A connection that never
  completes a head (slowloris), or never sends a byte, has no timer and stays open for ever;
  nor is there any deadline for a body.
- `limit_concurrency` does not stop accepting connections: it counts the open ones, idle ones
  included, and once there are that many it answers every request with a bare 503 that carries
  none of our headers; a few hundred idle sockets would then turn every person away.
- Nothing bounds how long an answer may wait on a client that does not read it. A client with a
  4 KB receive window that asks for a big file and never reads held its connection for ever,
  past every timeout: uvicorn waits for the transport to drain, and closing a transport waits
  for its buffer to be sent. Ten of them filled a 10-connection worker.

So the server runs uvicorn's HttpToolsProtocol with these limits added (`LimitedHttpToolsProtocol`,
through `LimitedConfig`), and keeps uvicorn's `timeout_keep_alive` for the idle time between
requests. Answers given here (400, 408, 431) carry the same headers as the application's
(server/headers.py) and a JSON body naming the rule, and close the connection. A connection
over a count limit is closed at once, and one whose client stops taking its answer is dropped
(there is no way to tell it anything).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import string
import struct
import time
from dataclasses import dataclass
from typing import Any

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.protocols.utils import get_remote_addr
from uvicorn.server import ServerState

from .client_address import IPNetwork, connection_key
from .config import MAX_HEAD_BYTES, MIN_SEND_BYTES, Settings
from .headers import error_body, refusal_headers

logger = logging.getLogger("uvicorn.error")
WARNING_INTERVAL_SECONDS = 60.0  # "connections turned away" is logged at most this often
_PRINTABLE = set(string.ascii_letters + string.digits + string.punctuation + " ")
# Linux's struct tcp_info: tcpi_bytes_acked, a __u64 at byte 120 (since Linux 4.1).
_BYTES_ACKED = struct.Struct("=Q")
_BYTES_ACKED_OFFSET = 120


@dataclass(frozen=True)
class ConnectionLimits:
    max_head_bytes: int  # request line and headers
    head_timeout: float  # from the connection's opening, or a later request's first byte, to its last header
    body_timeout: float  # from the last header to the body's last byte
    max_connections: int  # open connections per worker process
    send_timeout: float  # an answer waiting on the client: how long it has to take min_send_bytes of it
    min_send_bytes: int
    max_connections_per_client: int  # open connections per client key (connection_key) per worker
    trusted_proxies: tuple[IPNetwork, ...]  # never capped per client

    @staticmethod
    def from_settings(settings: Settings) -> ConnectionLimits:
        return ConnectionLimits(MAX_HEAD_BYTES, settings.head_timeout_seconds, settings.body_timeout_seconds,
                                settings.max_connections, settings.send_timeout_seconds, MIN_SEND_BYTES,
                                settings.max_connections_per_client, settings.trusted_proxies)


class ClientConnections:
    """How many connections each client holds open in this worker. A key goes with its client's
    last connection, so this never holds more than the open connections do; it lives in memory
    only and is never written anywhere."""

    def __init__(self) -> None:
        self._open: dict[str, int] = {}

    def admit(self, key: str | None, limit: int) -> bool:
        """Count one more connection for `key`, unless it holds `limit` already (None: uncapped)."""
        if key is None:
            return True
        held = self._open.get(key, 0)
        if held >= limit:
            return False
        self._open[key] = held + 1
        return True

    def release(self, key: str | None) -> None:
        if key is None:
            return
        held = self._open.pop(key, 0) - 1
        if held > 0:
            self._open[key] = held


class LimitedConfig(uvicorn.Config):
    """uvicorn's Config serving HTTP/1.1 through LimitedHttpToolsProtocol with `limits` (it is
    pickled to worker processes along with them, and each worker unpickles its own empty
    `client_connections`). No WebSocket: Kalkan has none, and an upgraded connection would
    leave these limits behind."""

    def __init__(self, app: str, *, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(app, http=LimitedHttpToolsProtocol, ws="none", **kwargs)
        self.connection_limits = limits
        self.client_connections = ClientConnections()


class Refusal(Exception):
    """An answer given on the connection itself, ahead of the application, which then closes."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def head_too_large(limits: ConnectionLimits) -> Refusal:
    return Refusal(431, "request_head_too_large",
                   f"The request line and headers are larger than {limits.max_head_bytes // 1024} KB.")


def invalid_request(error: Exception) -> Refusal:
    # llhttp's reasons are fixed English sentences ("Invalid header token"); kept printable anyway.
    reason = "".join(ch for ch in str(error) if ch in _PRINTABLE)[:120] or "it cannot be parsed"
    return Refusal(400, "invalid_http", f"This is not a valid HTTP/1.1 request: {reason}.")


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, config: LimitedConfig, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits: ConnectionLimits = config.connection_limits
        self.client_connections: ClientConnections = config.client_connections
        self.turned_away = False  # over max_connections or the client's share: closed at once, never parsed
        self.counted_as: str | None = None  # the key client_connections counts this connection under
        self.head_timer: asyncio.TimerHandle | None = None
        self.body_timer: asyncio.TimerHandle | None = None
        self.send_timer: asyncio.TimerHandle | None = None
        self.send_mark = 0  # _bytes_taken when send_timer was armed
        self.reading_head = True  # waiting for or reading a head (not between a head and its body's end)
        self.head_begun = False  # a byte of the current request has arrived
        self.head_bytes = 0  # bytes of the current head seen so far, in reads that held nothing else
        self.heads_completed = 0

    # -- connections -------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            # Closing it now keeps the count bounded; the slow and idle ones that fill the worker
            # are closed by their timeouts, so the slots come back within head_timeout (or
            # send_timeout, for a client that stopped reading).
            self.turn_away(transport, "Turning new connections away: this worker holds %d (KALKAN_MAX_CONNECTIONS).",
                           self.limits.max_connections)
            return
        peer = get_remote_addr(transport)
        key = connection_key(peer[0] if peer else None, self.limits.trusted_proxies)
        if not self.client_connections.admit(key, self.limits.max_connections_per_client):
            # One client's share is full: its own timeouts free it, and everyone else still gets in.
            # The log never says who (no address is logged anywhere).
            self.turn_away(transport, "Turning a client's new connections away: it holds %d in this worker "
                           "(KALKAN_MAX_CONNECTIONS_PER_CLIENT).", self.limits.max_connections_per_client)
            return
        self.counted_as = key
        super().connection_made(transport)
        # pause_writing whenever anything at all waits in our buffer, resume_writing once it is
        # empty (asyncio's documented meaning of high=0), so the send deadline also covers what
        # is left of an answer after the connection started closing, under the default 64 KB.
        transport.set_write_buffer_limits(high=0)
        self.head_timer = self.loop.call_later(self.limits.head_timeout, self.head_timed_out)

    def turn_away(self, transport: asyncio.Transport, warning: str, limit: int) -> None:
        self.turned_away = True
        self.transport = transport
        transport.close()
        _warn_turned_away(warning, limit)

    def connection_lost(self, exc: Exception | None) -> None:
        self.cancel_timers()
        self.cancel_send_timer()
        self.client_connections.release(self.counted_as)
        self.counted_as = None
        super().connection_lost(exc)

    # -- writes the client does not take -------------------------------------------------------------

    def pause_writing(self) -> None:
        """The system's send buffer is full and our own holds more: from now on the client has
        to take min_send_bytes in every send_timeout until it has taken it all (resume_writing)."""
        super().pause_writing()
        if self.send_timer is None:
            self.arm_send_timer()

    def resume_writing(self) -> None:
        super().resume_writing()
        self.cancel_send_timer()

    def arm_send_timer(self) -> None:
        self.send_mark = _bytes_taken(self.transport)
        self.send_timer = self.loop.call_later(self.limits.send_timeout, self.send_timed_out)

    def send_timed_out(self) -> None:
        self.send_timer = None
        if not self.transport.get_write_buffer_size():
            return
        if _bytes_taken(self.transport) - self.send_mark >= self.limits.min_send_bytes:
            self.arm_send_timer()  # a slow link, not a stall: another period
            return
        # Dropped, not closed: close() would wait for the very buffer the client does not take.
        # Whatever the application still sends goes nowhere (uvicorn marks the request disconnected).
        _reset(self.transport)

    def data_received(self, data: bytes) -> None:
        if self.turned_away or self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        only_head = self.reading_head  # then all of `data` is head, unless the head ends in it
        heads_completed = self.heads_completed
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # No WebSocket here (ws="none"): the request is served as a plain one, and unlike
            # uvicorn we do not log a warning for it, which anyone could make us write at will.
            return
        except httptools.HttpParserError as error:
            # A callback's Refusal stops the parser and comes back as the error's context.
            context = error.__context__
            self.refuse(context if isinstance(context, Refusal) else invalid_request(error))
            return
        if self.reading_head and only_head and heads_completed == self.heads_completed:
            # httptools keeps an unfinished header in memory however long it grows: count it here.
            self.head_bytes += len(data)
            if self.head_bytes > self.limits.max_head_bytes:
                self.refuse(head_too_large(self.limits))

    def send_400_response(self, msg: str) -> None:  # uvicorn's own 400, should anything still call it
        self.refuse(invalid_request(Exception("")))

    # -- parser callbacks ----------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.head_begun = True
        if self.head_timer is None:  # a later request on a kept-alive connection: from its first byte
            self.head_timer = self.loop.call_later(self.limits.head_timeout, self.head_timed_out)

    def on_headers_complete(self) -> None:
        self.reading_head = False
        self.heads_completed += 1
        self.cancel_head_timer()
        # A head that arrived within one read was not counted by data_received.
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.limits.max_head_bytes:
            raise head_too_large(self.limits)
        super().on_headers_complete()
        self.body_timer = self.loop.call_later(self.limits.body_timeout, self.body_timed_out)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.cancel_body_timer()
        self.reading_head, self.head_begun, self.head_bytes = True, False, 0

    # -- timeouts and refusals ---------------------------------------------------------------------

    def head_timed_out(self) -> None:
        self.head_timer = None
        if self.transport.is_closing():
            return
        if self.flow.read_paused:  # a pipelined request waits for ours to finish: not the client's delay
            self.head_timer = self.loop.call_later(self.limits.head_timeout, self.head_timed_out)
            return
        if not self.head_begun:
            self.transport.close()  # it never sent a byte: there is no request to answer
            return
        self.refuse(Refusal(408, "request_timeout", "The request line and headers did not arrive within "
                            f"{self.limits.head_timeout:g} s."))

    def body_timed_out(self) -> None:
        self.body_timer = None
        if self.transport.is_closing():
            return
        if self.flow.read_paused:  # uvicorn stopped reading until the application takes what it has
            self.body_timer = self.loop.call_later(self.limits.body_timeout, self.body_timed_out)
            return
        self.refuse(Refusal(408, "request_timeout", "The request body did not arrive within "
                            f"{self.limits.body_timeout:g} s of its headers."))

    def refuse(self, refusal: Refusal) -> None:
        """Answer `refusal` and close the connection. An application still at work on this
        connection's request reads a disconnect, and whatever it sends goes nowhere."""
        self.cancel_timers()
        answer = True
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            answer = not cycle.response_started  # never in the middle of another answer
            cycle.disconnected = True
            cycle.message_event.set()
        if answer:
            self.transport.write(self.refusal_bytes(refusal))
        self.transport.close()

    def refusal_bytes(self, refusal: Refusal) -> bytes:
        body = error_body(refusal.code, refusal.message)
        headers = [*self.server_state.default_headers, *refusal_headers(),
                   (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]
        return b"".join([STATUS_LINE[refusal.status], *(name + b": " + value + b"\r\n" for name, value in headers),
                         b"\r\n", body])

    def cancel_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def cancel_body_timer(self) -> None:
        if self.body_timer is not None:
            self.body_timer.cancel()
            self.body_timer = None

    def cancel_send_timer(self) -> None:
        if self.send_timer is not None:
            self.send_timer.cancel()
            self.send_timer = None

    def cancel_timers(self) -> None:
        """The request's timers. Not the send timer: a refused or closing connection may still
        hold an answer the client does not take, and only that timer ever frees it."""
        self.cancel_head_timer()
        self.cancel_body_timer()


def _bytes_taken(transport: asyncio.Transport) -> int:
    """A count that grows by the bytes the client takes: what it has acknowledged, where the
    system says (Linux). Elsewhere, what has left our own buffer (written to the system's while
    writing is paused): coarser, since the system takes it in large steps, but never wrong."""
    sock = transport.get_extra_info("socket")
    tcp_info = getattr(socket, "TCP_INFO", None)
    if sock is not None and tcp_info is not None:
        try:
            info = sock.getsockopt(socket.IPPROTO_TCP, tcp_info, _BYTES_ACKED_OFFSET + _BYTES_ACKED.size)
        except OSError:
            info = b""
        if len(info) >= _BYTES_ACKED_OFFSET + _BYTES_ACKED.size:
            return int(_BYTES_ACKED.unpack_from(info, _BYTES_ACKED_OFFSET)[0])
    return -transport.get_write_buffer_size()


def _reset(transport: asyncio.Transport) -> None:
    """Drop the connection with a reset. A plain abort still closes the socket gracefully: the
    system then keeps the orphan, with megabytes of unsent answer, waiting on the same client
    for minutes more. A zero linger time discards it and tells the client at once."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass  # already gone: abort() below is all there is to do
    transport.abort()


_last_warning: dict[str, float] = {}  # per message: when it was last logged


def _warn_turned_away(message: str, limit: int) -> None:
    moment = time.monotonic()
    if moment - _last_warning.get(message, -WARNING_INTERVAL_SECONDS) >= WARNING_INTERVAL_SECONDS:
        _last_warning[message] = moment
        logger.warning(message, limit)
