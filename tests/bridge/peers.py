"""Real DICOM peers for the bridge tests: DCMTK command-line tools and pynetdicom SCUs.

DCMTK gets ``TCP_NODELAY=1`` in its environment and pynetdicom SCUs set the option on their
socket (``TESTING.md``: both leave Nagle's algorithm on otherwise).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pydicom
from pacs_bridge.network import set_tcp_nodelay
from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.association import Association

from tests.bridge.running import RunningBridge

DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}


def dcmtk(tool: str, *args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a DCMTK tool with TCP_NODELAY=1; its exit status and output, never raising."""
    return subprocess.run(
        [tool, *(str(a) for a in args)],
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
) -> Iterator[Association]:
    """A pynetdicom association (TCP_NODELAY set) to the bridge, released afterwards."""
    ae = AE(ae_title=calling)
    for uid in contexts:
        ae.add_requested_context(uid)
    assoc = ae.associate(
        bridge.host,
        bridge.port,
        ae_title=called or bridge.ae_title,
        evt_handlers=[(evt.EVT_CONN_OPEN, set_tcp_nodelay)],
    )
    try:
        yield assoc
    finally:
        if assoc.is_established:
            assoc.release()
        ae.shutdown()
