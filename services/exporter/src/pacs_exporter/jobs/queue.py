"""The durable job queue (:mod:`.tables`): submitted by the REST API, claimed by workers.

Any number of workers, in any number of processes, claim jobs with one conditional ``UPDATE``
(``... WHERE id = :id AND state = 'queued' ...``) whose row count says whether this worker won:
the database serialises two updates of one row (PostgreSQL re-checks the condition on the row
the first committed, READ COMMITTED; SQLite takes its write lock with ``BEGIN IMMEDIATE``), so
a job is never run by two workers at once. A claim is a lease: the running worker renews it
(:meth:`JobQueue.heartbeat`) and each renewal is conditional on the same claim token, so a
worker that lost its job (its lease expired and another worker took over, or the job was
deleted) finds out at its next progress point and stops. A job whose lease expired is claimed
again with its attempt count kept; after ``max_attempts`` it ends ``failed`` with the reason.

Cancellation: a queued job is cancelled at once; a running one gets ``cancel_requested`` and
its worker, refused at its next heartbeat, stops and marks it cancelled.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from pacs_common.database import WRITE_OPTION, make_engine, migrate
from sqlalchemy import Engine, and_, delete, func, insert, or_, select, text, update

from pacs_exporter.jobs import tables

#: The jobs' migrations, their version table (the exporter may share a PostgreSQL database
#: with the API and the bridge) and the lock serialising migrations of concurrent starts.
MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "exporter_alembic_version"
_MIGRATION_LOCK = 0x6D657368  # "mesh"
#: Candidates read per claim attempt (others may win some of them).
_CLAIM_CANDIDATES = 8

_job = tables.job


class State(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED = frozenset({State.SUCCEEDED, State.FAILED, State.CANCELLED})


class Heartbeat(StrEnum):
    """What a running worker learns when it renews its lease."""

    OK = "ok"
    CANCEL = "cancel"  # cancellation was asked: stop and call cancelled()
    LOST = "lost"  # the job is no longer this claim's (taken over, or deleted): stop quietly


def now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back without their zone; every stored one is UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    state: State
    study: str
    series: str
    request: dict[str, Any]
    progress: float
    attempts: int
    owner: str | None
    lease_expires_at: datetime | None
    not_before: datetime
    cancel_requested: bool
    error: str
    report: dict[str, Any] | None
    file_key: str | None
    report_key: str | None
    stored_instance: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> Job:
        values = dict(row._mapping)
        values["state"] = State(values["state"])
        values["request"] = json.loads(values["request"])
        values["report"] = json.loads(values["report"]) if values["report"] else None
        values["cancel_requested"] = bool(values["cancel_requested"])
        for name in ("lease_expires_at", "not_before", "created_at", "started_at"):
            values[name] = _aware(values[name])
        values["finished_at"] = _aware(values["finished_at"])
        values["updated_at"] = _aware(values["updated_at"])
        return cls(**values)

    @property
    def finished(self) -> bool:
        return self.state in FINISHED


class JobQueue:
    """The export jobs in the exporter's database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, database_url: str) -> JobQueue:
        """The queue in the database at *database_url*, its schema migrated to the newest."""
        engine = make_engine(database_url)
        migrate(engine, MIGRATIONS, lock_key=_MIGRATION_LOCK, version_table=VERSION_TABLE)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    def _write(self) -> Any:
        return self.engine.connect().execution_options(**{WRITE_OPTION: True})

    def _update(self, statement: Any) -> int:
        with self._write() as connection, connection.begin():
            return int(connection.execute(statement).rowcount)

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    # -- the REST API ----------------------------------------------------------------------

    def submit(self, study: str, series: str, request: dict[str, Any]) -> Job:
        """Queue a new job; it can be claimed at once."""
        at = now()
        job_id = uuid.uuid4().hex
        with self._write() as connection, connection.begin():
            connection.execute(
                insert(_job).values(
                    id=job_id,
                    state=State.QUEUED.value,
                    study=study,
                    series=series,
                    request=json.dumps(request, sort_keys=True),
                    progress=0.0,
                    attempts=0,
                    not_before=at,
                    cancel_requested=False,
                    error="",
                    created_at=at,
                    updated_at=at,
                )
            )
        job = self.get(job_id)
        assert job is not None
        return job

    def counts(self) -> dict[State, int]:
        """How many jobs are in each state (every state listed, 0 when none)."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(_job.c.state, func.count()).group_by(_job.c.state)
            ).all()
        found = {State(state): int(n) for state, n in rows}
        return {state: found.get(state, 0) for state in State}

    def get(self, job_id: str) -> Job | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(_job).where(_job.c.id == job_id)).first()
        return Job.from_row(row) if row is not None else None

    def recent(
        self,
        limit: int,
        state: State | None = None,
        *,
        study: str | None = None,
        series: str | None = None,
        offset: int = 0,
    ) -> list[Job]:
        """The newest jobs first (*limit* of them after skipping *offset*), optionally only in
        one *state*, of one *study*, of one *series*."""
        statement = select(_job)
        if state is not None:
            statement = statement.where(_job.c.state == state.value)
        if study is not None:
            statement = statement.where(_job.c.study == study)
        if series is not None:
            statement = statement.where(_job.c.series == series)
        statement = (
            statement.order_by(_job.c.created_at.desc(), _job.c.id).limit(limit).offset(offset)
        )
        with self.engine.connect() as connection:
            return [Job.from_row(row) for row in connection.execute(statement)]

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued job at once, or ask the worker of a running one to stop; the job
        as it is then (None when unknown). Finished jobs are returned unchanged."""
        at = now()
        self._update(
            update(_job)
            .where(_job.c.id == job_id, _job.c.state == State.QUEUED.value)
            .values(
                state=State.CANCELLED.value,
                error="cancelled before it started",
                finished_at=at,
                updated_at=at,
            )
        )
        self._update(
            update(_job)
            .where(_job.c.id == job_id, _job.c.state == State.RUNNING.value)
            .values(cancel_requested=True, updated_at=at)
        )
        return self.get(job_id)

    def remove(self, job_id: str) -> Job | None:
        """Delete a finished job's row; the job as it was (None when unknown or not finished:
        the caller deletes its objects)."""
        job = self.get(job_id)
        if job is None or not job.finished:
            return None
        removed = self._update(
            delete(_job).where(
                _job.c.id == job_id, _job.c.state.in_([state.value for state in FINISHED])
            )
        )
        return job if removed else None

    # -- workers ---------------------------------------------------------------------------

    def claim(self, worker: str, lease: timedelta, max_attempts: int) -> Job | None:
        """Take the oldest job that is queued and due, or running under an expired lease
        (its worker stopped); None when there is none. The returned job's ``owner`` is this
        claim's token, which every later call of the worker passes."""
        at = now()
        self._settle_abandoned(at, max_attempts)
        claimable = or_(
            and_(_job.c.state == State.QUEUED.value, _job.c.not_before <= at),
            and_(
                _job.c.state == State.RUNNING.value,
                _job.c.lease_expires_at < at,
                _job.c.cancel_requested.is_(False),
                _job.c.attempts < max_attempts,
            ),
        )
        with self.engine.connect() as connection:
            candidates = [
                row.id
                for row in connection.execute(
                    select(_job.c.id)
                    .where(claimable)
                    .order_by(_job.c.created_at, _job.c.id)
                    .limit(_CLAIM_CANDIDATES)
                )
            ]
        for job_id in candidates:
            token = f"{worker[:40]}/{uuid.uuid4().hex[:16]}"
            won = self._update(
                update(_job)
                .where(_job.c.id == job_id, claimable)
                .values(
                    state=State.RUNNING.value,
                    owner=token,
                    lease_expires_at=at + lease,
                    attempts=_job.c.attempts + 1,
                    progress=0.0,
                    started_at=at,
                    updated_at=at,
                )
            )
            if won:
                return self.get(job_id)
        return None

    def _settle_abandoned(self, at: datetime, max_attempts: int) -> None:
        """Running jobs whose lease expired and that must not run again: cancelled when
        cancellation was asked, failed when they used up their attempts."""
        expired = and_(_job.c.state == State.RUNNING.value, _job.c.lease_expires_at < at)
        self._update(
            update(_job)
            .where(expired, _job.c.cancel_requested.is_(True))
            .values(state=State.CANCELLED.value, owner=None, finished_at=at, updated_at=at)
        )
        self._update(
            update(_job)
            .where(expired, _job.c.cancel_requested.is_(False), _job.c.attempts >= max_attempts)
            .values(
                state=State.FAILED.value,
                owner=None,
                error=f"the job was started {max_attempts} time(s) and its worker stopped "
                "before finishing each time (its lease expired)",
                finished_at=at,
                updated_at=at,
            )
        )

    def _mine(self, job_id: str, owner: str) -> Any:
        return and_(_job.c.id == job_id, _job.c.owner == owner, _job.c.state == State.RUNNING.value)

    def heartbeat(
        self, job_id: str, owner: str, lease: timedelta, progress: float | None = None
    ) -> Heartbeat:
        """Renew the lease of a running job (and record its *progress* in percent)."""
        at = now()
        values: dict[str, Any] = {"lease_expires_at": at + lease, "updated_at": at}
        if progress is not None:
            values["progress"] = progress
        renewed = self._update(
            update(_job)
            .where(self._mine(job_id, owner), _job.c.cancel_requested.is_(False))
            .values(values)
        )
        if renewed:
            return Heartbeat.OK
        job = self.get(job_id)
        if job is not None and job.owner == owner and job.state is State.RUNNING:
            return Heartbeat.CANCEL
        return Heartbeat.LOST

    def succeeded(
        self,
        job_id: str,
        owner: str,
        *,
        report: dict[str, Any],
        file_key: str,
        report_key: str,
        stored_instance: str | None,
    ) -> bool:
        """Record a finished export; False when the job was no longer this claim's."""
        at = now()
        return bool(
            self._update(
                update(_job)
                .where(self._mine(job_id, owner))
                .values(
                    state=State.SUCCEEDED.value,
                    progress=100.0,
                    report=json.dumps(report, sort_keys=True),
                    file_key=file_key,
                    report_key=report_key,
                    stored_instance=stored_instance,
                    error="",
                    owner=None,
                    lease_expires_at=None,
                    finished_at=at,
                    updated_at=at,
                )
            )
        )

    def failed(self, job_id: str, owner: str, reason: str) -> bool:
        """Record a failure that another attempt would not change."""
        at = now()
        return bool(
            self._update(
                update(_job)
                .where(self._mine(job_id, owner))
                .values(
                    state=State.FAILED.value,
                    error=reason,
                    owner=None,
                    lease_expires_at=None,
                    finished_at=at,
                    updated_at=at,
                )
            )
        )

    def retry_later(
        self, job_id: str, owner: str, reason: str, delay: timedelta, max_attempts: int
    ) -> State | None:
        """A failure another attempt may not meet (the API unreachable): back to the queue
        after *delay*, or failed with *reason* once the job used up its attempts. The state
        the job is in then (None when it was no longer this claim's)."""
        job = self.get(job_id)
        if job is None or job.owner != owner or job.state is not State.RUNNING:
            return None
        if job.attempts >= max_attempts:
            tried = f"{reason} (tried {job.attempts} time(s))"
            return State.FAILED if self.failed(job_id, owner, tried) else None
        at = now()
        moved = self._update(
            update(_job)
            .where(self._mine(job_id, owner))
            .values(
                state=State.QUEUED.value,
                error=reason,
                owner=None,
                lease_expires_at=None,
                not_before=at + delay,
                progress=0.0,
                updated_at=at,
            )
        )
        return State.QUEUED if moved else None

    def release(self, job_id: str, owner: str) -> bool:
        """A worker that stops (its process shuts down) hands a running job back to the
        queue at once; the attempt is not counted."""
        at = now()
        return bool(
            self._update(
                update(_job)
                .where(self._mine(job_id, owner), _job.c.cancel_requested.is_(False))
                .values(
                    state=State.QUEUED.value,
                    attempts=_job.c.attempts - 1,
                    owner=None,
                    lease_expires_at=None,
                    not_before=at,
                    progress=0.0,
                    updated_at=at,
                )
            )
        )

    def cancelled(self, job_id: str, owner: str) -> bool:
        """A worker stopped a job whose cancellation was asked."""
        at = now()
        return bool(
            self._update(
                update(_job)
                .where(self._mine(job_id, owner))
                .values(
                    state=State.CANCELLED.value,
                    error="cancelled while running",
                    owner=None,
                    lease_expires_at=None,
                    finished_at=at,
                    updated_at=at,
                )
            )
        )
