"""A realistic archive for scale benchmarks, written straight into the index tables.

``plan(instances, seed)`` lays out a deterministic archive of *instances* instances: one
patient per 100 instances and one study per 20 (so 1,000,000 instances are 10,000 patients and
50,000 studies), CR/CT/MR/US studies in a general hospital's mix, 1 to 300 instances per
series, real-looking names, and study dates over ten years (2016-2025).

The rows are what a real STOW-RS would write, computed by the API's own ingest code:
:func:`build_templates` makes one real DICOM object per modality (CT from the synthetic CT
generator; MR, CR and US derived from it with their own SOP classes and matrices) and reads it
with the ingest parser (:func:`pacs_api.ingest.parse.read_instance`). Each planned instance is
that template's DICOM JSON with the patient, study, series and instance attributes replaced
(:func:`instance_metadata`), and its rows come from :mod:`pacs_api.index.ingest`'s row
builders, the ones STOW-RS uses. The same instance can be made as a DICOM object
(:func:`instance_dataset`) and stored through STOW-RS: the test of the loader checks that both
give the same metadata. What the loader cannot give the bulk rows is their object: the digest
is a stand-in and the object key names no stored object (``pacs-api check`` lists them).
A sample (:func:`stow_studies`) goes through STOW-RS into the store, so retrieval works on it.

Writing uses PostgreSQL ``COPY`` or SQLite ``executemany``, one transaction per batch of
about 20,000 instances, with primary keys assigned here (sequences are moved past them at the
end), then ``ANALYZE``. The computed attributes kept on the study and series rows are
counted after each batch by the function every STOW-RS and DELETE runs
(:func:`pacs_api.index.counts.refresh`), from the rows just written.

    uv run python bench/archive_loader.py DATABASE_URL [--instances 100000] [--seed 1]
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import random
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
from pacs_api.index import changes, counts
from pacs_api.index.db import make_engine, migrate
from pacs_api.index.ingest import (
    InstanceRecord,
    instance_values,
    patient_values,
    series_values,
    study_values,
)
from pacs_api.index.models import Change, Instance, Patient, Series, Study
from pacs_api.ingest.parse import BULK_MARK, read_instance
from pacs_api.ingest.pipeline import object_key
from pacs_common.dicomjson import element, tag_key
from pacs_common.synthetic import iter_ct_series, to_bytes
from pydicom.dataset import Dataset
from pydicom.uid import (
    ComputedRadiographyImageStorage,
    MRImageStorage,
    UltrasoundImageStorage,
)
from sqlalchemy import Engine, func, insert, select, text
from sqlmodel import SQLModel

#: Instances per patient and per study (the issue: 1M instances, 10k patients, 50k studies).
INSTANCES_PER_PATIENT = 100
INSTANCES_PER_STUDY = 20
#: Instances written per transaction.
BATCH_INSTANCES = 20_000
FIRST_DAY = 736_329  # date(2016, 1, 1).toordinal()
DAYS = 3_653  # ten years

FAMILY = (
    "SMITH JOHNSON WILLIAMS BROWN JONES GARCIA MILLER DAVIS RODRIGUEZ MARTINEZ HERNANDEZ LOPEZ "
    "GONZALEZ WILSON ANDERSON THOMAS TAYLOR MOORE JACKSON MARTIN LEE PEREZ THOMPSON WHITE HARRIS "
    "SANCHEZ CLARK RAMIREZ LEWIS ROBINSON WALKER YOUNG ALLEN KING WRIGHT SCOTT TORRES NGUYEN HILL "
    "FLORES GREEN ADAMS NELSON BAKER HALL RIVERA CAMPBELL MITCHELL CARTER ROBERTS MÜLLER SCHMIDT "
    "SCHNEIDER FISCHER WEBER MEYER WAGNER BECKER SCHULZ HOFFMANN DUBOIS MOREAU LAURENT ROSSI "
    "RUSSO FERRARI ESPOSITO BIANCHI JANSEN DE^JONG VAN^DIJK KOWALSKI NOWAK SMIRNOV IVANOV "
    "KUZNETSOV SATO SUZUKI TANAKA KIM PARK CHEN WANG LI ZHANG SINGH KUMAR PATEL SHAH ANDERSEN "
    "NIELSEN HANSEN JOHANSSON LARSSON O'BRIEN MURPHY KELLY SMYTHE"
).split()
GIVEN = (
    "JAMES MARY ROBERT PATRICIA JOHN JENNIFER MICHAEL LINDA DAVID ELIZABETH WILLIAM BARBARA "
    "RICHARD SUSAN JOSEPH JESSICA THOMAS SARAH CHARLES KAREN CHRISTOPHER LISA DANIEL NANCY "
    "MATTHEW BETTY ANTHONY MARGARET MARK SANDRA ANNA JÜRGEN FRANÇOIS MARIE LUCA GIULIA SOFIA "
    "HIROSHI YUKI WEI MIN PRIYA RAHUL OLGA IVAN SIGRID LARS AOIFE SEAN"
).split()


@dataclass(frozen=True, slots=True)
class Kind:
    """How studies of one modality look: SOP class, matrix, series and instance counts."""

    modality: str
    sop_class: str
    weight: float  # share of studies
    series: tuple[int, int]  # series per study (inclusive)
    instances: tuple[int, int]  # instances per series, log-uniform (inclusive)
    rows: int
    columns: int
    descriptions: tuple[str, ...]
    body_parts: tuple[str, ...]


KINDS = (
    Kind("CR", ComputedRadiographyImageStorage, 0.50, (1, 2), (1, 1), 2048, 2048,
         ("XR CHEST PA", "XR HAND", "XR KNEE", "XR PELVIS", "XR SPINE"),
         ("CHEST", "HAND", "KNEE", "PELVIS", "LSPINE")),
    Kind("US", UltrasoundImageStorage, 0.20, (1, 1), (1, 40), 480, 640,
         ("US ABDOMEN", "US THYROID", "US OBSTETRIC", "US RENAL"),
         ("ABDOMEN", "NECK", "PELVIS", "KIDNEY")),
    Kind("CT", "1.2.840.10008.5.1.4.1.1.2", 0.15, (1, 3), (1, 300), 512, 512,
         ("CT CHEST", "CT HEAD", "CT ABDOMEN PELVIS", "CT ANGIO"),
         ("CHEST", "HEAD", "ABDOMEN", "CHEST")),
    Kind("MR", MRImageStorage, 0.15, (2, 4), (1, 100), 256, 256,
         ("MR BRAIN", "MR KNEE", "MR LSPINE", "MR PROSTATE"),
         ("BRAIN", "KNEE", "LSPINE", "PROSTATE")),
)  # fmt: skip
KIND = {k.modality: k for k in KINDS}


# -- templates -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Template:
    """One real object of a modality, and what the ingest parser made of it."""

    kind: Kind
    dataset: Dataset
    metadata: dict[str, Any]
    transfer_syntax_uid: str
    bulk: dict[str, tuple[int, int]]
    size: int


_CT_ONLY = (
    "KVP DataCollectionDiameter ReconstructionDiameter GantryDetectorTilt TableHeight "
    "RotationDirection XRayTubeCurrent ExposureTime ConvolutionKernel RescaleIntercept "
    "RescaleSlope RescaleType"
).split()
_PLANE = (
    "FrameOfReferenceUID PositionReferenceIndicator PixelSpacing ImageOrientationPatient "
    "ImagePositionPatient SliceThickness SpacingBetweenSlices SliceLocation PatientPosition"
).split()


def _dataset(kind: Kind, scale: int) -> Dataset:
    """A real object of *kind*; matrices divided by *scale* (1: the modality's own)."""
    rows, columns = max(8, kind.rows // scale), max(8, kind.columns // scale)
    ds = next(iter_ct_series(1, rows, columns, noise_hu=0, seed=7, patient_id="TEMPLATE"))
    if kind.modality == "CT":
        return ds
    for keyword in _CT_ONLY:
        delattr(ds, keyword)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = kind.sop_class
    ds.Modality = kind.modality
    if kind.modality == "MR":  # MR Image module, PS3.3 C.8.3.1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NORM"]
        ds.ScanningSequence, ds.SequenceVariant, ds.ScanOptions = "SE", "NONE", ""
        ds.MRAcquisitionType, ds.RepetitionTime, ds.EchoTime = "2D", "500", "15"
        ds.EchoTrainLength, ds.MagneticFieldStrength = 1, "1.5"
        ds.PixelData = np.zeros((rows, columns), "<u2").tobytes()
        return ds
    for keyword in _PLANE:
        delattr(ds, keyword)
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    if kind.modality == "CR":  # CR Image module, PS3.3 C.8.1.2
        ds.ViewPosition, ds.ImagerPixelSpacing = "PA", ["0.139", "0.139"]
        ds.PixelData = np.zeros((rows, columns), "<u2").tobytes()
        return ds
    # US Image module, PS3.3 C.8.5.6: 8-bit RGB
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    del ds.WindowCenter, ds.WindowWidth
    ds.PixelData = np.zeros((rows, columns, 3), "u1").tobytes()
    ds["PixelData"].VR = "OB"
    return ds


def build_templates(scale: int = 1) -> dict[str, Template]:
    """One template per modality, read by the API's ingest parser."""
    templates = {}
    for kind in KINDS:
        ds = _dataset(kind, scale)
        data = to_bytes(ds)
        parsed = read_instance(BytesIO(data), len(data))
        templates[kind.modality] = Template(
            kind, ds, parsed.metadata, parsed.transfer_syntax_uid, parsed.bulk, len(data)
        )
    return templates


# -- the plan --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PatientSpec:
    patient_id: str
    name: str
    birth_date: str
    sex: str


@dataclass(slots=True)
class SeriesSpec:
    uid: int
    number: int
    description: str
    body_part: str
    count: int

    @property
    def series_uid(self) -> str:
        return f"2.25.{self.uid}"

    def sop_uid(self, number: int) -> str:
        return f"2.25.{self.uid * 1024 + number}"  # number <= 300: one UID per instance


@dataclass(slots=True)
class StudySpec:
    uid: str
    patient: PatientSpec
    date: str
    time: str
    accession: str
    description: str
    referring: str
    modality: str
    series: list[SeriesSpec] = field(default_factory=list)

    @property
    def instances(self) -> int:
        return sum(s.count for s in self.series)


def _name(rng: random.Random) -> str:
    return f"{rng.choice(FAMILY)}^{rng.choice(GIVEN)}"


def plan(instances: int, seed: int = 1) -> list[StudySpec]:
    """The studies of an archive of exactly *instances* instances (deterministic)."""
    rng = random.Random(seed)
    n_studies = max(1, instances // INSTANCES_PER_STUDY)
    n_patients = max(1, instances // INSTANCES_PER_PATIENT)
    patients = [
        PatientSpec(
            f"MRN{seed:02d}{n:07d}",
            _name(rng),
            f"{rng.randrange(1930, 2024)}{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}",
            rng.choice("MF"),
        )
        for n in range(n_patients)
    ]
    weights = [k.weight for k in KINDS]
    studies = []
    for n in range(n_studies):
        kind = rng.choices(KINDS, weights)[0]
        day = FIRST_DAY + rng.randrange(DAYS)
        date = time.strftime("%Y%m%d", _date_tuple(day))
        study = StudySpec(
            uid=f"2.25.{rng.getrandbits(112)}",
            patient=patients[n] if n < n_patients else rng.choice(patients),
            date=date,
            time=f"{rng.randrange(7, 20):02d}{rng.randrange(60):02d}{rng.randrange(60):02d}",
            accession=f"RA{date[2:4]}{n + 1:07d}",
            description=rng.choice(kind.descriptions),
            referring=_name(rng),
            modality=kind.modality,
        )
        low, high = kind.instances
        for number in range(1, rng.randint(*kind.series) + 1):
            count = round(math.exp(rng.uniform(math.log(low), math.log(high + 1)) - 1e-9))
            part = kind.body_parts[kind.descriptions.index(study.description)]
            study.series.append(
                SeriesSpec(
                    rng.getrandbits(112),
                    number,
                    f"{study.description} {number}",
                    part,
                    max(low, min(high, count)),
                )
            )
        studies.append(study)
    _fit(studies, instances, rng)
    return studies


def _date_tuple(ordinal: int) -> time.struct_time:
    from datetime import date

    return date.fromordinal(ordinal).timetuple()


def _fit(studies: list[StudySpec], instances: int, rng: random.Random) -> None:
    """Scale the series' instance counts so that they add up to exactly *instances*."""
    series = [s for study in studies for s in study.series]
    while len(series) > instances:  # a tiny archive: fewer series
        study = next(s for s in reversed(studies) if len(s.series) > 1)
        series.remove(study.series.pop())
    total = sum(s.count for s in series)
    factor = instances / total
    for s in series:
        s.count = max(1, min(300, round(s.count * factor)))
    missing = instances - sum(s.count for s in series)
    while missing:
        s = rng.choice(series)
        step = 1 if missing > 0 else -1
        if 1 <= s.count + step <= 300:
            s.count += step
            missing -= step


# -- one instance, as metadata and as an object ---------------------------------------------
def _attributes(study: StudySpec, series: SeriesSpec) -> list[tuple[str, Any]]:
    """The attributes that differ between instances of one template, above the instance."""
    p = study.patient
    return [
        ("PatientName", p.name),
        ("PatientID", p.patient_id),
        ("PatientBirthDate", p.birth_date),
        ("PatientSex", p.sex),
        ("StudyInstanceUID", study.uid),
        ("StudyDate", study.date),
        ("StudyTime", study.time),
        ("ReferringPhysicianName", study.referring),
        ("StudyID", study.accession[-4:]),
        ("AccessionNumber", study.accession),
        ("StudyDescription", study.description),
        ("SeriesInstanceUID", series.series_uid),
        ("SeriesNumber", series.number),
        ("SeriesDescription", series.description),
        ("SeriesDate", study.date),
        ("SeriesTime", study.time),
        ("BodyPartExamined", series.body_part),
        ("AcquisitionDate", study.date),
        ("ContentDate", study.date),
    ]


def series_metadata(template: Template, study: StudySpec, series: SeriesSpec) -> dict[str, Any]:
    """The template's DICOM JSON with the patient, study and series attributes replaced."""
    md = dict(template.metadata)
    for keyword, value in _attributes(study, series):
        md.update(element(keyword, value))
    return md


_SOP, _NUMBER = tag_key("SOPInstanceUID"), tag_key("InstanceNumber")


def instance_metadata(
    template: Template, series_md: dict[str, Any], study: StudySpec, series: SeriesSpec, n: int
) -> dict[str, Any]:
    """One instance's DICOM JSON as the ingest parser makes it (the bulk data URIs too)."""
    md = dict(series_md)
    sop = series.sop_uid(n)
    md[_SOP] = {"vr": "UI", "Value": [sop]}
    md[_NUMBER] = {"vr": "IS", "Value": [n]}
    for key in template.bulk:
        md[key] = {
            "vr": md[key]["vr"],
            "BulkDataURI": f"{BULK_MARK}/studies/{study.uid}/series/{series.series_uid}"
            f"/instances/{sop}/bulkdata/{key}",
        }
    return md


def instance_dataset(template: Template, study: StudySpec, series: SeriesSpec, n: int) -> Dataset:
    """The same instance as a DICOM object, for STOW-RS."""
    ds = copy.deepcopy(template.dataset)
    for keyword, value in _attributes(study, series):
        setattr(ds, keyword, value)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = series.sop_uid(n)
    ds.InstanceNumber = n
    return ds


def _metadata_text(md: dict[str, Any]) -> str:
    return json.dumps(md, separators=(",", ":"), ensure_ascii=False)  # as ParsedInstance does


# -- rows ------------------------------------------------------------------------------------
TABLES: tuple[type[SQLModel], ...] = (Patient, Study, Series, Instance, Change)


@dataclass
class Rows:
    """Rows of one batch per table, with the next primary key of each."""

    next_pk: dict[str, int]
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    instances: int = 0

    def add(self, table: str, row: dict[str, Any]) -> int:
        key = "seq" if table == "change" else "pk"
        pk = row[key] = self.next_pk[table]
        self.next_pk[table] += 1
        self.tables.setdefault(table, []).append(row)
        return pk


def study_rows(
    study: StudySpec, templates: dict[str, Template], rows: Rows, patients: dict[str, int]
) -> None:
    """Add the rows STOW-RS would write for *study* (row builders of pacs_api.index.ingest)."""
    template = templates[study.modality]
    at = None
    study_pk = None
    for series in study.series:
        series_md = series_metadata(template, study, series)
        record = InstanceRecord(
            template.dataset.SOPClassUID, "", study.uid, series.series_uid,
            template.transfer_syntax_uid, "", template.size, "", series_md, "", template.bulk,
        )  # fmt: skip
        if study_pk is None:
            patient_pk = patients.get(study.patient.patient_id)
            if patient_pk is None:
                patient_pk = rows.add("patient", patient_values(series_md))
                patients[study.patient.patient_id] = patient_pk
            study_pk = rows.add("study", study_values(record, patient_pk))
        series_pk = rows.add("series", series_values(record, study_pk))
        entries = []
        for n in range(1, series.count + 1):
            sop = series.sop_uid(n)
            record.metadata = instance_metadata(template, series_md, study, series, n)
            record.metadata_text = _metadata_text(record.metadata)
            record.sha256 = hashlib.sha256(sop.encode()).hexdigest()  # a stand-in digest
            record.object_key = object_key((study.uid, series.series_uid, sop), record.sha256)
            record.sop_instance_uid = sop
            rows.add("instance", {"sop_instance_uid": sop, **instance_values(record, series_pk)})
            entries.append(
                changes.Entry(
                    study.uid, series.series_uid, sop, record.sop_class_uid, study.modality
                )  # fmt: skip
            )
        for row in changes.values(changes.ChangeKind.STORED, entries):
            at = at or row["at"]
            row["at"] = at
            rows.add("change", row)
        rows.instances += series.count


# -- writing ---------------------------------------------------------------------------------
def next_keys(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        keys = {}
        for model in TABLES:
            table = model.__table__  # type: ignore[attr-defined]
            pk = table.c.seq if table.name == "change" else table.c.pk
            keys[table.name] = int(connection.execute(select(func.max(pk))).scalar() or 0) + 1
        return keys


def write(engine: Engine, rows: Rows) -> None:
    """One transaction: COPY on PostgreSQL, executemany on SQLite, tables in FK order; then
    the batch's studies and series counted as STOW-RS counts them."""
    _copy(engine, rows)
    with engine.begin() as connection:
        counts.refresh(
            connection,
            [row["pk"] for row in rows.tables.get("series", [])],
            [row["pk"] for row in rows.tables.get("study", [])],
        )


def _copy(engine: Engine, rows: Rows) -> None:
    ordered = [(m.__table__, rows.tables.get(m.__tablename__, [])) for m in TABLES]  # type: ignore[attr-defined]
    if engine.dialect.name == "postgresql":
        raw = engine.raw_connection()
        try:
            with raw.cursor() as cursor:
                for table, table_rows in ordered:
                    if not table_rows:
                        continue
                    columns = list(table_rows[0])
                    names = ", ".join(f'"{c}"' for c in columns)
                    with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy_:
                        for row in table_rows:
                            copy_.write_row([row[c] for c in columns])
            raw.commit()
        finally:
            raw.close()
        return
    with engine.begin() as connection:
        for table, table_rows in ordered:
            if table_rows:
                connection.execute(insert(table), table_rows)


def finish(engine: Engine, *, analyze: bool = True) -> None:
    """Move PostgreSQL's key sequences past the loaded keys; gather planner statistics (unless
    *analyze* is false: SQLite then plans as a live database the API never analysed)."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            for model in TABLES:
                name = model.__tablename__  # type: ignore[attr-defined]
                key = "seq" if name == "change" else "pk"
                connection.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('\"{name}\"', '{key}'), "
                        f'(SELECT COALESCE(MAX("{key}"), 0) + 1 FROM "{name}"), false)'
                    )
                )
    if not analyze:
        return
    # In a transaction of its own (both databases allow it): on SQLite, an "autocommit"
    # connection still gets the BEGIN of pacs_common.database, and the statistics were
    # rolled back with it.
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))


def load(
    engine: Engine,
    studies: Iterable[StudySpec],
    templates: dict[str, Template],
    *,
    progress: bool = False,
    analyze: bool = True,
) -> int:
    """Write the rows of *studies*; return the number of instances written."""
    keys = next_keys(engine)
    patients: dict[str, int] = {}
    rows = Rows(keys)
    written = 0
    start = time.perf_counter()
    for study in studies:
        study_rows(study, templates, rows, patients)
        if rows.instances >= BATCH_INSTANCES:
            write(engine, rows)
            written += rows.instances
            rows = Rows(rows.next_pk)
            if progress:
                rate = written / (time.perf_counter() - start)
                print(f"  {written:>10,} instances  {rate:8,.0f}/s", file=sys.stderr, flush=True)
    write(engine, rows)
    written += rows.instances
    finish(engine, analyze=analyze)
    return written


# -- STOW-RS of a sample ---------------------------------------------------------------------
def study_objects(study: StudySpec, templates: dict[str, Template]) -> Iterator[bytes]:
    template = templates[study.modality]
    for series in study.series:
        for n in range(1, series.count + 1):
            yield to_bytes(instance_dataset(template, study, series, n))


def stow_studies(
    url: str, studies: Iterable[StudySpec], templates: dict[str, Template], batch: int = 50
) -> tuple[int, int, float]:
    """STOW-RS *studies* to the DICOMweb root *url* in requests of *batch* instances; return
    (instances, bytes, seconds spent in requests)."""
    import httpx
    from pacs_common.media import encode_multipart_related

    count = size = 0
    spent = 0.0
    with httpx.Client(timeout=300) as http:
        for study in studies:
            objects = list(study_objects(study, templates))
            for i in range(0, len(objects), batch):
                parts = objects[i : i + batch]
                body, content_type = encode_multipart_related(parts)
                data = b"".join(body)
                start = time.perf_counter()
                response = http.post(
                    f"{url}/studies", content=data, headers={"Content-Type": content_type}
                )
                spent += time.perf_counter() - start
                if response.status_code != 200:
                    raise RuntimeError(f"STOW answered {response.status_code}: {response.text}")
                count += len(parts)
                size += sum(map(len, parts))
    return count, size, spent


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database_url")
    parser.add_argument("--instances", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    engine = make_engine(args.database_url)
    migrate(engine)
    templates = build_templates()
    start = time.perf_counter()
    written = load(engine, plan(args.instances, args.seed), templates, progress=True)
    elapsed = time.perf_counter() - start
    print(f"loaded {written:,} instances in {elapsed:.1f} s: {written / elapsed:,.0f}/s")
    engine.dispose()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
