"""Durable delivery of a service's audit records to the API's audit log (PS3.15 A.5, IHE
ATNA): the outbox every service other than the API keeps (the DIMSE bridge, the exporter).

A service that observes an access appends its record through
:class:`~pacs_common.audit_writer.AuditWriter`: the JSON-lines stream at once
(:class:`~pacs_common.audit.AuditStream`), the ``audit_outbox`` table of the service's **own**
database by group commit (:meth:`AuditOutbox.store`). :class:`AuditSender` posts the outbox
every ``audit_interval`` in batches to the API's ``POST /audit`` (one request, one commit at
the API, for all that waits) with the service's bearer token (the ``audit`` scope), deletes
the rows the API took (2xx: the API has committed them), and retries with backoff while the
API is unreachable or refuses: a record leaves the outbox only once the API holds it. A clean
stop (:meth:`OutboxAudit.close`) stores what the writer holds and tries once more to deliver;
what is left stays in the outbox for the next start. Services never share tables: each
migrates its own outbox (:func:`outbox_table` is its shape) and never touches the API's.

:class:`AuditOutboxSettings` is the settings mixin of the services that deliver this way
(``audit_url``, ``audit_log_path``, ``audit_batch_size``, ``audit_interval``,
``audit_retry_initial``, ``audit_retry_max``, under each service's environment prefix).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, Field
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
)

from pacs_common.audit import AuditStream
from pacs_common.audit_writer import AuditWriter, Pending
from pacs_common.backoff import Backoff
from pacs_common.client import bearer

log = logging.getLogger(__name__)

#: The outbox's table name, the same in every service's own database.
OUTBOX_TABLE = "audit_outbox"
_ID = BigInteger().with_variant(Integer(), "sqlite")


def outbox_table(metadata: MetaData) -> Table:
    """The ``audit_outbox`` table in *metadata* (a service's own tables): one row per record
    waiting for the API (its JSON and when it was appended), deleted once the API took it.
    Each service creates it by a migration of its own."""
    return Table(
        OUTBOX_TABLE,
        metadata,
        Column("id", _ID, primary_key=True, autoincrement=True),
        Column("record", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )


def default_audit_url(dicomweb_url: str) -> str:
    """The API's ``POST /audit`` beside its DICOMweb root (``.../dicom-web`` -> ``.../audit``)."""
    return f"{dicomweb_url.rstrip('/').rpartition('/')[0]}/audit"


class AuditOutboxSettings(BaseModel):
    """The settings of a service that delivers its audit records through an outbox."""

    audit_url: str | None = Field(
        None,
        description="The API's POST /audit, where this service's audit records go (default: "
        "beside dicomweb_url, /audit). The service's dicomweb_token needs the audit scope.",
    )
    audit_log_path: Path | None = Field(
        None,
        description="File this service's audit records are also appended to, one DICOM audit "
        "message (PS3.15 A.5.1) as JSON per line; they always go to the pacs.audit logger.",
    )
    audit_batch_size: int = Field(200, ge=1, le=500, description="Records per POST /audit.")
    audit_interval: float = Field(1.0, gt=0, description="Seconds between outbox checks.")
    audit_retry_initial: float = Field(1.0, gt=0, description="First backoff, seconds.")
    audit_retry_max: float = Field(60.0, gt=0, description="Longest backoff, seconds.")


class AuditOutbox:
    """Records waiting for the API, in the ``audit_outbox`` *table* of a service's database."""

    def __init__(self, engine: Engine, table: Table) -> None:
        self.engine = engine
        self.table = table

    def store(self, pending: Sequence[Pending]) -> None:
        """Insert *pending* records in one transaction (the :class:`AuditWriter`'s store)."""
        with self.engine.begin() as connection:
            connection.execute(
                insert(self.table),
                [{"record": r.model_dump_json(), "created_at": at} for r, at in pending],
            )

    def take(self, limit: int) -> list[tuple[int, dict[str, Any]]]:
        """The oldest *limit* records (not removed)."""
        statement = select(self.table.c.id, self.table.c.record)
        with self.engine.connect() as connection:
            rows = connection.execute(statement.order_by(self.table.c.id).limit(limit)).all()
        return [(int(row[0]), json.loads(row[1])) for row in rows]

    def remove(self, ids: list[int]) -> None:
        with self.engine.begin() as connection:
            connection.execute(delete(self.table).where(self.table.c.id.in_(ids)))

    def count(self) -> int:
        with self.engine.connect() as connection:
            statement = select(func.count()).select_from(self.table)
            return int(connection.execute(statement).scalar_one())


class AuditSender:
    """Posts the outbox to the API's ``POST /audit`` in a background thread (see the module)."""

    def __init__(
        self,
        outbox: AuditOutbox,
        http: httpx.Client,
        url: str,
        *,
        batch_size: int,
        backoff: Backoff,
        interval: float,
        token: str | None = None,
    ) -> None:
        self.outbox = outbox
        self.http = http
        self.url = url
        self._auth = bearer(token)  # the service's key at the API, with the audit scope
        self.batch_size = batch_size
        self.backoff = backoff
        self.interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failures = 0

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="audit-sender", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """Stop after one last attempt to deliver what is waiting (what is left stays in the
        outbox for the next start)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def send_once(self) -> bool:
        """Post one batch; True when the outbox may hold more to send now."""
        batch = self.outbox.take(self.batch_size)
        if not batch:
            return False
        try:
            answer = self.http.post(self.url, json=[record for _, record in batch], auth=self._auth)
        except httpx.HTTPError as exc:
            return self._failed(f"the API is unreachable: {exc}", len(batch))
        if not answer.is_success:
            return self._failed(f"the API answered {answer.status_code}: {answer.text}", len(batch))
        self.outbox.remove([row_id for row_id, _ in batch])
        self.failures = 0
        return True

    def _failed(self, reason: str, waiting: int) -> bool:
        self.failures += 1
        log.warning(
            "%d audit record(s) wait in the outbox (attempt %d): %s",
            waiting,
            self.failures,
            reason[:500],
        )
        return False

    def _run(self) -> None:
        while True:
            try:
                more = self.send_once()
            except Exception:  # the outbox database; logged, retried
                log.exception("audit records could not be read from the outbox")
                self.failures += 1
                more = False
            if self._stop.is_set():
                return
            if more:
                continue
            delay = self.backoff.delay(self.failures) if self.failures else self.interval
            self._wake.wait(delay)
            self._wake.clear()


class OutboxAudit:
    """A service's whole audit delivery: the stream, the group-commit writer into the outbox,
    and the sender to the API. :meth:`start` with the service, :meth:`close` at its stop."""

    def __init__(
        self,
        engine: Engine,
        table: Table,
        http: httpx.Client,
        settings: AuditOutboxSettings,
        *,
        token: str | None,
    ) -> None:
        if settings.audit_url is None:
            raise ValueError("audit_url is not set (the settings derive it from dicomweb_url)")
        self.outbox = AuditOutbox(engine, table)
        self.sender = AuditSender(
            self.outbox,
            http,
            settings.audit_url,
            batch_size=settings.audit_batch_size,
            backoff=Backoff(settings.audit_retry_initial, settings.audit_retry_max),
            interval=settings.audit_interval,
            token=token,
        )
        self.stream = AuditStream(settings.audit_log_path)  # first, then the outbox in batches
        self.writer = AuditWriter(self.stream, self.outbox.store, table=OUTBOX_TABLE)

    def start(self) -> None:
        self.sender.start()

    def close(self) -> None:
        """Store what the writer holds, deliver what the API takes now, close the stream
        (call after the service stopped observing: its last records are in the outbox)."""
        self.writer.close()
        self.sender.stop()
        self.stream.close()
