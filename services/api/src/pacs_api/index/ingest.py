"""Index writes for ingest: one stored instance becomes (or matches) one instance row.

Patient, study and series rows are found or created with ``INSERT .. ON CONFLICT DO NOTHING``
then a select, which is safe when several requests or replicas create the same study at once
(SQLite and PostgreSQL both support it). The first instance of a study or series sets its
attributes; later instances do not rewrite them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pacs_common.dicomjson import first_value, tag_key
from sqlalchemy import Connection, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel, col

from pacs_api.index import changes, counts, versions
from pacs_api.index.models import Instance, Patient, Series, Study


@dataclass(slots=True)
class InstanceRecord:
    """What ingest learnt about one stored object."""

    sop_class_uid: str
    sop_instance_uid: str
    study_uid: str
    series_uid: str
    transfer_syntax_uid: str
    object_key: str
    size: int
    sha256: str
    metadata: dict[str, Any]
    metadata_text: str
    bulk: dict[str, tuple[int, int]]
    sender_ae: str = ""


class Outcome(StrEnum):
    CREATED = "created"  # a new instance row
    IDENTICAL = "identical"  # the same bytes were already stored: the row takes the new object
    CONFLICT = "conflict"  # other bytes are stored under this SOP Instance UID
    REPLACED = "replaced"  # other bytes were stored and the overwrite policy replaced them
    #: the Series Instance UID is held in another study (a series belongs to one study, PS3.3
    #: C.7.3.1): not indexed, else it would be retrievable only under the other study
    SERIES_IN_OTHER_STUDY = "series in other study"


@dataclass(frozen=True, slots=True)
class RegisterResult:
    outcome: Outcome
    #: The object a REPLACED or IDENTICAL row pointed at before (now unreferenced); None for
    #: an IDENTICAL twin of an earlier record of the batch (whose object the row took).
    replaced_key: str | None = None


def _text(metadata: dict[str, Any], keyword: str) -> str:
    value = first_value(metadata, keyword)
    return "" if value is None else str(value)


def _multi(metadata: dict[str, Any], keyword: str) -> str:
    values = (metadata.get(tag_key(keyword)) or {}).get("Value") or []
    return "\\".join(str(v) for v in values)


def _int(metadata: dict[str, Any], keyword: str) -> int | None:
    value = first_value(metadata, keyword)
    try:
        return int(value) if value is not None and str(value).strip() != "" else None
    except (TypeError, ValueError):
        return None


def _insert_ignore(
    connection: Connection,
    model: type[SQLModel],
    values: dict[str, Any],
    conflict: list[str],
    where: Any = None,
) -> None:
    dialect = connection.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(model)
        .values(**values)
        .on_conflict_do_nothing(index_elements=conflict, index_where=where)
    )
    connection.execute(statement)


def _known(pk: int | None) -> int:
    """A primary key just found or inserted in this transaction (never NULL)."""
    if pk is None:
        raise LookupError("an index row vanished inside its own transaction")
    return pk


def patient_values(md: dict[str, Any]) -> dict[str, Any]:
    """The patient row of an instance's metadata (PS3.3 C.7.1.1)."""
    name = _text(md, "PatientName")
    return {
        "patient_id": _text(md, "PatientID"),
        "issuer_of_patient_id": _text(md, "IssuerOfPatientID"),
        "patient_name": name,
        "patient_name_norm": name.upper(),
        "patient_birth_date": _text(md, "PatientBirthDate"),
        "patient_sex": _text(md, "PatientSex"),
    }


def study_values(record: InstanceRecord, patient_pk: int) -> dict[str, Any]:
    """The study row of an instance (PS3.3 C.7.2.1)."""
    md = record.metadata
    referring = _text(md, "ReferringPhysicianName")
    return {
        "study_instance_uid": record.study_uid,
        "patient_fk": patient_pk,
        "study_date": _text(md, "StudyDate"),
        "study_time": _text(md, "StudyTime"),
        "accession_number": _text(md, "AccessionNumber"),
        "study_id": _text(md, "StudyID"),
        "study_description": _text(md, "StudyDescription"),
        "referring_physician_name": referring,
        "referring_physician_name_norm": referring.upper(),
        "timezone_offset_from_utc": _text(md, "TimezoneOffsetFromUTC"),
        "specific_character_set": _multi(md, "SpecificCharacterSet"),
    }


def series_values(record: InstanceRecord, study_pk: int) -> dict[str, Any]:
    """The series row of an instance (PS3.3 C.7.3.1)."""
    md = record.metadata
    return {
        "series_instance_uid": record.series_uid,
        "study_fk": study_pk,
        "modality": _text(md, "Modality"),
        "series_number": _int(md, "SeriesNumber"),
        "series_description": _text(md, "SeriesDescription"),
        "performed_procedure_step_start_date": _text(md, "PerformedProcedureStepStartDate"),
        "performed_procedure_step_start_time": _text(md, "PerformedProcedureStepStartTime"),
        "body_part_examined": _text(md, "BodyPartExamined"),
    }


def _patient_pk(connection: Connection, md: dict[str, Any]) -> int:
    values = patient_values(md)
    patient_id, issuer = values["patient_id"], values["issuer_of_patient_id"]
    if not patient_id:  # never merge patients that have no identifier
        created = connection.execute(insert(Patient).values(**values)).inserted_primary_key
        assert created is not None
        return int(created[0])
    _insert_ignore(
        connection,
        Patient,
        values,
        ["patient_id", "issuer_of_patient_id"],
        # A literal, not a bound parameter: PostgreSQL matches ON CONFLICT to the partial
        # unique index by its predicate, which it cannot prove from a parameter once psycopg
        # has prepared the statement and the server plans it generically (about the tenth new
        # patient on one connection): "no unique or exclusion constraint matching the ON
        # CONFLICT specification", a failed STOW for every new patient after.
        text("patient_id != ''"),
    )
    pk = connection.execute(
        select(col(Patient.pk)).where(
            col(Patient.patient_id) == patient_id, col(Patient.issuer_of_patient_id) == issuer
        )
    ).scalar_one()
    return _known(pk)


def _study_pk(connection: Connection, record: InstanceRecord) -> int:
    existing = connection.execute(
        select(col(Study.pk)).where(col(Study.study_instance_uid) == record.study_uid)
    ).scalar_one_or_none()
    if existing is not None:
        return int(existing)
    _insert_ignore(
        connection,
        Study,
        study_values(record, _patient_pk(connection, record.metadata)),
        ["study_instance_uid"],
    )
    pk = connection.execute(
        select(col(Study.pk)).where(col(Study.study_instance_uid) == record.study_uid)
    ).scalar_one()
    return _known(pk)


def _held_series(connection: Connection, series_uid: str) -> tuple[int, str] | None:
    """The row of a held series and the Study Instance UID it belongs to."""
    row = connection.execute(
        select(col(Series.pk), col(Study.study_instance_uid))
        .join(Study, col(Series.study_fk) == col(Study.pk))
        .where(col(Series.series_instance_uid) == series_uid)
    ).first()
    return None if row is None else (_known(row[0]), str(row[1]))


def _series_pk(connection: Connection, record: InstanceRecord) -> tuple[int, str]:
    """The series row of *record* (created, with its study, when new) and its study's UID."""
    held = _held_series(connection, record.series_uid)
    if held is not None:
        return held
    study_pk = _study_pk(connection, record)
    _insert_ignore(
        connection,
        Series,
        series_values(record, study_pk),
        ["series_instance_uid"],
    )
    created = _held_series(connection, record.series_uid)
    if created is None:  # inserted just above (by us or a concurrent writer)
        raise LookupError(f"series {record.series_uid} not found after its insert")
    return created


def instance_values(record: InstanceRecord, series_pk: int) -> dict[str, Any]:
    """The instance row of a stored object, without its SOP Instance UID."""
    md = record.metadata
    return {
        "series_fk": series_pk,
        "sop_class_uid": record.sop_class_uid,
        "instance_number": _int(md, "InstanceNumber"),
        "rows": _int(md, "Rows"),
        "columns": _int(md, "Columns"),
        "bits_allocated": _int(md, "BitsAllocated"),
        "number_of_frames": _int(md, "NumberOfFrames"),
        "transfer_syntax_uid": record.transfer_syntax_uid,
        "object_key": record.object_key,
        "size": record.size,
        "sha256": record.sha256,
        "metadata_json": record.metadata_text,
        "bulk_data_json": json.dumps(record.bulk, separators=(",", ":")),
    }


def register(
    connection: Connection, records: Sequence[InstanceRecord], *, overwrite: bool
) -> list[RegisterResult]:
    """Index stored objects; the caller commits. A race with another writer ends in
    :class:`IntegrityError`, which the caller answers by retrying in a new transaction.

    One query finds the instances already held, and each study and series is looked up once
    per batch, so a batch of one series costs a handful of statements, not several per row.
    That query locks the rows it finds (``FOR UPDATE`` on PostgreSQL; SQLite serialises
    writers): a concurrent request storing or deleting the same instance commits first, and
    the key read here is the one the row references when this one changes it.

    The same bytes stored again re-point the row at the new object (``IDENTICAL`` with the
    old key in ``replaced_key``; :mod:`pacs_api.ingest.pipeline` says why).

    Every series a created or replaced row is now in, or a replaced row moved out of, and
    those series' studies get a new metadata version (:mod:`pacs_api.index.versions`) and are
    recounted (:mod:`pacs_api.index.counts`) in this transaction.
    """
    held = {
        row.sop_instance_uid: row
        for row in connection.execute(
            select(
                col(Instance.pk),
                col(Instance.sop_instance_uid),
                col(Instance.sha256),
                col(Instance.size),
                col(Instance.object_key),
                col(Instance.series_fk),
            )
            .where(col(Instance.sop_instance_uid).in_({r.sop_instance_uid for r in records}))
            .order_by(col(Instance.sop_instance_uid))  # locks taken in one order: no deadlock
            .with_for_update(of=Instance)
        )
    }
    series_pks: dict[str, tuple[int, str]] = {}
    left: set[int] = set()  # series a replaced instance moved out of
    results: list[RegisterResult] = []
    new_rows: list[dict[str, Any]] = []
    batch: dict[str, InstanceRecord] = {}
    for record in records:
        earlier = held.get(record.sop_instance_uid)
        twin = batch.get(record.sop_instance_uid)
        if twin is not None:  # the same UID twice in one batch
            same = twin.sha256 == record.sha256
            results.append(RegisterResult(Outcome.IDENTICAL if same else Outcome.CONFLICT))
            continue
        if earlier is not None and earlier.sha256 == record.sha256 and earlier.size == record.size:
            connection.execute(
                update(Instance)
                .where(col(Instance.pk) == earlier.pk)
                .values(object_key=record.object_key)
            )
            results.append(RegisterResult(Outcome.IDENTICAL, earlier.object_key))
            batch[record.sop_instance_uid] = record
            continue
        if earlier is not None and not overwrite:
            results.append(RegisterResult(Outcome.CONFLICT))
            continue
        series = series_pks.get(record.series_uid)
        if series is None:
            series = series_pks[record.series_uid] = _series_pk(connection, record)
        series_pk, series_study = series
        if series_study != record.study_uid:
            results.append(RegisterResult(Outcome.SERIES_IN_OTHER_STUDY))
            continue
        batch[record.sop_instance_uid] = record
        values = instance_values(record, series_pk)
        if earlier is None:
            new_rows.append({"sop_instance_uid": record.sop_instance_uid, **values})
            results.append(RegisterResult(Outcome.CREATED))
        else:
            connection.execute(
                update(Instance).where(col(Instance.pk) == earlier.pk).values(values)
            )
            if earlier.series_fk != series_pk:
                left.add(earlier.series_fk)
            replaced = earlier.object_key if earlier.object_key != record.object_key else None
            results.append(RegisterResult(Outcome.REPLACED, replaced))
    if new_rows:
        connection.execute(insert(Instance), new_rows)
    touched = left | {
        series_pks[r.series_uid][0]
        for r, result in zip(records, results, strict=True)
        if result.outcome in (Outcome.CREATED, Outcome.REPLACED)
    }
    counts.refresh(connection, touched, versions.bump(connection, touched))
    changes.append(
        connection,
        changes.ChangeKind.STORED,
        (
            changes.Entry(
                r.study_uid,
                r.series_uid,
                r.sop_instance_uid,
                r.sop_class_uid,
                _text(r.metadata, "Modality"),
                r.sender_ae,
            )
            for r, result in zip(records, results, strict=True)
            if result.outcome in (Outcome.CREATED, Outcome.REPLACED)
        ),
    )
    return results


__all__ = ["InstanceRecord", "Outcome", "RegisterResult", "register", "IntegrityError"]
