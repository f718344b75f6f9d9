"""Time limits on reading a request, so a client that trickles its request a byte at a time
cannot hold a connection (and, for a deposit, a pinned upload) open for long.

- **Headers** (:class:`H11Protocol`, the HTTP protocol ``exchange serve`` gives uvicorn, which
  has no such limit of its own): from a connection's opening, or from the first byte of its next
  request, the request line and headers must be complete within
  ``EXCHANGE_HEADER_TIMEOUT_SECONDS``. If not, a connection that sent part of a request is
  answered ``408`` and closed; one that sent nothing is closed.
- **Body** (:class:`BodyTimeouts`, an ASGI middleware): while a request body is read, the client
  holds a reserve of ``EXCHANGE_BODY_IDLE_TIMEOUT_SECONDS`` seconds. Waiting for it spends the
  reserve; every ``EXCHANGE_BODY_MIN_RATE_BYTES`` bytes received earn a second back (never more
  than the full reserve). The body is cut when the reserve runs out: a body that stops is cut
  after the idle timeout, one trickled at a fraction of the minimum rate a little later, and one
  that keeps arriving at the minimum rate or faster never, however large (Apache's
  ``mod_reqtimeout`` rule, with the credit capped so a fast start buys no long stall later).
  Only time spent waiting for the client counts, not time the exchange spends storing what
  arrived. A cut body ends the request with :class:`dossiers.errors.RequestTimeout`: what reads
  the body (a deposit cleans up on it) sees it raised from ``receive()``, the client gets a
  ``408`` problem and the connection is closed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from functools import cache

import h11
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol as _UvicornH11Protocol

from dossiers.errors import RequestTimeout

from . import metrics
from .errors import PROBLEM

log = logging.getLogger(__name__)

TIMEOUTS = metrics.REGISTRY.counter(
    "exchange_request_timeouts_total",
    "Requests cut because the client sent them too slowly, by phase (headers, body).", ("phase",))


@cache
def _header_timeout_from_env() -> float:
    from .settings import Settings

    return Settings.from_env().header_timeout_seconds


def _problem_bytes(status: int, title: str, detail: str) -> bytes:
    return json.dumps({"type": "/problems/request-timeout", "title": title, "status": status,
                       "code": "request-timeout", "detail": detail}).encode()


# --- headers ------------------------------------------------------------------------------------

class H11Protocol(_UvicornH11Protocol):
    """uvicorn's h11 protocol with a time limit on the request line and headers.

    Given to uvicorn explicitly (``http=``), so the limit holds whether or not ``httptools`` is
    installed. ``header_timeout`` (seconds) defaults to the environment's setting."""

    header_timeout: float | None = None

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.header_timeout is None:
            self.header_timeout = _header_timeout_from_env()
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:
            self._arm_header_timer()  # the first bytes of a new request (a timer already running stays)
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm_header_timer()  # the headers are complete

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout or 0.0, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.conn.their_state is not h11.IDLE or self.transport.is_closing():
            return
        started, _closed = self.conn.trailing_data
        TIMEOUTS.inc(phase="headers")
        if started:
            body = _problem_bytes(408, "Request headers too slow",
                                  f"the request line and headers did not arrive within {self.header_timeout:g} s")
            self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: " + PROBLEM.encode()
                                 + b"\r\ncontent-length: " + str(len(body)).encode()
                                 + b"\r\nconnection: close\r\n\r\n" + body)
            client = "{}:{}".format(*self.client) if self.client else "a client"
            log.warning("%s sent %d bytes of a request but not its headers within %g s; connection closed",
                        client, len(started), self.header_timeout)
        self.transport.close()


# --- body ---------------------------------------------------------------------------------------

class BodyTimeouts:
    """ASGI middleware: the body limits above. The limits are read from the application's
    settings at each request (``app.state.settings``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings = scope["app"].state.settings
        idle, rate = settings.body_idle_timeout_seconds, settings.body_min_rate_bytes
        loop = asyncio.get_running_loop()
        done = False
        received, waited, reserve = 0, 0.0, idle
        timed_out: RequestTimeout | None = None
        response_started = False

        async def guarded_receive() -> Message:
            nonlocal done, received, waited, reserve, timed_out
            if done:
                return await receive()  # the body is read: waits for a disconnect are not limited
            budget = reserve
            start = loop.time()
            try:
                if budget <= 0:
                    raise TimeoutError
                message = await asyncio.wait_for(receive(), budget)
            except TimeoutError:
                waited += loop.time() - start
                if budget >= idle:
                    detail = f"no part of the request body arrived for {idle:g} s"
                else:
                    detail = (f"the request body arrives too slowly: {received} bytes in {waited:.0f} s of waiting; "
                              f"it must keep coming at {rate} bytes a second or more")
                timed_out = RequestTimeout(detail)
                TIMEOUTS.inc(phase="body")
                raise timed_out from None
            elapsed = loop.time() - start
            waited += elapsed
            if message["type"] == "http.request":
                size = len(message.get("body", b""))
                received += size
                done = not message.get("more_body", False)
                if rate > 0:
                    reserve = min(idle, reserve - elapsed + size / rate)
            else:
                done = True
            return message

        async def send_closing(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                if timed_out is not None:
                    # The rest of the body will not be read: the connection cannot be reused.
                    message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        try:
            await self.app(scope, guarded_receive, send_closing)
        except RequestTimeout as exc:
            if exc is not timed_out or response_started:
                raise
            # Raised where no exception handler answers it (a middleware reading the body).
            body = json.loads(_problem_bytes(408, exc.title, exc.detail))
            body["instance"] = scope.get("path", "")
            request_id = scope.get("state", {}).get("request_id")
            if request_id:
                body["request_id"] = request_id
            payload = json.dumps(body).encode()
            await send_closing({"type": "http.response.start", "status": 408, "headers": [
                (b"content-type", PROBLEM.encode()), (b"content-length", str(len(payload)).encode())]})
            await send_closing({"type": "http.response.body", "body": payload})
