"""Reading a series from the API: its size from WADO-RS metadata, its instances by WADO-RS.

The metadata (PS3.18 §10.4.1.1.2, ``.../series/{series}/metadata``) gives the instance count and
each image's Rows and Columns without moving pixel data, so a job's memory is estimated before
anything large is read. The instances are retrieved as stored (``transfer-syntax=*``, PS3.18
§8.7.3.5.2) and decoded by pydicom (its pixel data handlers decode compressed syntaxes).

Errors of the API become the job's outcome: a 404 is an unknown study or series (final), any
other 4xx is final too, and 5xx answers or an API that cannot be reached are :class:`Unavailable`
(the job is retried later).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO

import httpx
from pacs_common.client import DicomWebClient, DicomWebError
from pacs_common.dicomjson import first_value
from pacs_common.media import MultipartError
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from pacs_exporter.errors import ExportError, InputError

__all__ = ["SeriesSize", "Unavailable", "fetch_series", "series_size"]


class Unavailable(Exception):
    """The API (or the object store) cannot be reached or answered 5xx: try again later."""


@dataclass(frozen=True)
class SeriesSize:
    instances: int
    rows: int
    columns: int

    @property
    def voxels(self) -> int:
        return self.instances * self.rows * self.columns


def _api_error(exc: Exception, study: str, series: str) -> Exception:
    """The job's view of a failed call to the API."""
    if isinstance(exc, httpx.TransportError):
        return Unavailable(f"the API cannot be reached: {exc.__class__.__name__}: {exc}")
    if isinstance(exc, DicomWebError):
        if exc.status == 404:
            return InputError(f"unknown series: the API has no series {series} in study {study}")
        if exc.status >= 500:
            return Unavailable(f"the API answered {exc.status}: {exc.detail or exc.title}")
        return ExportError(f"the API refused to send the series: {exc}")
    return ExportError(f"the API's answer could not be read: {exc}")


def series_size(client: DicomWebClient, study: str, series: str) -> SeriesSize:
    """The series' instance count and largest image size, from its metadata."""
    try:
        metadata = client.metadata(study, series)
    except (httpx.HTTPError, DicomWebError, ValueError) as exc:
        raise _api_error(exc, study, series) from exc
    if not metadata:
        raise InputError(f"unknown series: the API has no series {series} in study {study}")
    rows = max(int(first_value(item, "Rows") or 0) for item in metadata)
    columns = max(int(first_value(item, "Columns") or 0) for item in metadata)
    return SeriesSize(len(metadata), rows, columns)


def fetch_series(
    client: DicomWebClient,
    study: str,
    series: str,
    progress: Callable[[int], None],
) -> list[Dataset]:
    """Every instance of the series, decoded by pydicom; *progress* is called with the count
    read so far after each one."""
    datasets: list[Dataset] = []
    try:
        for part in client.retrieve_series(study, series, transfer_syntax="*"):
            try:
                datasets.append(dcmread(BytesIO(part)))
            except (InvalidDicomError, EOFError, ValueError) as exc:
                raise InputError(f"instance {len(datasets) + 1} is not DICOM: {exc}") from exc
            progress(len(datasets))
    except (httpx.HTTPError, DicomWebError, MultipartError) as exc:
        raise _api_error(exc, study, series) from exc
    if not datasets:
        raise InputError(f"unknown series: the API has no series {series} in study {study}")
    return datasets
