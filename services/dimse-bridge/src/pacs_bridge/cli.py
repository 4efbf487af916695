"""The ``pacs-bridge`` command line: run the DIMSE bridge.

    pacs-bridge serve [--config FILE] [--host H] [--port P]

The configuration comes from ``PACS_BRIDGE_*`` environment variables and the optional
configuration file (:class:`pacs_bridge.settings.Settings`); the options override them. An
invalid one, or TLS files that cannot be used, stop the start with exit status 2. SIGHUP
reloads the configuration (:mod:`pacs_bridge.live`). Logs are JSON lines unless stderr is a
terminal (``PACS_BRIDGE_LOG_FORMAT``), one record per DIMSE operation with its request id
(:mod:`pacs_bridge.observability`).
"""

from __future__ import annotations

import signal
import threading
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from pacs_common.observability.logs import configure_logging
from pydantic import ValidationError
from pydantic_settings import SettingsError

from pacs_bridge.main import Bridge, create_bridge
from pacs_bridge.settings import ConfigError, Settings, config_faults

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


def _bridge(**overrides: Any) -> Bridge:
    """The bridge built from the validated settings (reloads read the same sources with the
    same overrides); an invalid configuration ends the command, naming each fault."""
    given = {name: value for name, value in overrides.items() if value is not None}
    try:
        return create_bridge(load=partial(Settings, **given))
    except (ConfigError, SettingsError, ValidationError) as exc:
        for line in config_faults(exc):
            typer.echo(line, err=True)
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
    """Run the DIMSE bridge in the foreground until interrupted (Ctrl-C); SIGHUP reloads the
    configuration (the allow-list, the known nodes)."""
    bridge = _bridge(config_file=config, host=host, port=port)
    configure_logging(bridge.settings.log_format, log_level)
    settings = bridge.settings
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, lambda signum, frame: _reload_in_background(bridge))
    bridge.start()
    typer.echo(
        f"DIMSE bridge: AE title {settings.ae_title} on {settings.host}:{bridge.port}"
        f"{' over TLS' if bridge.tls else ''} -> {settings.dicomweb_url}; status API "
        f"{bridge.admin_url}; {len(settings.routes)} route(s) "
        f"(Ctrl-C stops it, SIGHUP reloads the configuration)",
        err=True,
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        typer.echo("stopping the DIMSE bridge", err=True)
    finally:
        bridge.close()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM stops the bridge like Ctrl-C does."""
    raise KeyboardInterrupt


def _reload_in_background(bridge: Bridge) -> None:
    """SIGHUP: reload in a thread of its own, as a signal handler must not wait for locks the
    interrupted main thread may hold; reloads queue on the bridge's reload lock."""
    threading.Thread(target=bridge.reload, name="pacs-bridge-reload", daemon=True).start()


def main() -> None:
    """Entry point of the ``pacs-bridge`` console script."""
    app()
