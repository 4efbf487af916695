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
  instance instead (:mod:`pacs_api.dicomweb.xml`).
- ``.../instances/{instance}/bulkdata/{tag}`` serves one top-level bulk data element by its
  byte range in the stored object (§10.4.1.1.5), as ``multipart/related;
  type="application/octet-stream"`` (one part, with Content-Location) or, when the Accept
  header prefers it, single-part ``application/octet-stream`` (§8.7.3 allows both for bulk
  data). A ``Range: bytes=...`` request (RFC 9110 §14) is answered 206 with only those bytes
  of the element's value, read by a ranged read of the store: the byte positions are those of
  the bulk data value, never of the multipart framing, so a multipart answer carries its
  Content-Range on the one part and a single-part answer on the response. Several ranges, a
  malformed header or an ``If-Range`` that does not match the ETag (the object's SHA-256) are
  ignored (a 200, as §14.2 allows); a range starting past the end is a 416.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from pacs_api.deps import BaseUrlDep, IndexDep, StoreDep
from pacs_api.dicomweb.frame_media import is_native
from pacs_api.dicomweb.negotiation import (
    choose_transfer_syntax,
    dicom_transfer_syntaxes,
    parse_accept,
)
from pacs_api.dicomweb.scope import InstanceScope, SeriesScope, StudyScope, describe
from pacs_api.dicomweb.xml import prefers_xml, xml_answer
from pacs_api.errors import NotAcceptable, NotFound, RangeNotSatisfiable
from pacs_api.imaging.transcode import Untranscodable, refusal, transcode
from pacs_api.index.repository import Index, Scope, StoredInstance
from pacs_api.ingest.parse import BULK_MARK
from pacs_api.storage.base import ObjectStore
from pacs_api.storage.readahead import read_ahead

router = APIRouter(tags=["WADO-RS"])

DICOM_JSON = "application/dicom+json"
#: The Accept ranges the DICOM JSON metadata answers (the default; §8.7.3).
JSON_RANGES = frozenset({"*/*", "application/*", DICOM_JSON, "application/json"})
OCTET_STREAM = "application/octet-stream"
PIXEL_DATA = "7FE00010"
SEQUENCE_DELIMITATION_ITEM = 8  # (FFFE,E0DD) and a zero 32-bit length (PS3.5 §7.5.2)


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
    summary="One bulk data element (PS3.18 §10.4.1.1.5), byte ranges (RFC 9110 §14)",
)
def bulkdata(
    scope: InstanceScope,
    tag: str,
    request: Request,
    index: IndexDep,
    store: StoreDep,
    base: BaseUrlDep,
) -> Response:
    stored = _instances(index, scope)[0]
    extent = stored.bulk.get(tag.upper())
    if extent is None:
        raise NotFound(f"no bulk data element {tag} in {describe(scope)}")
    single_part = bulk_single_part(request.headers.get("accept"))
    offset, length = extent
    if tag.upper() == PIXEL_DATA and not is_native(stored.transfer_syntax_uid):
        # The stored extent of encapsulated Pixel Data ends after its Sequence Delimitation
        # Item (what frames need); the value is the items alone (PS3.5 A.4), as pydicom has it.
        length -= SEQUENCE_DELIMITATION_ITEM
    etag = f'"{stored.sha256}"'
    wanted = None
    if request.headers.get("if-range", etag) == etag:
        wanted = byte_range(request.headers.get("range"), length)
    start, end = wanted or (0, length)
    data = store.read(stored.object_key, (offset + start, offset + end))
    headers = {"Accept-Ranges": "bytes", "ETag": etag}
    if wanted is not None:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{length}"
    status = 206 if wanted is not None else 200
    if single_part:
        return Response(data, status, headers, media_type=OCTET_STREAM)
    boundary = uuid.uuid4().hex
    part_headers = f"Content-Type: {OCTET_STREAM}\r\n"
    if wanted is not None:
        part_headers += f"Content-Range: {headers.pop('Content-Range')}\r\n"
    location = (
        f"{base}/studies/{stored.study_uid}/series/{stored.series_uid}"
        f"/instances/{stored.sop_instance_uid}/bulkdata/{tag.upper()}"
    )
    body = (
        f"--{boundary}\r\n{part_headers}Content-Location: {location}\r\n\r\n".encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return Response(
        body,
        status,
        headers,
        media_type=f'multipart/related; type="{OCTET_STREAM}"; boundary={boundary}',
    )


def _instances(index: Index, scope: Scope) -> list[StoredInstance]:
    found = index.instances(scope)
    if not found:
        raise NotFound(f"no {describe(scope)} is stored")
    return found


def _retrieve(
    scope: Scope, request: Request, index: Index, store: ObjectStore, base: str
) -> StreamingResponse:
    ranges = dicom_transfer_syntaxes(request.headers.get("accept"))
    instances = _instances(index, scope)
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
    documents = index.metadata(scope)
    if not documents:
        raise NotFound(f"no {describe(scope)} is stored")
    body = "[" + ",".join(documents) + "]"
    body = body.replace(f'"BulkDataURI":"{BULK_MARK}', f'"BulkDataURI":"{base}')
    if xml:  # PS3.19 documents, converted from the same JSON (PS3.18 §10.4.1.1.2)
        return xml_answer(json.loads(body))
    return Response(body.encode("utf-8"), media_type=DICOM_JSON)


def bulk_single_part(accept: str | None) -> bool:
    """Whether bulk data goes out as single-part octet-stream (else multipart, the default)."""
    for accepted in parse_accept(accept):
        media = accepted.media
        if media.value in (OCTET_STREAM, "application/*"):
            return True
        if media.value in ("*/*", "multipart/*"):
            return False
        if media.value == "multipart/related" and media.params.get(
            "type", OCTET_STREAM
        ).lower() in (
            OCTET_STREAM,
            "application/*",
            "*/*",
        ):
            return False
    raise NotAcceptable(
        f"cannot answer Accept: {accept!r}; bulk data is served as application/octet-stream, "
        "single part or in multipart/related (PS3.18 §8.7.3)"
    )


def byte_range(header: str | None, length: int) -> tuple[int, int] | None:
    """The ``(start, end)`` (end exclusive) of a single-range ``Range`` header over *length*
    bytes (RFC 9110 §14.1.2), or ``None`` to ignore it; 416 when it cannot be satisfied."""
    if header is None:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = (text.strip() for text in spec.partition("-"))
    if not dash or not (first or last) or not all(_digits(t) for t in (first, last) if t):
        return None
    if not first:  # a suffix range: the last N bytes
        if int(last) == 0:
            raise RangeNotSatisfiable(length)
        return max(length - int(last), 0), length
    start = int(first)
    if last and int(last) < start:  # an invalid range-spec (§14.1.1)
        return None
    if start >= length:
        raise RangeNotSatisfiable(length)
    return start, min(int(last) + 1, length) if last else length


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()
