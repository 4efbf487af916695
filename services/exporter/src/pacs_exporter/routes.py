"""Every route of the exporter, listed in one place, with the scope each needs.

Exports need ``write`` to be asked for (``POST``) or cancelled (``DELETE``) and ``read`` to be
watched and downloaded; the presets ``read``. The probes and ``/metrics`` are public.
"""

from __future__ import annotations

from fastapi import FastAPI
from pacs_common.auth import Scope
from pacs_common.auth.http import auth_responses, requires, requires_by_method

from pacs_exporter import exports, preset_list, status

EXPORT_SCOPES = {"GET": Scope.READ, "POST": Scope.WRITE, "DELETE": Scope.WRITE}


def include_routes(app: FastAPI) -> None:
    app.include_router(status.router)  # public: liveness and readiness probes
    app.include_router(
        exports.router,
        dependencies=[requires_by_method(EXPORT_SCOPES)],
        responses=auth_responses("'write' (POST, DELETE) or 'read' (GET)"),
    )
    app.include_router(
        preset_list.router,
        dependencies=[requires(Scope.READ)],
        responses=auth_responses("'read'"),
    )
