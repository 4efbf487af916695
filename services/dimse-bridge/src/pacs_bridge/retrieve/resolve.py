"""The instances a retrieve request names, found with QIDO-RS (PS3.18 §10.6).

The unique keys become matching parameters of an instance search across the archive, paged
like C-FIND (:func:`pacs_bridge.find.search.iter_matches`); only the UIDs come back. The list
is complete before the first sub-operation: C-GET and C-MOVE announce the number of
sub-operations first (PS3.4 C.4.3.3.1, C.4.2.3.1).
"""

from __future__ import annotations

from dataclasses import dataclass

from pacs_common.client import DicomWebClient
from pacs_common.dicomjson import first_value

from pacs_bridge.find.identifier import FindRequest
from pacs_bridge.find.levels import QueryLevel
from pacs_bridge.find.search import iter_matches
from pacs_bridge.retrieve.identifier import RetrieveRequest

_RETURNED = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")


@dataclass(frozen=True, slots=True)
class Match:
    """One instance to send: its place in the archive and its SOP class."""

    study: str
    series: str
    sop_instance: str
    sop_class: str


class IncompleteMatch(ValueError):
    """The API answered an instance without one of its UIDs."""


def resolve(dicomweb: DicomWebClient, request: RetrieveRequest, page_size: int) -> list[Match]:
    """The instances *request* names, in the API's order."""
    search = FindRequest(
        model=request.model,
        level=QueryLevel.IMAGE,
        matching=dict(request.keys),
        includefields=list(_RETURNED),
    )
    matches = []
    for found in iter_matches(dicomweb, search, page_size):
        uids = [str(first_value(found, keyword) or "") for keyword in _RETURNED]
        if not all(uids):
            raise IncompleteMatch(f"the API answered an instance without its UIDs: {uids}")
        matches.append(Match(*uids))
    return matches
