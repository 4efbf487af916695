"""A small archive for QIDO-RS tests, inserted straight into the index tables.

Six patients (names in several cases, with ``^`` components and non-ASCII letters), seven
studies across dates (one undated), CT/MR/SR/CR series and 16 instances whose metadata holds
attributes the index has no column for (a study-level Patient's Age, a series-level Protocol
Name, an instance-level Image Type, a private tag and a BulkDataURI).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pacs_api.index import counts
from pacs_api.index.db import make_engine, migrate
from pacs_api.index.models import Instance, Patient, Series, Study
from pacs_api.index.search import QidoResult
from pacs_common.dicomjson import element, tag_key
from sqlalchemy import Engine, select
from sqlmodel import Session, col

BASE = "http://pacs.example/dicom-web"
CT, MR, SR, CR = (
    "1.2.840.10008.5.1.4.1.1.2",
    "1.2.840.10008.5.1.4.1.1.4",
    "1.2.840.10008.5.1.4.1.1.88.22",
    "1.2.840.10008.5.1.4.1.1.1",
)
SOP_CLASS = {"CT": CT, "MR": MR, "SR": SR, "CR": CR}
EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"

# name: (patient id, patient name, birth date, sex)
PATIENTS = {
    "john": ("PAT001", "Doe^John", "19700101", "M"),
    "jane": ("PAT002", "DOE^JANE^^Dr.", "19800202", "F"),
    "anna": ("PAT003", "van der Berg^Anna", "19900303", "F"),
    "juergen": ("PAT004", "Müller^Jürgen", "", "M"),
    "underscore": ("A_1", "Under^Score", "", "O"),
    "letter": ("AB1", "Letter^Ab", "", "O"),
}
# name: (patient, date, time, accession, description, referring, [(modality, number, n)])
STUDIES: dict[str, tuple[str, str, str, str, str, str, list[tuple[str, int | None, int]]]] = {
    "chest": (
        "john",
        "20240115",
        "083000",
        "ACC001",
        "CT CHEST",
        "Smith^Alice",
        [("CT", 1, 3), ("CT", 2, 2), ("SR", None, 1)],
    ),
    "brain": (
        "john",
        "20240220",
        "141500.123",
        "ACC002",
        "MR BRAIN",
        "smith^bob",
        [("MR", 1, 2), ("CT", 2, 1)],
    ),
    "spine": ("jane", "20231231", "235959", "ACC003", "MR SPINE", "", [("MR", 5, 1)]),
    "knee": ("anna", "20240220", "0900", "ACC_04", "MR KNEE", "", [("MR", 1, 1)]),
    "undated": ("juergen", "", "", "ACC005", "XR HAND", "", [("CR", 1, 1)]),
    "head_a": ("underscore", "20220101", "120000", "ACC006", "CT_HEAD", "", [("CT", 1, 1)]),
    "head_b": ("letter", "20220102", "120000", "ACC007", "CTXHEAD", "", [("CT", 1, 1)]),
}
#: Studies newest first, undated last (PS3.18 leaves the order to us; ours is documented).
STUDY_ORDER = ["brain", "knee", "chest", "spine", "head_b", "head_a", "undated"]


@dataclass
class Archive:
    """UIDs of what the fixture inserted: study name -> UID, (study, series index) -> UID."""

    engine: Engine
    studies: dict[str, str] = field(default_factory=dict)
    series: dict[tuple[str, int], str] = field(default_factory=dict)
    instances: dict[tuple[str, int], list[str]] = field(default_factory=dict)

    def study_names(self, result: QidoResult) -> list[str]:
        return self.study_names_of(result.datasets)

    def study_names_of(self, datasets: list[dict[str, Any]]) -> list[str]:
        """The fixture's names of the studies in a QIDO answer, in answer order."""
        by_uid = {uid: name for name, uid in self.studies.items()}
        return [by_uid[first(ds, "StudyInstanceUID")] for ds in datasets]


def first(dataset: Mapping[str, Any], keyword: str) -> Any:
    values = dataset[tag_key(keyword)].get("Value")
    return values[0] if values else None


def values_of(dataset: Mapping[str, Any], keyword: str) -> list[Any]:
    return list(dataset[tag_key(keyword)].get("Value", []))


def _metadata(
    patient: tuple[str, str, str, str],
    study: str,
    uids: dict[str, str],
    modality: str,
    protocol: str,
    number: int | None,
    base_url: str,
) -> str:
    dataset: dict[str, Any] = {}
    for item in (
        element("SOPClassUID", SOP_CLASS[modality]),
        element("SOPInstanceUID", uids["sop"]),
        element("StudyInstanceUID", uids["study"]),
        element("SeriesInstanceUID", uids["series"]),
        element("PatientID", patient[0]),
        element("PatientName", patient[1]),
        element("PatientAge", "045Y"),
        element("StudyDescription", STUDIES[study][4]),
        element("Modality", modality),
        element("ProtocolName", protocol),
        element("ImageType", "ORIGINAL", "PRIMARY", "AXIAL"),
        element("InstanceNumber", number),
        {"00091001": {"vr": "LO", "Value": ["private"]}},
        {"7FE00010": {"vr": "OW", "BulkDataURI": f"{base_url}/bulk/{uids['sop']}"}},
    ):
        dataset.update(item)
    return json.dumps(dataset)


def build_archive(url: str, base_url: str = BASE) -> Archive:
    """Migrate the empty database at *url* and insert the archive (BulkDataURIs in the
    stored metadata start with *base_url*)."""
    engine = make_engine(url)
    migrate(engine)
    archive = Archive(engine)
    uids = (f"2.25.{n}" for n in range(1, 10_000))
    with Session(engine) as session:
        patients = {name: _add(session, _patient(*values)) for name, values in PATIENTS.items()}
        for name, (who, *study_values, series_list) in STUDIES.items():
            study_uid = archive.studies[name] = next(uids)
            study = _add(session, _study(name, study_uid, patients[who], *study_values))
            for index, (modality, number, count) in enumerate(series_list):
                series_uid = archive.series[(name, index)] = next(uids)
                series = _add(
                    session,
                    Series(
                        series_instance_uid=series_uid,
                        study_fk=study,
                        modality=modality,
                        series_number=number,
                        series_description=f"{name} {index}",
                        body_part_examined="CHEST" if name == "chest" else "",
                    ),
                )
                sops = archive.instances[(name, index)] = [next(uids) for _ in range(count)]
                # inserted last-numbered first, so key order differs from Instance Number order
                for position in reversed(range(count)):
                    number_of_instance = None if modality == "SR" else position + 1
                    metadata = _metadata(
                        PATIENTS[who],
                        name,
                        {"sop": sops[position], "study": study_uid, "series": series_uid},
                        modality,
                        f"{name} {index} protocol",
                        number_of_instance,
                        base_url,
                    )
                    _add(
                        session,
                        Instance(
                            sop_instance_uid=sops[position],
                            series_fk=series,
                            sop_class_uid=SOP_CLASS[modality],
                            instance_number=number_of_instance,
                            rows=512,
                            columns=512,
                            bits_allocated=16,
                            transfer_syntax_uid=EXPLICIT_VR_LE,
                            object_key=f"objects/{sops[position]}",
                            size=1000,
                            sha256="0" * 64,
                            metadata_json=metadata,
                        ),
                    )
        # The computed attributes on the rows, counted as every store counts them.
        connection = session.connection()
        counts.refresh(
            connection,
            list(connection.scalars(select(col(Series.pk)))),
            list(connection.scalars(select(col(Study.pk)))),
        )
        session.commit()
    return archive


def _add(session: Session, row: Patient | Study | Series | Instance) -> int:
    """Insert *row* now (keys follow insertion order) and return its key."""
    session.add(row)
    session.flush()
    assert row.pk is not None
    return row.pk


def _patient(patient_id: str, name: str, birth_date: str, sex: str) -> Patient:
    return Patient(
        patient_id=patient_id,
        patient_name=name,
        patient_name_norm=name.upper(),
        patient_birth_date=birth_date,
        patient_sex=sex,
    )


def _study(
    study_id: str,
    uid: str,
    patient: int,
    day: str,
    time: str,
    accession: str,
    description: str,
    referring: str,
) -> Study:
    return Study(
        study_instance_uid=uid,
        patient_fk=patient,
        study_date=day,
        study_time=time,
        accession_number=accession,
        study_id=study_id,
        study_description=description,
        referring_physician_name=referring,
        referring_physician_name_norm=referring.upper(),
        specific_character_set="ISO_IR 192",
    )
