"""Every route of the API, listed in one place, with the scope each needs.

Scopes (:class:`pacs_common.auth.Scope`) are applied here and nowhere else: reading (QIDO-RS,
WADO-RS and WADO-URI, metadata, frames, bulk data, rendered, capabilities, the change feed,
usage) needs ``read``; STOW-RS and de-identification (which reads a study and stores a new one)
``write``; DELETE ``delete``. Public: the probes, ``/metrics``, the dashboard's static files
and the OpenAPI documents. ``tests/auth/test_api_scopes.py`` fails on a route added without a
scope.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from pacs_common.auth import Scope
from pacs_common.auth.http import auth_responses, requires

from pacs_api import changefeed, status, ui, usage
from pacs_api.audit import routes as audit
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


def needs(scope: Scope) -> dict[str, Any]:
    """``include_router`` arguments for routes that need *scope* (and document 401/403)."""
    return {"dependencies": [requires(scope)], "responses": auth_responses(repr(scope.value))}


def include_routes(app: FastAPI) -> None:
    app.include_router(status.router)  # public: liveness and readiness probes
    app.include_router(usage.router, **needs(Scope.READ))  # counts and bytes, for operators
    app.include_router(changefeed.router, **needs(Scope.READ))  # for routing; not DICOMweb
    # the audit trail: admins read it (admin), the bridge appends (audit); scoped per route
    app.include_router(audit.router)
    # a new study from a stored one: reads one study, writes another; not DICOMweb
    app.include_router(deidentify.router, **needs(Scope.WRITE))
    # at the server root, where EHR links point (PS3.18 §9)
    app.include_router(wado_uri.router, **needs(Scope.READ))
    # incomplete images kept for admins (admin); not DICOMweb
    app.include_router(quarantine.router, **needs(Scope.ADMIN))
    dicomweb = APIRouter(prefix="/dicom-web")
    dicomweb.include_router(stow.router, **needs(Scope.WRITE))
    for module in (qido, wado, bulkdata, frames, rendered):
        dicomweb.include_router(module.router, **needs(Scope.READ))
    dicomweb.include_router(delete.router, **needs(Scope.DELETE))
    app.include_router(dicomweb)
    # OPTIONS on /dicom-web and its resources
    app.include_router(capabilities.router, **needs(Scope.READ))
    app.include_router(ui.router)  # public: the web dashboard at /ui (static, not in OpenAPI)
