"""The durable delivery queue of store-and-forward routing (:mod:`.tables`).

Reading the change feed and queueing what it routes happen in one transaction with the cursor
moving on (:meth:`Queue.advance`), so after a crash the feed is read again from the last page
committed: nothing is queued twice or missed. A delivery stays ``pending`` until its destination
answered the C-STORE with a success or warning status (PS3.4 B.2.3), so delivery is at least
once. Destinations are tried in ``seq`` (commit) order, which keeps the order within a series.

An instance whose Pixel Data is incomplete (:mod:`pacs_common.pixel_check`) is never sent: its
delivery is ``quarantined`` with the reason, until an administrator releases it
(:meth:`Queue.release`: back in the queue, sent without the check) or drops it
(:meth:`Queue.drop`: kept as ``dropped``, never sent).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from pacs_common.backoff import Backoff as Backoff  # its home; imported from here too
from pacs_common.changefeed import ChangeKind, ChangePage
from pacs_common.database import WRITE_OPTION, make_engine, migrate
from sqlalchemy import Connection, Engine, and_, delete, func, insert, select, update

from pacs_bridge.routing import tables
from pacs_bridge.routing.rules import Route, destinations

#: The change feed's row in ``routing_cursor``.
FEED = "changefeed"
#: The routing state's migrations, their version table (the bridge may share a PostgreSQL
#: database with the API, whose version table is the default one) and the lock serialising
#: migrations of concurrent starts.
MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "bridge_alembic_version"
_MIGRATION_LOCK = 0x62726467  # "brdg"


class State(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # refused for good by the destination; an operator may retry it
    CANCELLED = "cancelled"  # left the archive before it could be delivered
    QUARANTINED = "quarantined"  # incomplete Pixel Data: not sent; an admin releases or drops
    DROPPED = "dropped"  # dropped from the quarantine by an admin: never sent


#: States that take a delivery out of the queue without an attempt on the destination.
_NOT_ATTEMPTED = frozenset({State.CANCELLED, State.QUARANTINED})


def now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back without their zone; every stored one is UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    destination: str
    route: str
    seq: int
    study: str
    series: str
    instance: str
    sop_class: str
    state: State
    attempts: int
    last_status: int | None
    last_error: str
    created_at: datetime
    updated_at: datetime
    waived: bool = False  # released from the quarantine: sent without the Pixel Data check

    @classmethod
    def from_row(cls, row: Any) -> Delivery:
        values = dict(row._mapping)
        values["state"] = State(values["state"])
        values["created_at"] = _aware(values["created_at"])
        values["updated_at"] = _aware(values["updated_at"])
        values["waived"] = bool(values.get("waived", False))
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one delivery attempt."""

    state: State  # DELIVERED, FAILED, CANCELLED or QUARANTINED; PENDING: "try again later"
    status: int | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class DestinationStatus:
    ae_title: str
    pending: int
    delivered: int
    failed: int
    cancelled: int
    quarantined: int
    oldest_pending_at: datetime | None
    consecutive_failures: int
    next_attempt_at: datetime | None
    last_error: str
    last_error_at: datetime | None
    last_success_at: datetime | None


class Queue:
    """The routing state in the bridge's database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, database_url: str) -> Queue:
        """The queue in the database at *database_url*, its schema migrated to the newest."""
        engine = make_engine(database_url)
        migrate(engine, MIGRATIONS, lock_key=_MIGRATION_LOCK, version_table=VERSION_TABLE)
        return cls(engine)

    def _write(self) -> Any:
        return self.engine.connect().execution_options(**{WRITE_OPTION: True})

    # -- following the change feed ---------------------------------------------------------

    def cursor(self) -> int:
        """The last feed entry processed (0 before the first)."""
        return self.started_at() or 0

    def started_at(self) -> int | None:
        """The last feed entry processed, None when routing never ran on this database."""
        with self.engine.connect() as connection:
            seq = connection.execute(
                select(tables.cursor.c.seq).where(tables.cursor.c.name == FEED)
            ).scalar()
        return None if seq is None else int(seq)

    def start_at(self, seq: int) -> None:
        """Begin following the feed after entry *seq* (the first time routing runs)."""
        with self._write() as connection, connection.begin():
            if (
                connection.execute(
                    select(tables.cursor.c.seq).where(tables.cursor.c.name == FEED)
                ).first()
                is None
            ):
                self._set_cursor(connection, seq, now())

    def advance(self, page: ChangePage, routes: Sequence[Route]) -> int:
        """Queue what *routes* send of *page*, cancel pending deliveries of instances the page
        deletes, and move the cursor to ``page.next``, all in one transaction; the number of
        deliveries queued."""
        at = now()
        queued = 0
        with self._write() as connection, connection.begin():
            for change in page.changes:
                if change.kind is ChangeKind.DELETED:
                    connection.execute(
                        update(tables.delivery)
                        .where(
                            tables.delivery.c.instance == change.instance,
                            tables.delivery.c.state == State.PENDING.value,
                            tables.delivery.c.seq < change.seq,
                        )
                        .values(
                            state=State.CANCELLED.value,
                            last_error="deleted from the archive before it was delivered",
                            updated_at=at,
                        )
                    )
                    continue
                rows = [
                    {
                        "destination": title,
                        "route": route,
                        "seq": change.seq,
                        "study": change.study,
                        "series": change.series,
                        "instance": change.instance,
                        "sop_class": change.sop_class,
                        "state": State.PENDING.value,
                        "attempts": 0,
                        "last_error": "",
                        "created_at": at,
                        "updated_at": at,
                    }
                    for title, route in destinations(routes, change)
                ]
                if rows:
                    connection.execute(insert(tables.delivery), rows)
                    queued += len(rows)
            self._set_cursor(connection, page.next, at)
        return queued

    @staticmethod
    def _set_cursor(connection: Connection, seq: int, at: datetime) -> None:
        moved = connection.execute(
            update(tables.cursor).where(tables.cursor.c.name == FEED).values(seq=seq, updated_at=at)
        )
        if moved.rowcount == 0:
            connection.execute(insert(tables.cursor).values(name=FEED, seq=seq, updated_at=at))

    # -- delivering ------------------------------------------------------------------------

    def destinations_pending(self) -> list[str]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(tables.delivery.c.destination)
                .where(tables.delivery.c.state == State.PENDING.value)
                .distinct()
            )
            return sorted(row[0] for row in rows)

    def wait(self, destination: str) -> float:
        """Seconds until *destination* may be tried again (0 when it may now)."""
        with self.engine.connect() as connection:
            when = connection.execute(
                select(tables.destination.c.next_attempt_at).where(
                    tables.destination.c.ae_title == destination
                )
            ).scalar()
        if not isinstance(when, datetime):
            return 0.0
        aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
        return max(0.0, (aware - now()).total_seconds())

    def due(self, destination: str, limit: int) -> list[Delivery]:
        """The oldest pending deliveries to *destination*, in feed order."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(tables.delivery)
                .where(
                    tables.delivery.c.destination == destination,
                    tables.delivery.c.state == State.PENDING.value,
                )
                .order_by(tables.delivery.c.seq)
                .limit(limit)
            )
            return [Delivery.from_row(row) for row in rows]

    def record(
        self, destination: str, outcomes: Iterable[tuple[Delivery, Outcome]], backoff: Backoff
    ) -> None:
        """Store what became of each attempt: delivered, failed or cancelled rows leave the
        queue; a delivery to try again counts an attempt and puts the destination in backoff.
        A destination that delivered anything without a retryable failure leaves backoff."""
        at = now()
        retry_reason = ""
        delivered = False
        with self._write() as connection, connection.begin():
            for item, outcome in outcomes:
                values: dict[str, Any] = {
                    "state": outcome.state.value,
                    "last_status": outcome.status,
                    "last_error": outcome.reason,
                    "updated_at": at,
                }
                if outcome.state not in _NOT_ATTEMPTED:
                    values["attempts"] = tables.delivery.c.attempts + 1
                connection.execute(
                    update(tables.delivery).where(tables.delivery.c.id == item.id).values(values)
                )
                if outcome.state is State.PENDING:
                    retry_reason = retry_reason or outcome.reason
                delivered = delivered or outcome.state is State.DELIVERED
            if retry_reason:
                self._failed(connection, destination, retry_reason, backoff, at)
            elif delivered:
                self._succeeded(connection, destination, at)

    def destination_failed(self, destination: str, reason: str, backoff: Backoff) -> None:
        """An attempt on *destination* failed as a whole (unreachable, association rejected
        or aborted, the archive unavailable): wait before the next."""
        with self._write() as connection, connection.begin():
            self._failed(connection, destination, reason, backoff, now())

    def _destination_row(self, connection: Connection, destination: str) -> Any:
        row = connection.execute(
            select(tables.destination).where(tables.destination.c.ae_title == destination)
        ).first()
        if row is None:
            connection.execute(
                insert(tables.destination).values(
                    ae_title=destination, consecutive_failures=0, last_error=""
                )
            )
            row = connection.execute(
                select(tables.destination).where(tables.destination.c.ae_title == destination)
            ).one()
        return row

    def _failed(
        self, connection: Connection, destination: str, reason: str, backoff: Backoff, at: datetime
    ) -> None:
        failures = self._destination_row(connection, destination).consecutive_failures + 1
        connection.execute(
            update(tables.destination)
            .where(tables.destination.c.ae_title == destination)
            .values(
                consecutive_failures=failures,
                next_attempt_at=at + timedelta(seconds=backoff.delay(failures)),
                last_error=reason,
                last_error_at=at,
            )
        )

    def _succeeded(self, connection: Connection, destination: str, at: datetime) -> None:
        self._destination_row(connection, destination)
        connection.execute(
            update(tables.destination)
            .where(tables.destination.c.ae_title == destination)
            .values(consecutive_failures=0, next_attempt_at=None, last_success_at=at)
        )

    # -- operators -------------------------------------------------------------------------

    def summary(self) -> list[DestinationStatus]:
        """Per destination: deliveries by state, the oldest waiting, and its backoff."""
        d = tables.delivery
        with self.engine.connect() as connection:
            counts: dict[str, dict[str, int]] = {}
            for title, state, count in connection.execute(
                select(d.c.destination, d.c.state, func.count()).group_by(
                    d.c.destination, d.c.state
                )
            ):
                counts.setdefault(title, {})[state] = count
            oldest: dict[str, datetime] = {}
            for title, first in connection.execute(
                select(d.c.destination, func.min(d.c.created_at))
                .where(d.c.state == State.PENDING.value)
                .group_by(d.c.destination)
            ):
                oldest[title] = first
            states = {row.ae_title: row for row in connection.execute(select(tables.destination))}
        result = []
        for title in sorted(set(counts) | set(states)):
            by_state = counts.get(title, {})
            row = states.get(title)
            result.append(
                DestinationStatus(
                    ae_title=title,
                    pending=by_state.get(State.PENDING.value, 0),
                    delivered=by_state.get(State.DELIVERED.value, 0),
                    failed=by_state.get(State.FAILED.value, 0),
                    cancelled=by_state.get(State.CANCELLED.value, 0),
                    quarantined=by_state.get(State.QUARANTINED.value, 0),
                    oldest_pending_at=_aware(oldest.get(title)),
                    consecutive_failures=row.consecutive_failures if row is not None else 0,
                    next_attempt_at=_aware(row.next_attempt_at) if row is not None else None,
                    last_error=row.last_error if row is not None else "",
                    last_error_at=_aware(row.last_error_at) if row is not None else None,
                    last_success_at=_aware(row.last_success_at) if row is not None else None,
                )
            )
        return result

    def deliveries(self, destination: str, state: State | None, limit: int) -> list[Delivery]:
        """Deliveries to *destination* (in one *state*), newest first."""
        d = tables.delivery
        statement = select(d).where(d.c.destination == destination)
        if state is not None:
            statement = statement.where(d.c.state == state.value)
        with self.engine.connect() as connection:
            rows = connection.execute(statement.order_by(d.c.seq.desc()).limit(limit))
            return [Delivery.from_row(row) for row in rows]

    def retry(self, destination: str) -> int:
        """Put *destination*'s failed deliveries back in the queue and end its backoff, so
        they are tried at once; the number requeued."""
        at = now()
        with self._write() as connection, connection.begin():
            requeued = connection.execute(
                update(tables.delivery)
                .where(
                    and_(
                        tables.delivery.c.destination == destination,
                        tables.delivery.c.state == State.FAILED.value,
                    )
                )
                .values(state=State.PENDING.value, updated_at=at)
            ).rowcount
            connection.execute(
                update(tables.destination)
                .where(tables.destination.c.ae_title == destination)
                .values(next_attempt_at=None, consecutive_failures=0)
            )
        return int(requeued)

    def quarantined(self, limit: int) -> list[Delivery]:
        """Quarantined deliveries to every destination, newest first."""
        d = tables.delivery
        statement = select(d).where(d.c.state == State.QUARANTINED.value)
        with self.engine.connect() as connection:
            rows = connection.execute(statement.order_by(d.c.id.desc()).limit(limit))
            return [Delivery.from_row(row) for row in rows]

    def release(self, delivery_id: int, who: str) -> bool:
        """Put a quarantined delivery back in the queue, to be sent without the Pixel Data
        check (an administrator's decision); False when no quarantined delivery has that id."""
        reason = f"released from the quarantine by {who}; sent without the Pixel Data check"
        return self._settle_quarantined(
            delivery_id, state=State.PENDING.value, waived=True, last_error=reason
        )

    def drop(self, delivery_id: int, who: str) -> bool:
        """Never send a quarantined delivery; it stays listed as ``dropped`` (pruned like
        delivered ones). False when no quarantined delivery has that id."""
        return self._settle_quarantined(
            delivery_id,
            state=State.DROPPED.value,
            last_error=f"dropped from the quarantine by {who}",
        )

    def _settle_quarantined(self, delivery_id: int, **values: Any) -> bool:
        d = tables.delivery
        with self._write() as connection, connection.begin():
            changed = connection.execute(
                update(d)
                .where(d.c.id == delivery_id, d.c.state == State.QUARANTINED.value)
                .values(updated_at=now(), **values)
            ).rowcount
        return bool(changed)

    def prune(self, older_than: timedelta) -> int:
        """Forget delivered, cancelled and dropped deliveries settled longer ago than
        *older_than*."""
        cutoff = now() - older_than
        settled = [State.DELIVERED.value, State.CANCELLED.value, State.DROPPED.value]
        with self._write() as connection, connection.begin():
            removed = connection.execute(
                delete(tables.delivery).where(
                    tables.delivery.c.state.in_(settled),
                    tables.delivery.c.updated_at < cutoff,
                )
            ).rowcount
        return int(removed)
