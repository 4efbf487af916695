"""A PostgreSQL cluster of a test's own, which the test may stop and start at will.

The machine's shared server (127.0.0.1:5432, :mod:`tests.support.postgres`) must never be
restarted by a test; a test that needs PostgreSQL to go away starts its own cluster:
``initdb`` into a new directory, ``pg_ctl start`` on a free loopback port (Unix sockets in the
data directory), ``pg_ctl stop -m fast|immediate`` and ``start`` again, and removal at the end.

PostgreSQL refuses to run as root: as root, ``initdb`` and ``pg_ctl`` run as the ``postgres``
OS user (``runuser -u postgres --``) in a directory under the system temp directory that it
owns (a pytest ``tmp_path`` is private to root). Binaries are found under
``/usr/lib/postgresql/*/bin`` (the newest), else on ``PATH``.

    with PostgresCluster() as cluster:
        url = cluster.create_database("app")
        cluster.stop("immediate")
        cluster.start()
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Literal

import psycopg

from tests.support.server import free_port

StopMode = Literal["smart", "fast", "immediate"]
OS_USER = "postgres"


def _bin_dir() -> Path | None:
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    return versions[-1] if versions else None


def tool(name: str) -> str:
    """The path of a PostgreSQL server program (``initdb``, ``pg_ctl``)."""
    directory = _bin_dir()
    if directory is not None and (directory / name).exists():
        return str(directory / name)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(
            f"PostgreSQL's {name} is not installed: run scripts/install-test-deps.sh"
        )
    return found


class PostgresCluster:
    """One throw-away cluster: ``trust`` authentication, superuser ``postgres``, listening on
    127.0.0.1:*port* only."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._as_root = os.geteuid() == 0
        self.directory = Path(tempfile.mkdtemp(prefix="pacs-pgcluster-"))
        if self._as_root:
            user = pwd.getpwnam(OS_USER)
            os.chown(self.directory, user.pw_uid, user.pw_gid)
        self.data = self.directory / "data"
        self.log = self.directory / "server.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *command: str, timeout: float = 120) -> None:
        prefix = ["runuser", "-u", OS_USER, "--"] if self._as_root else []
        proc = subprocess.run(
            [*prefix, *command], capture_output=True, text=True, timeout=timeout, check=False
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} failed ({proc.returncode}): {proc.stderr or proc.stdout}"
                f"\n{self.log_tail()}"
            )

    def init(self) -> None:
        """``initdb``: a new cluster in :attr:`data`."""
        self._run(
            tool("initdb"),
            "--pgdata",
            str(self.data),
            "--username",
            "postgres",
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--no-instructions",
        )

    def start(self, timeout: int = 60) -> None:
        """``pg_ctl start`` and wait until it accepts connections."""
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.directory} -c max_connections=100"
        )
        self._run(
            tool("pg_ctl"),
            "start",
            "--pgdata",
            str(self.data),
            "--log",
            str(self.log),
            "--wait",
            "--timeout",
            str(timeout),
            "-o",
            options,
            timeout=timeout + 30,
        )
        with psycopg.connect(self.url(), connect_timeout=10):
            pass

    def stop(self, mode: StopMode = "fast", timeout: int = 60) -> None:
        """``pg_ctl stop -m MODE``: ``fast`` ends sessions and shuts down cleanly,
        ``immediate`` ends every process without a shutdown checkpoint (recovery at the next
        start, as after a crash)."""
        self._run(
            tool("pg_ctl"),
            "stop",
            "--pgdata",
            str(self.data),
            "--mode",
            mode,
            "--wait",
            "--timeout",
            str(timeout),
            timeout=timeout + 30,
        )

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def create_database(self, name: str) -> str:
        """Create database *name*; return its SQLAlchemy URL."""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def close(self) -> None:
        """Stop the server (immediately) if it runs, and remove the cluster."""
        try:
            if self.running:
                self.stop("immediate")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        try:
            self.init()
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.close()
