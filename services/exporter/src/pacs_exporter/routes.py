"""Every route of the exporter, listed in one place."""

from __future__ import annotations

from fastapi import FastAPI

from pacs_exporter import exports, preset_list, status


def include_routes(app: FastAPI) -> None:
    app.include_router(status.router)
    app.include_router(exports.router)
    app.include_router(preset_list.router)
