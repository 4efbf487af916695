"""The sweep of unreferenced objects and the check of index rows (:mod:`pacs_api.sweep`), on
both deployments (SQLite + filesystem, PostgreSQL + SeaweedFS)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from pacs_api.index.db import make_engine
from pacs_api.index.repository import Index
from pacs_api.settings import Settings
from pacs_api.sweep import check, sweep
from pacs_common.storage import ObjectStore, open_store

from tests.support.dicom import ct_instances, referenced, stow

ORPHAN = "studies/1.2.3/series/1.2.3.4/instances/1.2.3.4.5." + "ab" * 12 + ".dcm"
FOREIGN = "studies/1.2.3/derived/thumbnail.png"


@pytest.fixture
def index_and_store(settings: Settings, client: TestClient) -> Iterator[tuple[Index, ObjectStore]]:
    engine = make_engine(settings.database_url)
    store = open_store(settings)
    try:
        yield Index(engine), store
    finally:
        store.close()
        engine.dispose()


def plant(store: ObjectStore, key: str, data: bytes = b"orphan") -> None:
    store.put(key, io.BytesIO(data), len(data))


def keys(store: ObjectStore) -> set[str]:
    return {info.key for info in store.scan("")}


def test_sweep_deletes_only_old_unreferenced_instance_objects(
    client: TestClient, index_and_store: tuple[Index, ObjectStore]
) -> None:
    index, store = index_and_store
    response = stow(client, ct_instances(3))
    assert response.status_code == 200 and len(referenced(response)) == 3
    stored = keys(store)
    plant(store, ORPHAN)
    plant(store, FOREIGN)

    kept = sweep(index, store)  # default grace: everything here is young
    assert (kept.scanned, kept.young, kept.foreign, kept.orphans, kept.deleted) == (5, 4, 1, 0, 0)

    later = datetime.now(UTC) + timedelta(seconds=5)
    dry = sweep(index, store, grace=timedelta(0), dry_run=True, now=later)
    assert (dry.orphans, dry.orphan_bytes, dry.deleted) == (1, len(b"orphan"), 0)
    assert ORPHAN in keys(store)

    swept = sweep(index, store, grace=timedelta(0), now=later, batch=2)
    assert (swept.orphans, swept.deleted, swept.deleted_bytes) == (1, 1, len(b"orphan"))
    assert swept.foreign == 1 and swept.raced == []
    assert keys(store) == stored | {FOREIGN}
    assert check(index, store).ok


def test_check_reports_rows_without_their_object(
    client: TestClient, index_and_store: tuple[Index, ObjectStore]
) -> None:
    index, store = index_and_store
    assert stow(client, ct_instances(5)).status_code == 200
    report = check(index, store, batch=2)
    assert report.ok and report.rows == 5
    lost = sorted(keys(store))[1]
    store.delete([lost])
    report = check(index, store, batch=2)
    assert (report.rows, report.missing, report.wrong_size) == (5, 1, 0)
    assert report.examples == [lost] and not report.ok
    assert index.referenced_keys(["1.2.3.4.5"]) == set()


def test_sweep_and_check_commands(
    settings: Settings,
    client: TestClient,
    index_and_store: tuple[Index, ObjectStore],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``pacs-api sweep [--dry-run] [--grace]`` and ``pacs-api check`` on the server's settings."""
    from pacs_api.cli import app
    from typer.testing import CliRunner

    _, store = index_and_store
    assert stow(client, ct_instances(2)).status_code == 200
    plant(store, ORPHAN)
    for name, value in settings.model_dump().items():
        if value is not None and name in {"database_url", "store_url", "s3_access_key"}:
            monkeypatch.setenv(f"PACS_API_{name.upper()}", str(value))
    if settings.s3_secret_key:
        monkeypatch.setenv("PACS_API_S3_SECRET_KEY", settings.s3_secret_key)
    runner = CliRunner()

    young = runner.invoke(app, ["sweep"])
    assert young.exit_code == 0 and "deleted 0 unreferenced" in young.output
    dry = runner.invoke(app, ["sweep", "--dry-run", "--grace", "0"])
    assert dry.exit_code == 0 and "would delete 1 unreferenced (6 bytes)" in dry.output
    assert store.exists(ORPHAN)
    swept = runner.invoke(app, ["sweep", "--grace", "0"])
    assert swept.exit_code == 0 and "deleted 1 unreferenced (6 bytes)" in swept.output
    assert not store.exists(ORPHAN)

    checked = runner.invoke(app, ["check"])
    assert checked.exit_code == 0 and "checked 2 index rows: 0 without" in checked.output
    store.delete([sorted(keys(store))[0]])
    broken = runner.invoke(app, ["check"])
    assert broken.exit_code == 1 and "1 without their object" in broken.output
