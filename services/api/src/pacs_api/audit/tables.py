"""The ``audit_event`` table: one row per :class:`pacs_common.audit.AuditRecord`.

Append-only: the migration that creates it (``0004``) adds triggers that make the database
refuse UPDATE and DELETE of its rows on SQLite and PostgreSQL (and TRUNCATE on PostgreSQL), and
the API has no route that changes it. Lists (series, instances) are JSON arrays in text columns.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, Text
from sqlmodel import Field, SQLModel


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_time", "time"),
        Index("ix_audit_event_study", "study_uid"),
        Index("ix_audit_event_user", "user_id"),
        Index("ix_audit_event_event", "event_id"),
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    time: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    received_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    event_id: str = Field(max_length=16)
    action: str = Field(max_length=1)
    outcome: int
    outcome_description: str = Field(default="", sa_column=Column(Text, nullable=False))
    user_id: str = Field(default="", max_length=256)
    user_method: str = Field(default="", max_length=32)
    user_is_requestor: bool = True
    network_address: str = Field(default="", max_length=128)
    calling_ae: str = Field(default="", max_length=16)
    called_ae: str = Field(default="", max_length=16)
    destination_ae: str = Field(default="", max_length=16)
    source: str = Field(max_length=32)
    request_id: str = Field(default="", max_length=128)
    patient_id: str = Field(default="", max_length=64)
    study_uid: str = Field(default="", max_length=64)
    series_uids: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    sop_instance_uids: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    instance_count: int = 0
    query: str = Field(default="", sa_column=Column(Text, nullable=False))
    http_method: str = Field(default="", max_length=8)
    route: str = Field(default="", max_length=256)
    http_status: int | None = None
    dimse_command: str = Field(default="", max_length=16)
    dimse_status: int | None = None
