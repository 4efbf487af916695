"""C-FIND matches from QIDO-RS searches (PS3.18 §10.6), fetched page by page.

STUDY, SERIES and IMAGE levels are the ``/studies``, ``/series`` and ``/instances`` searches
across the archive. QIDO-RS has no patient resource, so the PATIENT level (Patient Root, PS3.4
C.6.1.1.2) is answered from ``/studies``: the studies matching the patient keys, grouped by
Patient ID and Issuer of Patient ID, each group one match whose Number of Patient Related
Studies/Series/Instances are summed over its studies. A patient's studies may fall on any page,
so a patient-level search reads every page before its first answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from pacs_common.attributes import attribute
from pacs_common.client import DicomWebClient
from pacs_common.dicomjson import JsonDataset, first_value, tag_key

from pacs_bridge.find.identifier import FindRequest
from pacs_bridge.find.levels import PATIENT_COUNTS, QueryLevel

Search = Callable[..., list[JsonDataset]]

_PATIENT_IDENTITY = ("PatientID", "IssuerOfPatientID")
_STUDY_COUNTS = ("NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances")


def iter_matches(
    dicomweb: DicomWebClient, request: FindRequest, page_size: int
) -> Iterator[JsonDataset]:
    """The DICOM JSON datasets matching *request*, in the API's order."""
    if request.level is QueryLevel.PATIENT:
        return _patients(dicomweb, request, page_size)
    searches: dict[QueryLevel, Search] = {
        QueryLevel.STUDY: dicomweb.search_studies,
        QueryLevel.SERIES: dicomweb.search_series,
        QueryLevel.IMAGE: dicomweb.search_instances,
    }
    search = searches[request.level]
    return _pages(search, request.matching, request.includefields, page_size)


def _pages(
    search: Search, matching: dict[str, str], includefields: list[str], page_size: int
) -> Iterator[JsonDataset]:
    """Every result of a search, requesting *page_size* results at a time (PS3.18 §8.3.4.4).

    A page shorter than asked is the last one; *page_size* must not exceed the API's maximum
    QIDO-RS limit.
    """
    offset = 0
    while True:
        page = search(includefield=includefields, limit=page_size, offset=offset, **matching)
        yield from page
        if len(page) < page_size:
            return
        offset += len(page)


def _patients(
    dicomweb: DicomWebClient, request: FindRequest, page_size: int
) -> Iterator[JsonDataset]:
    wanted = [*request.includefields, *_PATIENT_IDENTITY, *_STUDY_COUNTS]
    includefields = [
        name for name in dict.fromkeys(wanted) if attribute(name) not in PATIENT_COUNTS
    ]
    patients: dict[tuple[Any, Any], JsonDataset] = {}
    counts: dict[tuple[Any, Any], list[int]] = {}
    for study in _pages(dicomweb.search_studies, request.matching, includefields, page_size):
        identity = tuple(first_value(study, name) for name in _PATIENT_IDENTITY)
        key = (identity[0], identity[1])
        if key not in patients:
            patients[key] = study
            counts[key] = [0, 0, 0]
        total = counts[key]
        total[0] += 1
        total[1] += _int(first_value(study, _STUDY_COUNTS[0]))
        total[2] += _int(first_value(study, _STUDY_COUNTS[1]))
    for key, patient in patients.items():
        answer = dict(patient)
        for attr, count in zip(PATIENT_COUNTS, counts[key], strict=True):
            answer[tag_key(attr.tag)] = {"vr": attr.vr, "Value": [count]}
        yield answer


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
