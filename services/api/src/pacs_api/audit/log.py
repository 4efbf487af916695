"""Appending audit records and searching them.

:meth:`AuditLog.append` writes each record twice: a row of ``audit_event`` in the index
database, and one line of the JSON-lines stream, the DICOM audit message of PS3.15 A.5.1
(:meth:`pacs_common.audit.AuditRecord.to_atna`). The stream is the ``pacs.audit`` logger
(stdout/stderr in containers, where a log shipper takes it to a syslog/ATNA repository) and,
when ``audit_log_path`` is set, a file the records are appended to, flushed line by line.

A record is never dropped without a trace: when the database cannot take it, the stream still
gets it, and an error saying so is logged with the record's request id.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pacs_common.audit import AuditRecord, AuditStream, now
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col

from pacs_api.audit.tables import AuditEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """What ``GET /audit`` asks for; empty fields match everything."""

    since: datetime | None = None
    until: datetime | None = None
    user: str = ""
    event_id: str = ""
    outcome: int | None = None
    study_uid: str = ""
    source: str = ""


class AuditLog:
    """The audit trail of one API process: the ``audit_event`` table and the stream."""

    def __init__(self, engine: Engine, path: Path | None = None) -> None:
        self.engine = engine
        self.stream = AuditStream(path)

    def append(self, records: list[AuditRecord], *, received_at: datetime | None = None) -> None:
        """Append *records* to the table and the stream (blocking: call from a thread)."""
        if not records:
            return
        received = received_at or now()
        try:
            with self.engine.begin() as connection:
                connection.execute(insert(AuditEvent), [_row(r, received) for r in records])
        except SQLAlchemyError as exc:
            log.error(
                "%d audit record(s) not stored in the index database (kept in the audit "
                "stream only): %s",
                len(records),
                exc,
                extra={"request_ids": sorted({r.request_id for r in records})},
            )
        for record in records:
            self.stream.write(record)

    def search(self, where: AuditFilter, limit: int, offset: int) -> tuple[list[AuditEvent], int]:
        """Records matching *where*, newest first, and how many match in all."""
        conditions: list[Any] = []
        if where.since is not None:
            conditions.append(col(AuditEvent.time) >= where.since)
        if where.until is not None:
            conditions.append(col(AuditEvent.time) < where.until)
        for column, value in (
            (AuditEvent.user_id, where.user),
            (AuditEvent.event_id, where.event_id),
            (AuditEvent.study_uid, where.study_uid),
            (AuditEvent.source, where.source),
        ):
            if value:
                conditions.append(col(column) == value)
        if where.outcome is not None:
            conditions.append(col(AuditEvent.outcome) == where.outcome)
        page = (
            select(AuditEvent)
            .where(*conditions)
            .order_by(col(AuditEvent.time).desc(), col(AuditEvent.id).desc())
            .limit(limit)
            .offset(offset)
        )
        count = select(func.count()).select_from(AuditEvent).where(*conditions)
        with self.engine.connect() as connection:
            rows = [AuditEvent.model_validate(row) for row in connection.execute(page).mappings()]
            total = int(connection.execute(count).scalar_one())
        return rows, total

    def close(self) -> None:
        self.stream.close()


def _row(record: AuditRecord, received: datetime) -> dict[str, Any]:
    row = record.model_dump(exclude={"series_uids", "sop_instance_uids"})
    row["action"] = record.action.value
    row["outcome"] = int(record.outcome)
    row["source"] = record.source.value
    row["series_uids"] = json.dumps(record.series_uids)
    row["sop_instance_uids"] = json.dumps(record.sop_instance_uids)
    row["received_at"] = received
    return row
