"""Real DICOM peers for the bridge tests: DCMTK command-line tools and pynetdicom SCUs.

DCMTK gets ``TCP_NODELAY=1`` in its environment and pynetdicom SCUs set the option on their
socket (``TESTING.md``: both leave Nagle's algorithm on otherwise).
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import pydicom
from pacs_bridge.network import set_tcp_nodelay
from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.association import Association

from tests.bridge.running import RunningBridge
from tests.support.server import free_port

DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}


@cache
def dcmtk_path(tool: str) -> str:
    """DCMTK's *tool*, never the same-named Python app pynetdicom installs in the virtual
    environment (``uv run`` puts that first on PATH): the venv's own bin directory is left out
    of the search."""
    venv_bin = Path(sys.executable).parent.resolve()
    path = os.pathsep.join(
        p
        for p in os.environ.get("PATH", "").split(os.pathsep)
        if p and Path(p).resolve() != venv_bin
    )
    found = shutil.which(tool, path=path)
    if found is None:
        raise RuntimeError(f"DCMTK's {tool} is not installed: run scripts/install-test-deps.sh")
    return found


def dcmtk(tool: str, *args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a DCMTK tool with TCP_NODELAY=1; its exit status and output, never raising."""
    return subprocess.run(
        [dcmtk_path(tool), *(str(a) for a in args)],
        env=DCMTK_ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def peer_args(bridge: RunningBridge, calling: str) -> list[str]:
    """``-aet CALLING -aec CALLED HOST PORT`` for a DCMTK SCU."""
    return ["-aet", calling, "-aec", bridge.ae_title, bridge.host, str(bridge.port)]


def findscu(
    bridge: RunningBridge, calling: str, root: str, keys: Sequence[str], out: Path
) -> tuple[subprocess.CompletedProcess[str], list[Dataset]]:
    """``findscu -P|-S -k ... -X``; the process and the responses it extracted, in order."""
    out.mkdir(parents=True, exist_ok=True)
    flag = {"patient": "-P", "study": "-S"}[root]
    key_args = [arg for key in keys for arg in ("-k", key)]
    proc = dcmtk("findscu", flag, "-X", "-od", out, *key_args, *peer_args(bridge, calling))
    return proc, [pydicom.dcmread(path) for path in sorted(out.glob("rsp*.dcm"))]


@contextmanager
def scu_association(
    bridge: RunningBridge,
    calling: str,
    contexts: Sequence[str],
    *,
    called: str | None = None,
    tls: ssl.SSLContext | None = None,
) -> Iterator[Association]:
    """A pynetdicom association (TCP_NODELAY set; over TLS with *tls*) to the bridge, released
    afterwards."""
    ae = AE(ae_title=calling)
    for uid in contexts:
        ae.add_requested_context(uid)
    assoc = ae.associate(
        bridge.host,
        bridge.port,
        ae_title=called or bridge.ae_title,
        evt_handlers=[(evt.EVT_CONN_OPEN, set_tcp_nodelay)],
        tls_args=(tls, bridge.host) if tls else None,
    )
    try:
        yield assoc
    finally:
        if assoc.is_established:
            assoc.release()
        ae.shutdown()


@contextmanager
def storescp(ae_title: str, out: Path, *options: str | Path) -> Iterator[int]:
    """A DCMTK ``storescp`` on a free port writing to *out*, with further *options* (TLS, for
    example); yields its port (DCMTK 3.6.7 has no option to bind it to loopback only)."""
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = subprocess.Popen(
        [
            dcmtk_path("storescp"),
            "-aet",
            ae_title,
            "-od",
            str(out),
            *(str(option) for option in options),
            str(port),
        ],
        env=DCMTK_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("storescp did not start") from None
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
