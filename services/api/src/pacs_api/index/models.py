"""Index tables: patient -> study -> series -> instance (PS3.3 A.1.2 information model).

Columns hold the attributes QIDO-RS matches on and returns (PS3.18 §10.6, see
:mod:`pacs_common.attributes`). Person names are kept as received and, for case-insensitive
matching (PS3.18 §10.6.1.2.3.1), upper-cased in a ``*_norm`` column. Dates are ``YYYYMMDD``
strings and times ``HHMMSS.FFFFFF`` strings, so range matching is string comparison on both
SQLite and PostgreSQL.

Each instance row keeps what retrieval needs so that no object is re-read to answer metadata:
the object key, size and SHA-256 of the stored bytes, the instance's DICOM JSON without bulk data
(precomputed at ingest), and the byte offsets of bulk data elements.

Schema changes go through Alembic migrations (``pacs_api/index/migrations``), never
``create_all``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, Text, text
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class Patient(SQLModel, table=True):
    """A patient, identified by Patient ID and Issuer of Patient ID (PS3.3 C.7.1.1).

    Instances without a Patient ID each get their own patient row: no two unidentified
    patients are ever merged.
    """

    __tablename__ = "patient"
    __table_args__ = (
        Index(
            "uq_patient_identity",
            "patient_id",
            "issuer_of_patient_id",
            unique=True,
            sqlite_where=text("patient_id != ''"),
            postgresql_where=text("patient_id != ''"),
        ),
        # Exact, and prefix wild card ("SMI*": LIKE 'SMI%'), matching of names; PostgreSQL
        # uses a btree for LIKE prefixes only with the pattern operator class (or the C
        # collation), SQLite's GLOB with its default BINARY collation.
        Index(
            "ix_patient_name_norm",
            "patient_name_norm",
            postgresql_ops={"patient_name_norm": "text_pattern_ops"},
        ),
        # The partial unique index above serves only queries that repeat its predicate.
        Index("ix_patient_id", "patient_id"),
    )

    pk: int | None = Field(default=None, primary_key=True)
    patient_id: str = Field(default="")
    issuer_of_patient_id: str = Field(default="")
    patient_name: str = Field(default="")
    patient_name_norm: str = Field(default="")
    patient_birth_date: str = Field(default="")
    patient_sex: str = Field(default="")
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True)))


class Study(SQLModel, table=True):
    """A study (PS3.3 C.7.2.1 General Study)."""

    __tablename__ = "study"
    __table_args__ = (
        Index("ix_study_date", "study_date", "study_time"),
        Index("ix_study_accession", "accession_number"),
        Index("ix_study_patient", "patient_fk"),
    )

    pk: int | None = Field(default=None, primary_key=True)
    study_instance_uid: str = Field(max_length=64, unique=True)
    patient_fk: int = Field(foreign_key="patient.pk")
    study_date: str = Field(default="")
    study_time: str = Field(default="")
    accession_number: str = Field(default="")
    study_id: str = Field(default="")
    study_description: str = Field(default="")
    referring_physician_name: str = Field(default="")
    referring_physician_name_norm: str = Field(default="")
    timezone_offset_from_utc: str = Field(default="")
    specific_character_set: str = Field(default="")
    metadata_version: str = Field(
        default="",
        max_length=32,
        sa_column_kwargs={"server_default": ""},
        description="Changes whenever an instance of the study is stored or deleted: the key "
        "of its assembled /metadata (pacs_api.index.versions)",
    )
    # Computed attributes (PS3.4 C.3.4), kept exact by pacs_api.index.counts in the
    # transaction of every store, replace and delete.
    number_of_series: int = Field(
        default=0,
        sa_column_kwargs={"server_default": "0"},
        description="Number of Study Related Series: the series rows of the study",
    )
    number_of_instances: int = Field(
        default=0,
        sa_column_kwargs={"server_default": "0"},
        description="Number of Study Related Instances: the instance rows of its series",
    )
    modalities_in_study: str = Field(
        default="",
        sa_column_kwargs={"server_default": ""},
        description="Modalities in Study: its series' distinct Modality values, sorted, "
        "joined by backslash (a multi-valued CS, PS3.5 §6.4)",
    )
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True)))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True)))


class Series(SQLModel, table=True):
    """A series (PS3.3 C.7.3.1 General Series)."""

    __tablename__ = "series"
    __table_args__ = (
        Index("ix_series_study", "study_fk"),
        Index("ix_series_modality", "modality"),
    )

    pk: int | None = Field(default=None, primary_key=True)
    series_instance_uid: str = Field(max_length=64, unique=True)
    study_fk: int = Field(foreign_key="study.pk")
    modality: str = Field(default="")
    series_number: int | None = None
    series_description: str = Field(default="")
    performed_procedure_step_start_date: str = Field(default="")
    performed_procedure_step_start_time: str = Field(default="")
    body_part_examined: str = Field(default="")
    metadata_version: str = Field(
        default="",
        max_length=32,
        sa_column_kwargs={"server_default": ""},
        description="Changes whenever an instance of the series is stored or deleted",
    )
    number_of_instances: int = Field(
        default=0,
        sa_column_kwargs={"server_default": "0"},
        description="Number of Series Related Instances (PS3.4 C.3.4): its instance rows, kept "
        "exact by pacs_api.index.counts",
    )
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True)))


class Instance(SQLModel, table=True):
    """A stored SOP instance and what retrieval needs without reading the object."""

    __tablename__ = "instance"
    __table_args__ = (Index("ix_instance_series", "series_fk", "instance_number"),)

    pk: int | None = Field(default=None, primary_key=True)
    sop_instance_uid: str = Field(max_length=64, unique=True)
    series_fk: int = Field(foreign_key="series.pk")
    sop_class_uid: str = Field(max_length=64)
    instance_number: int | None = None
    rows: int | None = None
    columns: int | None = None
    bits_allocated: int | None = None
    number_of_frames: int | None = None
    transfer_syntax_uid: str = Field(max_length=64)
    object_key: str = Field(max_length=512)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    sha256: str = Field(max_length=64)
    metadata_json: str = Field(sa_column=Column(Text, nullable=False))
    bulk_data_json: str = Field(
        default="{}",
        sa_column=Column(Text, nullable=False),
        description='{"tag": [offset, length]} of top-level bulk data in the stored object',
    )
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True)))


class Change(SQLModel, table=True):
    """One entry of the ordered change feed: an instance stored or deleted.

    ``seq`` grows in commit order (writers take a lock before they append, see
    :mod:`pacs_api.index.changes`), so a reader that remembers the last ``seq`` it saw misses
    nothing. Consumers (store-and-forward routing) follow it with ``GET /changefeed``.
    """

    __tablename__ = "change"

    seq: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    kind: str = Field(max_length=16)
    study_instance_uid: str = Field(max_length=64)
    series_instance_uid: str = Field(max_length=64)
    sop_instance_uid: str = Field(max_length=64)
    sop_class_uid: str = Field(max_length=64)
    modality: str = Field(default="", max_length=16)
    sender_ae: str = Field(default="", max_length=16)
    at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True)))


# The quarantine's table lives in the index database too (migration 0005).
from pacs_api.quarantine import models as _quarantine_models  # noqa: E402, F401
