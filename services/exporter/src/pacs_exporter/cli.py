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

from typing import Annotated

import typer
from pacs_common.launch import load_settings, serve_app

from pacs_exporter.settings import Settings

app = typer.Typer(
    name="pacs-exporter",
    help="pacs-cloud mesh exporter: CT series to STL / PLY / OBJ meshes, as jobs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _commands() -> None:
    """pacs-cloud mesh exporter: CT series to STL / PLY / OBJ meshes, as jobs."""


def _settings() -> Settings:
    """The validated settings; invalid ones end the command, naming each variable at fault."""
    return load_settings(Settings, "PACS_EXPORTER_")


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
    serve_app(
        "pacs_exporter.main:create_app",
        env_prefix="PACS_EXPORTER_",
        host=host or settings.host,
        port=port or settings.port,
        processes=processes,
        log_level=log_level,
        log_format=settings.log_format,
        validate=_settings,
    )


def main() -> None:
    """Entry point of the ``pacs-exporter`` console script."""
    app()
