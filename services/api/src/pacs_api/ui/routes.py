"""Routes of the dashboard: the page, its configuration and its static files.

Every answer carries a Content-Security-Policy that allows scripts, styles and images from this
origin only and network calls to this origin and the configured exporter and bridge: an asset
accidentally taken from a CDN fails loudly in development instead of silently in an offline
hospital.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, RedirectResponse
from pydantic import BaseModel

from pacs_api.deps import SettingsDep
from pacs_api.errors import NotFound
from pacs_api.settings import Settings

STATIC = Path(__file__).parent / "static"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}

router = APIRouter(prefix="/ui", include_in_schema=False)


class UiConfig(BaseModel):
    dicomweb_root: str = "/dicom-web"
    exporter_url: str | None
    bridge_status_url: str | None
    ohif_url: str | None


def security_headers(settings: Settings) -> dict[str, str]:
    peers = " ".join(u for u in (settings.ui_exporter_url, settings.ui_bridge_status_url) if u)
    policy = (
        "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
        f"connect-src 'self' {peers}".rstrip()
        + "; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }


@router.get("")
def ui_root() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=308)


@router.get("/")
def page(settings: SettingsDep) -> FileResponse:
    return _file("index.html", settings)


@router.get("/config.json")
def config(settings: SettingsDep) -> UiConfig:
    return UiConfig(
        exporter_url=settings.ui_exporter_url,
        bridge_status_url=settings.ui_bridge_status_url,
        ohif_url=settings.ui_ohif_url,
    )


@router.get("/static/{name:path}")
def static(
    name: Annotated[str, PathParam(pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*\.[a-z]+$")],
    settings: SettingsDep,
) -> FileResponse:
    return _file(name, settings)


def _file(name: str, settings: Settings) -> FileResponse:
    path = (STATIC / name).resolve()
    media_type = MEDIA_TYPES.get(path.suffix)
    if not path.is_relative_to(STATIC.resolve()) or not path.is_file() or media_type is None:
        raise NotFound(f"no dashboard file {name!r}")
    return FileResponse(path, media_type=media_type, headers=security_headers(settings))
