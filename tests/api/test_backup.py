"""Backup and restore (issue 6): ``pacs-api backup``, ``pacs-api restore`` (:mod:`pacs_api.backup`).

An archive of several studies (synthetic CT, and pydicom's test files in other transfer
syntaxes), one instance deleted, is backed up and restored into an empty system of the same
kind and of the other kind (SQLite + filesystem <-> PostgreSQL + SeaweedFS); the API started on
the restored system answers QIDO-RS, WADO-RS and metadata as the original did, every instance
byte-identical, and its change feed continues after the old entries. A target that is not
empty, and a damaged or unfinished backup, are refused before anything is written; a backup
taken while STOW requests keep coming restores with every row's object.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from fastapi.testclient import TestClient
from pacs_api.backup import BackupError, create_backup, restore_backup
from pacs_api.backup.rows import column_kind, decode, encode
from pacs_api.backup.snapshot import api_tables
from pacs_api.index.db import make_engine, migrate
from pacs_api.index.repository import Index
from pacs_api.main import create_app
from pacs_api.settings import Settings
from pacs_api.sweep import check
from pacs_common.client import DicomWebClient
from pacs_common.storage import open_store
from pacs_common.synthetic import iter_ct_series, to_bytes
from pydicom.data import get_testdata_file
from sqlalchemy import JSON, DateTime, LargeBinary, Numeric, inspect

from tests.support import postgres
from tests.support.dicom import ct_instances, stow
from tests.support.seaweedfs import SeaweedFS
from tests.support.server import serving
from tests.support.stores import stored_objects

#: pydicom's test files in other transfer syntaxes: explicit VR little endian, RLE, JPEG 2000.
TEST_FILES = ["CT_small.dcm", "MR_small_RLE.dcm", "JPEG2000.dcm", "SC_rgb_rle_2frame.dcm"]
PACS_API = str(Path(sys.executable).parent / "pacs-api")
_targets = itertools.count()

Deploy = Callable[[str], Settings]


def kind_of(settings: Settings) -> str:
    return "sqlite-filesystem" if settings.database_url.startswith("sqlite") else "postgresql-s3"


@pytest.fixture
def deploy(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deploy]:
    """Makes empty deployments (a new database and an empty store) of a kind."""
    with ExitStack() as stack:

        def make(kind: str) -> Settings:
            n = next(_targets)
            if kind == "sqlite-filesystem":
                root = tmp_path / f"target-{n}"
                return Settings(
                    database_url=f"sqlite:///{root / 'index.sqlite3'}",
                    store_url=f"file://{root / 'objects'}",
                )
            seaweed: SeaweedFS = request.getfixturevalue("seaweedfs")
            server = request.getfixturevalue("postgres_server")
            return Settings(
                database_url=stack.enter_context(postgres.temporary_database(server)),
                store_url=seaweed.store_url(f"pacs-restore-{uuid.uuid4().hex[:12]}"),
                s3_access_key=seaweed.access_key,
                s3_secret_key=seaweed.secret_key,
            )

        yield make


def environment(settings: Settings) -> dict[str, str]:
    """The ``PACS_API_*`` variables of a deployment, for the ``pacs-api`` command."""
    names = ("database_url", "store_url", "s3_access_key", "s3_secret_key")
    values = {f"PACS_API_{name.upper()}": getattr(settings, name) for name in names}
    return {**os.environ, **{name: value for name, value in values.items() if value}}


def pacs_api(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the ``pacs-api`` console script (what ``uv run pacs-api`` runs) on *settings*."""
    return subprocess.run(
        [PACS_API, *args], env=environment(settings), capture_output=True, text=True, timeout=300
    )


def load_archive(client: TestClient) -> None:
    """Two synthetic CT studies, pydicom's test files, and one instance deleted afterwards."""
    first = ct_instances(4, seed=0)
    assert stow(client, first).status_code == 200
    assert stow(client, ct_instances(3, seed=1)).status_code == 200
    for name in TEST_FILES:
        data = Path(str(get_testdata_file(name))).read_bytes()
        assert stow(client, [data]).status_code == 200, name
    gone = pydicom.dcmread(io.BytesIO(first[1]), stop_before_pixels=True)
    url = (
        f"/dicom-web/studies/{gone.StudyInstanceUID}/series/{gone.SeriesInstanceUID}"
        f"/instances/{gone.SOPInstanceUID}"
    )
    assert client.delete(url).status_code in (200, 202, 204)


def uid(dataset: dict[str, Any], tag: str) -> str:
    return str(dataset[tag]["Value"][0])


def archive_view(client: TestClient) -> dict[str, Any]:
    """What the API answers about everything it holds: QIDO-RS at every level with every
    attribute, /metadata of each study, and the SHA-256 of every instance as retrieved."""
    dicomweb = DicomWebClient(client, "http://testserver/dicom-web")
    studies = sorted(
        dicomweb.search_studies(includefield=["all"]), key=lambda s: uid(s, "0020000D")
    )
    view: dict[str, Any] = {"studies": studies, "series": {}, "instances": {}, "metadata": {}}
    view["bytes"] = {}
    for study in studies:
        study_uid = uid(study, "0020000D")
        series = dicomweb.search_series(study_uid, includefield=["all"])
        view["series"][study_uid] = sorted(series, key=lambda s: uid(s, "0020000E"))
        instances = dicomweb.search_instances(study_uid, includefield=["all"])
        view["instances"][study_uid] = sorted(instances, key=lambda s: uid(s, "00080018"))
        view["metadata"][study_uid] = sorted(
            dicomweb.metadata(study_uid), key=lambda s: uid(s, "00080018")
        )
        for instance in instances:
            parts = list(
                dicomweb.retrieve_instance(
                    study_uid,
                    uid(instance, "0020000E"),
                    uid(instance, "00080018"),
                    transfer_syntax="*",
                )
            )
            assert len(parts) == 1
            view["bytes"][uid(instance, "00080018")] = hashlib.sha256(parts[0]).hexdigest()
    return view


def change_feed(client: TestClient) -> list[dict[str, Any]]:
    """The whole change feed, each entry's time as an instant (UTC)."""
    entries = client.get("/changefeed", params={"since": 0, "limit": 10000}).json()["changes"]
    for entry in entries:
        at = datetime.fromisoformat(entry["at"])
        entry["at"] = (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC)
    return list(entries)


@pytest.mark.parametrize("target_kind", ["same", "other"])
def test_backup_restore_into_empty_system_keeps_every_study(
    settings: Settings, client: TestClient, deploy: Deploy, target_kind: str, tmp_path: Path
) -> None:
    load_archive(client)
    before = archive_view(client)
    feed = change_feed(client)
    assert len(before["studies"]) == 2 + len(TEST_FILES)
    assert {entry["kind"] for entry in feed} == {"stored", "deleted"}

    backup = tmp_path / "backup"
    done = pacs_api(settings, "backup", "--to", str(backup))
    assert done.returncode == 0, done.stderr
    assert "backed up" in done.stderr and (backup / "manifest.json").is_file()
    assert pacs_api(settings, "restore", "--from", str(backup), "--verify-only").returncode == 0

    source_kind = kind_of(settings)
    other = {"sqlite-filesystem": "postgresql-s3", "postgresql-s3": "sqlite-filesystem"}
    target = deploy(source_kind if target_kind == "same" else other[source_kind])
    done = pacs_api(target, "restore", "--from", str(backup))
    assert done.returncode == 0, done.stderr
    assert "restored" in done.stderr

    with TestClient(create_app(target), base_url="http://testserver") as restored:
        assert archive_view(restored) == before
        assert change_feed(restored) == feed
        # The feed continues after the restored entries: a new STOW gets a higher seq.
        new = ct_instances(1, seed=2)
        assert stow(restored, new).status_code == 200
        after = change_feed(restored)
        assert len(after) == len(feed) + 1 and after[-1]["seq"] > feed[-1]["seq"]
        assert after[-1]["kind"] == "stored"
    checked = pacs_api(target, "check")
    assert checked.returncode == 0, checked.stderr
    assert f"checked {len(before['bytes']) + 1} index rows: 0 without" in checked.stdout


def test_restore_refuses_a_target_that_is_not_empty(
    settings: Settings, client: TestClient, deploy: Deploy, tmp_path: Path
) -> None:
    assert stow(client, ct_instances(2)).status_code == 200
    backup = tmp_path / "backup"
    assert pacs_api(settings, "backup", "--to", str(backup)).returncode == 0

    # The source itself holds rows: refused with a reason, nothing changed.
    objects = stored_objects(settings)
    refused = pacs_api(settings, "restore", "--from", str(backup))
    assert refused.returncode == 1
    assert "target index is not empty (table" in refused.stderr
    assert stored_objects(settings) == objects

    # An empty index but a store that holds an object: refused too.
    target = deploy(kind_of(settings))
    store = open_store(target)
    try:
        store.put("other/thing.bin", io.BytesIO(b"x"), 1)
    finally:
        store.close()
    engine = make_engine(target.database_url)
    try:
        with pytest.raises(BackupError, match="target store is not empty"):
            restore_backup(engine, open_store(target), backup)
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


@pytest.fixture
def small_backup(tmp_path: Path) -> Path:
    """A backup of an SQLite + filesystem archive of three CT instances."""
    source = Settings(
        database_url=f"sqlite:///{tmp_path / 'source.sqlite3'}",
        store_url=f"file://{tmp_path / 'source-objects'}",
    )
    with TestClient(create_app(source)) as client:
        assert stow(client, ct_instances(3)).status_code == 200
    engine = make_engine(source.database_url)
    store = open_store(source)
    try:
        create_backup(engine, store, tmp_path / "backup")
    finally:
        store.close()
        engine.dispose()
    return tmp_path / "backup"


def flip_byte(path: Path, offset: int = -10) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def first_object(backup: Path) -> Path:
    return next(p for p in (backup / "objects").rglob("*.dcm"))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda b: flip_byte(first_object(b)), "holds .* bytes with SHA-256 .* the backup is"),
        (lambda b: flip_byte(b / "tables" / "instance.jsonl"), "tables/instance.jsonl does not"),
        (lambda b: flip_byte(b / "objects.jsonl"), "objects.jsonl does not match"),
        (lambda b: (b / "manifest.json").unlink(), "manifest.json is missing"),
        (lambda b: first_object(b).unlink(), "cannot be read"),
    ],
    ids=["object-byte", "table-byte", "object-list-byte", "no-manifest", "object-missing"],
)
def test_restore_refuses_a_damaged_backup_before_writing_anything(
    small_backup: Path, deploy: Deploy, damage: Callable[[Path], None], reason: str
) -> None:
    damage(small_backup)
    target = deploy("sqlite-filesystem")
    engine = make_engine(target.database_url)
    store = open_store(target)
    try:
        with pytest.raises(BackupError, match=reason):
            restore_backup(engine, store, small_backup)
        assert inspect(engine).get_table_names() == []  # not even migrated
        assert list(store.list()) == []
    finally:
        store.close()
        engine.dispose()
    refused = pacs_api(target, "restore", "--from", str(small_backup), "--verify-only")
    assert refused.returncode == 1 and "restore failed" in refused.stderr


def test_backup_refuses_a_directory_that_is_not_empty(small_backup: Path, deploy: Deploy) -> None:
    target = deploy("sqlite-filesystem")
    refused = pacs_api(target, "backup", "--to", str(small_backup))
    assert refused.returncode == 1
    assert "is not empty: back up into a new directory" in refused.stderr


def test_backup_during_concurrent_stow_restores_every_row_with_its_object(
    settings: Settings, deploy: Deploy, tmp_path: Path
) -> None:
    series = [to_bytes(ds) for ds in iter_ct_series(80, 32, 32, seed=5)]
    sent = {
        str(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).SOPInstanceUID): data
        for data in series
    }
    acknowledged: list[str] = []
    stop = threading.Event()
    started = threading.Event()

    def stow_loop(url: str) -> None:
        with httpx.Client(timeout=60) as http:
            client = DicomWebClient(http, url)
            for start in range(0, len(series), 4):
                if stop.is_set():
                    return
                result = client.store(series[start : start + 4])
                assert result.ok
                acknowledged.extend(r.sop_instance_uid for r in result.referenced)
                if len(acknowledged) >= 12:
                    started.set()

    engine = make_engine(settings.database_url)
    store = open_store(settings)
    try:
        with serving(create_app(settings)) as port:
            loop = threading.Thread(target=stow_loop, args=(f"http://127.0.0.1:{port}/dicom-web",))
            loop.start()
            assert started.wait(120)
            before_backup = set(acknowledged)
            manifest = create_backup(engine, store, tmp_path / "backup")
            stop.set()
            loop.join(120)
    finally:
        store.close()
        engine.dispose()
    print(f"acknowledged {len(acknowledged)}; in the backup {manifest.objects.count}")

    target = deploy(kind_of(settings))
    target_engine = make_engine(target.database_url)
    target_store = open_store(target)
    try:
        restore_backup(target_engine, target_store, tmp_path / "backup")
        report = check(Index(target_engine), target_store)
        assert report.ok and report.rows == manifest.objects.count
        assert len(before_backup) <= report.rows <= len(sent)
    finally:
        target_store.close()
        target_engine.dispose()
    with TestClient(create_app(target), base_url="http://testserver") as restored:
        view = archive_view(restored)
    assert before_backup <= set(view["bytes"])
    for sop, digest in view["bytes"].items():
        assert digest == hashlib.sha256(sent[sop]).hexdigest()


def test_every_table_the_migrations_create_is_backed_up(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'index.sqlite3'}")
    try:
        migrate(engine)
        with engine.connect() as connection:
            tables, skipped = api_tables(connection)
            created = set(inspect(connection).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()
    assert skipped == []
    assert {table.name for table in tables} == created
    assert {"patient", "study", "series", "instance", "change"} <= created


def test_row_values_keep_their_type_and_instant_across_databases() -> None:
    aware = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    naive = aware.replace(tzinfo=None)  # SQLite's reading of a UTC time
    cases: list[tuple[Any, Any, Any]] = [
        (DateTime(timezone=True), naive, aware),
        (DateTime(timezone=False), aware, naive),
        (LargeBinary(), b"\x00\xff binary", b"\x00\xff binary"),
        (JSON(), {"a": [1, 2.5, None]}, {"a": [1, 2.5, None]}),
        (Numeric(10, 3), Decimal("1.250"), Decimal("1.250")),
    ]
    for type_, value, expected in cases:
        kind = column_kind(type_)
        assert kind != "plain"
        restored = decode(kind, encode(kind, value), type_)
        assert restored == expected and type(restored) is type(expected)


def test_backup_of_an_instance_deleted_after_the_snapshot_fails_naming_it(
    settings: Settings, client: TestClient, tmp_path: Path
) -> None:
    instances = ct_instances(3)
    assert stow(client, instances).status_code == 200
    gone = pydicom.dcmread(io.BytesIO(instances[0]), stop_before_pixels=True)
    url = (
        f"/dicom-web/studies/{gone.StudyInstanceUID}/series/{gone.SeriesInstanceUID}"
        f"/instances/{gone.SOPInstanceUID}"
    )

    def delete_once_the_snapshot_is_taken(message: str) -> None:
        # "table change" is the first table read: the snapshot exists, the instance rows are
        # still to come. The DELETE commits and removes the object meanwhile.
        if message.startswith("table change"):
            assert client.delete(url).status_code in (200, 202, 204)

    engine = make_engine(settings.database_url)
    store = open_store(settings)
    try:
        with pytest.raises(BackupError, match=f"{gone.SOPInstanceUID}.* deleted after the snap"):
            create_backup(
                engine, store, tmp_path / "backup", progress=delete_once_the_snapshot_is_taken
            )
    finally:
        store.close()
        engine.dispose()
    assert not (tmp_path / "backup" / "manifest.json").exists()  # recognisably incomplete
