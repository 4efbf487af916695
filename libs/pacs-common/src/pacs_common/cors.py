"""Cross-origin access for browser pages (OHIF, the dashboard at ``/ui``): CORS per the Fetch
standard, the same way in every HTTP service.

Off unless origins are configured. When on, Starlette's ``CORSMiddleware`` answers preflight
requests (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) itself and adds
``Access-Control-Allow-Origin`` to the answers for allowed origins only; an origin not listed
gets no CORS header, so the browser withholds the answer from the page. Each service names the
methods, request headers and exposed response headers its pages use: browsers hide every
response header outside the CORS-safelisted ones unless it is exposed.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

#: How long a browser may keep a preflight answer.
PREFLIGHT_MAX_AGE_SECONDS = 600


def install_cors(
    app: FastAPI,
    origins: Iterable[str],
    *,
    methods: Iterable[str],
    request_headers: Iterable[str],
    exposed_headers: Iterable[str] = (),
    allow_credentials: bool = False,
) -> None:
    """Add the CORS middleware when *origins* lists any (``["*"]`` for every origin); nothing
    otherwise."""
    origins = list(origins)
    if not origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=list(methods),
        allow_headers=list(request_headers),
        expose_headers=list(exposed_headers),
        allow_credentials=allow_credentials,
        max_age=PREFLIGHT_MAX_AGE_SECONDS,
    )
