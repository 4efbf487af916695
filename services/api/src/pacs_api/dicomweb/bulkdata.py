"""WADO-RS bulk data (PS3.18 §10.4.1.1.5): one top-level bulk data element of an instance.

``.../instances/{instance}/bulkdata/{tag}`` serves one top-level bulk data element by its
byte range in the stored object (§10.4.1.1.5), as ``multipart/related;
type="application/octet-stream"`` (one part, with Content-Location) or, when the Accept
header prefers it, single-part ``application/octet-stream`` (§8.7.3 allows both for bulk
data). A ``Range: bytes=...`` request (RFC 9110 §14) is answered 206 with only those bytes
of the element's value, read by a ranged read of the store: the byte positions are those of
the bulk data value, never of the multipart framing, so a multipart answer carries its
Content-Range on the one part and a single-part answer on the response. Several ranges, a
malformed header or an ``If-Range`` that does not match the ETag (the object's SHA-256) are
ignored (a 200, as §14.2 allows); a range starting past the end is a 416.

The extent of each element in the stored object was recorded at ingest
(:mod:`pacs_api.ingest.parse`), so no object is parsed here.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pacs_common.dicomjson import tag_key
from pacs_common.media import APPLICATION_OCTET_STREAM as OCTET_STREAM

from pacs_api.deps import BaseUrlDep, IndexDep, StoreDep
from pacs_api.dicomweb.frame_media import is_native
from pacs_api.dicomweb.negotiation import parse_accept
from pacs_api.dicomweb.responses import BULKDATA
from pacs_api.dicomweb.scope import InstanceScope, describe, stored_instances
from pacs_api.errors import NotAcceptable, NotFound, RangeNotSatisfiable

router = APIRouter(tags=["WADO-RS"], default_response_class=Response)

PIXEL_DATA = tag_key("PixelData")
SEQUENCE_DELIMITATION_ITEM = 8  # (FFFE,E0DD) and a zero 32-bit length (PS3.5 §7.5.2)


@router.get(
    "/studies/{study}/series/{series}/instances/{instance}/bulkdata/{tag}",
    responses=BULKDATA,
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
    stored = stored_instances(index, scope)[0]
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
