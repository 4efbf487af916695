"""Every route of the API, listed in one place."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from pacs_api import changefeed, status, ui, usage
from pacs_api.deidentify import service as deidentify
from pacs_api.dicomweb import (
    bulkdata,
    capabilities,
    delete,
    frames,
    qido,
    rendered,
    stow,
    wado,
    wado_uri,
)
from pacs_api.quarantine import routes as quarantine


def include_routes(app: FastAPI) -> None:
    app.include_router(status.router)
    app.include_router(usage.router)  # counts and bytes stored, for operators and /ui
    app.include_router(changefeed.router)  # for routing; not DICOMweb
    app.include_router(deidentify.router)  # a new study from a stored one; not DICOMweb
    app.include_router(quarantine.router)  # incomplete images kept for admins; not DICOMweb
    app.include_router(wado_uri.router)  # at the server root, where EHR links point (PS3.18 §9)
    dicomweb = APIRouter(prefix="/dicom-web")
    for module in (stow, qido, wado, bulkdata, frames, rendered, delete):
        dicomweb.include_router(module.router)
    app.include_router(dicomweb)
    app.include_router(capabilities.router)  # OPTIONS on /dicom-web and its resources
    app.include_router(ui.router)  # the web dashboard at /ui (static files, not in OpenAPI)
