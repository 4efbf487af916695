"""Workers: threads that claim export jobs from the queue and run them.

Each :class:`Worker` loops: claim a job (:meth:`JobQueue.claim`), run it
(:func:`~pacs_exporter.pipeline.run_export`), record the outcome; when nothing is due it waits
``poll_seconds`` or until :meth:`Workers.wake` (a job was just submitted in this process).
While a job runs, a heartbeat renews its lease every third of ``lease_seconds``, and every
progress point whose whole percent moved records the progress and renews the lease too, as
does every *checked* progress point (the pipeline's step boundaries and the core's progress
points, :mod:`pacs_exporter.pipeline`); a renewal that finds the job cancelled or no longer
this claim's stops the export at that progress point (:class:`Stopped` raised through the
core). Outcomes:

- :class:`~pacs_exporter.errors.ExportError` (input, options, budget): failed with its reason;
- :class:`~pacs_exporter.series.Unavailable` (the API or the store): back to the queue after
  ``retry_delay_seconds``, failed with the reason after ``max_attempts``;
- any other exception: failed with "unexpected error", logged with its traceback.

A worker process killed mid-job leaves its lease to expire; another worker then claims the job
again (:mod:`pacs_exporter.jobs.queue`).

How soon a cancellation (or a takeover) stops a running job: at the next progress point, so
the longest stretch without one bounds it. Those are, in a job: reading one instance; one
marching-cubes slab (``SLAB_VOXELS``, 8 M voxels); the curvature correction; the decimation
(fast-simplification reports no progress: a 2.5 M-triangle mesh takes a few seconds); writing
the file; uploading it (its size over the store's bandwidth); the report; the STOW-RS of the
instance stored back. A step that is under way is not interrupted: a cancellation seen after
the store back's STOW-RS leaves the stored instance in the study. If a step held the GIL past
the lease, the heartbeat thread could not renew it and another worker could take the job over;
the old worker then finds out at its next progress point and stops (its results are not
recorded).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from pacs_common.client import DicomWebClient
from pacs_common.observability.requestid import request_id_scope
from pacs_common.storage import ObjectStore

from pacs_exporter.errors import ExportError
from pacs_exporter.jobs.queue import Heartbeat, Job, JobQueue, State
from pacs_exporter.observability import ExporterMetrics
from pacs_exporter.pipeline import object_keys, run_export
from pacs_exporter.schemas import ExportRequest
from pacs_exporter.series import Unavailable
from pacs_exporter.settings import Settings

log = logging.getLogger(__name__)

#: Called at every progress point with the job and its percentage, before the heartbeat (for
#: logs, metrics, and tests that act at a precise point of a running job).
Observer = Callable[[Job, float], None]


class Stopped(Exception):
    """The running job must stop: cancelled, or no longer this worker's."""

    def __init__(self, heartbeat: Heartbeat) -> None:
        super().__init__(heartbeat.value)
        self.heartbeat = heartbeat


class _Lease:
    """The lease of one running job: renewed by a heartbeat thread and at progress points."""

    def __init__(self, queue: JobQueue, job: Job, lease: timedelta) -> None:
        assert job.owner is not None
        self.queue, self.job, self.lease, self.owner = queue, job, lease, job.owner
        self.state = Heartbeat.OK
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._percent = -1
        self._thread = threading.Thread(target=self._beat, name=f"lease-{job.id[:8]}", daemon=True)

    def __enter__(self) -> _Lease:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _renew(self, progress: float | None) -> Heartbeat:
        with self._lock:
            if self.state is Heartbeat.OK:
                self.state = self.queue.heartbeat(self.job.id, self.owner, self.lease, progress)
            return self.state

    def _beat(self) -> None:
        interval = self.lease.total_seconds() / 3
        while not self._done.wait(interval):
            try:
                if self._renew(None) is not Heartbeat.OK:
                    return
            except Exception:  # the database is away: the next beat tries again
                log.warning("job %s: lease renewal failed", self.job.id, exc_info=True)

    def progress(self, percent: float, *, check: bool = False) -> None:
        """Record *percent* (when its whole part moved, or when asked to *check*: the lease is
        then renewed, which reads the job's state) and stop the job when told to."""
        if check or int(percent) != self._percent:
            self._percent = int(percent)
            self._renew(percent)
        if self.state is not Heartbeat.OK:
            raise Stopped(self.state)


class Worker:
    """One thread running export jobs."""

    def __init__(
        self,
        name: str,
        queue: JobQueue,
        store: ObjectStore,
        client: DicomWebClient,
        settings: Settings,
        *,
        wake: threading.Event | None = None,
        observer: Observer | None = None,
        metrics: ExporterMetrics | None = None,
    ) -> None:
        self.name = name
        self.metrics = metrics
        self.queue = queue
        self.store = store
        self.client = client
        self.settings = settings
        self.observer = observer
        self._wake = wake or threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.settings.lease_seconds)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        """Stop after the job in hand (if any) reaches its next progress point."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                ran = self.run_one()
            except Exception:  # the database is away: keep the worker alive and wait
                log.exception("worker %s: cannot claim a job", self.name)
                ran = False
            if not ran:
                self._wake.wait(self.settings.poll_seconds)
                self._wake.clear()

    def run_one(self) -> bool:
        """Claim one job and run it to its outcome; False when none was due."""
        job = self.queue.claim(self.name, self.lease, self.settings.max_attempts)
        if job is None:
            return False
        self.run(job)
        return True

    def run(self, job: Job) -> None:
        """Run a job this worker claimed and record its outcome, under the job's id as
        request id (its calls to the API carry it); its duration by outcome goes to the
        metrics."""
        started = time.perf_counter()
        with request_id_scope(job.id):
            outcome = self._run(job)
        if self.metrics is not None:
            self.metrics.job_ran(outcome, time.perf_counter() - started)

    def _run(self, job: Job) -> str:
        """Run *job*; what came of it: succeeded, failed, cancelled, retry, released, lost."""
        assert job.owner is not None
        log.info("job %s: attempt %d on %s", job.id, job.attempts, self.name)
        request = ExportRequest.model_validate(job.request)
        with _Lease(self.queue, job, self.lease) as lease:

            def progress(percent: float, *, check: bool = False) -> None:
                if self._stop.is_set():
                    raise Stopped(Heartbeat.LOST)
                if self.observer is not None:
                    self.observer(job, percent)
                lease.progress(percent, check=check)

            try:
                exported = run_export(
                    job.id,
                    request,
                    created=job.created_at,
                    client=self.client,
                    store=self.store,
                    budget_bytes=self.settings.memory_budget_bytes,
                    progress=progress,
                    spool_dir=self.settings.spool_dir,
                )
            except Stopped as stop:
                return self._stopped(job, stop.heartbeat)
            except ExportError as exc:
                log.info("job %s failed: %s", job.id, exc.reason)
                if self.queue.failed(job.id, job.owner, exc.reason):
                    self._forget_objects(job, request)
                return State.FAILED.value
            except Unavailable as exc:
                delay = timedelta(seconds=self.settings.retry_delay_seconds)
                state = self.queue.retry_later(
                    job.id, job.owner, str(exc), delay, self.settings.max_attempts
                )
                log.warning("job %s: %s (now %s)", job.id, exc, state)
                if state is State.FAILED:
                    self._forget_objects(job, request)
                    return State.FAILED.value
                return "retry"
            except Exception as exc:
                log.exception("job %s failed unexpectedly", job.id)
                if self.queue.failed(job.id, job.owner, f"unexpected error: {exc}"):
                    self._forget_objects(job, request)
                return State.FAILED.value
        if not self.queue.succeeded(
            job.id,
            job.owner,
            report=exported.report,
            file_key=exported.file_key,
            report_key=exported.report_key,
            stored_instance=exported.stored_instance,
        ):
            return self._stopped(job, Heartbeat.LOST)
        log.info("job %s succeeded: %s", job.id, exported.file_key)
        return State.SUCCEEDED.value

    def _stopped(self, job: Job, heartbeat: Heartbeat) -> str:
        assert job.owner is not None
        request = ExportRequest.model_validate(job.request)
        if heartbeat is Heartbeat.CANCEL and self.queue.cancelled(job.id, job.owner):
            log.info("job %s cancelled", job.id)
            self._forget_objects(job, request)
            return State.CANCELLED.value
        if self._stop.is_set() and self.queue.release(job.id, job.owner):
            log.info("job %s back in the queue (this worker stops)", job.id)
            return "released"
        log.warning("job %s is no longer this worker's; stopped", job.id)
        return "lost"

    def _forget_objects(self, job: Job, request: ExportRequest) -> None:
        try:
            self.store.delete(list(object_keys(job.id, request)))
        except Exception:  # the store is away: DELETE /exports/{id} deletes them later
            log.warning("job %s: its objects could not be deleted", job.id, exc_info=True)


class Workers:
    """The worker threads of one process (``settings.workers`` of them)."""

    def __init__(
        self,
        queue: JobQueue,
        store: ObjectStore,
        client: DicomWebClient,
        settings: Settings,
        *,
        observer: Observer | None = None,
        metrics: ExporterMetrics | None = None,
    ) -> None:
        self._wake = threading.Event()
        prefix = f"{socket.gethostname()}:{os.getpid()}"
        self.workers = [
            Worker(
                f"{prefix}:w{n}",
                queue,
                store,
                client,
                settings,
                wake=self._wake,
                observer=observer,
                metrics=metrics,
            )
            for n in range(settings.workers)
        ]

    def start(self) -> None:
        for worker in self.workers:
            worker.start()

    def wake(self) -> None:
        """A job was submitted: idle workers look now rather than at their next poll."""
        self._wake.set()

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
