"""The C-STORE sub-operations of a C-GET or C-MOVE, in pynetdicom's handler protocol.

pynetdicom's retrieve SCP (``EVT_C_GET``, ``EVT_C_MOVE``) takes the number of sub-operations
first, then ``(status, data set)`` pairs: each pending pair is one C-STORE sub-operation, sent
and counted (remaining, completed, failed, warning) by pynetdicom, which then answers the final
status from the counts (PS3.4 C.4.3.3.1, C.4.2.3.1): Success, 0xB000 when some sub-operations
failed or warned, 0xA702 when all failed. A C-CANCEL (PS3.7 §9.3.3.3, §9.3.4.3) is checked
between sub-operations and ends the retrieval with Cancel and the counts so far.

The request is read and its instances found (:mod:`.identifier`, :mod:`.resolve`) before the
count: a failure there is answered after a count of one, as pynetdicom's protocol needs a
count before any status (so that failure reports one failed sub-operation).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
from pacs_common import statuses
from pacs_common.client import DicomWebClient, DicomWebError
from pydicom.dataset import Dataset
from pynetdicom.events import Event

from pacs_bridge.errors import retrieve_failure_status, status_dataset
from pacs_bridge.find.identifier import InvalidIdentifier
from pacs_bridge.retrieve.fetch import iter_data_sets
from pacs_bridge.retrieve.identifier import RetrieveModel, RetrieveRequest, read_retrieve_identifier
from pacs_bridge.retrieve.resolve import IncompleteMatch, Match, resolve
from pacs_bridge.retrieve.stored import send_as_stored

log = logging.getLogger(__name__)

#: A pending sub-operation with its data set, or the final failure or cancel status.
SubOperation = tuple[int | Dataset, Dataset | None]


@dataclass(frozen=True, slots=True)
class Retrieval:
    """A retrieve request and the instances it names."""

    request: RetrieveRequest
    matches: list[Match]


def prepare(event: Event, dicomweb: DicomWebClient, page_size: int) -> Retrieval | Dataset:
    """The retrieval a C-GET or C-MOVE asks for, or the failure status to answer it with."""
    try:
        model = RetrieveModel(str(event.request.AffectedSOPClassUID)).information_model
    except ValueError:
        return status_dataset(statuses.SOP_CLASS_NOT_SUPPORTED)
    try:
        request = read_retrieve_identifier(event.identifier, model)
    except InvalidIdentifier as exc:
        log.warning("retrieve identifier refused: %s", exc)
        return status_dataset(statuses.RETRIEVE_IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS, str(exc))
    except Exception as exc:  # the peer's identifier cannot be decoded
        log.warning("retrieve identifier cannot be decoded: %s", exc)
        return status_dataset(statuses.RETRIEVE_UNABLE_TO_PROCESS, "undecodable identifier")
    try:
        return Retrieval(request, resolve(dicomweb, request, page_size))
    except (httpx.HTTPError, DicomWebError) as exc:
        status = retrieve_failure_status(exc)
        log.warning("retrieve search failed (0x%04X): %s", status, exc)
        return status_dataset(status, str(exc))
    except IncompleteMatch as exc:
        log.error("retrieve search: %s", exc)
        return status_dataset(statuses.RETRIEVE_UNABLE_TO_PROCESS, "incomplete search answer")


def refused(status: Dataset) -> Iterator[int | SubOperation]:
    """The answer to a request refused before any sub-operation: a count, then *status*."""
    yield 1
    yield status, None


def sub_operations(
    event: Event, dicomweb: DicomWebClient, retrieval: Retrieval
) -> Iterator[int | SubOperation]:
    """The count, then one pending sub-operation per instance, or Cancel on a C-CANCEL."""
    yield len(retrieval.matches)
    send_as_stored(event.assoc)  # C-GET's; C-MOVE's destination association sets its own
    data_sets = iter_data_sets(dicomweb, retrieval.matches, retrieval.request.level)
    for ds in data_sets:
        if event.is_cancelled:
            log.info("retrieve cancelled by the peer")
            yield status_dataset(statuses.CANCEL), None
            return
        yield statuses.RETRIEVE_PENDING, ds
