"""The ``pacs-bridge`` command line: run the DIMSE bridge.

    pacs-bridge serve [--config FILE] [--host H] [--port P]

The configuration comes from ``PACS_BRIDGE_*`` environment variables and the optional
configuration file (:class:`pacs_bridge.settings.Settings`); the options override them.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError

from pacs_bridge.main import create_bridge
from pacs_bridge.settings import ENV_PREFIX, ConfigError, Settings

app = typer.Typer(
    name="pacs-bridge",
    help="pacs-cloud DIMSE bridge: DIMSE services (C-ECHO, STORE, FIND, GET, MOVE) for the API.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _commands() -> None:
    """pacs-cloud DIMSE bridge: DIMSE services (C-ECHO, STORE, FIND, GET, MOVE) for the API."""


def _settings(**overrides: Any) -> Settings:
    """The validated settings; an invalid configuration ends the command, naming each fault."""
    given = {name: value for name, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except (ConfigError, SettingsError) as exc:
        cause = f": {exc.__cause__}" if exc.__cause__ else ""
        typer.echo(f"configuration: {exc}{cause}", err=True)
        raise typer.Exit(2) from exc
    except ValidationError as exc:
        for error in exc.errors():
            loc = [str(part) for part in error["loc"]]
            where = f"{ENV_PREFIX}{loc[0].upper()}" if loc else ENV_PREFIX.rstrip("_")
            path = "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in loc[1:])
            typer.echo(f"{where}{path}: {error['msg']} (got {error.get('input')!r})", err=True)
        raise typer.Exit(2) from exc


@app.command()
def serve(
    config: Annotated[
        Path | None,
        typer.Option(help="JSON or YAML configuration file (default: PACS_BRIDGE_CONFIG_FILE)."),
    ] = None,
    host: Annotated[
        str | None, typer.Option(help="Address to bind (default: PACS_BRIDGE_HOST, 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(help="Port to bind (default: PACS_BRIDGE_PORT, 11112).", min=1, max=65535),
    ] = None,
    log_level: Annotated[str, typer.Option(help="Log level of the bridge.")] = "INFO",
) -> None:
    """Run the DIMSE bridge in the foreground until interrupted (Ctrl-C)."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
    settings = _settings(config_file=config, host=host, port=port)
    bridge = create_bridge(settings)
    bridge.start()
    typer.echo(
        f"DIMSE bridge: AE title {settings.ae_title} on {settings.host}:{bridge.port} "
        f"-> {settings.dicomweb_url}; status API {bridge.admin_url}; "
        f"{len(settings.routes)} route(s) (Ctrl-C stops it)",
        err=True,
    )
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        typer.echo("stopping the DIMSE bridge", err=True)
    finally:
        bridge.close()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM stops the bridge like Ctrl-C does."""
    raise KeyboardInterrupt


def main() -> None:
    """Entry point of the ``pacs-bridge`` console script."""
    app()
