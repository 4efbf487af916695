"""The ``pacs-exporter`` command line: run the mesh exporter.

    pacs-exporter serve [--host H] [--port P] [--processes N]

``serve`` runs uvicorn with :func:`pacs_exporter.main.create_app` as the application factory;
the configuration comes from the ``PACS_EXPORTER_*`` environment variables
(:class:`~pacs_exporter.settings.Settings`), and the options given here override
``PACS_EXPORTER_HOST`` / ``PACS_EXPORTER_PORT``. Each process runs ``PACS_EXPORTER_WORKERS``
worker threads; all of them share the jobs' database. Logs are JSON lines unless stderr is a
terminal (``PACS_EXPORTER_LOG_FORMAT``); with ``--processes`` above 1 the processes share their
metrics through ``PROMETHEUS_MULTIPROC_DIR`` (:mod:`pacs_common.observability.metrics`).
"""

from __future__ import annotations

import os
from typing import Annotated

import typer
import uvicorn
from pacs_common.observability.logs import logging_config
from pacs_common.observability.metrics import prepare_multiprocess
from pydantic import ValidationError

from pacs_exporter.settings import Settings

app = typer.Typer(
    name="pacs-exporter",
    help="pacs-cloud mesh exporter: CT series to STL / PLY / OBJ meshes, as jobs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_SECRET_SETTINGS = frozenset({"s3_access_key", "s3_secret_key"})


@app.callback()
def _commands() -> None:
    """pacs-cloud mesh exporter: CT series to STL / PLY / OBJ meshes, as jobs."""


def _settings() -> Settings:
    """The validated settings; invalid ones end the command, naming each variable at fault."""
    try:
        return Settings()
    except ValidationError as exc:
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"])
            shown = "" if name in _SECRET_SETTINGS else f" (got {error.get('input')!r})"
            variable = f"PACS_EXPORTER_{name.upper()}" if name else "PACS_EXPORTER_*"
            typer.echo(f"{variable}: {error['msg']}{shown}", err=True)
        raise typer.Exit(2) from exc


@app.command()
def serve(
    host: Annotated[
        str | None,
        typer.Option(help="Address to bind (default: PACS_EXPORTER_HOST, 127.0.0.1)."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(help="Port to bind (default: PACS_EXPORTER_PORT, 8081).", min=1, max=65535),
    ] = None,
    processes: Annotated[int, typer.Option(help="uvicorn worker processes.", min=1)] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Run the exporter's REST API and workers with uvicorn until interrupted (Ctrl-C)."""
    settings = _settings()
    bind_host = host or settings.host
    bind_port = port or settings.port
    # The factory builds its own Settings in every process: hand it the address actually bound.
    os.environ["PACS_EXPORTER_HOST"] = bind_host
    os.environ["PACS_EXPORTER_PORT"] = str(bind_port)
    _settings()  # validate the overrides too
    prepare_multiprocess(processes)  # /metrics of any process answers for all of them
    uvicorn.run(
        "pacs_exporter.main:create_app",
        factory=True,
        host=bind_host,
        port=bind_port,
        workers=processes,
        log_level=log_level,
        log_config=logging_config(settings.log_format, log_level),
        access_log=False,  # the app writes its own access records (pacs_exporter.access)
    )


def main() -> None:
    """Entry point of the ``pacs-exporter`` console script."""
    app()
