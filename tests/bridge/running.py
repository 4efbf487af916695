"""The bridge and the API it stores to, both on free loopback ports, in threads.

:func:`running_api` (tests.support.server) runs the real API (uvicorn) on SQLite and the
filesystem store (:func:`api_settings`); :func:`running_bridge` runs a real bridge (pynetdicom
server threads) in front of any DICOMweb URL, with the test allow-list: ``TESTSCU`` with every
permission and ``ECHOONLY`` with echo only, both from loopback.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pacs_api.settings import Settings as ApiSettings
from pacs_bridge.main import Bridge, create_bridge
from pacs_bridge.settings import AllowedPeer, Permission
from pacs_bridge.settings import Settings as BridgeSettings

from tests.support.server import free_port

SCU = "TESTSCU"
ECHO_ONLY = "ECHOONLY"
BRIDGE_AE = "PACSCLOUD"
TEST_PEERS = (
    AllowedPeer.model_validate({"ae_title": SCU, "host": "127.0.0.1"}),
    AllowedPeer.model_validate(
        {"ae_title": ECHO_ONLY, "host": "127.0.0.0/8", "permissions": [Permission.ECHO]}
    ),
)


@dataclass(frozen=True)
class RunningBridge:
    bridge: Bridge
    dicomweb_url: str

    @property
    def host(self) -> str:
        return self.bridge.settings.host

    @property
    def port(self) -> int:
        return self.bridge.port

    @property
    def ae_title(self) -> str:
        return self.bridge.settings.ae_title


def api_settings(directory: Path) -> ApiSettings:
    return ApiSettings(
        database_url=f"sqlite:///{directory / 'index.sqlite3'}",
        store_url=f"file://{directory / 'objects'}",
    )


@contextmanager
def running_bridge(dicomweb_url: str, **overrides: Any) -> Iterator[RunningBridge]:
    """A started bridge; its database (routing state) is in a new temporary directory unless
    ``database_url`` is given, its status API on a free port."""
    with tempfile.TemporaryDirectory(prefix="pacs-bridge-") as directory:
        values: dict[str, Any] = {
            "ae_title": BRIDGE_AE,
            "host": "127.0.0.1",
            "port": free_port(),
            "dicomweb_url": dicomweb_url,
            "allow": TEST_PEERS,
            "database_url": f"sqlite:///{Path(directory) / 'bridge.sqlite3'}",
            "admin_port": 0,
        }
        settings = BridgeSettings(**{**values, **overrides})
        with create_bridge(settings) as bridge:
            yield RunningBridge(bridge, dicomweb_url)
