"""Fixtures of the command-line tests: the real API and bridge (tests.bridge.running) as the
peer ``pacs`` talks to, and the verbs run through typer's CliRunner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from pacs_cli.cli import app
from typer.testing import CliRunner

from tests.bridge.running import RunningBridge, api_settings, running_bridge
from tests.support.server import free_port, running_api


@pytest.fixture
def bridge(tmp_path: Path) -> Iterator[RunningBridge]:
    """A bridge in front of a real API (SQLite, filesystem store), admitting ``TESTSCU``."""
    with running_api(api_settings(tmp_path / "api")) as url, running_bridge(url) as running:
        yield running


def pacs(*args: str) -> Result:
    """``pacs ARGS...`` in this process; its exit code and output."""
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def api(tmp_path: Path) -> Iterator[str]:
    """The real API (SQLite, filesystem store) over HTTP; its DICOMweb root URL."""
    with running_api(api_settings(tmp_path / "api")) as url:
        yield url


def unreachable_url(path: str = "") -> str:
    """A loopback URL nothing listens on."""
    return f"http://127.0.0.1:{free_port()}{path}"
