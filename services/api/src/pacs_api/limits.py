"""Request limits of the API: a request body read timeout (408) and per-caller rate limiting
(429), as one ASGI middleware (:class:`Limits`, installed by :func:`install_limits`).

- **Body read timeout.** A client that stops sending in the middle of a request body for
  ``request_body_timeout`` seconds is answered ``408 Request Timeout`` (RFC 9110 §15.5.9) with
  ``Connection: close``. The timeout is raised from the route's own read of the body, so a
  STOW-RS request undoes what it had stored (:meth:`pacs_api.ingest.pipeline.Ingest.abort`):
  nothing of a timed-out request is kept. Waiting for a client between requests is uvicorn's
  keep-alive timeout; this one covers the body only.
- **Rate limiting.** A token bucket per caller: ``rate_limit_per_second`` tokens a second, at
  most ``rate_limit_burst`` saved up; a request without a token is answered
  ``429 Too Many Requests`` with ``Retry-After`` (RFC 6585 §4; RFC 9110 §10.2.3) in
  problem+json. The caller is the credential presented (a digest of the ``Authorization``
  header: one bucket per API key or token), otherwise the client address. Authentication runs
  later, inside the route (:mod:`pacs_common.auth.http`), so the limiter does not wait for it;
  keying on the address alone would put every client behind an ingress proxy into one bucket
  (run uvicorn with ``--proxy-headers`` and ``--forwarded-allow-ips`` to see their addresses).
  The buckets live in the process: **the limit holds per replica (and per worker process), not
  cluster-wide**; N replicas behind a load balancer admit up to N times the rate. Off by default.
  Probes and metrics (``/healthz``, ``/readyz``, ``/metrics``) are never limited.

Every limit documents its answer in the OpenAPI document (:func:`install_limits`).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pacs_api.errors import ApiError, problem
from pacs_api.settings import Settings

#: Paths never rate limited: an orchestrator's probes and Prometheus must always get through.
EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
#: Buckets kept before idle (full again) ones are forgotten.
_PRUNE_ABOVE = 10_000

#: What the OpenAPI document says of the limits' answers (:func:`install_limits`).
RATE_LIMITED = {
    "description": "Too many requests from this caller (rate limiting, when configured; "
    "RFC 6585 §4): wait Retry-After seconds. application/problem+json.",
}
BODY_TIMED_OUT = {
    "description": "The client paused sending the request body for longer than "
    "request_body_timeout (RFC 9110 §15.5.9); nothing of the request was kept. "
    "application/problem+json.",
}
_OPERATIONS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
_WITH_BODY = frozenset({"put", "post", "patch"})


class RequestTimeout(ApiError):
    """408 (RFC 9110 §15.5.9): the server closes the connection, as the section asks."""

    status, title = 408, "Request Timeout"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Connection": "close"})


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """One token bucket per caller key: *rate* tokens a second, at most *burst* held.

    Not thread-safe; the middleware uses it from the event loop only.
    """

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str) -> float:
        """Take a token for *key*: 0 when one was there, else the seconds until one is."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= _PRUNE_ABOVE:
                self._prune(now)
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate

    def _prune(self, now: float) -> None:
        """Forget callers whose bucket has filled up again (they lose nothing by it)."""
        full_after = self.burst / self.rate
        for key in [k for k, b in self._buckets.items() if now - b.updated >= full_after]:
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)


def caller_of(scope: Scope) -> str:
    """The rate-limit key: the principal when one is already known, else the credential
    presented (its SHA-256, never the credential itself), else the client address."""
    principal = scope.get("state", {}).get("principal")
    subject = getattr(principal, "subject", None)
    if subject:
        return f"principal:{subject}"
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            return f"credential:{hashlib.sha256(value).hexdigest()}"
    client = scope.get("client")
    return f"address:{client[0] if client else 'unknown'}"


class Limits:
    """ASGI middleware applying the body read timeout and the rate limit (module docstring)."""

    def __init__(
        self, app: ASGIApp, *, body_timeout: float, buckets: TokenBuckets | None = None
    ) -> None:
        self.app = app
        self.body_timeout = body_timeout
        self.buckets = buckets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.buckets is not None and scope["path"] not in EXEMPT_PATHS:
            wait = self.buckets.take(caller_of(scope))
            if wait > 0:
                retry_after = max(1, math.ceil(wait))
                response = problem(
                    429,
                    "Too Many Requests",
                    f"more than {self.buckets.rate:g} requests a second (burst "
                    f"{self.buckets.burst}) from this caller; retry after {retry_after} s",
                    {"Retry-After": str(retry_after)},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, self._timed(receive), send)

    def _timed(self, receive: Receive) -> Receive:
        """*receive* with the body read timeout, until the body's last chunk has arrived."""
        body_done = False
        timeout = self.body_timeout

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), timeout)
            except TimeoutError:
                raise RequestTimeout(
                    f"no part of the request body arrived for {timeout:g} s "
                    "(request_body_timeout); nothing of the request was kept"
                ) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        return timed_receive


def install_limits(app: FastAPI, settings: Settings) -> None:
    """Install :class:`Limits` on *app* and document their answers in its OpenAPI document:
    429 on every operation that can be limited, 408 on those that take a body."""
    buckets = None
    if settings.rate_limit_per_second is not None:
        buckets = TokenBuckets(settings.rate_limit_per_second, settings.rate_limit_burst)
    # Innermost of the application's middleware (appended, where add_middleware would put it
    # outermost): inside CORS and the metrics, so that a 429 carries CORS headers and is
    # counted, and inside the audit trail, which records it.
    if app.middleware_stack is not None:
        raise RuntimeError("install the limits before the application starts")
    app.user_middleware.append(
        Middleware(Limits, body_timeout=settings.request_body_timeout, buckets=buckets)
    )
    _document(app)


def _document(app: FastAPI) -> None:
    """Add the limits' answers to every operation of *app*'s OpenAPI document: 429 where the
    rate limit applies, 408 where a body is read (FastAPI's documented way to extend the
    generated document: wrap ``app.openapi``)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            for path, operations in schema.get("paths", {}).items():
                if path in EXEMPT_PATHS:
                    continue
                for method, operation in operations.items():
                    if method not in _OPERATIONS:
                        continue
                    responses = operation.setdefault("responses", {})
                    responses.setdefault("429", RATE_LIMITED)
                    if method in _WITH_BODY:
                        responses.setdefault("408", BODY_TIMED_OUT)
        return app.openapi_schema or generate()

    app.openapi = openapi  # type: ignore[method-assign]
