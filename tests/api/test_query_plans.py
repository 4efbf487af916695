"""The queries viewers and EHRs send use indexes, on SQLite and PostgreSQL.

An archive of 20,000 instances (bench/archive_loader.py: 200 patients, 1,000 studies, rows
made by the ingest code) is loaded once per database. Each query runs through the real QIDO-RS
search (:meth:`pacs_api.index.repository.Index.search`); the SQL it sends is captured with a
SQLAlchemy event and explained with its own parameters:

- SQLite, after ``ANALYZE`` and without it (the API never runs ``ANALYZE``, so a live
  database plans without statistics): ``EXPLAIN QUERY PLAN`` must show no ``SCAN`` of the
  patient, study, series or instance table (a ``SCAN .. USING INDEX`` is a full scan in index
  order, also refused): every access is a ``SEARCH`` on a key;
- PostgreSQL: ``EXPLAIN (FORMAT JSON)`` with sequential scans, hash and merge joins off, so
  that a missing index shows as a sequential scan or an index walk without a condition
  whatever the table size (on tables this small the planner would rather read them whole);
  every index scan of those tables must have an index condition.

A page's computed attributes (PS3.4 C.3.4) are read with its own rows (one statement for a
study or series list), and includefield values come from one more, whatever the page size
(PS3.18 §10.6.3; no per-row subqueries).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from typing import Any

import pytest
from pacs_api.index.db import make_engine, migrate
from pacs_api.index.repository import Index
from pacs_api.index.search import QidoQuery
from pacs_api.ingest.parse import read_instance
from pacs_common.attributes import Level, attribute
from pacs_common.synthetic import to_bytes
from sqlalchemy import Engine, event, text

from bench import archive_loader
from tests.support import postgres

INSTANCES = 20_000
TABLES = frozenset({"patient", "study", "series", "instance"})
BASE = "http://pacs.example/dicom-web"


@dataclass
class Loaded:
    engine: Engine
    studies: list[archive_loader.StudySpec]

    @property
    def study(self) -> archive_loader.StudySpec:
        """A study with more than one series, from the middle of the archive."""
        return next(s for s in self.studies[len(self.studies) // 2 :] if len(s.series) > 1)


@pytest.fixture(scope="module", params=["sqlite", "sqlite-unanalysed", "postgresql"])
def loaded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Loaded]:
    studies = archive_loader.plan(INSTANCES, seed=5)
    templates = archive_loader.build_templates(scale=8)
    if request.param.startswith("sqlite"):
        url = f"sqlite:///{tmp_path_factory.mktemp('plans') / 'index.sqlite3'}"
        archive = _load(url, studies, templates, analyze=request.param == "sqlite")
        yield archive
        archive.engine.dispose()
        return
    with postgres.temporary_database(request.getfixturevalue("postgres_server")) as url:
        archive = _load(url, studies, templates)
        yield archive
        archive.engine.dispose()


def _load(
    url: str,
    studies: list[archive_loader.StudySpec],
    templates: dict[str, archive_loader.Template],
    *,
    analyze: bool = True,
) -> Loaded:
    engine = make_engine(url)
    migrate(engine)
    assert archive_loader.load(engine, studies, templates, analyze=analyze) == INSTANCES
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            analysed = connection.execute(
                text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
            ).scalar_one()
        assert bool(analysed) == analyze
    return Loaded(engine, studies)


def _matching(**keys: str) -> list[tuple[Any, str]]:
    return [(attribute(keyword), value) for keyword, value in keys.items()]


def _queries(archive: Loaded) -> dict[str, QidoQuery]:
    """The searches viewers and EHRs send (PS3.18 §10.6), as the QIDO-RS routes build them."""
    study = archive.study
    first_series = study.series[0].series_uid

    def studies(**keys: str) -> QidoQuery:
        return QidoQuery(Level.STUDY, BASE, limit=100, matching=_matching(**keys))

    return {
        "patient_id": studies(PatientID=study.patient.patient_id),
        "patient_name_prefix": studies(PatientName=study.patient.name[:3].lower() + "*"),
        "date_range_modality": studies(StudyDate="20200101-20200331", ModalitiesInStudy="CT"),
        "accession_number": studies(AccessionNumber=study.accession),
        "study_uid": studies(StudyInstanceUID=study.uid),
        "series_of_study": QidoQuery(Level.SERIES, BASE, limit=100, study_uid=study.uid),
        "instances_of_series": QidoQuery(
            Level.IMAGE, BASE, limit=100, study_uid=study.uid, series_uid=first_series
        ),
        "includefield_all": QidoQuery(
            Level.STUDY,
            BASE,
            limit=100,
            matching=_matching(StudyDate="20190101-20191231"),
            include_all=True,
        ),
    }


QUERIES = [
    "patient_id",
    "patient_name_prefix",
    "date_range_modality",
    "accession_number",
    "study_uid",
    "series_of_study",
    "instances_of_series",
    "includefield_all",
]


def _captured(engine: Engine, index: Index, query: QidoQuery) -> tuple[int, list[tuple[str, Any]]]:
    """The number of answers and the SQL statements (with parameters) the search sent."""
    statements: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        answers = len(index.search(query).datasets)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    return answers, [s for s in statements if s[0].lstrip().upper().startswith("SELECT")]


def _sqlite_full_scans(engine: Engine, statement: str, parameters: Any) -> list[str]:
    with engine.connect() as connection:
        plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
    details = [str(row[3]) for row in plan]
    return [d for d in details if d.startswith("SCAN ") and d.split()[1] in TABLES]


def _postgres_full_scans(engine: Engine, statement: str, parameters: Any) -> list[str]:
    with engine.connect() as connection:
        for setting in ("enable_seqscan", "enable_hashjoin", "enable_mergejoin"):
            connection.execute(text(f"SET {setting} = off"))
        plan = connection.exec_driver_sql(
            f"EXPLAIN (FORMAT JSON) {statement}", parameters
        ).scalar_one()
        connection.rollback()
    found: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        relation = node.get("Relation Name")
        kind = node["Node Type"]
        if relation in TABLES:
            if kind == "Seq Scan":
                found.append(f"Seq Scan on {relation}")
            elif "Index" in kind and "Index Cond" not in node:
                found.append(f"{kind} on {relation} without an index condition")
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return found


@pytest.mark.parametrize("name", QUERIES)
def test_query_uses_indexes_no_full_scan(loaded: Loaded, name: str) -> None:
    engine = loaded.engine
    query = _queries(loaded)[name]
    answers, statements = _captured(engine, Index(engine), query)
    assert answers > 0, "the query should find something in the archive"
    check = _sqlite_full_scans if engine.dialect.name == "sqlite" else _postgres_full_scans
    scans = {sql: check(engine, sql, params) for sql, params in statements}
    assert {sql: found for sql, found in scans.items() if found} == {}


def test_page_statements_fixed_whatever_page_size(loaded: Loaded) -> None:
    """Computed attributes and includefield=all cost the same statements for a page of 2
    studies as for a page of 100: they are fetched per page, never per row."""
    engine = loaded.engine
    index = Index(engine)
    counts = []
    for limit in (2, 100):
        query = QidoQuery(
            Level.STUDY,
            BASE,
            limit=limit,
            matching=_matching(StudyDate="20160101-20251231"),
            includefields=[attribute("NumberOfStudyRelatedInstances")],
            include_all=True,
        )
        answers, statements = _captured(engine, index, query)
        assert answers == limit
        counts.append(len(statements))
    assert counts == [2, 2]  # the page with its computed attributes; representative metadata


@pytest.mark.parametrize("level", [Level.STUDY, Level.SERIES])
def test_computed_attributes_read_with_page_rows_one_statement(
    loaded: Loaded, level: Level
) -> None:
    """Number of Study Related Series / Instances, Modalities in Study (a study list) and
    Number of Series Related Instances (a series list) come with the page's own rows: one
    statement, and the values are those of the archive's plan."""
    engine = loaded.engine
    if level is Level.STUDY:
        query = QidoQuery(
            Level.STUDY, BASE, limit=100, matching=_matching(StudyDate="20180101-20181231")
        )
    else:
        query = QidoQuery(
            Level.SERIES,
            BASE,
            limit=100,
            study_uid=loaded.study.uid,
            includefields=[attribute("NumberOfStudyRelatedInstances")],
        )
    answers, statements = _captured(engine, Index(engine), query)
    assert answers > 1
    assert len(statements) == 1
    planned = {s.uid: s for s in loaded.studies}
    for dataset in Index(engine).search(query).datasets:
        study = planned[dataset["0020000D"]["Value"][0]]
        assert dataset["00201208"]["Value"] == [study.instances]
        if level is Level.STUDY:
            assert dataset["00201206"]["Value"] == [len(study.series)]
            assert dataset["00080061"]["Value"] == [study.modality]
        else:
            series = {s.series_uid: s for s in study.series}[dataset["0020000E"]["Value"][0]]
            assert dataset["00201209"]["Value"] == [series.count]


def test_patient_name_prefix_case_insensitive_finds_every_patient(loaded: Loaded) -> None:
    """The indexed prefix match is still PS3.4 C.2.2.2.1 case-insensitive PN matching."""
    prefix = loaded.study.patient.name[:2]
    expected = {s.uid for s in loaded.studies if s.patient.name.startswith(prefix)}
    query = QidoQuery(
        Level.STUDY, BASE, limit=10_000, matching=_matching(PatientName=prefix.lower() + "*")
    )
    found = {ds["0020000D"]["Value"][0] for ds in Index(loaded.engine).search(query).datasets}
    assert found == expected


@pytest.mark.parametrize("modality", ["CT", "MR", "CR", "US"])
def test_loader_metadata_matches_ingest_parse(modality: str) -> None:
    """The loader's rows are what STOW-RS would index: an instance's metadata built from the
    template equals what the ingest parser reads from the same instance as a DICOM object."""
    templates = archive_loader.build_templates(scale=8)
    study = next(s for s in archive_loader.plan(4_000, seed=9) if s.modality == modality)
    template, series = templates[modality], study.series[-1]
    number = series.count
    data = to_bytes(archive_loader.instance_dataset(template, study, series, number))
    parsed = read_instance(BytesIO(data), len(data))
    built = archive_loader.instance_metadata(
        template, archive_loader.series_metadata(template, study, series), study, series, number
    )
    assert list(parsed.metadata.items()) == list(built.items())
