"""The audit trail's group commit (pacs_common.audit_writer) in the API: one record per request
under concurrency, in the same order in the table and the stream; everything stored by a clean
stop; the database down and back (PostgreSQL clusters of the tests' own, stopped and started):
records in the stream at once, in the table once it is back, memory bounded, nothing raised."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy
from fastapi.testclient import TestClient
from pacs_api.audit.log import AuditLog
from pacs_api.index.db import make_engine, migrate
from pacs_api.main import create_app
from pacs_api.settings import Settings
from pacs_common.audit import Action, AuditRecord, Outcome, Source
from pydicom.sr.codedict import codes
from sqlalchemy import Engine

from tests.support.postgres_cluster import PostgresCluster
from tests.support.server import running_api

QUERY = str(codes.DCM.Query.value)
CLIENTS = 8
PER_CLIENT = 25


def _stream_ids(path: Path) -> list[str]:
    return [json.loads(line)["pacs"]["request_id"] for line in path.read_text().splitlines()]


def _table_ids(engine: Engine) -> list[str]:
    """Request ids of the ``audit_event`` rows, in the order they were inserted."""
    with engine.connect() as connection:
        rows = connection.execute(sqlalchemy.text("SELECT request_id FROM audit_event ORDER BY id"))
        return [str(value) for value in rows.scalars()]


def _record(number: int) -> AuditRecord:
    return AuditRecord(
        event_id=QUERY,
        action=Action.EXECUTE,
        outcome=Outcome.SUCCESS,
        source=Source.API,
        request_id=f"rid-{number}",
        query=f"PatientID={number}",
    )


def test_concurrent_requests_one_record_each_same_order_in_table_and_stream(
    settings: Settings, tmp_path: Path
) -> None:
    """8 clients x 25 QIDO-RS requests at once on the real server: each answered request id
    is exactly once in the table (``GET /audit``) and once in the stream, and the table's
    insertion order is the stream's."""
    stream = tmp_path / "audit.jsonl"
    configured = settings.model_copy(update={"audit_log_path": stream})
    with running_api(configured) as url:
        root = url.removesuffix("/dicom-web")

        def client(number: int) -> list[str]:
            with httpx.Client(timeout=60) as http:
                answers = [
                    http.get(f"{url}/studies", params={"PatientID": f"P{number}-{i}"})
                    for i in range(PER_CLIENT)
                ]
            assert all(a.status_code == 200 for a in answers)
            return [a.headers["X-Request-ID"] for a in answers]

        with ThreadPoolExecutor(CLIENTS) as pool:
            sent = [rid for ids in pool.map(client, range(CLIENTS)) for rid in ids]
        page = httpx.get(f"{root}/audit", params={"event": QUERY, "limit": 1000}, timeout=60).json()
    assert len(set(sent)) == CLIENTS * PER_CLIENT
    recorded = Counter(event["request_id"] for event in page["events"])
    assert page["total"] == len(sent) and recorded == Counter(sent)
    streamed = _stream_ids(stream)
    assert Counter(streamed[: len(sent)]) == Counter(sent)  # then the GET /audit's own record
    engine = make_engine(settings.database_url)
    try:
        assert _table_ids(engine) == streamed
    finally:
        engine.dispose()


def test_clean_stop_stores_every_record_of_the_app(settings: Settings, tmp_path: Path) -> None:
    """The app's lifespan ends (a clean stop): every request answered before has its row."""
    configured = settings.model_copy(update={"audit_log_path": tmp_path / "audit.jsonl"})
    with TestClient(create_app(configured), base_url="http://testserver") as api:
        sent = [api.get("/dicom-web/studies").headers["X-Request-ID"] for _ in range(60)]
    engine = make_engine(settings.database_url)
    try:
        assert _table_ids(engine) == sent
    finally:
        engine.dispose()


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    """A PostgreSQL of the test's own (the shared one is never stopped)."""
    with PostgresCluster() as own:
        yield own


@pytest.fixture
def trail(cluster: PostgresCluster, tmp_path: Path) -> Iterator[tuple[AuditLog, Engine]]:
    """The API's audit trail on *cluster*'s index database (schema migrated)."""
    engine = make_engine(cluster.create_database("index"))
    migrate(engine)
    log = AuditLog(engine, tmp_path / "audit.jsonl")
    log.writer.retry_max = 0.3
    try:
        yield log, engine
    finally:
        log.close()
        engine.dispose()


def test_records_waiting_at_a_clean_stop_stored_before_close_returns(
    cluster: PostgresCluster, trail: tuple[AuditLog, Engine]
) -> None:
    """Records wait (the database was down, the writer in a long pause before its next
    attempt); the database is back; close() does not wait out the pause: it stores them."""
    log, engine = trail
    log.writer.retry_initial = log.writer.retry_max = 600.0  # no attempt of its own
    cluster.stop("fast")
    log.append([_record(n) for n in range(3)])
    assert not log.flush(timeout=0.5) and log.writer.waiting == 3
    cluster.start()
    log.close()
    assert _table_ids(engine) == ["rid-0", "rid-1", "rid-2"]


def test_database_down_records_in_stream_stored_when_back_memory_bounded(
    cluster: PostgresCluster,
    trail: tuple[AuditLog, Engine],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """PostgreSQL stopped: each record is in the stream when append returns and nothing is
    raised; at most ``capacity`` records wait (the rest are named by an error, in the stream
    only: memory stays bounded); PostgreSQL started again: the same writer stores the ones
    that waited, in order, and takes new ones."""
    log, engine = trail
    log.append([_record(0)])
    assert log.flush(timeout=30)
    log.writer.capacity = 5
    cluster.stop("immediate")
    with caplog.at_level(logging.INFO):
        for number in range(1, 9):
            log.append([_record(number)])
            assert _stream_ids(tmp_path / "audit.jsonl")[-1] == f"rid-{number}"
        assert log.writer.waiting == 5
        assert not log.flush(timeout=0.5)
        cluster.start()
        assert log.flush(timeout=60)
        log.append([_record(9)])
        assert log.flush(timeout=30)
    assert _table_ids(engine) == [f"rid-{n}" for n in (0, 1, 2, 3, 4, 5, 9)]
    assert _stream_ids(tmp_path / "audit.jsonl") == [f"rid-{n}" for n in range(10)]
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    given_up: list[Any] = [r for r in errors if "not stored in the audit_event" in r.getMessage()]
    assert [r.request_ids for r in given_up] == [["rid-6"], ["rid-7"], ["rid-8"]]
    assert any("cannot take audit records now" in r.getMessage() for r in errors)
    assert any("takes audit records again" in r.getMessage() for r in caplog.records)


def test_post_audit_database_down_503_then_appended_once(
    cluster: PostgresCluster, tmp_path: Path
) -> None:
    """``POST /audit`` commits before it acknowledges: with the database down it answers 503
    with Retry-After (the bridge keeps the records and sends them again) and streams nothing;
    sent again once the database is back, the record is in the table and the stream once."""
    from tests.api.test_audit import _bridge_record

    stream = tmp_path / "audit.jsonl"
    settings = Settings(
        database_url=cluster.create_database("index"),
        store_url=f"file://{tmp_path / 'objects'}",
        audit_log_path=stream,
    )
    record = _bridge_record(request_id="bridge-rid-1")
    with TestClient(create_app(settings), base_url="http://testserver") as api:
        cluster.stop("fast")
        refused = api.post("/audit", json=[record])
        assert refused.status_code == 503, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["retry-after"] and "none of the 1" in refused.json()["detail"]
        cluster.start()
        assert api.post("/audit", json=[record]).status_code == 201
        events = api.get("/audit", params={"source": "dimse-bridge"}).json()["events"]
    assert [e["request_id"] for e in events] == ["bridge-rid-1"]
    assert _stream_ids(stream).count("bridge-rid-1") == 1
