"""Fixtures shared by every test: real index databases (SQLite and PostgreSQL) and real stores.

``index_url`` is parametrized over both databases, so every test that uses it runs on both, as
CI requires. Servers are started once per run; each test gets its own database.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import postgres

pytest_plugins = ["tests.support.s3_fixtures", "tests.support.api_fixtures"]


@pytest.fixture(scope="session")
def postgres_server() -> str:
    return postgres.ensure_server()


@pytest.fixture(params=["sqlite", "postgresql"])
def index_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """An empty index database URL, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('index') / 'index.sqlite3'}"
    else:
        server = request.getfixturevalue("postgres_server")
        with postgres.temporary_database(server) as url:
            yield url


@pytest.fixture(autouse=True)
def _bridge_state_in_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A bridge built from the environment (``Settings()``, a reload) keeps its routing state
    in the test's directory and serves its status API on a free port, never ``./var/`` or the
    default port 8082 a running ``make run`` may hold."""
    monkeypatch.setenv("PACS_BRIDGE_DATABASE_URL", f"sqlite:///{tmp_path / 'bridge-env.sqlite3'}")
    monkeypatch.setenv("PACS_BRIDGE_ADMIN_PORT", "0")
