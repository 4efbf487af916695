"""STOW-RS: Store Instances (PS3.18 §10.5).

``POST /studies`` and ``POST /studies/{study}`` take ``multipart/related;
type="application/dicom"`` bodies (PS3.18 §10.5.1.2, §8.6.1.2). The body is read as a stream
(memory bounded by the part spool, not the body size); each instance is checked, stored byte
for byte and indexed by :class:`pacs_api.ingest.pipeline.Ingest`.

The answer is the Store Instances Response Module (PS3.18 §10.5.3, table 10.5.3-2) in
``application/dicom+json``, with the HTTP status of table 10.5.3-1: 200 when every instance
was stored, 202 when some failed, 409 when none was stored; 400/413/415 for a request that
cannot be read at all or exceeds a limit (body size, instances per request: 413; a stalled
body: 408, :mod:`pacs_api.limits`); then nothing is stored.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pacs_common import statuses
from pacs_common.dicomjson import element
from pacs_common.media import APPLICATION_DICOM_JSON as DICOM_JSON
from pacs_common.uids import InvalidUIDError, validate_uid
from starlette.concurrency import run_in_threadpool

from pacs_api.audit.note import note_stored
from pacs_api.deps import BaseUrlDep, IndexDep, PrincipalDep, SettingsDep, StoreDep, WriterDep
from pacs_api.dicomweb.multipart import MediaType, Part, boundary_of, read_parts
from pacs_api.dicomweb.responses import MULTIPART_DICOM, STOW
from pacs_api.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType, warning_header
from pacs_api.ingest.pipeline import Ingest, InstanceResult
from pacs_api.observability import api_metrics
from pacs_api.quarantine.service import Quarantine, Source

router = APIRouter(tags=["STOW-RS"], default_response_class=Response)

DICOM = "application/dicom"


#: The body is read as a stream, not by FastAPI: documented here (PS3.18 §10.5.1.2).
STOW_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {MULTIPART_DICOM: {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.post(
    "/studies",
    responses=STOW,
    openapi_extra=STOW_BODY,
    summary="Store instances (PS3.18 §10.5)",
)
async def store_instances(
    request: Request,
    index: IndexDep,
    store: StoreDep,
    settings: SettingsDep,
    writer: WriterDep,
    base: BaseUrlDep,
    principal: PrincipalDep,
) -> JSONResponse:
    return await _stow(request, index, store, settings, writer, base, principal.subject, None)


@router.post(
    "/studies/{study}",
    responses=STOW,
    openapi_extra=STOW_BODY,
    summary="Store instances of one study",
)
async def store_study_instances(
    study: str,
    request: Request,
    index: IndexDep,
    store: StoreDep,
    settings: SettingsDep,
    writer: WriterDep,
    base: BaseUrlDep,
    principal: PrincipalDep,
) -> JSONResponse:
    try:
        validate_uid(study, what="Study Instance UID in the URL")
    except InvalidUIDError as exc:
        raise BadRequest(str(exc)) from None
    return await _stow(request, index, store, settings, writer, base, principal.subject, study)


def _check_request(request: Request, max_body: int) -> str:
    """The multipart boundary, after the checks of PS3.18 §10.5.1.2 (else 415/413/400)."""
    content_type = MediaType.parse(request.headers.get("content-type", ""))
    if content_type.value != "multipart/related":
        raise UnsupportedMediaType(
            f'STOW-RS takes multipart/related; type="{DICOM}", not '
            f"{content_type.value or 'a body without Content-Type'} (PS3.18 §10.5.1.2)"
        )
    part_type = content_type.params.get("type", DICOM).lower()
    if part_type != DICOM:
        raise UnsupportedMediaType(
            f"multipart/related of type {part_type!r} is not supported; only {DICOM!r} "
            "(PS3.18 §10.5.1.2: the JSON + bulk data form is optional)"
        )
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_body:
        raise PayloadTooLarge(f"the request body of {length} bytes exceeds the limit of {max_body}")
    return boundary_of(content_type)


async def _stow(
    request: Request,
    index: IndexDep,
    store: StoreDep,
    settings: SettingsDep,
    writer: Executor,
    base: str,
    subject: str,
    study: str | None,
) -> JSONResponse:
    boundary = _check_request(request, settings.max_body_bytes)
    # An image with incomplete Pixel Data is kept in the quarantine, never stored or dropped.
    source = Source(subject, request.client.host if request.client else "")
    ingest = Ingest(
        index, store, settings, study, writer, quarantine=Quarantine.of(index, store), source=source
    )
    # One part is checked and stored (in a worker thread) while the next one is received: at
    # most two parts are held, and reading the body overlaps with storing it.
    working: asyncio.Future[None] | None = None
    parts = 0
    try:
        async for part in read_parts(
            request.stream(),
            boundary,
            spool_bytes=settings.spool_memory_bytes,
            spool_dir=settings.spool_dir,
            max_body_bytes=settings.max_body_bytes,
        ):
            parts += 1
            if parts > settings.max_instances_per_request:
                part.close()
                raise PayloadTooLarge(
                    f"the request carries more than {settings.max_instances_per_request} "
                    "instances (max_instances_per_request); nothing of it was stored: send "
                    "them in several requests"
                )
            if working is not None:
                try:
                    await working
                except BaseException:
                    part.close()  # received, never to be stored
                    raise
            working = asyncio.ensure_future(run_in_threadpool(_add_part, ingest, part))
        if working is not None:
            await working
        results = await run_in_threadpool(ingest.finish)
    except BaseException:
        if working is not None and not working.done():
            await asyncio.wait([working])  # never undo while a part is still being stored
        await run_in_threadpool(ingest.abort)
        raise
    note_stored(request, results)  # the audit trail names what was stored and refused
    if not results:
        raise BadRequest("the multipart/related body holds no parts")
    api_metrics(request).stowed(results)
    return _response(results, base, study)


def _add_part(ingest: Ingest, part: Part) -> None:
    """Hand one part to the ingest, which closes it once its bytes are no longer needed."""
    part_type = part.content_type.value or DICOM
    if part_type != DICOM:
        part.close()
        ingest.fail(
            statuses.CANNOT_UNDERSTAND,
            f"a part of media type {part_type!r} in a multipart/related; type={DICOM!r} body",
        )
        return
    ingest.add(part.file, part.size, part.sha256, part.close)


def _response(results: list[InstanceResult], base: str, study: str | None) -> JSONResponse:
    """The Store Instances Response Module (PS3.18 table 10.5.3-2) and its status."""
    stored = [r for r in results if r.failure is None]
    failed = [r for r in results if r.failure is not None]
    body: dict[str, Any] = {}
    studies = {r.study_uid for r in stored} | ({study} if study else set())
    if len(studies) == 1:
        body |= element("RetrieveURL", f"{base}/studies/{studies.pop()}")
    if stored:
        body |= element(
            "ReferencedSOPSequence",
            *[
                element("ReferencedSOPClassUID", r.sop_class_uid)
                | element("ReferencedSOPInstanceUID", r.sop_instance_uid)
                | element(
                    "RetrieveURL",
                    f"{base}/studies/{r.study_uid}/series/{r.series_uid}/instances/{r.sop_instance_uid}",
                )
                for r in stored
            ],
        )
    if failed:
        body |= element(
            "FailedSOPSequence",
            *[
                element("ReferencedSOPClassUID", r.sop_class_uid or None)
                | element("ReferencedSOPInstanceUID", r.sop_instance_uid or None)
                | element("FailureReason", r.failure)
                | element("ErrorComment", r.reason)
                for r in failed
            ],
        )
    status = 200 if not failed else 202 if stored else 409
    headers = {}
    if failed:
        # PS3.18 §8.3.5.1: a Warning header carries the reasons in a human-readable form.
        reasons = "; ".join(f"{r.sop_instance_uid or 'part'}: {r.reason}" for r in failed[:10])
        headers["Warning"] = warning_header(reasons)
    return JSONResponse(body, status_code=status, media_type=DICOM_JSON, headers=headers)
