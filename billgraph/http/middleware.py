"""ASGI middleware: request ids and access logs; the guards (body size limit, per-API-key rate
limit, database outages as 503)."""

import hashlib
import math
import os
import re
import time
from collections import OrderedDict

import structlog
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from billgraph.db.availability import is_unavailable
from billgraph.http.auth import bearer_token
from billgraph.http.errors import (
    RETRY_AFTER_SECONDS,
    UNAVAILABLE_CODE,
    UNAVAILABLE_MESSAGE,
    error_body,
)
from billgraph.logs import get_logger

log = get_logger("billgraph.http")

REQUESTS = Counter("billgraph_http_requests_total", "HTTP requests", ["method", "path", "status"])
LATENCY = Histogram("billgraph_http_request_seconds", "HTTP request latency", ["method", "path"])

_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# The metrics' children by label values: `labels()` takes a lock and checks its arguments on
# every call, for the handful of (method, path, status) a gateway sees.
_counted: dict[tuple[str, str, str], Counter] = {}
_timed: dict[tuple[str, str], Histogram] = {}


def _record(method: str, path: str, status: int, elapsed: float) -> None:
    key = (method, path, str(status))
    counter = _counted.get(key)
    if counter is None:
        counter = _counted[key] = REQUESTS.labels(*key)
    counter.inc()
    timer = _timed.get(key[:2])
    if timer is None:
        timer = _timed[key[:2]] = LATENCY.labels(method, path)
    timer.observe(elapsed)


async def _send_error(
    send: Send,
    status: int,
    message: str,
    code: str,
    request_id: str | None,
    headers: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    body = error_body(message, code, request_id)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    """The first value of header `name` (lower case), as Starlette's Headers.get gives it."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


class RequestContext:
    """Gives every request an id (the client's X-Request-ID if sane), echoes it in the
    response, binds it to every log line, and logs and counts the request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        offered = _header(scope, b"x-request-id") or ""
        # 128 random bits, 32 hex characters as uuid4().hex gave, without building a UUID.
        request_id = offered if _CLIENT_REQUEST_ID.match(offered) else os.urandom(16).hex()
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if scope["type"] == "http":
                elapsed = time.perf_counter() - started
                path = (
                    scope["path"]
                    if scope["path"] in ("/graphql", "/healthz", "/metrics")
                    else "other"
                )
                _record(scope["method"], path, status, elapsed)
                log.info(
                    "request",
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    ms=round(elapsed * 1000, 2),
                )
            structlog.contextvars.unbind_contextvars("request_id")


class _BodyTooLarge(Exception):
    pass


class Guards:
    """What every HTTP request passes before a route, in one layer (each layer is paid per
    request):

    - a body larger than `max_bytes` is refused with 413 before it is parsed (by its
      Content-Length, or while it is read);
    - a token bucket per API key (per process): `rate` requests a second, bursts up to
      `burst`; over the limit, 429 with Retry-After. Requests without a key are not limited
      here; they are refused as unauthenticated anyway;
    - a database outage that escapes a route (authenticating the API key, a webhook) is
      answered 503 with Retry-After and the code SERVICE_UNAVAILABLE, and logged as a
      warning: the client retries later, the connection stays open, no stack trace per
      request. Any other failure goes on to the app's error handler (a masked 500)."""

    MAX_BUCKETS = 100_000

    def __init__(self, app: ASGIApp, max_bytes: int, rate: float, burst: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.rate = rate
        self.burst = burst
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _take(self, key: str) -> float:
        """0 if a request may pass now, else the seconds until it may."""
        now = time.monotonic()
        tokens, last = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self.rate
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self.MAX_BUCKETS:  # forget the least recently seen keys
            self._buckets.popitem(last=False)
        return wait

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = scope.get("state", {}).get("request_id")
        too_large = f"Request body over {self.max_bytes} bytes."
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _send_error(send, 413, too_large, "PAYLOAD_TOO_LARGE", request_id)
            return
        token = bearer_token(_header(scope, b"authorization") or "") if self.rate > 0 else None
        if token:
            wait = self._take(hashlib.sha256(token.encode()).hexdigest())
            if wait > 0:
                await _send_error(
                    send,
                    429,
                    "Rate limit exceeded for this API key.",
                    "RATE_LIMITED",
                    request_id,
                    ((b"retry-after", str(math.ceil(wait)).encode()),),
                )
                return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, watch)
        except _BodyTooLarge:
            await _send_error(watch, 413, too_large, "PAYLOAD_TOO_LARGE", request_id)
        except Exception as exc:
            if started or not is_unavailable(exc):
                raise
            log.warning("database unavailable", path=scope["path"], error=type(exc).__name__)
            await _send_error(
                send,
                503,
                UNAVAILABLE_MESSAGE,
                UNAVAILABLE_CODE,
                request_id,
                ((b"retry-after", str(RETRY_AFTER_SECONDS).encode()),),
            )
