"""The bridge's audit trail (PS3.15 A.5, IHE ATNA): what its DIMSE peers did, recorded durably
and delivered to the API's audit log.

:class:`AuditTap` observes the associations like the metrics do, off what goes on the wire:

- an association accepted: User Authentication (110114), success; rejected: Security Alert
  (110113), minor failure, with the reject reason;
- C-ECHO: Application Activity (110100); C-FIND: Query (110112) with the identifier's keys;
- C-STORE: DICOM Instances Transferred (110104, Create) with the instance, its study and
  patient (read from the data set's header, never its pixel data);
- C-GET and C-MOVE: DICOM Instances Transferred (Read) with the requested study/series, the
  sub-operation counts of the final response, the instances sent on the association (C-GET)
  and the destination AE title (C-MOVE).

Each record has the calling AE title and peer address as the requestor, the bridge's AE title
as the called AE, the operation's request id, the final DIMSE status (the outcome: success or
warning 0, cancel or failure 4). The association's thread writes it to the bridge's JSON-lines
stream (:class:`pacs_common.audit.AuditStream`, before the next operation) and queues it for
the ``audit_outbox`` table of the bridge's own database, where the process's group-commit
writer (:class:`pacs_common.audit_writer.AuditWriter`) inserts the waiting records of every
association in one transaction: no operation waits for a disk flush of its own. A clean stop
stores them all; a crash may lose from the outbox the records of its last moments (each is in
the stream). The outbox's delivery to the API (``POST /audit`` every ``audit_interval``, in
batches, deleted once the API took them, retried with backoff) is the one every service shares:
:mod:`pacs_common.audit_outbox`; the bridge never touches the API's tables.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from pacs_common.audit import (
    MAX_LISTED_INSTANCES,
    Action,
    AuditRecord,
    Outcome,
    Source,
)
from pacs_common.audit_writer import AuditWriter
from pacs_common.observability.requestid import current_request_id
from pacs_common.uids import is_valid_uid
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.tag import BaseTag, Tag
from pynetdicom import evt
from pynetdicom.dimse_primitives import C_FIND, C_GET, C_MOVE, C_STORE
from pynetdicom.events import Event, EventHandlerType
from pynetdicom.pdu_primitives import A_ASSOCIATE
from pynetdicom.status import code_to_category

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")

#: The event and action of each DIMSE operation (PS3.15 A.5.3).
OPERATIONS: dict[str, tuple[Code, Action]] = {
    "C-ECHO": (codes.DCM.ApplicationActivity, Action.EXECUTE),
    "C-STORE": (codes.DCM.DICOMInstancesTransferred, Action.CREATE),
    "C-FIND": (codes.DCM.Query, Action.EXECUTE),
    "C-GET": (codes.DCM.DICOMInstancesTransferred, Action.READ),
    "C-MOVE": (codes.DCM.DICOMInstancesTransferred, Action.READ),
}
_RESPONSES = {f"{command.replace('-', '_')}_RSP": command for command in OPERATIONS}
_STUDY_UID = Tag("StudyInstanceUID")
_SUB_OPERATIONS = (
    "NumberOfCompletedSuboperations",
    "NumberOfFailedSuboperations",
    "NumberOfWarningSuboperations",
)


# -- observing the associations --------------------------------------------------------------


@dataclass
class _Operation:
    """What the request of one operation named, until its final response is sent."""

    study_uid: str = ""
    patient_id: str = ""
    series_uids: list[str] = field(default_factory=list)
    sop_instance_uids: list[str] = field(default_factory=list)
    sent: int = 0
    query: str = ""
    destination_ae: str = ""


class AuditTap:
    """Turns the associations' events into audit records (see the module)."""

    def __init__(self, writer: AuditWriter) -> None:
        self.writer = writer
        self._lock = threading.Lock()
        self._pending: dict[tuple[int, int], _Operation] = {}

    def handlers(self) -> list[EventHandlerType]:
        return [
            (evt.EVT_ACSE_SENT, self._acse_sent),
            (evt.EVT_DIMSE_SENT, self._dimse_sent),
        ]

    def request(self, handler: Callable[P, R]) -> Callable[P, R]:
        """Wrap an operation's handler (its first argument the event): remember what its
        request names for the record of its final response."""

        def noting(*args: P.args, **kwargs: P.kwargs) -> R:
            event = args[0]
            assert isinstance(event, Event)
            try:
                self._note(event)
            except Exception:  # an undecodable request still gets its answer and a record
                log.warning("the audit record misses what the request named", exc_info=True)
            return handler(*args, **kwargs)

        return noting

    def _note(self, event: Event) -> None:
        request = event.request
        operation = _Operation()
        if isinstance(request, C_STORE):
            operation.study_uid, operation.patient_id = _store_header(event, request)
            operation.sop_instance_uids = [str(request.AffectedSOPInstanceUID)]
        elif isinstance(request, (C_FIND, C_GET, C_MOVE)):
            identifier: Dataset = event.identifier
            operation.study_uid = _single_uid(identifier.get("StudyInstanceUID"))
            operation.patient_id = str(identifier.get("PatientID", "") or "")[:64]
            series = _single_uid(identifier.get("SeriesInstanceUID"))
            operation.series_uids = [series] if series else []
            if isinstance(request, C_FIND):
                operation.query = _query_text(identifier)
            if isinstance(request, C_MOVE):
                operation.destination_ae = str(request.MoveDestination or "").strip()[:16]
        with self._lock:
            self._pending[(id(event.assoc), int(request.MessageID or 0))] = operation

    def _acse_sent(self, event: Event) -> None:
        primitive = event.primitive  # type: ignore[attr-defined]
        if not isinstance(primitive, A_ASSOCIATE) or primitive.result is None:
            return
        requestor = event.assoc.requestor
        accepted = primitive.result == 0x00
        event_code = codes.DCM.UserAuthentication if accepted else codes.DCM.SecurityAlert
        description = "" if accepted else f"association rejected: {primitive.reason_str}"
        self._append(
            AuditRecord(
                event_id=str(event_code.value),
                action=Action.EXECUTE,
                outcome=Outcome.SUCCESS if accepted else Outcome.MINOR_FAILURE,
                outcome_description=description[:1024],
                user_id=_calling_ae(event),
                user_method="ae-title",
                network_address=str(requestor.address)[:128],
                calling_ae=_calling_ae(event),
                called_ae=_called_ae(event),
                source=Source.DIMSE_BRIDGE,
                request_id=current_request_id() or "",
                dimse_command="A-ASSOCIATE",
            )
        )

    def _dimse_sent(self, event: Event) -> None:
        message = event.message
        kind = type(message).__name__
        key_assoc = id(event.assoc)
        if kind == "C_STORE_RQ":  # a C-GET sub-operation: an instance sent to the requestor
            with self._lock:
                for (assoc, _), operation in self._pending.items():
                    if assoc == key_assoc:
                        operation.sent += 1
                        if len(operation.sop_instance_uids) < MAX_LISTED_INSTANCES:
                            uid = str(message.command_set.AffectedSOPInstanceUID)
                            operation.sop_instance_uids.append(uid)
            return
        command = _RESPONSES.get(kind)
        if command is None:
            return
        command_set = message.command_set
        status = int(getattr(command_set, "Status", 0x0000))
        category = str(code_to_category(status)).lower()
        if category == "pending":
            return
        responded = int(getattr(command_set, "MessageIDBeingRespondedTo", 0))
        with self._lock:
            key = (key_assoc, responded)
            operation = self._pending.pop(key) if key in self._pending else _Operation()
        try:
            self._append(_operation_record(event, command, status, category, operation))
        except Exception:
            log.exception("the audit record of a %s could not be made", command)

    def _append(self, record: AuditRecord) -> None:
        """In the stream now, in the outbox with the next group commit; a failure is logged,
        never raised into the association."""
        try:
            self.writer.append([record])
        except Exception:
            log.exception("audit record %s not kept (see the errors before)", record.event_id)


def _operation_record(
    event: Event, command: str, status: int, category: str, operation: _Operation
) -> AuditRecord:
    requestor = event.assoc.requestor
    code, action = OPERATIONS[command]
    command_set = event.message.command_set
    counts = {name: int(getattr(command_set, name, 0) or 0) for name in _SUB_OPERATIONS}
    description = ""
    if category != "success":
        description = f"{category} 0x{status:04X}"
    if command in ("C-GET", "C-MOVE"):
        description = "; ".join(
            filter(
                None,
                [
                    description,
                    "sub-operations: {} completed, {} failed, {} warning".format(*counts.values()),
                ],
            )
        )
    instances = operation.sop_instance_uids
    count = max(len(instances), operation.sent)
    if command in ("C-GET", "C-MOVE"):
        count = max(count, sum(counts.values()))
    if not instances and command == "C-STORE":
        uid = str(getattr(command_set, "AffectedSOPInstanceUID", "") or "")
        instances = [uid] if is_valid_uid(uid) else []
        count = len(instances)
    return AuditRecord(
        event_id=str(code.value),
        action=action,
        outcome=Outcome.SUCCESS if category in ("success", "warning") else Outcome.MINOR_FAILURE,
        outcome_description=description[:1024],
        user_id=_calling_ae(event),
        user_method="ae-title",
        network_address=str(requestor.address)[:128],
        calling_ae=_calling_ae(event),
        called_ae=_called_ae(event),
        destination_ae=operation.destination_ae,
        source=Source.DIMSE_BRIDGE,
        request_id=current_request_id() or "",
        patient_id=operation.patient_id,
        study_uid=operation.study_uid if is_valid_uid(operation.study_uid) else "",
        series_uids=[uid for uid in operation.series_uids if is_valid_uid(uid)],
        sop_instance_uids=[uid for uid in instances[:MAX_LISTED_INSTANCES] if is_valid_uid(uid)],
        instance_count=count,
        query=operation.query[:8192],
        dimse_command=command,
        dimse_status=status,
    )


def _calling_ae(event: Event) -> str:
    """The peer's AE title, from its A-ASSOCIATE-RQ (also when the request was rejected)."""
    request = getattr(event.assoc.requestor, "primitive", None)
    calling = getattr(request, "calling_ae_title", None) or event.assoc.requestor.ae_title
    return str(calling).strip()[:16]


def _called_ae(event: Event) -> str:
    """The AE title the peer called (its A-ASSOCIATE-RQ), else the bridge's own."""
    request = getattr(event.assoc.requestor, "primitive", None)
    called = getattr(request, "called_ae_title", None) or event.assoc.ae.ae_title
    return str(called).strip()[:16]


def _store_header(event: Event, request: C_STORE) -> tuple[str, str]:
    """Study Instance UID and Patient ID of a C-STORE's data set, read up to the study UID
    in the negotiated transfer syntax, never the pixel data; empty when unreadable (e.g.
    deflated)."""
    syntax = event.context.transfer_syntax
    if syntax is None or syntax.is_deflated:
        return "", ""
    data = request.DataSet
    if not isinstance(data, io.BytesIO):
        return "", ""
    position = data.tell()
    data.seek(0)
    try:
        header = read_dataset(
            data,
            syntax.is_implicit_VR,
            syntax.is_little_endian,
            stop_when=lambda tag, _vr, _length: _after_study_uid(tag),
        )
    finally:
        data.seek(position)
    study = str(header.get("StudyInstanceUID", "") or "")
    return (study if is_valid_uid(study) else ""), str(header.get("PatientID", "") or "")[:64]


def _after_study_uid(tag: BaseTag) -> bool:
    return bool(tag > _STUDY_UID)


def _single_uid(value: Any) -> str:
    """A UID match key with one valid UID (not a list, not empty)."""
    text = str(value or "")
    return text if is_valid_uid(text) else ""


def _query_text(identifier: Dataset) -> str:
    """The C-FIND identifier as ``Keyword=value`` pairs (empty values: return keys)."""
    pairs = []
    for element in identifier:
        if element.VR == "SQ":
            pairs.append(f"{element.keyword or element.tag}=(sequence)")
        else:
            value = "" if element.value is None else str(element.value)
            pairs.append(f"{element.keyword or element.tag}={value}")
    return "&".join(pairs)
