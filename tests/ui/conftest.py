"""The dashboard's stack for browser tests: the real API (uvicorn, SQLite and the filesystem
store) with two synthetic CT studies, the real mesh exporter and the real DIMSE bridge on loopback
ports, both allowing the dashboard's origin by CORS; and Debian's headless Chromium.

The stack is started once per module (a few seconds); each test gets a new page and fails on
any console error or uncaught exception of the page. Screenshots go to ``test-artifacts/ui/``
at the repository's root (gitignored), which CI keeps as artefacts.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pacs_api.settings import Settings as ApiSettings
from pacs_common.client import DicomWebClient
from pacs_common.synthetic import iter_ct_series, synthetic_uid, to_bytes
from pacs_exporter.main import create_app as create_exporter
from playwright.sync_api import BrowserContext, ConsoleMessage, Page

from tests.bridge.running import running_bridge
from tests.exporter.service import exporter_settings
from tests.support.ohif import ROOT, chromium
from tests.support.server import free_port, running_api, serving

ARTEFACTS = ROOT / "test-artifacts" / "ui"
SLICES = 12
SIZE = 64
DESTINATION = "ARCHIVE2"


@dataclass(frozen=True)
class Stack:
    origin: str
    dicomweb_url: str
    exporter_url: str
    bridge_url: str
    ct_study: str
    ct_series: str
    other_study: str


def _store(dicomweb_url: str, datasets: list[Any]) -> None:
    with httpx.Client(timeout=60) as http:
        DicomWebClient(http, dicomweb_url).store(
            [to_bytes(ds) for ds in datasets], study_uid=datasets[0].StudyInstanceUID
        ).raise_for_failures()


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    api_port, exporter_port, bridge_port = free_port(), free_port(), free_port()
    origin = f"http://127.0.0.1:{api_port}"
    exporter_url = f"http://127.0.0.1:{exporter_port}"
    bridge_url = f"http://127.0.0.1:{bridge_port}"
    with tempfile.TemporaryDirectory(prefix="pacs-ui-") as tmp:
        directory = Path(tmp)
        settings = ApiSettings(
            database_url=f"sqlite:///{directory / 'index.sqlite3'}",
            store_url=f"file://{directory / 'objects'}",
            ui_exporter_url=exporter_url,
            ui_bridge_status_url=bridge_url,
            ui_ohif_url="http://127.0.0.1:3000",
        )
        with running_api(settings, api_port) as dicomweb_url:
            exporter = create_exporter(
                exporter_settings(directory, dicomweb_url, cors_allow_origins=[origin])
            )
            # A destination nobody listens on: deliveries wait in backoff with an error.
            nodes = {DESTINATION: {"host": "127.0.0.1", "port": free_port()}}
            routes = [{"name": "ct-to-archive2", "modality": ["CT"], "to": [DESTINATION]}]
            with (
                serving(exporter, exporter_port),
                running_bridge(
                    dicomweb_url,
                    admin_port=bridge_port,
                    admin_cors_allow_origins=[origin],
                    nodes=nodes,
                    routes=routes,
                    routing_poll_interval=0.1,
                    routing_retry_initial=0.2,
                    routing_retry_max=1.0,
                ),
            ):
                ct = list(
                    iter_ct_series(
                        SLICES,
                        SIZE,
                        SIZE,
                        noise_hu=0,
                        patient_name="Dashboard^Alice",
                        patient_id="UI-0001",
                        accession_number="ACC-UI-1",
                        study_uid=synthetic_uid("ui", 1),
                        series_description="Thin CT",
                    )
                )
                other = list(
                    iter_ct_series(
                        2,
                        32,
                        32,
                        patient_name="Other^Bob",
                        patient_id="UI-0002",
                        accession_number="ACC-UI-2",
                        study_uid=synthetic_uid("ui", 2),
                        study_datetime=datetime(2023, 6, 1, 8, 0),
                    )
                )
                _store(dicomweb_url, ct)
                _store(dicomweb_url, other)
                yield Stack(
                    origin=origin,
                    dicomweb_url=dicomweb_url,
                    exporter_url=exporter_url,
                    bridge_url=bridge_url,
                    ct_study=str(ct[0].StudyInstanceUID),
                    ct_series=str(ct[0].SeriesInstanceUID),
                    other_study=str(other[0].StudyInstanceUID),
                )


@pytest.fixture(scope="module")
def browser() -> Iterator[BrowserContext]:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    with chromium(viewport=(1280, 900)) as context:
        yield context


@pytest.fixture
def page(browser: BrowserContext) -> Iterator[Page]:
    """A new page; the test fails on any console error or uncaught exception in it."""
    page = browser.new_page()
    problems: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"console: {message.text} ({message.location.get('url')})")

    page.on("console", console)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    yield page
    page.close()
    assert not problems, "\n".join(problems)


def shot(page: Page, name: str) -> None:
    page.screenshot(path=ARTEFACTS / f"{name}.png", full_page=True)
