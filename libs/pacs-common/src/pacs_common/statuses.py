"""DIMSE status codes used by the services, taken from pynetdicom's status tables.

The STOW-RS FailureReason (PS3.18 §10.5.3, table 10.5.3-2) and the bridge's DIMSE answers use
the codes of the C-STORE service (PS3.4 B.2.3) and the general statuses (PS3.7 C); the bridge's
C-FIND answers those of the Query/Retrieve FIND service (PS3.4 C.4.1.1.4), its C-GET and
C-MOVE answers those of the GET and MOVE services (PS3.4 C.4.3.1.4, C.4.2.1.5). Codes are
looked up by their description in pynetdicom's tables, so no status number is typed here.
"""

from __future__ import annotations

from pynetdicom.status import (
    GENERAL_STATUS,
    QR_FIND_SERVICE_CLASS_STATUS,
    QR_GET_SERVICE_CLASS_STATUS,
    QR_MOVE_SERVICE_CLASS_STATUS,
    STORAGE_SERVICE_CLASS_STATUS,
    Status,
    StatusDictType,
)


def _code(table: StatusDictType, description: str) -> int:
    """The lowest code of *table* with *description* (the base of a range like A7xx)."""
    codes = [code for code, (_, text) in table.items() if text == description]
    if not codes:
        raise LookupError(f"pynetdicom has no status {description!r}")
    return min(codes)


SUCCESS = int(Status.SUCCESS)
#: 0xA7xx (PS3.4 B.2.3): the SCP cannot store the instance now; the sender keeps it and retries.
OUT_OF_RESOURCES = _code(STORAGE_SERVICE_CLASS_STATUS, "Refused: Out of Resources")
#: 0xA9xx (PS3.4 B.2.3): the data set is not a valid instance of its SOP class.
DATA_SET_DOES_NOT_MATCH_SOP_CLASS = _code(
    STORAGE_SERVICE_CLASS_STATUS, "Data Set Does Not Match SOP Class"
)
#: 0xCxxx (PS3.4 B.2.3): the SCP cannot parse the data set.
CANNOT_UNDERSTAND = _code(STORAGE_SERVICE_CLASS_STATUS, "Cannot Understand")
#: 0x0110 (PS3.7 C.4.2): processing failure.
PROCESSING_FAILURE = _code(GENERAL_STATUS, "Processing Failure")
#: 0x0111 (PS3.7 C.4.3): the SOP Instance UID is already held with other content.
DUPLICATE_SOP_INSTANCE = _code(GENERAL_STATUS, "Duplication SOP Instance")
#: 0x0122 (PS3.7 C.4.8): the SOP class is not supported.
SOP_CLASS_NOT_SUPPORTED = _code(GENERAL_STATUS, "Refused: SOP Class Not Supported")
#: 0x0124 (PS3.7 Annex C, "Refused: Not Authorized"): the peer may not use this service.
NOT_AUTHORIZED = _code(GENERAL_STATUS, "Refused: Not Authorised")
#: 0xFE00 (PS3.7 Annex C, Cancel): the operation was cancelled by a C-CANCEL request.
CANCEL = int(Status.CANCEL)
#: 0xFF00 (PS3.4 C.4.1.1.4): a C-FIND match follows, more may come.
FIND_PENDING = _code(QR_FIND_SERVICE_CLASS_STATUS, "Matches are continuing, current match supplied")
#: 0xA700 (PS3.4 C.4.1.1.4): the C-FIND SCP cannot search now.
FIND_OUT_OF_RESOURCES = _code(QR_FIND_SERVICE_CLASS_STATUS, "Refused: Out of Resources")
#: 0xA900 (PS3.4 C.4.1.1.4): the identifier does not fit the SOP class (level, keys).
IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS = _code(
    QR_FIND_SERVICE_CLASS_STATUS, "Identifier Does Not Match SOP Class"
)
#: 0xCxxx (PS3.4 C.4.1.1.4): the C-FIND SCP cannot process the query.
UNABLE_TO_PROCESS = _code(QR_FIND_SERVICE_CLASS_STATUS, "Unable to Process")
#: 0xFF00 (PS3.4 C.4.3.1.4, C.4.2.1.5): a C-GET or C-MOVE sub-operation completed, more follow.
RETRIEVE_PENDING = _code(QR_GET_SERVICE_CLASS_STATUS, "Sub-operations are continuing")
#: 0xB000 (PS3.4 C.4.3.1.4): the sub-operations completed, one or more failed or warned.
RETRIEVE_SUB_OPERATIONS_FAILED = _code(
    QR_GET_SERVICE_CLASS_STATUS, "Sub-operations complete, one or more failures or warnings"
)
#: 0xA701 (PS3.4 C.4.3.1.4, C.4.2.1.5): the SCP cannot find the instances to retrieve now.
RETRIEVE_UNABLE_TO_CALCULATE_MATCHES = _code(
    QR_GET_SERVICE_CLASS_STATUS, "Refused: Out of resources, unable to calculate number of matches"
)
#: 0xA702 (PS3.4 C.4.3.1.4, C.4.2.1.5): every sub-operation failed.
RETRIEVE_UNABLE_TO_PERFORM_SUB_OPERATIONS = _code(
    QR_GET_SERVICE_CLASS_STATUS, "Refused: Out of resources, unable to perform sub-operations"
)
#: 0xA801 (PS3.4 C.4.2.1.5): the Move Destination is not a node the SCP knows.
MOVE_DESTINATION_UNKNOWN = _code(QR_MOVE_SERVICE_CLASS_STATUS, "Move destination unknown")
#: 0xA900 (PS3.4 C.4.3.1.4, C.4.2.1.5): the identifier does not fit the SOP class.
RETRIEVE_IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS = _code(
    QR_GET_SERVICE_CLASS_STATUS, "Identifier does not match SOP class"
)
#: 0xCxxx (PS3.4 C.4.3.1.4, C.4.2.1.5): the SCP cannot process the retrieval.
RETRIEVE_UNABLE_TO_PROCESS = _code(QR_GET_SERVICE_CLASS_STATUS, "Unable to Process")
