"""The ``pacs-api`` command line: run the DICOMweb server, load a demo study into one.

    pacs-api serve [--host H] [--port P] [--workers N]
    pacs-api load-demo [--url http://127.0.0.1:8080/dicom-web] [--slices 120]
    pacs-api sweep [--dry-run] [--grace 3600]
    pacs-api check
    pacs-api backup --to DIR
    pacs-api restore --from DIR [--verify-only]
    pacs-api api-key new --name NAME --scope read [--scope write ...] [--json]

``serve`` runs uvicorn with :func:`pacs_api.main.create_app` as the application factory; the
configuration comes from the ``PACS_API_*`` environment variables (:class:`Settings`), and the
options given here override ``PACS_API_HOST`` / ``PACS_API_PORT``. Logs are JSON lines unless
stderr is a terminal (``PACS_API_LOG_FORMAT``); with ``--workers`` above 1 the workers share
their metrics through ``PROMETHEUS_MULTIPROC_DIR`` (:mod:`pacs_common.observability.metrics`).

``sweep`` deletes stored objects no index row references (left by a crash mid-STOW) and
``check`` lists index rows whose object is missing (:mod:`pacs_api.sweep`); both read the same
``PACS_API_*`` settings as ``serve``. So do ``backup`` and ``restore`` (:mod:`pacs_api.backup`).

``api-key new`` mints an API key (:mod:`pacs_common.auth.api_keys`): it prints the key, once,
and the ``auth_api_keys`` entry to configure (name, SHA-256 digest, scopes); the key itself is
stored nowhere.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from itertools import islice
from pathlib import Path
from typing import Annotated, TypeVar

import httpx
import typer
from pacs_common.auth import Scope
from pacs_common.auth.api_keys import key_digest, new_api_key
from pacs_common.auth.settings import ApiKeyEntry
from pacs_common.client import DicomWebClient, DicomWebError
from pacs_common.launch import load_settings, serve_app
from pacs_common.media import MultipartError
from pacs_common.storage import ObjectStore, StoreError, open_store
from pacs_common.synthetic import iter_study, to_bytes
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from pacs_api import sweep as maintenance
from pacs_api.backup import BackupError, create_backup, restore_backup, verify_backup
from pacs_api.index.db import make_engine, migrate
from pacs_api.index.repository import Index
from pacs_api.settings import Settings

T = TypeVar("T")

DEFAULT_DICOMWEB_URL = "http://127.0.0.1:8080/dicom-web"

app = typer.Typer(
    name="pacs-api",
    help="pacs-cloud DICOMweb API (PS3.18): run the server, load a demo study.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


#: An API key given as --token or PACS_TOKEN, for servers that require one.
Token = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="PACS_TOKEN",
        help="Bearer token (API key or JWT) for a server that requires one.",
        show_default=False,
    ),
]


def _settings() -> Settings:
    """The validated settings; invalid ones end the command, naming each variable at fault."""
    return load_settings(Settings, "PACS_API_")


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to bind (default: PACS_API_HOST, 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(help="Port to bind (default: PACS_API_PORT, 8080).", min=1, max=65535),
    ] = None,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1)] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Run the DICOMweb API with uvicorn until interrupted (Ctrl-C)."""
    settings = _settings()
    serve_app(
        "pacs_api.main:create_app",
        env_prefix="PACS_API_",
        host=host or settings.host,
        port=port or settings.port,
        processes=workers,
        log_level=log_level,
        log_format=settings.log_format,
        validate=_settings,
    )


def _batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


@app.command("load-demo")
def load_demo(
    url: Annotated[str, typer.Option(help="DICOMweb root of the server.")] = DEFAULT_DICOMWEB_URL,
    slices: Annotated[int, typer.Option(help="Slices of the thin (1.25 mm) series.", min=1)] = 120,
    batch_size: Annotated[int, typer.Option(help="Instances per STOW-RS request.", min=1)] = 20,
    seed: Annotated[int, typer.Option(help="Another seed gives another study (new UIDs).")] = 0,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each request.")] = 120.0,
    token: Token = None,
) -> None:
    """Generate a synthetic two-series CT study and store it with STOW-RS."""
    started = time.perf_counter()
    study_uid = ""
    series: dict[str, tuple[int, str]] = {}
    stored = 0
    try:
        with httpx.Client(timeout=timeout) as http:
            client = DicomWebClient(http, url, token=token)
            for batch in _batches(iter_study(slices, seed=seed), batch_size):
                study_uid = str(batch[0].StudyInstanceUID)
                result = client.store([to_bytes(ds) for ds in batch], study_uid=study_uid)
                result.raise_for_failures()
                for ds in batch:
                    count, description = series.get(ds.SeriesInstanceUID, (0, ""))
                    series[ds.SeriesInstanceUID] = (count + 1, str(ds.SeriesDescription))
                stored += len(batch)
                typer.echo(f"stored {stored} instances", err=True)
    except httpx.TransportError as exc:
        typer.echo(f"cannot reach {url}: {exc} (is the server running? `make run`)", err=True)
        raise typer.Exit(1) from exc
    except (DicomWebError, MultipartError) as exc:
        typer.echo(f"store failed after {stored} instances: {exc}", err=True)
        raise typer.Exit(1) from exc

    elapsed = time.perf_counter() - started
    typer.echo(f"Stored {stored} instances in {len(series)} series in {elapsed:.1f} s.")
    for series_uid, (count, description) in series.items():
        typer.echo(f"  series {series_uid}: {count} x {description}")
    typer.echo(f"Study Instance UID: {study_uid}")
    typer.echo(f"Browse it with any DICOMweb viewer pointed at {url.rstrip('/')}")


@contextmanager
def _engine_and_store(settings: Settings) -> Iterator[tuple[Engine, ObjectStore]]:
    """The server's database engine and store, as they are (not migrated), released afterwards."""
    engine = make_engine(settings.database_url)
    try:
        try:
            store = open_store(settings)
        except (StoreError, ValueError) as exc:
            typer.echo(f"cannot open the object store: {exc}", err=True)
            raise typer.Exit(1) from exc
        try:
            yield engine, store
        finally:
            store.close()
    finally:
        engine.dispose()


@contextmanager
def _index_and_store(settings: Settings) -> Iterator[tuple[Index, ObjectStore]]:
    """The server's index (migrated) and store, released afterwards."""
    with _engine_and_store(settings) as (engine, store):
        migrate(engine)
        yield Index(engine), store


@app.command("sweep")
def sweep_command(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")
    ] = False,
    grace: Annotated[
        float,
        typer.Option(
            help="Seconds: objects written more recently are kept (an in-flight STOW has "
            "written its object but not yet its index row). Safe while the API serves.",
            min=0,
        ),
    ] = maintenance.DEFAULT_GRACE.total_seconds(),
) -> None:
    """Delete stored instance objects that no index row references (left by a crash)."""
    with _index_and_store(_settings()) as (index, store):
        report = maintenance.sweep(index, store, grace=timedelta(seconds=grace), dry_run=dry_run)
    typer.echo(report.summary())
    for key in report.raced:
        typer.echo(f"raced (deleted, now referenced): {key}", err=True)
    if report.raced:
        raise typer.Exit(1)


@app.command("check")
def check_command() -> None:
    """List index rows whose object is missing or of another size (exit 1 if any)."""
    with _index_and_store(_settings()) as (index, store):
        report = maintenance.check(index, store)
    typer.echo(report.summary())
    for key in report.examples:
        typer.echo(f"missing or wrong size: {key}", err=True)
    if not report.ok:
        raise typer.Exit(1)


def _progress(message: str) -> None:
    typer.echo(message, err=True)


@app.command("backup")
def backup_command(
    to: Annotated[
        Path,
        typer.Option("--to", help="A new (or empty) directory for the backup.", file_okay=False),
    ],
) -> None:
    """Back up the index (one consistent snapshot) and its objects; safe while serving."""
    with _engine_and_store(_settings()) as (engine, store):
        try:
            manifest = create_backup(engine, store, to, progress=_progress)
        except (BackupError, StoreError, SQLAlchemyError, OSError) as exc:
            typer.echo(f"backup failed: {exc}", err=True)
            if to.is_dir() and not (to / "manifest.json").exists():
                typer.echo(f"{to} holds no complete backup (no manifest.json)", err=True)
            raise typer.Exit(1) from exc
    rows = sum(table.rows for table in manifest.tables)
    typer.echo(
        f"backed up {rows} rows of {len(manifest.tables)} tables (schema revision "
        f"{manifest.schema_revision}) and {manifest.objects.count} objects "
        f"({manifest.objects.bytes} bytes) into {to}",
        err=True,
    )


@app.command("restore")
def restore_command(
    source: Annotated[
        Path,
        typer.Option(
            "--from", help="The backup directory (pacs-api backup --to).", file_okay=False
        ),
    ],
    verify_only: Annotated[
        bool,
        typer.Option("--verify-only", help="Check the backup against its manifest; write nothing."),
    ] = False,
) -> None:
    """Restore a backup into an empty system (new database, empty store), verified first."""
    try:
        if verify_only:
            verified = verify_backup(source, progress=_progress)
            typer.echo(
                f"{source}: complete and intact (created {verified.manifest.created})", err=True
            )
            return
        with _engine_and_store(_settings()) as (engine, store):
            manifest = restore_backup(engine, store, source, progress=_progress)
    except (BackupError, StoreError, SQLAlchemyError, OSError) as exc:
        typer.echo(f"restore failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    rows = sum(table.rows for table in manifest.tables)
    typer.echo(
        f"restored {rows} rows of {len(manifest.tables)} tables and {manifest.objects.count} "
        f"objects ({manifest.objects.bytes} bytes) from the backup of {manifest.created} "
        f"({manifest.database_dialect} + {manifest.store_kind})",
        err=True,
    )


api_key = typer.Typer(help="API keys for scripts and services.", no_args_is_help=True)
app.add_typer(api_key, name="api-key")


@api_key.command("new")
def new_key(
    name: Annotated[str, typer.Option(help="Who holds the key (the subject of its requests).")],
    scope: Annotated[
        list[Scope], typer.Option("--scope", help="A scope the key holds (repeat for more).")
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print {key, entry} as one JSON object.")
    ] = False,
) -> None:
    """Mint an API key: prints the key (once: it is stored nowhere) and the auth_api_keys entry
    to configure (its SHA-256 digest, never the key)."""
    key = new_api_key()
    try:
        entry = ApiKeyEntry(name=name, sha256=key_digest(key), scopes=frozenset(scope))
    except ValidationError as exc:
        typer.echo(f"--name: {exc.errors()[0]['msg']}", err=True)
        raise typer.Exit(2) from None
    configured = entry.model_dump(mode="json")
    configured["scopes"] = sorted(configured["scopes"])
    if as_json:
        typer.echo(json.dumps({"key": key, "entry": configured}))
        return
    typer.echo(f"API key of {name} (shown once; only its SHA-256 digest is configured):")
    typer.echo(f"  {key}")
    typer.echo(
        "Add this entry to the JSON list in PACS_API_AUTH_API_KEYS (and in "
        "PACS_EXPORTER_AUTH_API_KEYS / PACS_BRIDGE_AUTH_API_KEYS for those services):"
    )
    typer.echo(f"  {json.dumps(configured)}")
    typer.echo("Send it as: Authorization: Bearer <key>   (the pacs CLI: --token or PACS_TOKEN)")


def main() -> None:
    """Entry point of the ``pacs-api`` console script."""
    app()
