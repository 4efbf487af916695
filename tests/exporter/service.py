"""Helpers for the exporter service's tests: a CT phantom stored in a real API, the real
exporter app (its workers in threads) on its own database and store, and polling a job.

The phantom is small (20 slices of 64x64 at 1 x 1 x 2 mm) and holds one sphere of radius
12 mm, edges ramped so that its surface is the 500 HU isosurface (:mod:`.phantoms`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient
from pacs_common.client import DicomWebClient
from pacs_common.synthetic import to_bytes
from pacs_exporter.main import create_app
from pacs_exporter.settings import Settings
from pacs_exporter.worker import Observer
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from tests.exporter.phantoms import LEVEL_HU, Geometry, series, spheres

RADIUS_MM = 12.0
SHAPE = (20, 64, 64)
SPACING = (2.0, 1.0, 1.0)
#: Upper bound of waiting for a job: a limit against hanging, not a timing assertion.
WAIT_SECONDS = 120.0


def phantom(*, slices: int = SHAPE[0], modality: str = "CT") -> list[Dataset]:
    """A sphere phantom series with its own study, series and SOP Instance UIDs."""
    geometry = Geometry(shape=(slices, SHAPE[1], SHAPE[2]), spacing=SPACING)
    datasets = series(spheres([((0.3, -0.2, 0.1), RADIUS_MM)], width=2.0), geometry)
    study, series_uid, frame = generate_uid(), generate_uid(), generate_uid()
    for ds in datasets:
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = frame
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.Modality = modality
    return datasets


def store(dicomweb_url: str, datasets: list[Dataset]) -> tuple[str, str]:
    """Store *datasets* in the API; their (study, series) UIDs."""
    with httpx.Client(timeout=60) as http:
        DicomWebClient(http, dicomweb_url).store(
            [to_bytes(ds) for ds in datasets], study_uid=datasets[0].StudyInstanceUID
        ).raise_for_failures()
    return str(datasets[0].StudyInstanceUID), str(datasets[0].SeriesInstanceUID)


def exporter_settings(directory: Path, dicomweb_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "dicomweb_url": dicomweb_url,
        "database_url": f"sqlite:///{directory / 'exporter.sqlite3'}",
        "store_url": f"file://{directory / 'exports'}",
        "poll_seconds": 0.05,
        "retry_delay_seconds": 0.0,
        "lease_seconds": 30.0,
    }
    return Settings(**{**values, **overrides})


@contextmanager
def running_exporter(settings: Settings, observer: Observer | None = None) -> Iterator[TestClient]:
    """The real exporter app (its workers started by its lifespan), called in-process."""
    with TestClient(create_app(settings, observer=observer)) as client:
        yield client


def request(study: str, series_uid: str, **options: Any) -> dict[str, Any]:
    return {"study": study, "series": series_uid, "level": LEVEL_HU, **options}


def wait_for(
    client: TestClient, job_id: str, done: Callable[[dict[str, Any]], bool] | None = None
) -> dict[str, Any]:
    """Poll the job until *done* (default: finished); its last view."""
    done = done or (lambda job: job["state"] in ("succeeded", "failed", "cancelled"))
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        response = client.get(f"/exports/{job_id}")
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        if done(job):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job['state']}: {job}")
        time.sleep(0.05)


def submit(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/exports", json=body)
    assert response.status_code == 202, response.text
    job: dict[str, Any] = response.json()
    assert response.headers["location"] == f"/exports/{job['id']}"
    return job
