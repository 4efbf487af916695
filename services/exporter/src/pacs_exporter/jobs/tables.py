"""The export jobs' table (SQLAlchemy Core, the exporter's own database).

One row per export: what was asked (``study``, ``series``, ``request`` as JSON), where it is
(``state``, ``progress`` in percent), who runs it (``owner`` until ``lease_expires_at``), how
often it was tried (``attempts``), and what came of it (``report`` as JSON, the object keys of
the mesh and the report, the SOP Instance UID stored back, or ``error``).

``audit_outbox``: the exporter's audit records waiting for the API's ``POST /audit``
(:mod:`pacs_common.audit_outbox`), deleted once the API took them.
"""

from __future__ import annotations

from pacs_common.audit_outbox import outbox_table
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

job = Table(
    "export_job",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("study", String(64), nullable=False),
    Column("series", String(64), nullable=False),
    Column("request", Text, nullable=False),
    Column("progress", Float, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("owner", String(64), nullable=True),
    Column("lease_expires_at", DateTime(timezone=True), nullable=True),
    Column("not_before", DateTime(timezone=True), nullable=False),
    Column("cancel_requested", Boolean, nullable=False),
    Column("error", Text, nullable=False),
    Column("report", Text, nullable=True),
    Column("file_key", String(255), nullable=True),
    Column("report_key", String(255), nullable=True),
    Column("stored_instance", String(64), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_export_job_claim", "state", "not_before"),
    Index("ix_export_job_created", "created_at"),
)

audit_outbox = outbox_table(metadata)
