"""The audit record every service writes: who did what to which study, from where, and how it
ended, shaped on the DICOM audit message (PS3.15 A.5, IHE ATNA, RFC 3881).

:class:`AuditRecord` is the flat form the API stores (table ``audit_event``), the bridge keeps in
its outbox and posts to ``POST /audit``; :meth:`AuditRecord.to_atna` renders it as the audit
message of PS3.15 A.5.1 (EventIdentification, ActiveParticipant, AuditSourceIdentification,
ParticipantObjectIdentification) for the JSON-lines stream. Event IDs and the codes of the
message are taken from pydicom's DCM code dictionary (PS3.16 CID 400-405), never typed here.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Any, TextIO

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from pacs_common.uids import is_valid_uid

#: The audit events the services record (PS3.15 A.5.3, PS3.16 CID 400 "Audit Event ID").
EVENTS: dict[str, Code] = {
    code.value: code
    for code in (
        codes.DCM.ApplicationActivity,  # 110100: C-ECHO (the application verified)
        codes.DCM.AuditLogUsed,  # 110101: the audit log was read
        codes.DCM.DICOMInstancesAccessed,  # 110103: metadata read, instances deleted
        codes.DCM.DICOMInstancesTransferred,  # 110104: STOW-RS, WADO-RS, C-STORE, C-GET, C-MOVE
        codes.DCM.DICOMStudyDeleted,  # 110105: DELETE of a study, series or instance
        codes.DCM.Export,  # 110106: de-identification reads a study out
        codes.DCM.Import,  # 110107: de-identification makes a new study
        codes.DCM.Query,  # 110112: QIDO-RS, C-FIND
        codes.DCM.SecurityAlert,  # 110113: refused for lack of permission
        codes.DCM.UserAuthentication,  # 110114: authentication or association failed
    )
}
#: RFC 3881 §5.4.2 ParticipantObjectIDTypeCode for a Study Instance UID (PS3.15 A.5.2.5).
STUDY_UID_TYPE = codes.DCM.StudyInstanceUID
#: ... and for the SOP class of a query (PS3.15 A.5.3.11 Query).
SOP_CLASS_UID_TYPE = codes.DCM.SOPClassUID
#: Roles of an active participant in a transfer (PS3.16 CID 402).
SOURCE_ROLE = codes.DCM.SourceRoleID
DESTINATION_ROLE = codes.DCM.DestinationRoleID
#: How many SOP Instance UIDs one record lists; ``instance_count`` always counts them all.
MAX_LISTED_INSTANCES = 1000


class Action(StrEnum):
    """EventActionCode (RFC 3881 §5.1.2; PS3.15 A.5.1)."""

    CREATE = "C"
    READ = "R"
    UPDATE = "U"
    DELETE = "D"
    EXECUTE = "E"


class Outcome(IntEnum):
    """EventOutcomeIndicator (RFC 3881 §5.1.4; PS3.15 A.5.1)."""

    SUCCESS = 0
    MINOR_FAILURE = 4  # the request was refused; the user may correct it and retry
    SERIOUS_FAILURE = 8  # the action ended without completing (a dependency failed)
    MAJOR_FAILURE = 12  # the service could not act at all


class Source(StrEnum):
    """AuditSourceID: which pacs-cloud service observed the event."""

    API = "api"
    DIMSE_BRIDGE = "dimse-bridge"
    EXPORTER = "exporter"


def http_outcome(status: int) -> Outcome:
    """The outcome of an HTTP answer: success below 400, minor failure for a refused request
    (4xx), serious failure when the service failed (5xx)."""
    if status < 400:
        return Outcome.SUCCESS
    return Outcome.MINOR_FAILURE if status < 500 else Outcome.SERIOUS_FAILURE


def now() -> datetime:
    return datetime.now(UTC)


def _uid(value: str) -> str:
    if value and not is_valid_uid(value):
        raise ValueError(f"{value[:80]!r} is not a valid UID (PS3.5 §9.1)")
    return value


class AuditRecord(BaseModel):
    """One audited event, flat (one column each in ``audit_event``).

    The active participants are the requestor (``user_id``: the authenticated subject, or the
    calling AE title over DIMSE; ``network_address``) and, over DIMSE, the called AE (the
    bridge) and a C-MOVE destination. The participant objects are the patient, the study, its
    series and instances, and the query of a QIDO-RS or C-FIND.
    """

    model_config = ConfigDict(extra="forbid", use_enum_values=False)

    time: datetime = Field(default_factory=now, description="When the event happened (UTC).")
    event_id: str = Field(description="DCM code of the event (PS3.16 CID 400), e.g. 110112.")
    action: Action = Field(description="EventActionCode: C, R, U, D or E.")
    outcome: Outcome = Field(description="EventOutcomeIndicator: 0, 4, 8 or 12.")
    outcome_description: str = Field("", max_length=1024)
    user_id: str = Field("", max_length=256, description="Who: principal subject or AE title.")
    user_method: str = Field(
        "", max_length=32, description="How the user was authenticated (jwt, api-key, none, ae)."
    )
    user_is_requestor: bool = True
    network_address: str = Field("", max_length=128, description="The requestor's IP address.")
    calling_ae: str = Field("", max_length=16)
    called_ae: str = Field("", max_length=16)
    destination_ae: str = Field("", max_length=16, description="C-MOVE destination.")
    source: Source = Field(Source.API, description="The service that observed the event.")
    request_id: str = Field("", max_length=128)
    patient_id: str = Field("", max_length=64)
    study_uid: str = Field("", max_length=64)
    series_uids: list[str] = Field(default_factory=list, max_length=MAX_LISTED_INSTANCES)
    sop_instance_uids: list[str] = Field(default_factory=list, max_length=MAX_LISTED_INSTANCES)
    instance_count: int = Field(0, ge=0, description="Instances concerned (may exceed the list).")
    query: str = Field("", max_length=8192, description="QIDO-RS query string or C-FIND keys.")
    http_method: str = Field("", max_length=8)
    route: str = Field("", max_length=256, description="The route template that answered.")
    http_status: int | None = Field(None, ge=100, le=599)
    dimse_command: str = Field("", max_length=16)
    dimse_status: int | None = Field(None, ge=0, le=0xFFFF)

    @field_validator("event_id")
    @classmethod
    def _known_event(cls, value: str) -> str:
        if value not in EVENTS:
            raise ValueError(f"{value!r} is not an audit event this service records: {EVENTS}")
        return value

    @field_validator("study_uid")
    @classmethod
    def _study(cls, value: str) -> str:
        return _uid(value)

    @field_validator("series_uids", "sop_instance_uids")
    @classmethod
    def _uids(cls, values: list[str]) -> list[str]:
        return [_uid(value) for value in values]

    @field_validator("time")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("the time needs a UTC offset")
        return value.astimezone(UTC)

    @property
    def event(self) -> Code:
        return EVENTS[self.event_id]

    def to_atna(self) -> dict[str, Any]:
        """The DICOM audit message (PS3.15 A.5.1, in the element names of its schema)."""
        identification: dict[str, Any] = {
            "EventID": _coded(self.event),
            "EventActionCode": self.action.value,
            "EventDateTime": self.time.isoformat(timespec="microseconds"),
            "EventOutcomeIndicator": int(self.outcome),
        }
        if self.outcome_description:
            identification["EventOutcomeDescription"] = self.outcome_description
        return {
            "EventIdentification": identification,
            "ActiveParticipant": self._participants(),
            "AuditSourceIdentification": {
                "AuditSourceID": f"pacs-cloud {self.source.value}",
                "AuditSourceTypeCode": "4",  # RFC 3881 §5.4.2: application server process
            },
            "ParticipantObjectIdentification": self._objects(),
            "pacs": {  # what the message has no element for, under our own name
                "request_id": self.request_id,
                "http": {
                    "method": self.http_method,
                    "route": self.route,
                    "status": self.http_status,
                }
                if self.http_method
                else None,
                "dimse": {"command": self.dimse_command, "status": self.dimse_status}
                if self.dimse_command
                else None,
            },
        }

    def _participants(self) -> list[dict[str, Any]]:
        requestor: dict[str, Any] = {
            "UserID": self.user_id,
            "UserIsRequestor": self.user_is_requestor,
        }
        if self.user_method:
            requestor["AuthenticationMethod"] = self.user_method
        if self.calling_ae:
            requestor["AlternativeUserID"] = f"AETITLE={self.calling_ae}"
        if self.network_address:
            requestor["NetworkAccessPointID"] = self.network_address
            requestor["NetworkAccessPointTypeCode"] = "2"  # an IP address (RFC 3881 §5.3.4)
        if self.dimse_command in ("C-STORE",):
            requestor["RoleIDCode"] = _coded(SOURCE_ROLE)
        elif self.dimse_command in ("C-GET",):
            requestor["RoleIDCode"] = _coded(DESTINATION_ROLE)
        participants = [requestor]
        if self.called_ae:
            participants.append(
                {
                    "UserID": self.called_ae,
                    "AlternativeUserID": f"AETITLE={self.called_ae}",
                    "UserIsRequestor": False,
                }
            )
        if self.destination_ae:
            participants.append(
                {
                    "UserID": self.destination_ae,
                    "AlternativeUserID": f"AETITLE={self.destination_ae}",
                    "UserIsRequestor": False,
                    "RoleIDCode": _coded(DESTINATION_ROLE),
                }
            )
        return participants

    def _objects(self) -> list[dict[str, Any]]:
        objects: list[dict[str, Any]] = []
        if self.patient_id:
            objects.append(
                {
                    "ParticipantObjectID": self.patient_id,
                    "ParticipantObjectTypeCode": 1,  # person
                    "ParticipantObjectTypeCodeRole": 1,  # patient
                    "ParticipantObjectIDTypeCode": {
                        "csd-code": "2",
                        "codeSystemName": "RFC-3881",
                        "originalText": "Patient Number",
                    },
                }
            )
        if self.study_uid:
            description: dict[str, Any] = {}
            if self.series_uids:
                description["Series"] = self.series_uids
            if self.sop_instance_uids or self.instance_count:
                description["SOPInstances"] = self.sop_instance_uids
                description["NumberOfInstances"] = self.instance_count
            entry: dict[str, Any] = {
                "ParticipantObjectID": self.study_uid,
                "ParticipantObjectTypeCode": 2,  # system object
                "ParticipantObjectTypeCodeRole": 3,  # report (the study, PS3.15 A.5.2.5)
                "ParticipantObjectIDTypeCode": _coded(STUDY_UID_TYPE),
            }
            if description:
                entry["ParticipantObjectDescription"] = description
            objects.append(entry)
        if self.query:
            objects.append(
                {
                    "ParticipantObjectID": self.route or self.dimse_command,
                    "ParticipantObjectTypeCode": 2,
                    "ParticipantObjectTypeCodeRole": 24,  # query
                    "ParticipantObjectIDTypeCode": _coded(SOP_CLASS_UID_TYPE),
                    "ParticipantObjectQuery": base64.b64encode(self.query.encode()).decode(),
                }
            )
        return objects


def _coded(code: Code) -> dict[str, str]:
    """A coded value as the audit message schema writes it (``csd-code``, PS3.15 A.5.1)."""
    return {
        "csd-code": str(code.value),
        "codeSystemName": str(code.scheme_designator),
        "originalText": str(code.meaning),
    }


def bounded_instances(uids: list[str]) -> tuple[list[str], int]:
    """The SOP Instance UIDs a record lists (at most :data:`MAX_LISTED_INSTANCES`) and the
    count of all of them."""
    return uids[:MAX_LISTED_INSTANCES], len(uids)


#: The stream's logger: one record per audit event, the ATNA message in its ``audit`` field
#: (stdout/stderr in containers, where a log shipper takes it to an audit repository).
stream_log = logging.getLogger("pacs.audit")


class AuditStream:
    """The JSON-lines stream of a service's audit records: the ``pacs.audit`` logger and,
    when *path* is given, a file each message is appended to as one line, flushed per line."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._file: TextIO | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("a", encoding="utf-8")

    def write(self, record: AuditRecord) -> None:
        message = record.to_atna()
        stream_log.info(
            "%s %s by %s: outcome %d",
            record.event_id,
            record.event.meaning,
            record.user_id or "-",
            record.outcome,
            extra={"audit": message},
        )
        if self._file is not None:
            line = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
            with self._lock:
                self._file.write(line + "\n")
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
