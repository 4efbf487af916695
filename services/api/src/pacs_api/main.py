"""The API's entry point: :func:`create_app` builds the FastAPI application.

Routes are listed in one place, :mod:`pacs_api.routes`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pydicom.config
from fastapi import FastAPI
from pacs_common.audit_http import AuditMiddleware
from pacs_common.auth.authenticator import Authenticator
from pacs_common.storage import open_store

from pacs_api import observability
from pacs_api.audit.http import http_records
from pacs_api.audit.log import AuditLog
from pacs_api.cors import install_cors
from pacs_api.errors import install_error_handlers
from pacs_api.index.db import make_engine, migrate
from pacs_api.index.repository import Index
from pacs_api.ingest.pipeline import writer_pool
from pacs_api.limits import install_limits
from pacs_api.quarantine.repository import QuarantineRepository
from pacs_api.routes import include_routes
from pacs_api.settings import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application: validate settings, migrate the index, open the store."""
    settings = settings or Settings()
    # Objects are stored as received; pydicom reads them to index, not to judge their values.
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    engine = make_engine(settings.database_url)
    migrate(engine)
    store = open_store(settings)
    writer = writer_pool()
    audit = AuditLog(engine, settings.audit_log_path)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            writer.shutdown(wait=True)
            audit.close()
            store.close()
            engine.dispose()

    app = FastAPI(
        title="pacs-cloud DICOMweb API",
        version="0.1.0",
        summary="STOW-RS, QIDO-RS, WADO-RS and DELETE (DICOM PS3.18) over object storage.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.index = Index(engine)
    app.state.store = store
    app.state.writer = writer
    app.state.audit = audit
    # bearer API keys and JWTs (pacs_common.auth); None: no authentication, loopback only
    app.state.authenticator = Authenticator.from_settings(settings)
    install_error_handlers(app)
    install_cors(app, settings)
    # X-Request-ID, access log, GET /metrics (with the quarantine and audit gauges)
    observability.install(app, QuarantineRepository(engine), audit)
    include_routes(app)
    install_limits(app, settings)  # body read timeout (408), rate limit (429); innermost
    # outermost: sees every answer
    app.add_middleware(AuditMiddleware, records=http_records, append=audit.append)
    return app
