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
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pydicom
from pacs_bridge.network import set_tcp_nodelay
from pacs_common import statuses
from pydicom.dataset import Dataset
from pydicom.uid import AllTransferSyntaxes
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.association import Association
from pynetdicom.events import Event

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
def storescp(
    ae_title: str, out: Path, *options: str | Path, port: int | None = None
) -> Iterator[int]:
    """A DCMTK ``storescp`` on *port* (default: a free one) writing to *out*, with further
    *options* (TLS, for example); yields its port (DCMTK 3.6.7 has no option to bind it to
    loopback only)."""
    out.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
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


@dataclass
class StoreSCP:
    """A pynetdicom C-STORE SCP that records what it receives, in order: the SOP Instance UID,
    the data set bytes as received and the transfer syntax. ``answers`` holds, per SOP Instance
    UID, statuses to answer (and not store) before it accepts the instance."""

    ae_title: str
    port: int
    answers: dict[str, list[int]] = field(default_factory=dict)
    received: list[tuple[str, bytes, str]] = field(default_factory=list)
    attempts: list[str] = field(default_factory=list)

    def handle_store(self, event: Event) -> int:
        uid = str(event.request.AffectedSOPInstanceUID)
        self.attempts.append(uid)
        queued = self.answers.get(uid)
        if queued:
            return queued.pop(0)
        transfer_syntax = str(event.context.transfer_syntax)
        self.received.append((uid, event.encoded_dataset(include_meta=False), transfer_syntax))
        return statuses.SUCCESS

    @property
    def uids(self) -> list[str]:
        return [uid for uid, _, _ in self.received]


@contextmanager
def store_scp(
    ae_title: str,
    *,
    port: int | None = None,
    transfer_syntaxes: Sequence[str] = tuple(str(uid) for uid in AllTransferSyntaxes),
    answers: dict[str, list[int]] | None = None,
) -> Iterator[StoreSCP]:
    """A :class:`StoreSCP` listening on 127.0.0.1 (TCP_NODELAY on its sockets)."""
    scp = StoreSCP(ae_title, port or free_port(), answers or {})
    ae = AE(ae_title=ae_title)
    for context in AllStoragePresentationContexts:
        ae.add_supported_context(context.abstract_syntax, list(transfer_syntaxes))
    server = ae.start_server(
        ("127.0.0.1", scp.port),
        block=False,
        evt_handlers=[
            (evt.EVT_CONN_OPEN, set_tcp_nodelay),
            (evt.EVT_C_STORE, scp.handle_store),
        ],
    )
    try:
        yield scp
    finally:
        assert server is not None
        server.shutdown()
        ae.shutdown()
