"""Group commit of audit records: the stream written at once, the table in batches.

A service appends every audit record (PS3.15 A.5) to two places: its JSON-lines stream
(:class:`~pacs_common.audit.AuditStream`) and a table (the API's ``audit_event``, the bridge's
``audit_outbox``). Committing one transaction per record costs a synchronous disk flush per
request (SQLite ``synchronous=FULL``, PostgreSQL's WAL flush), on the request's worker thread.
:class:`AuditWriter` keeps the guarantees for less:

- **The stream first, synchronously**: :meth:`~AuditWriter.append` writes each record's line
  (flushed per line) before it returns, so a record that was appended is in the stream, also
  when the process dies the next instant or the database is down.
- **The table by group commit**: one thread per process takes the records waiting and inserts
  them in one transaction (at most ``max_batch``), then the next batch. After the first record
  of a batch it lingers ``linger`` seconds (50 ms) for more, so that a viewer scrolling
  frames on one connection costs a commit per 50 ms, not per frame (a commit is a disk flush:
  about 5 ms on SQLite ``synchronous=FULL``, measured in docs/capacity.md);
  :meth:`~AuditWriter.flush` and :meth:`~AuditWriter.close` cut the lingering short.
  Records reach the table in the order they were appended (per process).
- **Bounded, with back-pressure**: at most ``capacity`` records wait. A full queue makes
  :meth:`~AuditWriter.append` wait for room (up to ``full_wait`` seconds) while the database
  takes records; it never waits on a database that is failing.
- **Database down**: the batch is retried with exponential backoff, in order, and the writer
  carries on once the database is back. A record the table cannot take (the queue is full
  while the database is down, or the database refuses that one record, or the writer was
  closed before the database came back) is in the stream, and an error names its request id:
  never dropped without a trace.
- **Clean stop**: :meth:`~AuditWriter.close` drains the queue (within ``close_wait``) before
  it returns; afterwards :meth:`~AuditWriter.append` commits synchronously, as before.

A crash (kill -9, power loss) may lose from the **table** the records appended in the last
moments that were not yet committed (at most one batch and what waited behind it); each of them
is in the stream.
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from pacs_common.audit import AuditRecord, AuditStream, now

log = logging.getLogger(__name__)

#: A record and when the service received it.
Pending = tuple[AuditRecord, datetime]
#: Inserts records into the table in one transaction (raises when it could not).
Store = Callable[[Sequence[Pending]], None]


def is_transient(exc: Exception) -> bool:
    """A failure of the database, not of the records: unreachable, restarting, locked, out
    of connections (worth retrying the same batch)."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, (OperationalError, InterfaceError))


class AuditWriter:
    """The audit records of one process, to the stream at once and to the table in batches
    (see the module)."""

    def __init__(
        self,
        stream: AuditStream,
        store: Store,
        *,
        table: str,
        capacity: int = 5000,
        max_batch: int = 500,
        linger: float = 0.05,
        full_wait: float = 10.0,
        close_wait: float = 10.0,
        retry_initial: float = 0.1,
        retry_max: float = 5.0,
    ) -> None:
        if capacity < 1 or max_batch < 1:
            raise ValueError("capacity and max_batch must be at least 1")
        self.stream = stream
        self.store = store
        self.table = table
        self.capacity = capacity
        self.max_batch = max_batch
        self.linger = linger
        self.full_wait = full_wait
        self.close_wait = close_wait
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self._order = threading.Lock()  # the stream's order is the table's
        self._changed = threading.Condition()
        self._queue: deque[Pending] = deque()
        self._appended = 0  # records queued since the start
        self._settled = 0  # ... of which stored, or given up with an error
        self._failures = 0  # consecutive failed attempts at the batch in hand
        self._flush_to = 0  # a flush waits for the records up to this count: no lingering
        self._closed = False
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    # -- producers ---------------------------------------------------------------------------

    def append(
        self, records: Sequence[AuditRecord], *, received_at: datetime | None = None
    ) -> None:
        """Write *records* to the stream, then queue them for the table (blocking up to
        ``full_wait`` while the queue is full: call from a worker thread, never an event loop).
        Raises nothing a database failure causes."""
        if not records:
            return
        received = received_at or now()
        pending = [(record, received) for record in records]
        with self._order:
            for record in records:
                self._stream(record)
            queued = self._queue_up(pending)
            if queued is None:  # closed: no thread any more
                self._store_now(pending)
                return
        if not queued:
            self._given_up(pending, "the queue is full while the database is failing")

    def _stream(self, record: AuditRecord) -> None:
        try:
            self.stream.write(record)
        except Exception:  # e.g. its file's disk full: the table still gets the record
            log.exception("audit record of request %r not written to the stream", record.request_id)

    def _queue_up(self, pending: list[Pending]) -> bool | None:
        """Queue *pending*: True when queued, False when there is no room and none comes,
        None when the writer is closed."""
        deadline = time.monotonic() + self.full_wait
        with self._changed:
            while not self._closed and len(self._queue) + len(pending) > max(
                self.capacity, len(pending)
            ):
                left = deadline - time.monotonic()
                if self._failures or left <= 0:
                    return False
                self._changed.wait(left)
            if self._closed:
                return None
            self._queue.extend(pending)
            self._appended += len(pending)
            self._start()
            self._changed.notify_all()
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every record appended before this call is in the table (or was given
        up, with its error logged); False when *timeout* seconds passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            target = self._appended
            self._flush_to = max(self._flush_to, target)
            self._changed.notify_all()
            while self._settled < target:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._changed.wait(left)
        return True

    @property
    def waiting(self) -> int:
        """Records queued, not yet in the table."""
        with self._changed:
            return self._appended - self._settled

    def close(self) -> None:
        """Store what waits (trying for up to ``close_wait`` seconds while the database
        fails), stop the thread; later records are stored synchronously."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
            thread = self._thread
        self._closing.set()
        if thread is not None:
            thread.join()
        with self._changed:
            left = list(self._queue)
            self._queue.clear()
        if left:  # the database stayed down: in the stream only, each with its error
            self._settle(left)
            self._given_up(left, "the service stopped before the database took them")

    # -- the writer thread -------------------------------------------------------------------

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"audit-writer-{self.table}", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        stop_by: float | None = None  # once closing: when to give up on a failing database
        while True:
            with self._changed:
                while not self._queue and not self._closed:
                    self._changed.wait()
                if not self._queue:
                    return
                if self._closed and stop_by is None:
                    stop_by = time.monotonic() + self.close_wait
                self._linger()
                batch = list(itertools.islice(self._queue, self.max_batch))
            if self._write(batch):
                continue
            # the database is failing: the same batch again after a pause
            delay = min(self.retry_max, self.retry_initial * 2.0 ** (self._failures - 1))
            delay *= random.uniform(0.9, 1.1)
            if stop_by is None:
                self._closing.wait(delay)  # close() cuts the pause short
            elif time.monotonic() + delay > stop_by:
                return  # close() gives up what is left, each with its error
            else:
                time.sleep(delay)

    def _linger(self) -> None:
        """Wait (holding the condition) for more records to share the commit, unless the
        batch is full, a flush or the close waits, or the database is failing."""
        deadline = time.monotonic() + self.linger
        while (
            len(self._queue) < self.max_batch
            and not self._closed
            and not self._failures
            and self._settled >= self._flush_to
        ):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._changed.wait(left)

    def _write(self, batch: list[Pending]) -> bool:
        """Store *batch* (then take it off the queue); False when the database failed."""
        try:
            self.store(batch)
        except Exception as exc:
            if is_transient(exc):
                self._failed(exc)
                return False
            # a record the table refuses must not hold back the others
            log.warning("a batch of audit records was refused (%s); storing them one by one", exc)
            return self._one_by_one(batch)
        self._recovered()
        self._settle(batch)
        return True

    def _one_by_one(self, batch: list[Pending]) -> bool:
        for item in batch:
            try:
                self.store([item])
            except Exception as exc:
                if is_transient(exc):
                    self._failed(exc)
                    return False  # this one and the rest again, after the pause
                self._settle([item])
                self._given_up([item], f"the database refused it: {exc}")
            else:
                self._recovered()
                self._settle([item])
        return True

    def _settle(self, items: list[Pending]) -> None:
        """Take *items* (the head of the queue) off it."""
        with self._changed:
            for _ in items:
                if self._queue:
                    self._queue.popleft()
            self._settled += len(items)
            self._changed.notify_all()

    def _failed(self, exc: Exception) -> None:
        with self._changed:
            self._failures += 1
            first = self._failures == 1
            self._changed.notify_all()  # producers waiting for room stop waiting
        if first:
            log.error(
                "the %s table cannot take audit records now (they are in the audit stream; "
                "%d wait, retried until it can): %s",
                self.table,
                self.waiting,
                exc,
            )

    def _recovered(self) -> None:
        if self._failures:
            log.warning(
                "the %s table takes audit records again after %d failed attempt(s)",
                self.table,
                self._failures,
            )
            with self._changed:
                self._failures = 0

    def _store_now(self, pending: list[Pending]) -> None:
        try:
            self.store(pending)
        except Exception as exc:
            self._given_up(pending, str(exc))

    def _given_up(self, pending: list[Pending], reason: str) -> None:
        log.error(
            "%d audit record(s) not stored in the %s table (kept in the audit stream only): %s",
            len(pending),
            self.table,
            reason,
            extra={"request_ids": sorted({record.request_id for record, _ in pending})},
        )
