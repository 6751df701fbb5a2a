"""The portal's ASGI guard: request size, rate limit, write token, security headers.

One pure ASGI middleware (it streams server-sent events untouched, which Starlette's
``BaseHTTPMiddleware`` does not do well):

* a request whose ``Content-Length`` exceeds ``serve.max_request_bytes``, or whose
  body grows past it, is refused with 413;
* each client address has a token bucket of ``serve.rate_limit_burst`` requests,
  refilled at ``serve.rate_limit_per_min``; an empty bucket is a 429 with
  ``Retry-After`` (``rate_limit_per_min = 0``: no limit);
* the portal is read-only: ``GET``, ``HEAD`` and ``OPTIONS`` pass; any other method
  (a state change) needs ``Authorization: Bearer <token>`` with the token read from
  the environment variable named by ``serve.token_env`` (401 without it, 403 with a
  wrong one, and every such request is refused when no token is configured);
* every response gets ``Content-Security-Policy: default-src 'self'`` (no script,
  style or image from elsewhere: the pages work offline), ``nosniff``, no framing and
  no referrer.

Refusals are JSON ``{"status", "message"}`` like every other error of the API.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.requests import ClientDisconnect

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Methods that change nothing.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
     b"frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


class RateLimiter:
    """Token buckets per client address (thread-safe; forgets idle clients).

    Parameters
    ----------
    per_min : int
        Refill rate, requests per minute (0: unlimited).
    burst : int
        Bucket size.
    """

    def __init__(self, per_min: int, burst: int) -> None:
        self.rate = per_min / 60.0
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, client: str, now: float | None = None) -> float:
        """0 if the request may go on, else the seconds until it may."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if len(self._buckets) > 10_000:
                self._buckets.clear()
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                return 0.0
            self._buckets[client] = (tokens, now)
            return (1.0 - tokens) / self.rate


async def _refuse(send: Send, status: int, message: str,
                  headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"status": status, "message": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            *SECURITY_HEADERS, *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """The middleware (module docstring).

    Parameters
    ----------
    app : ASGI application
    max_bytes : int
        Largest request body.
    limiter : RateLimiter
    token : str or None
        The write token (``None``: writes refused).
    """

    def __init__(self, app: ASGIApp, max_bytes: int, limiter: RateLimiter,
                 token: str | None) -> None:
        self.app, self.max_bytes, self.limiter, self._token = app, max_bytes, limiter, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the request, then hand it to the application."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        client = (scope.get("client") or ("unknown", 0))[0]
        wait = self.limiter.allow(str(client))
        if wait > 0:
            await _refuse(send, 429, "too many requests",
                          [(b"retry-after", str(max(1, round(wait))).encode())])
            return
        length = headers.get("content-length", "0")
        if not length.isdigit() or int(length) > self.max_bytes:
            await _refuse(send, 413, f"request larger than {self.max_bytes} bytes")
            return
        if scope["method"] not in SAFE_METHODS:
            problem = self._authorise(headers.get("authorization", ""))
            if problem is not None:
                await _refuse(send, *problem)
                return
        received, too_large, started = 0, False, False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:  # stop reading: the client sees 413
                too_large = True
                return {"type": "http.disconnect"}
            return message

        async def secured_send(message: Message) -> None:
            nonlocal started
            if too_large and not started:
                return
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        try:
            await self.app(scope, limited_receive, secured_send)
        except ClientDisconnect:
            if not too_large:
                raise
        if too_large and not started:
            await _refuse(send, 413, f"request larger than {self.max_bytes} bytes")

    def _authorise(self, header: str) -> tuple[int, str] | None:
        if self._token is None:
            return 403, "read-only portal: no write token is configured"
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value:
            return 401, "this request changes state: it needs Authorization: Bearer <token>"
        if not hmac.compare_digest(value.strip().encode(), self._token.encode()):
            return 403, "wrong token"
        return None
