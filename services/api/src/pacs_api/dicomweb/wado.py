"""WADO-RS: Retrieve Instances and Retrieve Metadata (PS3.18 §10.4).

- ``GET /studies/{study}[/series/{series}[/instances/{instance}]]`` streams the stored objects
  as ``multipart/related; type="application/dicom"`` (§10.4.1.1.1), byte for byte as stored.
  A request for a specific transfer syntax that differs from the stored one is answered 406
  until transcoding is added (§8.7.3.5.2 lets an origin server refuse what it cannot produce).
- ``.../metadata`` answers the precomputed DICOM JSON of every instance (§10.4.1.1.2,
  Annex F) without reading a single object: bulk data appear as BulkDataURI (F.2.6).
- ``.../instances/{instance}/bulkdata/{tag}`` serves one top-level bulk data element by its
  byte range in the stored object (§10.4.1.1.5).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from pacs_api.deps import BaseUrlDep, IndexDep, StoreDep
from pacs_api.dicomweb.negotiation import accepts_json, dicom_transfer_syntax
from pacs_api.dicomweb.scope import InstanceScope, SeriesScope, StudyScope, describe
from pacs_api.errors import NotAcceptable, NotFound
from pacs_api.index.repository import Index, Scope, StoredInstance
from pacs_api.ingest.parse import BULK_MARK
from pacs_api.storage.base import ObjectStore

router = APIRouter(tags=["WADO-RS"])

DICOM_JSON = "application/dicom+json"


@router.get("/studies/{study}", summary="Retrieve a study's instances (PS3.18 §10.4)")
def retrieve_study(
    scope: StudyScope, request: Request, index: IndexDep, store: StoreDep, base: BaseUrlDep
) -> StreamingResponse:
    return _retrieve(scope, request, index, store, base)


@router.get("/studies/{study}/series/{series}", summary="Retrieve a series' instances")
def retrieve_series(
    scope: SeriesScope, request: Request, index: IndexDep, store: StoreDep, base: BaseUrlDep
) -> StreamingResponse:
    return _retrieve(scope, request, index, store, base)


@router.get(
    "/studies/{study}/series/{series}/instances/{instance}", summary="Retrieve one instance"
)
def retrieve_instance(
    scope: InstanceScope, request: Request, index: IndexDep, store: StoreDep, base: BaseUrlDep
) -> StreamingResponse:
    return _retrieve(scope, request, index, store, base)


@router.get("/studies/{study}/metadata", summary="A study's metadata (PS3.18 §10.4.1.1.2)")
def study_metadata(
    scope: StudyScope, request: Request, index: IndexDep, base: BaseUrlDep
) -> Response:
    return _metadata(scope, request, index, base)


@router.get("/studies/{study}/series/{series}/metadata", summary="A series' metadata")
def series_metadata(
    scope: SeriesScope, request: Request, index: IndexDep, base: BaseUrlDep
) -> Response:
    return _metadata(scope, request, index, base)


@router.get(
    "/studies/{study}/series/{series}/instances/{instance}/metadata",
    summary="An instance's metadata",
)
def instance_metadata(
    scope: InstanceScope, request: Request, index: IndexDep, base: BaseUrlDep
) -> Response:
    return _metadata(scope, request, index, base)


@router.get(
    "/studies/{study}/series/{series}/instances/{instance}/bulkdata/{tag}",
    summary="One bulk data element (PS3.18 §10.4.1.1.5)",
)
def bulkdata(scope: InstanceScope, tag: str, index: IndexDep, store: StoreDep) -> Response:
    stored = _instances(index, scope)[0]
    extent = stored.bulk.get(tag.upper())
    if extent is None:
        raise NotFound(f"no bulk data element {tag} in {describe(scope)}")
    offset, length = extent
    data = store.read(stored.object_key, (offset, offset + length))
    boundary = uuid.uuid4().hex
    body = (
        f"--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n".encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return Response(
        body,
        media_type=f'multipart/related; type="application/octet-stream"; boundary={boundary}',
    )


def _instances(index: Index, scope: Scope) -> list[StoredInstance]:
    found = index.instances(scope)
    if not found:
        raise NotFound(f"no {describe(scope)} is stored")
    return found


def _retrieve(
    scope: Scope, request: Request, index: Index, store: ObjectStore, base: str
) -> StreamingResponse:
    wanted = dicom_transfer_syntax(request.headers.get("accept"))
    instances = _instances(index, scope)
    if wanted not in (None, "*"):
        other = [i for i in instances if i.transfer_syntax_uid != wanted]
        if other:
            raise NotAcceptable(
                f"{len(other)} instance(s) are stored in transfer syntax "
                f"{other[0].transfer_syntax_uid}, not {wanted}; ask with transfer-syntax=* "
                "for the stored syntax (PS3.18 §8.7.3.5)"
            )
    boundary = uuid.uuid4().hex
    first = store.open(instances[0].object_key)  # a store outage is a 503 before any byte
    return StreamingResponse(
        _multipart(instances, first, store, base, boundary),
        media_type=f'multipart/related; type="application/dicom"; boundary={boundary}',
    )


def _multipart(
    instances: list[StoredInstance],
    first: Iterator[bytes],
    store: ObjectStore,
    base: str,
    boundary: str,
) -> Iterator[bytes]:
    for position, item in enumerate(instances):
        location = (
            f"{base}/studies/{item.study_uid}/series/{item.series_uid}"
            f"/instances/{item.sop_instance_uid}"
        )
        yield (
            f"--{boundary}\r\n"
            f"Content-Type: application/dicom; transfer-syntax={item.transfer_syntax_uid}\r\n"
            f"Content-Length: {item.size}\r\n"
            f"Content-Location: {location}\r\n\r\n"
        ).encode()
        yield from (first if position == 0 else store.open(item.object_key))
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode()


def _metadata(scope: Scope, request: Request, index: Index, base: str) -> Response:
    accepts_json(request.headers.get("accept"))
    documents = index.metadata(scope)
    if not documents:
        raise NotFound(f"no {describe(scope)} is stored")
    body = "[" + ",".join(documents) + "]"
    body = body.replace(f'"BulkDataURI":"{BULK_MARK}', f'"BulkDataURI":"{base}')
    return Response(body.encode("utf-8"), media_type=DICOM_JSON)
