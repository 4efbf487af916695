"""The data sets of the resolved instances, fetched by WADO-RS (PS3.18 §10.4) one at a time.

Instances are fetched per series (one streamed ``.../series/{uid}`` request), or per instance
for an IMAGE level retrieve, always as stored (``transfer-syntax=*``: nothing is transcoded).
Only the instance being sent is held in memory. An instance the API does not deliver (gone
since the search, or the API failing) is yielded as :func:`unavailable`, whose C-STORE
sub-operation fails and lists it in the Failed SOP Instance UID List (PS3.4 C.4.3.1.3.2).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

import httpx
from pacs_common.client import DicomWebClient, DicomWebError
from pacs_common.media import MultipartError
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.filebase import DicomBytesIO

from pacs_bridge.find.levels import QueryLevel
from pacs_bridge.retrieve.resolve import Match

log = logging.getLogger(__name__)

#: WADO-RS Accept transfer-syntax parameter for "as stored" (PS3.18 §8.7.3.5.2).
AS_STORED = "*"


def unavailable(match: Match) -> Dataset:
    """A stand-in for an instance that could not be fetched: it holds the SOP Instance UID only,
    so pynetdicom's C-STORE sub-operation fails and reports the instance as failed."""
    ds = Dataset()
    ds.SOPInstanceUID = match.sop_instance
    return ds


def iter_data_sets(
    dicomweb: DicomWebClient, matches: Iterable[Match], level: QueryLevel
) -> Iterator[Dataset]:
    """One data set per match (or its :func:`unavailable` stand-in), series by series."""
    for series in _by_series(matches):
        if level is QueryLevel.IMAGE:
            for match in series:
                yield from _series_data_sets(dicomweb, [match], single=True)
        else:
            yield from _series_data_sets(dicomweb, series, single=False)


def _by_series(matches: Iterable[Match]) -> list[list[Match]]:
    groups: dict[tuple[str, str], list[Match]] = {}
    for match in matches:
        groups.setdefault((match.study, match.series), []).append(match)
    return list(groups.values())


def _series_data_sets(
    dicomweb: DicomWebClient, series: list[Match], *, single: bool
) -> Iterator[Dataset]:
    """The wanted instances of one series, in the order the API sends them, then stand-ins for
    those it did not send."""
    wanted = {match.sop_instance: match for match in series}
    first = series[0]
    if single:
        parts = dicomweb.retrieve_instance(
            first.study, first.series, first.sop_instance, transfer_syntax=AS_STORED
        )
    else:
        parts = dicomweb.retrieve_series(first.study, first.series, transfer_syntax=AS_STORED)
    try:
        for part in parts:
            ds = _read(part)
            uid = str(ds.get("SOPInstanceUID", "")) if ds is not None else ""
            if ds is not None and uid in wanted:
                del wanted[uid]
                yield ds
    except (httpx.HTTPError, DicomWebError, MultipartError) as exc:
        log.warning("WADO-RS of series %s failed: %s", first.series, exc)
    for match in wanted.values():
        log.warning("instance %s not delivered by the API", match.sop_instance)
        yield unavailable(match)


def _read(part: bytes) -> Dataset | None:
    try:
        return dcmread(DicomBytesIO(part))
    except (InvalidDicomError, EOFError, ValueError) as exc:
        log.warning("WADO-RS part is not a DICOM Part 10 object: %s", exc)
        return None
