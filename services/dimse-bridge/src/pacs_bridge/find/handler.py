"""C-FIND SCP (PS3.4 C.4.1): Patient Root and Study Root Query/Retrieve FIND over QIDO-RS.

The handler yields ``(status, identifier)`` pairs as pynetdicom expects: one pending response
(0xFF00) per match, then pynetdicom sends the final success. A C-CANCEL (PS3.7 §9.3.2.3) is
checked before every match and ends the search with Cancel (0xFE00). Failures end it with one
failure status: 0xA900 for an invalid identifier, 0xA700 when the API cannot be reached or
fails, 0xC000 when the API refuses the query or the identifier cannot be decoded.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
from pacs_common import statuses
from pacs_common.client import DicomWebClient, DicomWebError
from pydicom.dataset import Dataset
from pynetdicom.events import Event

from pacs_bridge.errors import find_failure_status, status_dataset
from pacs_bridge.find.answer import answer_identifier
from pacs_bridge.find.identifier import FindRequest, InvalidIdentifier, read_identifier
from pacs_bridge.find.levels import InformationModel
from pacs_bridge.find.search import iter_matches

log = logging.getLogger(__name__)

FindResponse = tuple[int | Dataset, Dataset | None]


def find_matches(event: Event, dicomweb: DicomWebClient, page_size: int) -> Iterator[FindResponse]:
    """The responses to one C-FIND request."""
    request = _request(event)
    if isinstance(request, Dataset):
        yield request, None
        return
    matches = iter_matches(dicomweb, request, page_size)
    try:
        for match in matches:
            if event.is_cancelled:
                log.info("C-FIND cancelled by the peer")
                yield statuses.CANCEL, None
                return
            yield statuses.FIND_PENDING, answer_identifier(match, request)
    except (httpx.HTTPError, DicomWebError) as exc:
        status = find_failure_status(exc)
        log.warning("C-FIND failed (0x%04X): %s", status, exc)
        yield status_dataset(status, str(exc)), None


def _request(event: Event) -> FindRequest | Dataset:
    """The request of the C-FIND, or the failure status to answer it with."""
    try:
        model = InformationModel(str(event.request.AffectedSOPClassUID))
    except ValueError:
        return status_dataset(statuses.SOP_CLASS_NOT_SUPPORTED)
    try:
        identifier = event.identifier
        return read_identifier(identifier, model)
    except InvalidIdentifier as exc:
        log.warning("C-FIND identifier refused: %s", exc)
        return status_dataset(statuses.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS, str(exc))
    except Exception as exc:  # the peer's identifier cannot be decoded
        log.warning("C-FIND identifier cannot be decoded: %s", exc)
        return status_dataset(statuses.UNABLE_TO_PROCESS, "the identifier cannot be decoded")
