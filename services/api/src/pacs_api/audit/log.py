"""Appending audit records and searching them.

:meth:`AuditLog.append` writes each record twice: a row of ``audit_event`` in the index
database, and one line of the JSON-lines stream, the DICOM audit message of PS3.15 A.5.1
(:meth:`pacs_common.audit.AuditRecord.to_atna`). The stream is the ``pacs.audit`` logger
(stdout/stderr in containers, where a log shipper takes it to a syslog/ATNA repository) and,
when ``audit_log_path`` is set, a file the records are appended to, flushed line by line.

The stream line is written before :meth:`AuditLog.append` returns; the row is committed by
the process's group-commit writer (:class:`pacs_common.audit_writer.AuditWriter`): one
transaction for all the records that wait, so a request costs no disk flush of its own. A
record is never dropped without a trace: while the database is down the writer retries, in
order, and a record the table never gets (the database down longer than the queue holds, or at
the stop) is in the stream, with an error naming its request id. A clean stop
(:meth:`AuditLog.close`, in the app's lifespan) stores everything first; a crash may lose from
the table the records of its last moments, never from the stream.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pacs_common.audit import AuditRecord, AuditStream
from pacs_common.audit_writer import AuditWriter, Pending
from sqlalchemy import Engine, func, insert, select
from sqlmodel import col

from pacs_api.audit.tables import AuditEvent


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
        self.writer = AuditWriter(self.stream, self._insert, table="audit_event")

    def append(
        self, records: Sequence[AuditRecord], *, received_at: datetime | None = None
    ) -> None:
        """Write *records* to the stream and queue them for the table (may wait for room in
        the queue: call from a thread); raises nothing a database failure causes."""
        self.writer.append(records, received_at=received_at)

    def append_now(self, records: Sequence[AuditRecord], *, received_at: datetime) -> None:
        """Commit *records* to the table in one transaction of their own, then write them to
        the stream: for records another service keeps until we took them (``POST /audit``),
        so that an acknowledgement means committed. Raises the database's error."""
        if not records:
            return  # nothing to commit (an empty execute() is deprecated in SQLAlchemy)
        self._insert([(record, received_at) for record in records])
        for record in records:
            self.stream.write(record)

    @property
    def waiting(self) -> int:
        """Records in the stream, not yet in the table."""
        return self.writer.waiting

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the records appended so far are in the table (False: *timeout* passed
        first, the database failing)."""
        return self.writer.flush(timeout)

    def _insert(self, pending: Sequence[Pending]) -> None:
        if not pending:
            return
        with self.engine.begin() as connection:
            connection.execute(insert(AuditEvent), [_row(r, received) for r, received in pending])

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
        """Store what waits (the writer's ``close_wait`` at most), then close the stream."""
        self.writer.close()
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
