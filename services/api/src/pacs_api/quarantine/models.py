"""The ``quarantine`` table (migration 0005): one row per distinct object kept.

The entry id is the first 16 hex digits of the object's SHA-256, so the same bytes sent again
land on the same entry (``times_received`` and ``last_received_at`` move on) and a second
request racing the first one inserts nothing new.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, Column, DateTime, Index, String, Text
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class QuarantineEntry(SQLModel, table=True):
    """An object kept out of the archive, what it claims to be, why, and who sent it."""

    __tablename__ = "quarantine"
    __table_args__ = (Index("ix_quarantine_last_received", "last_received_at"),)

    id: str = Field(primary_key=True, max_length=16)
    sha256: str = Field(max_length=64)
    object_key: str = Field(max_length=512)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    kind: str = Field(max_length=16, description="missing, truncated, short or undelimited")
    failure: int = Field(description="The C-STORE status STOW-RS answered (PS3.4 B.2.3).")
    reason: str = Field(sa_column=Column(Text, nullable=False))
    sop_class_uid: str = Field(max_length=64)
    sop_instance_uid: str = Field(max_length=64)
    study_uid: str = Field(max_length=64)
    series_uid: str = Field(max_length=64)
    patient_id: str = Field(default="", max_length=64)
    patient_name: str = Field(default="", sa_column=Column(String(324), nullable=False))
    source_subject: str = Field(default="", max_length=128)
    source_address: str = Field(default="", max_length=64)
    source_ae: str = Field(default="", max_length=16)
    times_received: int = Field(default=1)
    received_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    last_received_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
