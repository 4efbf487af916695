"""The quarantine for administrators (the ``admin`` scope): list, show, download, release,
delete. Not DICOMweb: ``/quarantine`` at the server root, beside ``/usage`` and
``/changefeed``. Errors are problem+json (RFC 9457)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response, StreamingResponse
from pacs_common.database import SQL_INTEGER_MAX
from pacs_common.media import APPLICATION_DICOM
from pacs_common.problems import NotFound
from pacs_common.storage.base import ObjectNotFound
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from pacs_api.deps import IndexDep, SettingsDep, StoreDep, WriterDep
from pacs_api.quarantine.models import QuarantineEntry
from pacs_api.quarantine.service import ID_LENGTH, Quarantine

#: Needs the admin scope (applied where the routes are listed: pacs_api.routes).
router = APIRouter(prefix="/quarantine", tags=["quarantine"])

EntryId = Annotated[
    str,
    Path(
        pattern=f"^[0-9a-f]{{{ID_LENGTH}}}$",
        description="The entry id: the first 16 hex digits of the object's SHA-256.",
    ),
]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such quarantine entry."}}


async def get_quarantine(index: IndexDep, store: StoreDep) -> Quarantine:
    return Quarantine.of(index, store)


QuarantineDep = Annotated[Quarantine, Depends(get_quarantine)]


class EntryView(BaseModel):
    id: str
    kind: str = Field(description="missing, truncated, short or undelimited (Pixel Data).")
    failure: int = Field(description="The C-STORE status STOW-RS answered (PS3.4 B.2.3).")
    reason: str
    sop_class_uid: str
    sop_instance_uid: str
    study_uid: str
    series_uid: str
    patient_id: str
    patient_name: str
    source_subject: str = Field(description="Who sent it (the authenticated subject).")
    source_address: str = Field(description="The client's address.")
    source_ae: str = Field(description="The calling AE title, when it came through DIMSE.")
    size: int = Field(description="Bytes kept, exactly as received.")
    sha256: str
    times_received: int = Field(description="Identical copies received (kept once).")
    received_at: datetime
    last_received_at: datetime

    @classmethod
    def of(cls, entry: QuarantineEntry) -> EntryView:
        view = cls.model_validate(entry, from_attributes=True)
        # SQLite hands datetimes back without their zone; every stored one is UTC.
        for name in ("received_at", "last_received_at"):
            value: datetime = getattr(view, name)
            if value.tzinfo is None:
                setattr(view, name, value.replace(tzinfo=UTC))
        return view


class EntryPage(BaseModel):
    total: int = Field(description="Entries in the quarantine.")
    offset: int
    limit: int
    entries: list[EntryView] = Field(description="Last received first.")


class ReleasedView(BaseModel):
    id: str = Field(description="The quarantine entry, now removed.")
    sop_class_uid: str
    sop_instance_uid: str
    study_uid: str
    series_uid: str


@router.get("", summary="Quarantined objects, last received first")
def list_entries(
    quarantine: QuarantineDep,
    offset: Annotated[int, Query(ge=0, le=SQL_INTEGER_MAX)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EntryPage:
    entries, total = quarantine.repository.page(offset, limit)
    return EntryPage(
        total=total, offset=offset, limit=limit, entries=[EntryView.of(e) for e in entries]
    )


@router.get("/{entry_id}", summary="One quarantined object", responses=_NOT_FOUND)
def show_entry(entry_id: EntryId, quarantine: QuarantineDep) -> EntryView:
    return EntryView.of(quarantine.get(entry_id))


@router.get(
    "/{entry_id}/object",
    summary="The bytes kept, exactly as received (application/dicom)",
    response_class=Response,
    responses={200: {"content": {APPLICATION_DICOM: {}}}, **_NOT_FOUND},
)
def download_entry(entry_id: EntryId, quarantine: QuarantineDep) -> StreamingResponse:
    entry = quarantine.get(entry_id)
    try:
        chunks = quarantine.store.open(entry.object_key)
    except ObjectNotFound:
        raise NotFound(f"the bytes of quarantine entry {entry_id} are gone") from None
    return StreamingResponse(
        chunks,
        media_type=APPLICATION_DICOM,
        headers={
            "Content-Length": str(entry.size),
            "Content-Disposition": f'attachment; filename="{entry_id}.dcm"',
        },
    )


@router.post(
    "/{entry_id}/release",
    summary="Store the object in the archive after all (Pixel Data check waived)",
    responses={
        **_NOT_FOUND,
        409: {"description": "The archive refuses it for another reason; the entry stays."},
    },
)
async def release_entry(
    entry_id: EntryId,
    quarantine: QuarantineDep,
    index: IndexDep,
    settings: SettingsDep,
    writer: WriterDep,
) -> ReleasedView:
    released = await run_in_threadpool(quarantine.release, entry_id, index, settings, writer)
    return ReleasedView(
        id=released.entry_id,
        sop_class_uid=released.sop_class_uid,
        sop_instance_uid=released.sop_instance_uid,
        study_uid=released.study_uid,
        series_uid=released.series_uid,
    )


@router.delete(
    "/{entry_id}", status_code=204, summary="Delete the object and its entry", responses=_NOT_FOUND
)
def delete_entry(entry_id: EntryId, quarantine: QuarantineDep) -> Response:
    quarantine.delete(entry_id)
    return Response(status_code=204)
