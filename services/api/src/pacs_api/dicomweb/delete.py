"""DELETE of a study, series or instance (PS3.18 §10.4 resources; the Delete transaction).

Index rows go first, in one transaction; the objects they referenced are deleted after the
commit. A crash in between leaves objects no row references (removed by the sweep), never a
row whose object is gone. Unknown UIDs answer 404.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pacs_common.storage.base import ObjectStore

from pacs_api.audit.note import note_instances
from pacs_api.deps import IndexDep, StoreDep
from pacs_api.dicomweb.responses import LOOKUP
from pacs_api.dicomweb.scope import InstanceScope, SeriesScope, StudyScope, describe
from pacs_api.errors import NotFound
from pacs_api.index.repository import Index, Scope

router = APIRouter(tags=["DELETE"], responses=LOOKUP)


@router.delete("/studies/{study}", status_code=204, summary="Delete a study")
def delete_study(scope: StudyScope, index: IndexDep, store: StoreDep, request: Request) -> Response:
    return _delete(scope, index, store, request)


@router.delete("/studies/{study}/series/{series}", status_code=204, summary="Delete a series")
def delete_series(
    scope: SeriesScope, index: IndexDep, store: StoreDep, request: Request
) -> Response:
    return _delete(scope, index, store, request)


@router.delete(
    "/studies/{study}/series/{series}/instances/{instance}",
    status_code=204,
    summary="Delete an instance",
)
def delete_instance(
    scope: InstanceScope, index: IndexDep, store: StoreDep, request: Request
) -> Response:
    return _delete(scope, index, store, request)


def _delete(scope: Scope, index: Index, store: ObjectStore, request: Request) -> Response:
    note_instances(request, index.instances(scope))  # the audit trail names what is deleted
    keys = index.delete(scope)
    if not keys:
        raise NotFound(f"no {describe(scope)} is stored")
    store.delete(keys)
    return Response(status_code=204)
