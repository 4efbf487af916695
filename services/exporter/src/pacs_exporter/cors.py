"""Cross-origin access for browser pages (the API's dashboard at ``/ui``): CORS per the Fetch
standard, as in the API's ``pacs_api.cors``.

Off unless ``cors_allow_origins`` lists origins (``PACS_EXPORTER_CORS_ALLOW_ORIGINS='["http://
127.0.0.1:8080"]'``). The page submits jobs (POST with a JSON body: a preflight), polls them,
cancels them and downloads their file; it reads ``Location`` and ``Content-Disposition``.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from pacs_exporter.settings import Settings

ALLOWED_METHODS = ("GET", "HEAD", "POST", "DELETE", "OPTIONS")
ALLOWED_REQUEST_HEADERS = ("Accept", "Authorization", "Content-Type")
EXPOSED_RESPONSE_HEADERS = ("Content-Disposition", "Content-Length", "Location", "Retry-After")
PREFLIGHT_MAX_AGE_SECONDS = 600


def install_cors(app: FastAPI, settings: Settings) -> None:
    """Add the CORS middleware when origins are configured (nothing otherwise)."""
    if not settings.cors_allow_origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.cors_allow_origins),
        allow_methods=list(ALLOWED_METHODS),
        allow_headers=list(ALLOWED_REQUEST_HEADERS),
        expose_headers=list(EXPOSED_RESPONSE_HEADERS),
        max_age=PREFLIGHT_MAX_AGE_SECONDS,
    )
