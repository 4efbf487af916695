"""Faults (issue 6): kill -9 of the API while four clients STOW 1,000 instances.

After a restart on the same database and store: every instance the API acknowledged is
retrievable byte-identical, no index row lacks its object (:func:`pacs_api.sweep.check`), and
the sweep removes exactly the objects no row references (a planted orphan included) and
nothing a row references; then the restarted API takes all 1,000 again (one copy each). Runs
on both deployments; the API runs in its own process so that ``SIGKILL`` hits it mid-request.
"""

from __future__ import annotations

import hashlib
import io
import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from pacs_api.index.db import make_engine
from pacs_api.index.repository import Index
from pacs_api.settings import Settings
from pacs_api.sweep import check, sweep
from pacs_common.client import DicomWebClient, DicomWebError
from pacs_common.storage import ObjectStore, open_store
from pacs_common.synthetic import iter_ct_series, synthetic_uid, to_bytes

from tests.support import postgres
from tests.support.api_process import api_process
from tests.support.seaweedfs import SeaweedFS

CLIENTS = 4
PER_CLIENT = 250  # 1,000 instances in all, one series per client
BATCH = 10
KILL_AFTER = 300  # acknowledged instances before the kill: mid-way
ORPHAN_SOP = "1.2.826.0.1.3680043.8.498.999"


@pytest.fixture(params=["sqlite-filesystem", pytest.param("postgresql-s3", marks=pytest.mark.s3)])
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """``PACS_API_*`` variables of a deployment the API process and the test both open."""
    if request.param == "sqlite-filesystem":
        yield {
            "PACS_API_DATABASE_URL": f"sqlite:///{tmp_path / 'index.sqlite3'}",
            "PACS_API_STORE_URL": f"file://{tmp_path / 'objects'}",
        }
        return
    seaweed: SeaweedFS = request.getfixturevalue("seaweedfs")
    with postgres.temporary_database(request.getfixturevalue("postgres_server")) as url:
        yield {
            "PACS_API_DATABASE_URL": url,
            "PACS_API_STORE_URL": request.getfixturevalue("s3_bucket_url"),
            "PACS_API_S3_ACCESS_KEY": seaweed.access_key,
            "PACS_API_S3_SECRET_KEY": seaweed.secret_key,
        }


def instances() -> list[list[bytes]]:
    """One 64 x 64 CT series of PER_CLIENT slices per client, all in one study."""
    study = synthetic_uid("faults", "study")
    return [
        [
            to_bytes(ds)
            for ds in iter_ct_series(
                PER_CLIENT, 64, 64, seed=7, series_number=n + 1, study_uid=study
            )
        ]
        for n in range(CLIENTS)
    ]


def stow_until_killed(
    url: str, series: list[bytes], acknowledged: set[str], lock: threading.Lock
) -> None:
    """STOW *series* in batches; record each acknowledged SOP Instance UID; stop at the first
    transport error (the kill)."""
    with httpx.Client(timeout=60) as http:
        client = DicomWebClient(http, url)
        for start in range(0, len(series), BATCH):
            try:
                result = client.store(series[start : start + BATCH])
            except (httpx.TransportError, DicomWebError):  # the kill (or an error answer)
                return
            if result.status in (200, 202):
                with lock:
                    acknowledged.update(
                        ref.sop_instance_uid for ref in result.referenced if ref.sop_instance_uid
                    )


def sop_uid(data: bytes) -> str:
    import pydicom

    return str(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).SOPInstanceUID)


def test_kill_9_during_concurrent_stow_loses_nothing_acknowledged(
    deployment: dict[str, str], tmp_path: Path
) -> None:
    sent = instances()
    by_sop = {sop_uid(data): data for part in sent for data in part}
    acknowledged: set[str] = set()
    lock = threading.Lock()
    log = tmp_path / "api.log"

    with api_process(deployment, log) as (process, url):
        clients = [
            threading.Thread(target=stow_until_killed, args=(url, part, acknowledged, lock))
            for part in sent
        ]
        for thread in clients:
            thread.start()
        deadline = time.monotonic() + 120
        while len(acknowledged) < KILL_AFTER and time.monotonic() < deadline:
            time.sleep(0.005)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        for thread in clients:
            thread.join(timeout=60)
    assert KILL_AFTER <= len(acknowledged) < len(by_sop), "the kill came too late to test"

    settings = Settings(**{k.removeprefix("PACS_API_").lower(): v for k, v in deployment.items()})
    engine = make_engine(settings.database_url)
    store = open_store(settings)
    try:
        with api_process(deployment, log) as (_, url):
            index = Index(engine)
            before = check(index, store)
            assert before.ok, before.examples  # no row lacks its object
            assert before.rows >= len(acknowledged)

            orphan = plant_orphan(store)
            objects = count(store)
            report = sweep(index, store, grace=timedelta(0), now=datetime.now(UTC))
            print(  # the shape of this run, for whoever reads a failure
                f"acknowledged {len(acknowledged)}, rows {before.rows}, objects {objects}, "
                f"{report.summary()}"
            )
            assert report.raced == []
            assert report.deleted == objects - before.rows >= 1  # the planted one at least
            assert not store.exists(orphan)
            assert count(store) == before.rows
            assert check(index, store).ok  # nothing a row references was swept

            retrieved = retrieve_all(url, by_sop, sent)
            for sop in acknowledged:
                assert retrieved.get(sop) == sha(by_sop[sop]), f"{sop} lost or changed"
            assert len(retrieved) == before.rows  # unacknowledged ones may be stored too

            # The restarted API takes the whole load again: resent copies are accepted once.
            with httpx.Client(timeout=60) as http:
                client = DicomWebClient(http, url)
                for part in sent:
                    for start in range(0, len(part), 50):
                        assert client.store(part[start : start + 50]).ok
            assert count(store) == len(by_sop) and check(index, store).rows == len(by_sop)
    finally:
        store.close()
        engine.dispose()


def plant_orphan(store: ObjectStore) -> str:
    key = (
        f"studies/{synthetic_uid('faults', 'study')}/series/1.2.3/instances/"
        f"{ORPHAN_SOP}.{'0' * 24}.dcm"
    )
    store.put(key, io.BytesIO(b"orphan"), 6)
    return key


def count(store: ObjectStore) -> int:
    return sum(1 for _ in store.scan("studies/"))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def retrieve_all(url: str, by_sop: dict[str, bytes], sent: list[list[bytes]]) -> dict[str, str]:
    """SHA-256 of every instance the restarted API returns, by SOP Instance UID (WADO-RS, one
    request per series)."""
    import pydicom

    first = [pydicom.dcmread(io.BytesIO(part[0]), stop_before_pixels=True) for part in sent]
    found: dict[str, str] = {}
    with httpx.Client(timeout=60) as http:
        client = DicomWebClient(http, url)
        for ds in first:
            try:
                parts = list(client.retrieve_series(ds.StudyInstanceUID, ds.SeriesInstanceUID))
            except DicomWebError as exc:  # a series none of whose instances was stored
                if exc.status != 404:
                    raise
                continue
            for data in parts:
                found[sop_uid(data)] = sha(data)
    assert set(found) <= set(by_sop)
    return found
