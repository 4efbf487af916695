"""``GET /changefeed``: the ordered feed of instances stored and deleted.

Not a DICOMweb service: it is how other services (store-and-forward routing in the DIMSE
bridge) follow the archive without reading its tables. A consumer keeps the ``next`` cursor
of the last answer and asks again with ``since=next``; entries come in commit order, so
nothing is skipped (:mod:`pacs_api.index.changes`). Delivery built on it is at least once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pacs_common.database import SQL_INTEGER_MAX
from pydantic import BaseModel, Field, field_validator

from pacs_api.audit.note import audit_note
from pacs_api.deps import IndexDep

router = APIRouter(tags=["change feed"])


class ChangeEntry(BaseModel):
    """One instance stored or deleted."""

    seq: int = Field(description="Position in the feed; grows in commit order.")
    kind: Literal["stored", "deleted"]
    study: str = Field(description="Study Instance UID.")
    series: str = Field(description="Series Instance UID.")
    instance: str = Field(description="SOP Instance UID.")
    sop_class: str = Field(description="SOP Class UID.")
    modality: str = Field(description="Modality (0008,0060) of the series; may be empty.")
    sender_ae: str = Field(
        description="AE title the instance came from: its Sending Application Entity Title "
        "(0002,0017), else its Source Application Entity Title (0002,0016) (PS3.10 table "
        "7.1-1); empty when unknown and for deletions."
    )
    at: datetime | None = Field(description="When the change was committed (UTC).")

    @field_validator("at")
    @classmethod
    def _in_utc(cls, value: datetime | None) -> datetime | None:
        """An RFC 3339 date-time carries its offset (§5.6); the index keeps UTC, SQLite
        without saying so."""
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class ChangeFeed(BaseModel):
    """A page of the feed and the cursor to ask from next."""

    changes: list[ChangeEntry]
    next: int = Field(description="Pass as `since` to read on (equals `since` when idle).")
    head: int = Field(
        description="The newest entry's `seq` (0 when empty): where a new follower that should "
        "see only what comes next starts."
    )


@router.get("/changefeed", summary="Instances stored and deleted, in commit order")
def change_feed(
    index: IndexDep,
    request: Request,
    since: Annotated[
        int, Query(ge=0, le=SQL_INTEGER_MAX, description="Answer entries after this cursor.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=10000, description="At most this many.")] = 1000,
) -> ChangeFeed:
    entries, head = index.changes(since, limit)
    if not entries:
        audit_note(request).skip = True  # an idle poll (every second or so) reads nothing
    return ChangeFeed(
        changes=[
            ChangeEntry(
                seq=entry["seq"],
                kind=entry["kind"],
                study=entry["study_instance_uid"],
                series=entry["series_instance_uid"],
                instance=entry["sop_instance_uid"],
                sop_class=entry["sop_class_uid"],
                modality=entry["modality"],
                sender_ae=entry["sender_ae"],
                at=entry["at"],
            )
            for entry in entries
        ],
        next=entries[-1]["seq"] if entries else since,
        head=head,
    )
