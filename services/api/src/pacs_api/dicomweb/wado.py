"""WADO-RS: Retrieve Instances and Retrieve Metadata (PS3.18 §10.4).

- ``GET /studies/{study}[/series/{series}[/instances/{instance}]]`` streams the stored objects
  as ``multipart/related; type="application/dicom"`` (§10.4.1.1.1), instance by instance, each
  in the highest-q acceptable transfer syntax that can be produced for it (§8.7.3.5,
  :func:`~pacs_api.dicomweb.negotiation.choose_transfer_syntax`): as stored, byte for byte, or
  transcoded (:mod:`pacs_api.imaging.transcode`, one instance in memory at a time), the part's
  Content-Type naming the syntax sent. Syntaxes are chosen, and the first instance transcoded,
  before the answer starts, so what cannot be produced is a 406; a later instance the codec
  rejects breaks the stream off (logged) rather than leaving it silently short.
- ``.../metadata`` answers the precomputed DICOM JSON of every instance (§10.4.1.1.2,
  Annex F) without reading a single object: bulk data appear as BulkDataURI (F.2.6). Asked for
  ``multipart/related; type="application/dicom+xml"``, it answers one PS3.19 document per
  instance instead (:mod:`pacs_api.dicomweb.xml`). A study's or series' answer is assembled
  once per metadata version and kept (:mod:`pacs_api.dicomweb.metadata_cache`).
- Bulk data: :mod:`pacs_api.dicomweb.bulkdata`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from pacs_common.media import APPLICATION_DICOM_JSON as DICOM_JSON
from pacs_common.storage.base import ObjectStore
from pacs_common.storage.readahead import read_ahead

from pacs_api.deps import BaseUrlDep, IndexDep, StoreDep
from pacs_api.dicomweb.metadata_cache import cache_for
from pacs_api.dicomweb.negotiation import (
    choose_transfer_syntax,
    dicom_transfer_syntaxes,
)
from pacs_api.dicomweb.responses import METADATA, RETRIEVE
from pacs_api.dicomweb.scope import (
    InstanceScope,
    SeriesScope,
    StudyScope,
    describe,
    stored_instances,
)
from pacs_api.dicomweb.xml import prefers_xml, xml_answer
from pacs_api.errors import NotAcceptable, NotFound
from pacs_api.imaging.transcode import Untranscodable, refusal, transcode
from pacs_api.index.repository import Index, Scope, StoredInstance
from pacs_api.ingest.parse import BULK_MARK

router = APIRouter(tags=["WADO-RS"], default_response_class=Response)

#: The Accept ranges the DICOM JSON metadata answers (the default; §8.7.3).
JSON_RANGES = frozenset({"*/*", "application/*", DICOM_JSON, "application/json"})


@router.get(
    "/studies/{study}", responses=RETRIEVE, summary="Retrieve a study's instances (PS3.18 §10.4)"
)
def retrieve_study(
    scope: StudyScope, request: Request, index: IndexDep, store: StoreDep, base: BaseUrlDep
) -> StreamingResponse:
    return _retrieve(scope, request, index, store, base)


@router.get(
    "/studies/{study}/series/{series}", responses=RETRIEVE, summary="Retrieve a series' instances"
)
def retrieve_series(
    scope: SeriesScope, request: Request, index: IndexDep, store: StoreDep, base: BaseUrlDep
) -> StreamingResponse:
    return _retrieve(scope, request, index, store, base)


@router.get(
    "/studies/{study}/series/{series}/instances/{instance}",
    responses=RETRIEVE,
    summary="Retrieve one instance",
)
def retrieve_instance(
    scope: InstanceScope, request: Request, index: IndexDep, store: StoreDep, base: BaseUrlDep
) -> StreamingResponse:
    return _retrieve(scope, request, index, store, base)


@router.get(
    "/studies/{study}/metadata",
    responses=METADATA,
    summary="A study's metadata (PS3.18 §10.4.1.1.2)",
)
def study_metadata(
    scope: StudyScope, request: Request, index: IndexDep, base: BaseUrlDep
) -> Response:
    return _metadata(scope, request, index, base)


@router.get(
    "/studies/{study}/series/{series}/metadata", responses=METADATA, summary="A series' metadata"
)
def series_metadata(
    scope: SeriesScope, request: Request, index: IndexDep, base: BaseUrlDep
) -> Response:
    return _metadata(scope, request, index, base)


@router.get(
    "/studies/{study}/series/{series}/instances/{instance}/metadata",
    responses=METADATA,
    summary="An instance's metadata",
)
def instance_metadata(
    scope: InstanceScope, request: Request, index: IndexDep, base: BaseUrlDep
) -> Response:
    return _metadata(scope, request, index, base)


def _retrieve(
    scope: Scope, request: Request, index: Index, store: ObjectStore, base: str
) -> StreamingResponse:
    ranges = dicom_transfer_syntaxes(request.headers.get("accept"))
    instances = stored_instances(index, scope)
    targets = [choose_transfer_syntax(ranges, i.transfer_syntax_uid, refusal) for i in instances]
    boundary = uuid.uuid4().hex
    # A store outage is a 503, and a codec failure on the first instance a 406, before any byte.
    first = _part(instances[0], targets[0], store.open(instances[0].object_key))
    return StreamingResponse(
        _multipart(instances, targets, first, store, base, boundary),
        media_type=f'multipart/related; type="application/dicom"; boundary={boundary}',
    )


def _part(
    item: StoredInstance, target: str, chunks: Iterator[bytes]
) -> tuple[int, Iterator[bytes]]:
    """The length and bytes of one instance in *target*: as stored, or transcoded."""
    if target == item.transfer_syntax_uid:
        return item.size, chunks
    try:
        data = transcode(b"".join(chunks), target)
    except Untranscodable as exc:
        raise NotAcceptable(
            f"instance {item.sop_instance_uid}, stored in transfer syntax "
            f"{item.transfer_syntax_uid}, cannot be sent in {target}: {exc} (PS3.18 §8.7.3.5)"
        ) from None
    return len(data), iter((data,))


def _multipart(
    instances: list[StoredInstance],
    targets: list[str],
    first: tuple[int, Iterator[bytes]],
    store: ObjectStore,
    base: str,
    boundary: str,
) -> Iterator[bytes]:
    later = [(item.object_key, item.size) for item in instances[1:]]
    rest = (
        read_ahead(store, later, window=store.read_ahead)
        if store.read_ahead
        else (store.open(key) for key, _ in later)
    )
    for position, (item, target) in enumerate(zip(instances, targets, strict=True)):
        location = (
            f"{base}/studies/{item.study_uid}/series/{item.series_uid}"
            f"/instances/{item.sop_instance_uid}"
        )
        size, chunks = first if position == 0 else _part(item, target, next(rest))
        yield (
            f"--{boundary}\r\n"
            f"Content-Type: application/dicom; transfer-syntax={target}\r\n"
            f"Content-Length: {size}\r\n"
            f"Content-Location: {location}\r\n\r\n"
        ).encode()
        yield from chunks
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode()


def _metadata(scope: Scope, request: Request, index: Index, base: str) -> Response:
    xml = prefers_xml(request.headers.get("accept"), JSON_RANGES)
    if scope.sop_instance_uid is not None:  # one row: nothing worth caching
        body = _assemble(index, scope, base)
    else:  # a study or series: assembled once per version (metadata_cache)
        version = index.metadata_version(scope)
        if version is None:
            raise NotFound(f"no {describe(scope)} is stored")
        body = cache_for(index).get_or_assemble(
            scope, version, base, lambda: _assemble(index, scope, base)
        )
    if xml:  # PS3.19 documents, converted from the same JSON (PS3.18 §10.4.1.1.2)
        return xml_answer(json.loads(body))
    return Response(body, media_type=DICOM_JSON)


def _assemble(index: Index, scope: Scope, base: str) -> bytes:
    """The DICOM JSON array of the scope's instances, BulkDataURIs under *base* (F.2.6)."""
    documents = index.metadata(scope)
    if not documents:
        raise NotFound(f"no {describe(scope)} is stored")
    body = "[" + ",".join(documents) + "]"
    return body.replace(f'"BulkDataURI":"{BULK_MARK}', f'"BulkDataURI":"{base}').encode("utf-8")
