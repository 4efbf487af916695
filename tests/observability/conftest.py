"""Fixtures of the observability tests: the real API and a real bridge on free loopback
ports (as in tests/bridge)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bridge.running import RunningBridge, api_settings, running_bridge
from tests.support.server import running_api


@pytest.fixture
def api_url(tmp_path: Path) -> Iterator[str]:
    """The DICOMweb root of a real API on SQLite and the filesystem store."""
    with running_api(api_settings(tmp_path)) as url:
        yield url


@pytest.fixture
def bridge(api_url: str) -> Iterator[RunningBridge]:
    """A bridge in front of ``api_url``, admitting the test peers."""
    with running_bridge(api_url) as running:
        yield running
