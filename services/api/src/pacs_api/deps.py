"""Dependencies stated in route signatures: settings, the index, the object store and the
object writer threads.

Routes take these aliases and hold no SQL and no storage calls of their own. The providers are
``async`` because they only read application state: FastAPI runs a plain ``def`` dependency in
its thread pool, a thread hop per dependency per request for nothing.
"""

from __future__ import annotations

from concurrent.futures import Executor
from typing import Annotated

from fastapi import Depends, Request
from pacs_common.auth.http import PrincipalDep as PrincipalDep
from pacs_common.auth.http import get_principal as get_principal
from pacs_common.auth.http import requires as requires
from pacs_common.storage.base import ObjectStore

from pacs_api.index.repository import Index
from pacs_api.settings import Settings


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_index(request: Request) -> Index:
    index: Index = request.app.state.index
    return index


async def get_store(request: Request) -> ObjectStore:
    store: ObjectStore = request.app.state.store
    return store


async def get_writer(request: Request) -> Executor:
    """The threads that write STOW-RS objects, shared by all requests."""
    writer: Executor = request.app.state.writer
    return writer


async def get_base_url(request: Request) -> str:
    """The DICOMweb service root as clients reach it (``public_url`` or the request's own)."""
    settings: Settings = request.app.state.settings
    root = settings.public_url or str(request.base_url).rstrip("/")
    return f"{root}/dicom-web"


SettingsDep = Annotated[Settings, Depends(get_settings)]
IndexDep = Annotated[Index, Depends(get_index)]
StoreDep = Annotated[ObjectStore, Depends(get_store)]
WriterDep = Annotated[Executor, Depends(get_writer)]
BaseUrlDep = Annotated[str, Depends(get_base_url)]


# Authentication (pacs_common.auth.http, re-exported here): get_principal authenticates the
# request with app.state.authenticator (ANONYMOUS when none is configured) and sets
# request.state.principal; requires(scope) answers 403 without the scope. Scopes are applied
# in pacs_api.routes.
