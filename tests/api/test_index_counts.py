"""The computed attributes kept on the study and series rows (PS3.4 C.3.4, PS3.18 table
6.7.1-2a; :mod:`pacs_api.index.counts`) equal a count over the instance and series tables
after every path that changes them: STOW-RS and DELETE racing across two worker processes,
a replacement moving an instance to another series, the undo of a failed STOW, the
quarantine's release, and the 0007 migration's back-fill (which is also what a restore of a
backup made before 0007 runs). Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient
from pacs_api.index.db import make_engine, migrate
from pacs_api.index.ingest import InstanceRecord, Outcome
from pacs_api.index.repository import Index, Scope
from pacs_api.ingest.parse import read_instance
from pacs_api.settings import Settings
from pacs_common.media import encode_multipart_related
from pacs_common.synthetic import to_bytes
from pydicom import Dataset
from pydicom.uid import generate_uid
from sqlalchemy import Engine, text

from tests.api.test_faults_concurrency import api_workers, at_once
from tests.support import incomplete
from tests.support.dicom import ct_datasets, stow

ROUNDS = 8

#: Stored values against a count of the rows, one line per study or series that differs.
_SERIES_DIFF = """
SELECT 'series ' || s.series_instance_uid || ': stored ' || s.number_of_instances
       || ', counted ' || (SELECT count(*) FROM instance i WHERE i.series_fk = s.pk)
FROM series s
WHERE s.number_of_instances != (SELECT count(*) FROM instance i WHERE i.series_fk = s.pk)
"""
_STUDY_COUNTED = """
SELECT st.pk, st.study_instance_uid, st.number_of_series, st.number_of_instances,
       st.modalities_in_study,
       (SELECT count(*) FROM series s WHERE s.study_fk = st.pk),
       (SELECT count(*) FROM instance i JOIN series s ON s.pk = i.series_fk
        WHERE s.study_fk = st.pk)
FROM study st
"""


def differences(engine: Engine) -> list[str]:
    """Where the stored computed attributes differ from a count of the rows (empty: none)."""
    with engine.connect() as connection:
        found = [str(line) for line in connection.execute(text(_SERIES_DIFF)).scalars()]
        modalities: dict[int, set[str]] = {}
        for study_pk, modality in connection.execute(
            text("SELECT study_fk, modality FROM series WHERE modality != ''")
        ):
            modalities.setdefault(study_pk, set()).add(modality)
        for pk, uid, n_series, n_instances, stored, series, instances in connection.execute(
            text(_STUDY_COUNTED)
        ):
            expected = "\\".join(sorted(modalities.get(pk, set())))
            if (n_series, n_instances, stored) != (series, instances, expected):
                found.append(
                    f"study {uid}: stored {n_series} series, {n_instances} instances, "
                    f"{stored!r}; counted {series}, {instances}, {expected!r}"
                )
    return found


def study_row(engine: Engine, study_uid: str) -> tuple[Any, ...] | None:
    with engine.connect() as connection:
        row = connection.execute(
            text(
                "SELECT number_of_series, number_of_instances, modalities_in_study FROM study "
                "WHERE study_instance_uid = :uid"
            ),
            {"uid": study_uid},
        ).first()
    return None if row is None else tuple(row)


def series_count(engine: Engine, series_uid: str) -> int | None:
    with engine.connect() as connection:
        value = connection.execute(
            text("SELECT number_of_instances FROM series WHERE series_instance_uid = :uid"),
            {"uid": series_uid},
        ).scalar()
    return None if value is None else int(value)


def in_study(datasets: list[Dataset], study_uid: str, modality: str) -> list[Dataset]:
    """*datasets* moved into *study_uid* as one new series of *modality*."""
    series_uid = generate_uid()
    for ds in datasets:
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.Modality = modality
    return datasets


def record(ds: Dataset) -> InstanceRecord:
    """What ingest makes of *ds* (its object key names no stored object: index tests only)."""
    data = to_bytes(ds)
    parsed = read_instance(BytesIO(data), len(data))
    return InstanceRecord(
        parsed.sop_class_uid,
        parsed.sop_instance_uid,
        parsed.study_uid,
        parsed.series_uid,
        parsed.transfer_syntax_uid,
        f"objects/{uuid.uuid4().hex}",
        len(data),
        hashlib.sha256(data).hexdigest(),
        parsed.metadata,
        parsed.metadata_text(),
        parsed.bulk,
    )


def test_stow_delete_racing_two_workers_counts_equal_rows(
    settings: Settings, tmp_path: Path
) -> None:
    """Rounds of, released together: STOW of a CT series and of an MR series into one study,
    a DELETE of the CT series, STOW of a second study and a DELETE of that study, across two
    worker processes. After every round the stored counts and modalities equal a count of
    the rows."""
    study_uid = generate_uid()
    ct = in_study(ct_datasets(4, seed=91), study_uid, "CT")
    mr = in_study(ct_datasets(3, seed=92), study_uid, "MR")
    other = ct_datasets(5, seed=93)
    other_uid = str(other[0].StudyInstanceUID)
    answers: list[str] = []
    lock = threading.Lock()

    def send(method: str, path: str, datasets: list[Dataset] | None = None) -> Callable[[], None]:
        body, content_type = b"", ""
        if datasets:
            chunks, content_type = encode_multipart_related([to_bytes(ds) for ds in datasets])
            body = b"".join(chunks)

        def run() -> None:
            with httpx.Client(timeout=60) as http:
                if method == "POST":
                    answer = http.post(
                        f"{url}{path}", content=body, headers={"Content-Type": content_type}
                    )
                else:
                    answer = http.delete(f"{url}{path}")
            with lock:
                answers.append(f"{method} {answer.status_code}")

        return run

    engine = make_engine(settings.database_url)
    try:
        with api_workers(settings, tmp_path / "api.log") as url:
            calls = [
                send("POST", "/studies", ct),
                send("POST", "/studies", mr),
                send("DELETE", f"/studies/{study_uid}/series/{ct[0].SeriesInstanceUID}"),
                send("POST", "/studies", other),
                send("DELETE", f"/studies/{other_uid}"),
            ]
            for round_ in range(ROUNDS):
                at_once(calls)
                assert differences(engine) == [], f"round {round_}"
            at_once(calls[:2])  # both series of the first study held at the end
        assert set(answers) <= {"POST 200", "DELETE 204", "DELETE 404"}, sorted(set(answers))
        assert differences(engine) == []
        assert study_row(engine, study_uid) == (2, 7, "CT\\MR")
    finally:
        engine.dispose()


def test_replace_into_other_series_recounts_both(index_url: str) -> None:
    """Overwriting an instance with bytes that name another series (overwrite policy)
    moves its row: the series it left and the one it joined are both recounted."""
    engine = make_engine(index_url)
    migrate(engine)
    index = Index(engine)
    try:
        datasets = ct_datasets(3, seed=94)
        index.register([record(ds) for ds in datasets], overwrite=False)
        moved = ct_datasets(3, seed=94)[0]
        moved.SeriesInstanceUID, moved.Modality, moved.SeriesDescription = (
            generate_uid(),
            "MR",
            "moved",
        )
        [result] = index.register([record(moved)], overwrite=True)
        assert result.outcome is Outcome.REPLACED
        assert series_count(engine, str(datasets[0].SeriesInstanceUID)) == 2
        assert series_count(engine, str(moved.SeriesInstanceUID)) == 1
        assert study_row(engine, str(moved.StudyInstanceUID)) == (2, 3, "CT\\MR")
        assert differences(engine) == []
    finally:
        engine.dispose()


def test_stow_undo_and_delete_recount_then_prune(index_url: str) -> None:
    """The undo of a failed STOW (:meth:`Index.unregister`) and a series DELETE recount the
    study; the last instance's removal prunes the rows."""
    engine = make_engine(index_url)
    migrate(engine)
    index = Index(engine)
    try:
        study_uid = generate_uid()
        ct = [record(ds) for ds in in_study(ct_datasets(3, seed=95), study_uid, "CT")]
        mr = [record(ds) for ds in in_study(ct_datasets(2, seed=96), study_uid, "MR")]
        index.register(ct + mr, overwrite=False)
        assert study_row(engine, study_uid) == (2, 5, "CT\\MR")
        assert index.unregister(ct[0].sop_instance_uid, ct[0].object_key)
        assert study_row(engine, study_uid) == (2, 4, "CT\\MR")
        assert series_count(engine, ct[0].series_uid) == 2
        index.delete(Scope(study_uid, mr[0].series_uid))
        assert study_row(engine, study_uid) == (1, 2, "CT")
        assert differences(engine) == []
        for item in ct[1:]:
            assert index.unregister(item.sop_instance_uid, item.object_key)
        assert study_row(engine, study_uid) is None
    finally:
        engine.dispose()


def test_quarantine_release_counts_released_instance(
    client: TestClient, settings: Settings
) -> None:
    """An instance released from the quarantine is counted like any stored one."""
    data = incomplete.truncated(seed=97)
    ds = incomplete.ct(seed=97)
    assert stow(client, [data]).status_code == 409
    entry_id = hashlib.sha256(data).hexdigest()[:16]
    assert stow(client, [to_bytes(d) for d in ct_datasets(3, seed=97)[1:]]).status_code == 200
    released = client.post(f"/quarantine/{entry_id}/release")
    assert released.status_code == 200, released.text
    engine = make_engine(settings.database_url)
    try:
        assert study_row(engine, str(ds.StudyInstanceUID)) == (1, 3, "CT")
        assert differences(engine) == []
    finally:
        engine.dispose()
    found = client.get(
        "/dicom-web/studies",
        params={"StudyInstanceUID": str(ds.StudyInstanceUID), "includefield": "all"},
    ).json()
    assert found[0]["00201208"]["Value"] == [3]  # NumberOfStudyRelatedInstances


_ROWS_AT_0006 = [
    "INSERT INTO patient (pk, patient_id, issuer_of_patient_id, patient_name, "
    "patient_name_norm, patient_birth_date, patient_sex) VALUES (1, 'P1', '', '', '', '', '')",
    "INSERT INTO study (pk, study_instance_uid, patient_fk, study_date, study_time, "
    "accession_number, study_id, study_description, referring_physician_name, "
    "referring_physician_name_norm, timezone_offset_from_utc, specific_character_set) "
    "VALUES (1, '2.25.1', 1, '', '', '', '', '', '', '', '', ''), "
    "(2, '2.25.2', 1, '', '', '', '', '', '', '', '', '')",
    "INSERT INTO series (pk, series_instance_uid, study_fk, modality, series_description, "
    "performed_procedure_step_start_date, performed_procedure_step_start_time, "
    "body_part_examined) VALUES (1, '2.25.11', 1, 'MR', '', '', '', ''), "
    "(2, '2.25.12', 1, 'CT', '', '', '', ''), (3, '2.25.13', 1, 'CT', '', '', '', ''), "
    "(4, '2.25.21', 2, '', '', '', '', '')",
]


def test_migration_0007_backfills_from_rows(index_url: str) -> None:
    """Rows written at 0006 (an older database, or a backup of one being restored) get
    their computed attributes counted by the 0007 migration."""
    engine = make_engine(index_url)
    try:
        migrate(engine, "0006")
        with engine.begin() as connection:
            for statement in _ROWS_AT_0006:
                connection.execute(text(statement))
            for n, series_pk in enumerate([1, 1, 2, 3, 3, 3, 4]):
                connection.execute(
                    text(
                        "INSERT INTO instance (sop_instance_uid, series_fk, sop_class_uid, "
                        "transfer_syntax_uid, object_key, size, sha256, metadata_json, "
                        "bulk_data_json) VALUES (:sop, :series, '1.2', '1.2.840.10008.1.2.1', "
                        "'k', 1, '', '{}', '{}')"
                    ),
                    {"sop": f"2.25.9{n}", "series": series_pk},
                )
        migrate(engine)
        assert study_row(engine, "2.25.1") == (3, 6, "CT\\MR")
        assert study_row(engine, "2.25.2") == (1, 1, "")
        assert [series_count(engine, f"2.25.1{n}") for n in (1, 2, 3)] == [2, 1, 3]
        assert differences(engine) == []
    finally:
        engine.dispose()
