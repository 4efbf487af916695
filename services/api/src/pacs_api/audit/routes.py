"""``GET /audit``: admins read the audit trail; ``POST /audit``: another service (the DIMSE
bridge) appends the records of what it observed.

Neither route changes or removes a record, and no other route exists for that: the table
refuses it too (migration ``0004``). Reading the trail is itself audited (Audit Log Used,
110101, by :mod:`pacs_api.audit.http`).

``GET /audit`` first waits for this process's group-commit writer to store what it holds (a
moment), so an admin sees every request this worker answered before; other workers' records
follow within their next commit. ``POST /audit`` commits before it answers 201 (the bridge then
deletes its copies), and answers 503 when the database cannot take them (the bridge retries).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Query, Request
from pacs_common.audit import EVENTS, AuditRecord, Outcome, Source, now
from pacs_common.auth import Scope
from pacs_common.database import SQL_INTEGER_MAX
from pydantic import BaseModel, Field
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from pacs_api.audit.log import AuditFilter, AuditLog
from pacs_api.audit.tables import AuditEvent
from pacs_api.deps import requires
from pacs_api.errors import BadRequest, ServiceUnavailable

read_router = APIRouter(tags=["audit"], dependencies=[requires(Scope.ADMIN)])
append_router = APIRouter(tags=["audit"], dependencies=[requires(Scope.AUDIT)])
#: Records one ``POST /audit`` may carry.
MAX_BATCH = 500
#: Seconds ``GET /audit`` waits for the records this process holds to be stored.
FLUSH_WAIT = 5.0


class AuditEntry(AuditRecord):
    """A stored audit record: the record, its position and when the API received it."""

    id: int
    received_at: datetime
    event_meaning: str = Field(description="Meaning of event_id (PS3.16 CID 400).")


class AuditPage(BaseModel):
    total: int = Field(description="Records matching the filters.")
    limit: int
    offset: int
    events: list[AuditEntry] = Field(description="Newest first.")


router = APIRouter()
router.include_router(read_router)
router.include_router(append_router)


class Appended(BaseModel):
    appended: int


def audit_log(request: Request) -> AuditLog:
    log: AuditLog = request.app.state.audit
    return log


@read_router.get("/audit", summary="Search the audit trail (admin)")
def read_audit(
    request: Request,
    since: Annotated[datetime | None, Query(description="From this time (inclusive).")] = None,
    until: Annotated[datetime | None, Query(description="Before this time.")] = None,
    user: Annotated[str, Query(max_length=256, description="User ID or AE title.")] = "",
    event: Annotated[str, Query(description="Event ID (DCM code), e.g. 110112.")] = "",
    outcome: Annotated[Outcome | None, Query(description="0, 4, 8 or 12.")] = None,
    study: Annotated[str, Query(max_length=64, description="Study Instance UID.")] = "",
    source: Annotated[Source | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=SQL_INTEGER_MAX)] = 0,
) -> AuditPage:
    if event and event not in EVENTS:
        known = ", ".join(f"{code} ({c.meaning})" for code, c in EVENTS.items())
        raise BadRequest(f"event {event!r} is not an audit event ID; known: {known}")
    where = AuditFilter(
        since=_utc(since, "since"),
        until=_utc(until, "until"),
        user=user,
        event_id=event,
        outcome=int(outcome) if outcome is not None else None,
        study_uid=study,
        source=source.value if source else "",
    )
    trail = audit_log(request)
    trail.flush(FLUSH_WAIT)  # a failing database: the search below says so
    rows, total = trail.search(where, limit, offset)
    return AuditPage(total=total, limit=limit, offset=offset, events=[_entry(r) for r in rows])


@append_router.post(
    "/audit",
    status_code=201,
    summary="Append audit records observed by another service (the DIMSE bridge, the exporter)",
)
async def append_audit(
    request: Request,
    records: Annotated[list[AuditRecord], Body(max_length=MAX_BATCH)],
) -> Appended:
    for number, record in enumerate(records):
        if record.source == Source.API:
            raise BadRequest(f"record {number}: only the API itself records source 'api'")
        if len(record.sop_instance_uids) > record.instance_count:
            raise BadRequest(
                f"record {number}: instance_count {record.instance_count} is less than the "
                f"{len(record.sop_instance_uids)} SOP Instance UIDs listed"
            )
    try:
        await run_in_threadpool(audit_log(request).append_now, records, received_at=now())
    except SQLAlchemyError as exc:
        raise ServiceUnavailable(
            f"the audit table cannot take records now; none of the {len(records)} was "
            "appended: send them again later"
        ) from exc
    return Appended(appended=len(records))


def _utc(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise BadRequest(f"{name} needs a UTC offset (e.g. 2025-01-31T12:00:00Z)")
    return value.astimezone(UTC)


def _aware(value: datetime) -> datetime:
    """SQLite gives back the stored UTC time without its offset."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _entry(row: AuditEvent) -> AuditEntry:
    return AuditEntry.model_validate(
        row.model_dump(exclude={"series_uids", "sop_instance_uids", "time", "received_at"})
        | {
            "time": _aware(row.time),
            "received_at": _aware(row.received_at),
            "series_uids": json.loads(row.series_uids),
            "sop_instance_uids": json.loads(row.sop_instance_uids),
            "event_meaning": str(EVENTS[row.event_id].meaning) if row.event_id in EVENTS else "",
        }
    )
