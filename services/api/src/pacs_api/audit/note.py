"""What a route tells the audit recorder beyond its URL and status.

The middleware (:mod:`pacs_api.audit.http`) knows the route, its path UIDs, the caller and the
status; a route that knows more (STOW-RS: the instances it stored and refused; DELETE: the
instances removed; de-identification: the new study) says it on the request with
:func:`audit_note`, and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from fastapi import Request

from pacs_api.index.repository import StoredInstance
from pacs_api.ingest.pipeline import InstanceResult


@dataclass
class Instances:
    """Instances one event concerned, of one study (or of several: then ``study_uid`` is
    empty)."""

    study_uid: str = ""
    patient_id: str = ""
    series_uids: list[str] = field(default_factory=list)
    sop_instance_uids: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def add(self, study: str, series: str, sop_instance: str, patient: str = "") -> None:
        self.patient_id = (
            patient if not self.sop_instance_uids or self.patient_id == patient else ""
        )
        self.study_uid = study if not self.sop_instance_uids or self.study_uid == study else ""
        if series and series not in self.series_uids:
            self.series_uids.append(series)
        if sop_instance:
            self.sop_instance_uids.append(sop_instance)


@dataclass
class AuditNote:
    """Set on ``request.state.audit`` by the route; read once the response is sent."""

    #: Instances the request stored, retrieved or deleted (a success record).
    done: Instances | None = None
    #: Instances the request refused (STOW-RS FailedSOPSequence: a failure record).
    failed: Instances | None = None
    #: A de-identified copy: the study the request created from the audited one (Import).
    created_study_uid: str = ""
    #: The request read nothing worth a record (an empty change-feed poll).
    skip: bool = False


def audit_note(request: Request) -> AuditNote:
    """The request's note, made on first use."""
    note: AuditNote | None = getattr(request.state, "audit", None)
    if note is None:
        note = request.state.audit = AuditNote()
    return note


def note_stored(request: Request, results: Iterable[InstanceResult]) -> None:
    """STOW-RS (and de-identification): what was stored, what was refused and why."""
    note = audit_note(request)
    done, failed = Instances(), Instances()
    for result in results:
        if result.failure is None:
            done.add(
                result.study_uid, result.series_uid, result.sop_instance_uid, result.patient_id
            )
        else:
            failed.add(
                result.study_uid, result.series_uid, result.sop_instance_uid, result.patient_id
            )
            failed.reasons.append(f"{result.sop_instance_uid or 'part'}: {result.reason}")
    note.done = done if done.sop_instance_uids else None
    note.failed = failed if failed.reasons else None


def note_instances(request: Request, instances: Iterable[StoredInstance]) -> None:
    """The stored instances a request retrieved or deleted."""
    done = Instances()
    for held in instances:
        done.add(held.study_uid, held.series_uid, held.sop_instance_uid)
    audit_note(request).done = done
