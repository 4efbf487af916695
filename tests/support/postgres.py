"""A real PostgreSQL for the tests: found, or started, then one throw-away database per test.

The server is taken from ``PACS_TEST_POSTGRES_URL`` (an admin URL, e.g.
``postgresql://postgres@127.0.0.1:5432/postgres``); without it, the local server on
127.0.0.1:5432 is used, and started with ``pg_ctlcluster`` when it is installed but stopped
(``scripts/install-test-deps.sh`` installs it on a fresh Debian machine).
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
_counter = itertools.count()


def admin_url() -> str:
    return os.environ.get("PACS_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL)


def _reachable(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def ensure_server() -> str:
    """Return the admin URL of a running server, starting the local cluster if needed."""
    url = admin_url()
    if _reachable(url):
        return url
    if "PACS_TEST_POSTGRES_URL" not in os.environ and shutil.which("pg_ctlcluster"):
        clusters = Path("/etc/postgresql")
        versions = sorted(os.listdir(clusters), reverse=True) if clusters.is_dir() else []
        for version in versions:
            subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
                check=False,
                capture_output=True,
            )
        for _ in range(60):
            if _reachable(url):
                return url
            time.sleep(0.5)
    raise RuntimeError(
        f"no PostgreSQL at {url}: run scripts/install-test-deps.sh, or set PACS_TEST_POSTGRES_URL"
    )


@contextmanager
def temporary_database(server_url: str) -> Iterator[str]:
    """Create an empty database, yield its SQLAlchemy URL, drop it afterwards."""
    name = f"pacs_test_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
