"""Export jobs under concurrency and failure: cancellation, workers that die mid-job, leases
taken over, and claims raced by threads, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from pacs_common.client import DicomWebClient
from pacs_common.storage import open_store
from pacs_exporter.jobs.queue import VERSION_TABLE, Heartbeat, Job, JobQueue, State
from pacs_exporter.jobs.tables import metadata
from pacs_exporter.settings import Settings
from pacs_exporter.worker import Observer, Worker

from tests.bridge.running import api_settings
from tests.exporter.service import (
    WAIT_SECONDS,
    exporter_settings,
    phantom,
    request,
    running_exporter,
    store,
    submit,
    wait_for,
)
from tests.support.server import running_api

NEVER = timedelta(hours=1)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_api(api_settings(tmp_path_factory.mktemp("api"))) as url:
        yield url


class Killed(BaseException):
    """Ends a worker's thread the way a killed process ends: nothing after it runs."""


@contextmanager
def worker(settings: Settings, name: str, observer: Observer | None = None) -> Iterator[Worker]:
    """A real worker on *settings*' database, store and API, run by the test's thread."""
    queue = JobQueue.open(settings.database_url)
    object_store = open_store(settings)
    with httpx.Client(timeout=60) as http:
        yield Worker(
            name,
            queue,
            object_store,
            DicomWebClient(http, settings.dicomweb_url),
            settings,
            observer=observer,
        )
    queue.close()


def submitted(queue: JobQueue, count: int = 1) -> list[Job]:
    return [
        queue.submit("1.2.3", f"1.2.3.{n}", request("1.2.3", f"1.2.3.{n}")) for n in range(count)
    ]


def test_job_migrations_build_the_tables_schema(index_url: str) -> None:
    """After migrating, the database matches :mod:`pacs_exporter.jobs.tables` exactly, with
    its own version table; opening again (every start does) keeps the rows."""
    queue = JobQueue.open(index_url)
    [job] = submitted(queue)
    with queue.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        assert compare_metadata(context, metadata) == []
    queue.close()
    again = JobQueue.open(index_url)
    assert [j.id for j in again.recent(10)] == [job.id]
    again.close()


def test_claim_race_each_job_claimed_once(index_url: str) -> None:
    """Four threads claiming at once from one queue of 24 jobs: every job is claimed exactly
    once, by one of them."""
    queue = JobQueue.open(index_url)
    jobs = submitted(queue, 24)
    start = threading.Barrier(4)
    claimed: list[tuple[str, str]] = []
    lock = threading.Lock()

    def claim(name: str) -> None:
        start.wait()
        while (job := queue.claim(name, NEVER, 3)) is not None:
            with lock:
                claimed.append((job.id, name))

    threads = [threading.Thread(target=claim, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = Counter(job_id for job_id, _ in claimed)
    assert sorted(counts) == sorted(job.id for job in jobs)
    assert set(counts.values()) == {1}
    assert {queue.get(job.id).state for job in jobs} == {State.RUNNING}  # type: ignore[union-attr]
    queue.close()


def test_expired_lease_taken_over_and_old_worker_refused(index_url: str) -> None:
    """A job whose lease expired is claimed again with its attempt counted; the first claim's
    heartbeat and outcome are refused from then on (it is LOST, not cancelled)."""
    queue = JobQueue.open(index_url)
    [job] = submitted(queue)
    first = queue.claim("dead", timedelta(0), 3)
    assert first is not None and first.attempts == 1 and first.owner is not None
    second = queue.claim("alive", NEVER, 3)
    assert second is not None and second.id == job.id and second.attempts == 2
    assert second.owner != first.owner
    assert queue.heartbeat(job.id, first.owner, NEVER, 50.0) is Heartbeat.LOST
    assert not queue.failed(job.id, first.owner, "too late")
    assert queue.heartbeat(job.id, second.owner, NEVER, 50.0) is Heartbeat.OK  # type: ignore[arg-type]
    assert queue.get(job.id).progress == 50.0  # type: ignore[union-attr]
    queue.close()


def test_job_whose_workers_keep_dying_fails_after_max_attempts(index_url: str) -> None:
    """Each claim abandoned (lease expired) counts an attempt; after max_attempts the job ends
    failed with the reason instead of being claimed again."""
    queue = JobQueue.open(index_url)
    [job] = submitted(queue)
    assert queue.claim("dies-1", timedelta(0), 2) is not None
    assert queue.claim("dies-2", timedelta(0), 2) is not None
    assert queue.claim("survivor", NEVER, 2) is None
    failed = queue.get(job.id)
    assert failed is not None and failed.state is State.FAILED and failed.attempts == 2
    assert failed.error == (
        "the job was started 2 time(s) and its worker stopped before finishing each time "
        "(its lease expired)"
    )
    queue.close()


def test_cancel_of_running_job_whose_worker_died_ends_cancelled(index_url: str) -> None:
    """Cancellation asked of a running job whose worker then died: once the lease expires the
    job ends cancelled, never claimed again."""
    queue = JobQueue.open(index_url)
    [job] = submitted(queue)
    running = queue.claim("dies", timedelta(0), 3)
    assert running is not None and running.owner is not None
    asked = queue.cancel(job.id)
    assert asked is not None and asked.state is State.RUNNING and asked.cancel_requested
    assert queue.claim("other", NEVER, 3) is None
    assert queue.get(job.id).state is State.CANCELLED  # type: ignore[union-attr]
    queue.close()


def test_cancel_queued_job_200_and_never_runs(api: str, tmp_path: Path) -> None:
    """DELETE of a queued job cancels it at once (200); no worker claims it afterwards."""
    study, series = store(api, phantom())
    settings = exporter_settings(tmp_path, api, workers=0)
    with running_exporter(settings) as client:
        job = submit(client, request(study, series))
        response = client.delete(f"/exports/{job['id']}")
        assert response.status_code == 200
        assert response.json()["state"] == "cancelled"
        with worker(settings, "late") as late:
            assert not late.run_one()
        assert client.get(f"/exports/{job['id']}").json()["state"] == "cancelled"
        assert client.get(f"/exports/{job['id']}/file").status_code == 409


def test_cancel_running_job_202_stops_at_next_progress_point(api: str, tmp_path: Path) -> None:
    """DELETE of a running job answers 202 with cancel_requested; the worker stops at its next
    progress point, marks it cancelled and leaves no object behind."""
    study, series = store(api, phantom())
    reached, proceed = threading.Event(), threading.Event()

    def pause_at_mesh(_job: Job, percent: float) -> None:
        if percent >= 50 and not reached.is_set():
            reached.set()
            assert proceed.wait(WAIT_SECONDS)

    with running_exporter(exporter_settings(tmp_path, api), pause_at_mesh) as client:
        job = submit(client, request(study, series))
        assert reached.wait(WAIT_SECONDS)
        response = client.delete(f"/exports/{job['id']}")
        assert response.status_code == 202
        assert response.json()["state"] == "running" and response.json()["cancel_requested"]
        proceed.set()
        done = wait_for(client, job["id"])
    assert done["state"] == "cancelled" and done["error"] == "cancelled while running"
    # the progress point at 50 % was refused: the last one recorded, the series read, stays
    assert done["progress"] == 40 and not done["cancel_requested"]
    assert not list((tmp_path / "exports").rglob("*.stl"))


def test_worker_killed_mid_job_is_taken_over_after_lease_expiry(api: str, tmp_path: Path) -> None:
    """A real worker dies half-way through a job (its thread ends at a progress point, nothing
    recorded); after its lease expires another worker claims the job, attempt 2, and
    finishes it."""
    study, series = store(api, phantom())
    settings = exporter_settings(tmp_path, api, workers=0, lease_seconds=0.3)

    def die_at_mesh(_job: Job, percent: float) -> None:
        if percent >= 50:
            raise Killed

    with running_exporter(settings) as client:
        job = submit(client, request(study, series))
        with worker(settings, "doomed", die_at_mesh) as doomed:
            with pytest.raises(Killed):
                doomed.run_one()
        left = client.get(f"/exports/{job['id']}").json()
        assert left["state"] == "running" and left["attempts"] == 1 and left["progress"] == 40
        with worker(settings, "survivor") as survivor:
            deadline = time.monotonic() + WAIT_SECONDS
            while not survivor.run_one():  # until the dead worker's lease expires
                assert time.monotonic() < deadline
                time.sleep(0.05)
        done = client.get(f"/exports/{job['id']}").json()
    assert done["state"] == "succeeded" and done["attempts"] == 2 and done["progress"] == 100
    assert done["report"]["watertight"]


def test_stopping_worker_hands_its_job_back(api: str, tmp_path: Path) -> None:
    """A worker asked to stop (its process shuts down) stops its job at the next progress
    point and puts it back in the queue at once, the attempt not counted."""
    study, series = store(api, phantom())
    settings = exporter_settings(tmp_path, api, workers=0)
    with running_exporter(settings) as client:
        job = submit(client, request(study, series))
        with worker(settings, "leaving") as leaving:
            leaving.observer = lambda _job, percent: leaving.stop() if percent >= 50 else None
            assert leaving.run_one()
        back = client.get(f"/exports/{job['id']}").json()
        assert back["state"] == "queued" and back["attempts"] == 0
        with worker(settings, "other") as other:
            assert other.run_one()
        assert wait_for(client, job["id"])["state"] == "succeeded"
