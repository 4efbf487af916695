"""The routing state (the bridge's own database), on SQLite and PostgreSQL: migrations, the
queue's transactions and the router's leadership."""

from __future__ import annotations

from datetime import timedelta

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from pacs_bridge.routing.leadership import Leadership
from pacs_bridge.routing.queue import VERSION_TABLE, Backoff, Outcome, Queue, State
from pacs_bridge.routing.rules import Route
from pacs_bridge.routing.tables import metadata
from pacs_common.changefeed import Change, ChangeKind, ChangePage

CT = "1.2.840.10008.5.1.4.1.1.2"
EVERYTHING = Route.model_validate({"name": "all", "match_all": True, "to": ["PLANNING"]})
NO_WAIT = Backoff(initial=0.001, maximum=0.001)


def stored(seq: int, instance: str, **fields: str) -> Change:
    return Change(seq, ChangeKind.STORED, "1.2.3", "1.2.3.4", instance, CT, **fields)


def test_routing_migrations_build_the_tables_schema(index_url: str) -> None:
    """After migrating, the database matches :mod:`pacs_bridge.routing.tables` exactly, with
    its own version table; opening again (every start does) keeps the rows."""
    queue = Queue.open(index_url)
    queue.advance(ChangePage([stored(1, "1.9.1")], 1), [EVERYTHING])
    with queue.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        assert compare_metadata(context, metadata) == []
    queue.engine.dispose()
    again = Queue.open(index_url)
    assert again.cursor() == 1 and [d.instance for d in again.due("PLANNING", 10)] == ["1.9.1"]
    again.engine.dispose()


def test_queue_advance_cancel_record_retry(index_url: str) -> None:
    """The queue in one story: entries routed and the cursor moved together; a deletion
    cancels what waits for the instance; outcomes settle deliveries, a retryable one puts the
    destination in backoff, a delivery ends it; failed deliveries can be requeued."""
    queue = Queue.open(index_url)
    page = ChangePage(
        [
            stored(5, "1.9.1"),
            stored(6, "1.9.2"),
            stored(7, "1.9.3"),
            Change(8, ChangeKind.DELETED, "1.2.3", "1.2.3.4", "1.9.3", CT),
        ],
        8,
    )
    assert queue.advance(page, [EVERYTHING]) == 3
    assert queue.cursor() == 8
    due = queue.due("PLANNING", 10)
    assert [d.instance for d in due] == ["1.9.1", "1.9.2"]
    assert queue.destinations_pending() == ["PLANNING"]

    queue.record("PLANNING", [(due[0], Outcome(State.PENDING, 0xA700, "full"))], Backoff(60, 60))
    assert queue.wait("PLANNING") > 50
    (status,) = queue.summary()
    assert (status.pending, status.cancelled, status.consecutive_failures) == (2, 1, 1)
    assert status.last_error == "full"

    queue.record(
        "PLANNING",
        [
            (due[0], Outcome(State.DELIVERED, 0)),
            (due[1], Outcome(State.FAILED, 0xA900, "refused")),
        ],
        NO_WAIT,
    )
    (status,) = queue.summary()
    assert (status.pending, status.delivered, status.failed) == (0, 1, 1)
    assert status.consecutive_failures == 0 and status.next_attempt_at is None
    assert status.last_success_at is not None
    (failed,) = queue.deliveries("PLANNING", State.FAILED, 10)
    assert (failed.instance, failed.last_status, failed.attempts) == ("1.9.2", 0xA900, 1)

    assert queue.retry("PLANNING") == 1
    assert [d.instance for d in queue.due("PLANNING", 10)] == ["1.9.2"]
    assert queue.prune(timedelta(0)) == 2  # the delivered and the cancelled one
    queue.engine.dispose()


def test_leadership_one_router_per_database(index_url: str) -> None:
    """Two routers on one database: the first leads, the second stands by until the first
    releases (PostgreSQL advisory lock, SQLite file lock)."""
    first, second = Queue.open(index_url), Queue.open(index_url)
    one, two = Leadership(first.engine), Leadership(second.engine)
    assert one.acquire() and one.leading
    assert not two.acquire() and not two.leading
    one.release()
    assert two.acquire()
    two.release()
    first.engine.dispose()
    second.engine.dispose()
