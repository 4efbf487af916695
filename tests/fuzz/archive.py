"""A small populated archive for the fuzz tests: one synthetic CT study to read, one to delete.

Schemathesis draws most path parameters at random; :func:`known_path_parameters` gives it the
UIDs of what is really stored, so that reads reach real data and not only 404s.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from pacs_common.client import DicomWebClient
from pacs_common.synthetic import to_bytes
from pydicom import Dataset

from tests.support.dicom import ct_datasets


@dataclass(frozen=True, slots=True)
class StoredSeries:
    study: str
    series: str
    instances: tuple[str, ...]


def series(seed: int, slices: int = 3) -> list[Dataset]:
    """A small (32 x 32) synthetic CT series of its own patient and study."""
    return ct_datasets(slices, seed=seed, patient_id=f"FUZZ{seed}")


def store_ct(dicomweb_url: str, *, seed: int, slices: int = 3) -> StoredSeries:
    """Store :func:`series` in the API at *dicomweb_url*."""
    datasets = series(seed, slices)
    with httpx.Client(timeout=60) as http:
        DicomWebClient(http, dicomweb_url).store(
            [to_bytes(ds) for ds in datasets]
        ).raise_for_failures()
    first = datasets[0]
    return StoredSeries(
        str(first.StudyInstanceUID),
        str(first.SeriesInstanceUID),
        tuple(str(ds.SOPInstanceUID) for ds in datasets),
    )


def known_path_parameters(stored: StoredSeries) -> dict[str, list[str]]:
    """Values of the API's path parameters that name stored data."""
    return {
        "study": [stored.study],
        "series": [stored.series],
        "instance": list(stored.instances),
        "frames": ["1"],
        "tag": ["7FE00010", "00100010"],
    }
