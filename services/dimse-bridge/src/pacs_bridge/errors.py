"""Where failures of the API become DIMSE statuses: one place, for every handler.

    httpx.HTTPError        the API cannot be reached or timed out  -> Out of Resources (A7xx)
    DicomWebError 5xx      the API or its storage is failing       -> Out of Resources (A7xx)
    DicomWebError 413/429  too large or too many now               -> Out of Resources (A7xx)
    DicomWebError 401/403  the API refuses the bridge's token      -> Out of Resources (A7xx)
    DicomWebError 4xx      the API does not accept the request     -> Cannot Understand /
                                                                      Unable to Process (Cxxx)

Out of Resources tells a modality to keep its copy and send again later (PS3.4 B.2.3,
C.4.1.1.4); the other failures will not succeed by retrying.
"""

from __future__ import annotations

import httpx
from pacs_common import statuses
from pacs_common.client import DicomWebError
from pydicom.dataset import Dataset

#: HTTP statuses that say "not now" rather than "never" (RFC 9110 §15.5.14, RFC 6585 §4), and
#: the API refusing the bridge's own credentials (dicomweb_token): the bridge's configuration
#: is at fault, not the instance, so the sender keeps it and sends again once it is fixed.
_RETRYABLE_HTTP = frozenset({401, 403, 408, 413, 429})
_CREDENTIALS = frozenset({401, 403})
#: Error Comment (0000,0902) is LO: at most 64 characters (PS3.7 E.1, PS3.5 table 6.2-1).
_ERROR_COMMENT_LENGTH = 64


def _retryable(exc: httpx.HTTPError | DicomWebError) -> bool:
    if isinstance(exc, httpx.HTTPError):
        return True
    return exc.status >= 500 or exc.status in _RETRYABLE_HTTP


def store_failure_status(exc: httpx.HTTPError | DicomWebError) -> int:
    """The C-STORE status (PS3.4 B.2.3) for an API call that failed."""
    return statuses.OUT_OF_RESOURCES if _retryable(exc) else statuses.CANNOT_UNDERSTAND


def find_failure_status(exc: httpx.HTTPError | DicomWebError) -> int:
    """The C-FIND status (PS3.4 C.4.1.1.4) for an API call that failed."""
    return statuses.FIND_OUT_OF_RESOURCES if _retryable(exc) else statuses.UNABLE_TO_PROCESS


def failure_comment(exc: httpx.HTTPError | DicomWebError) -> str:
    """The Error Comment of a failed API call; a refused token is named as such (the whole
    comment must fit in 64 characters)."""
    if isinstance(exc, DicomWebError) and exc.status in _CREDENTIALS:
        return f"API refused the bridge's dicomweb_token ({exc.status})"
    return str(exc)


def status_dataset(status: int, comment: str | None = None) -> Dataset:
    """A DIMSE response status, with an Error Comment (0000,0902) for failures."""
    ds = Dataset()
    ds.Status = status
    if comment and status != statuses.SUCCESS:
        ds.ErrorComment = comment[:_ERROR_COMMENT_LENGTH]
    return ds


def retrieve_failure_status(exc: httpx.HTTPError | DicomWebError) -> int:
    """The C-GET/C-MOVE status (PS3.4 C.4.3.1.4, C.4.2.1.5) for a search that failed."""
    if _retryable(exc):
        return statuses.RETRIEVE_UNABLE_TO_CALCULATE_MATCHES
    return statuses.RETRIEVE_UNABLE_TO_PROCESS
