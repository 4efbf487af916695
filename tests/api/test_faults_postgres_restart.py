"""Faults (issue 6): PostgreSQL stops and starts again while clients STOW.

The test runs a PostgreSQL cluster of its own (:mod:`tests.support.postgres_cluster`; the
machine's shared server is never touched) and the API as a real uvicorn process on it. Three
clients STOW in a loop, a fourth reads (QIDO-RS and /readyz). PostgreSQL is stopped mid-ingest
twice, once with ``pg_ctl stop -m fast`` (sessions terminated) and once with ``-m immediate``
(every server process killed, crash recovery at the next start), and started again each time.

Asserted: every answer is 200 or 503 with Retry-After (never a 500, never a hang; /readyz
answers 503 naming the failing check, without Retry-After); while the
database is down, requests are answered 503; after each start the *same* API process stores
again (dead pooled connections are discarded, no restart); afterwards every instance
acknowledged before, during or after the outages is retrieved byte-identical, and
:func:`pacs_api.sweep.check` finds no row without its object.
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pydicom
import pytest
from pacs_api.index.db import make_engine
from pacs_api.index.repository import Index
from pacs_api.settings import Settings
from pacs_api.sweep import check
from pacs_common.client import DicomWebClient
from pacs_common.media import encode_multipart_related
from pacs_common.storage import open_store
from pacs_common.synthetic import iter_ct_series, synthetic_uid, to_bytes

from tests.api.test_faults import sop_uid
from tests.support.api_process import api_process
from tests.support.postgres_cluster import PostgresCluster, StopMode

CLIENTS = 3
PER_CLIENT = 600
BATCH = 3
#: Instances acknowledged between two outages before the next one starts.
PROGRESS = 30
#: HTTP timeout of the clients: an answer that takes longer is a hang.
HANG_SECONDS = 30


@dataclass
class Observed:
    """Everything the clients saw, shared between their threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    acknowledged: dict[str, str] = field(default_factory=dict)  # SOP UID -> SHA-256
    statuses: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    answers_503: int = 0

    def record(self, what: str, response: httpx.Response) -> None:
        with self.lock:
            self.statuses[f"{what} {response.status_code}"] += 1
            if response.status_code == 503:
                self.answers_503 += 1
                # /readyz is a probe: its 503 says "not ready" and names the failing check.
                if what != "readyz" and not response.headers.get("retry-after"):
                    self.unexpected.append(f"{what} 503 without Retry-After")
            elif response.status_code != 200:
                self.unexpected.append(f"{what} {response.status_code}: {response.text[:300]}")

    def failed(self, what: str, exc: BaseException) -> None:
        with self.lock:
            self.unexpected.append(f"{what}: {type(exc).__name__}: {exc}")


def series(client: int) -> list[tuple[str, bytes]]:
    study = synthetic_uid("faults-postgres", "study")
    return [
        (str(ds.SOPInstanceUID), to_bytes(ds))
        for ds in iter_ct_series(
            PER_CLIENT, 16, 16, seed=40 + client, series_number=client + 1, study_uid=study
        )
    ]


def stow_loop(
    url: str, instances: list[tuple[str, bytes]], seen: Observed, stop: threading.Event
) -> None:
    """STOW *instances* BATCH at a time; a batch answered 503 is sent again (as a client
    honouring Retry-After would, without waiting that long)."""
    with httpx.Client(timeout=HANG_SECONDS) as http:
        start = 0
        while not stop.is_set() and start < len(instances):
            batch = instances[start : start + BATCH]
            chunks, content_type = encode_multipart_related(data for _, data in batch)
            try:
                response = http.post(
                    f"{url}/studies",
                    content=b"".join(chunks),
                    headers={"Content-Type": content_type},
                )
            except httpx.HTTPError as exc:
                seen.failed("STOW", exc)
                return
            seen.record("STOW", response)
            if response.status_code == 200:
                with seen.lock:
                    seen.acknowledged.update(
                        (sop, hashlib.sha256(data).hexdigest()) for sop, data in batch
                    )
                start += BATCH
            else:
                time.sleep(0.05)


def read_loop(url: str, seen: Observed, stop: threading.Event) -> None:
    root = url.removesuffix("/dicom-web")
    with httpx.Client(timeout=HANG_SECONDS) as http:
        while not stop.is_set():
            for what, target in (("QIDO", f"{url}/studies?limit=5"), ("readyz", f"{root}/readyz")):
                try:
                    seen.record(what, http.get(target))
                except httpx.HTTPError as exc:
                    seen.failed(what, exc)
                    return
            time.sleep(0.05)


def wait_for(
    condition: Callable[[], bool], what: str, seen: Observed, timeout: float = 120
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; seen {dict(seen.statuses)}")
        if seen.unexpected:
            raise AssertionError(f"unexpected answers: {seen.unexpected[:5]}")
        time.sleep(0.02)


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    with PostgresCluster() as own:
        yield own


@pytest.mark.postgres
def test_postgres_restarts_mid_ingest_503_then_recovers_nothing_lost(
    cluster: PostgresCluster, tmp_path: Path
) -> None:
    env = {
        "PACS_API_DATABASE_URL": cluster.create_database("pacs"),
        "PACS_API_STORE_URL": f"file://{tmp_path / 'objects'}",
    }
    sent = [series(n) for n in range(CLIENTS)]
    seen = Observed()
    stop = threading.Event()
    with api_process(env, tmp_path / "api.log") as (process, url):
        threads = [
            threading.Thread(target=stow_loop, args=(url, part, seen, stop)) for part in sent
        ]
        threads.append(threading.Thread(target=read_loop, args=(url, seen, stop)))
        for thread in threads:
            thread.start()
        try:
            for mode in ("fast", "immediate"):
                outage(cluster, mode, seen)
            target = len(seen.acknowledged) + PROGRESS
            wait_for(lambda: len(seen.acknowledged) >= target, "stores after the restarts", seen)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=HANG_SECONDS * 2)
        assert process.poll() is None, "the API process ended"
        assert not seen.unexpected, seen.unexpected[:10]
        print(f"answers: {dict(seen.statuses)}; acknowledged {len(seen.acknowledged)}")

        retrieved = retrieve(url, sent)
        for sop, digest in seen.acknowledged.items():
            assert retrieved.get(sop) == digest, f"{sop} lost or changed"

    settings = Settings(
        database_url=env["PACS_API_DATABASE_URL"], store_url=env["PACS_API_STORE_URL"]
    )
    engine = make_engine(settings.database_url)
    store = open_store(settings)
    try:
        report = check(Index(engine), store)
        assert report.ok, report.examples
        assert report.rows >= len(seen.acknowledged)
    finally:
        store.close()
        engine.dispose()


def outage(cluster: PostgresCluster, mode: StopMode, seen: Observed) -> None:
    """Wait for ingest to progress, stop PostgreSQL (*mode*), see 503s, start it again and see
    ingest progress on the same API process."""
    target = len(seen.acknowledged) + PROGRESS
    wait_for(lambda: len(seen.acknowledged) >= target, f"stores before the {mode} stop", seen)
    cluster.stop(mode)
    before = seen.answers_503
    wait_for(lambda: seen.answers_503 >= before + 2 * CLIENTS, f"503s after the {mode} stop", seen)
    cluster.start()


def retrieve(url: str, sent: list[list[tuple[str, bytes]]]) -> dict[str, str]:
    """SHA-256 of every instance the API returns, by SOP Instance UID (one WADO-RS request per
    series)."""
    found: dict[str, str] = {}
    with httpx.Client(timeout=60) as http:
        client = DicomWebClient(http, url)
        for part in sent:
            first = pydicom.dcmread(io.BytesIO(part[0][1]), stop_before_pixels=True)
            for data in client.retrieve_series(first.StudyInstanceUID, first.SeriesInstanceUID):
                found[sop_uid(data)] = hashlib.sha256(data).hexdigest()
    return found
