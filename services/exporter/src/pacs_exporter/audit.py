"""The exporter's audit trail (PS3.15 A.5, IHE ATNA): who asked for which mesh of which series,
and who took it away.

The shared ASGI middleware (:mod:`pacs_common.audit_http`, outermost) turns each answered
request into an audit record once its response is sent, from the route that answered
(:data:`EVENTS`), the caller (``request.state.principal``, set by authentication; anonymous
when the exporter has none configured), the client address, the status and the request id; a
route adds the job it acted on with :func:`note_job` (its id, study and series, what was
asked):

- ``POST /exports``, a job requested: DICOM Instances Accessed (110103, Create: a mesh is to
  be derived from the series), the preset, level and format in the description;
- ``GET /exports/{id}/file``, a mesh downloaded: Export (110106, Read, PS3.15 A.5.3.6):
  derived data of the patient leaves the system, the study and series as participant objects;
- ``DELETE /exports/{id}``, a job cancelled or deleted with its files: DICOM Instances Accessed
  (Delete);
- ``GET /exports/{id}``, a job viewed (its report): DICOM Instances Accessed (Read);
  ``GET /exports``, the jobs listed: Query (110112), the query string as the query;
- any request answered 401: User Authentication (110114) failed; 403: Security Alert (110113).

Not audited: the probes, ``/metrics``, ``/presets`` (no patient data), the OpenAPI documents
and ``OPTIONS``. Each record names the job (``export job <id>`` in its description). The
worker reads the series from the API under the exporter's own key with the job's id as
``X-Request-ID`` (:mod:`pacs_exporter.observability`), so the API's records of those reads
carry the job id as their request id: the trail links the user who asked to the reads done
for them.

The records are the exporter's own, delivered durably (:mod:`pacs_common.audit_outbox`): the
JSON-lines stream at once, the ``audit_outbox`` table of the jobs' database by group commit,
then the API's ``POST /audit`` (source ``exporter``) with ``dicomweb_token``, which needs the
``audit`` scope. They are appended in a worker thread after the response went out: the user's
request is never held up or failed by its audit record.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from fastapi import Request
from pacs_common.audit import Action, AuditRecord, Outcome, Source, http_outcome, now
from pacs_common.auth import ANONYMOUS, Principal
from pacs_common.observability.http import route_template
from pacs_common.uids import is_valid_uid
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from starlette.types import Scope

log = logging.getLogger(__name__)

#: The event of each audited route (method, route template); other routes are not audited.
EVENTS: dict[tuple[str, str], tuple[Code, Action]] = {
    ("POST", "/exports"): (codes.DCM.DICOMInstancesAccessed, Action.CREATE),
    ("GET", "/exports"): (codes.DCM.Query, Action.EXECUTE),
    ("GET", "/exports/{job_id}"): (codes.DCM.DICOMInstancesAccessed, Action.READ),
    ("GET", "/exports/{job_id}/file"): (codes.DCM.Export, Action.READ),
    ("DELETE", "/exports/{job_id}"): (codes.DCM.DICOMInstancesAccessed, Action.DELETE),
}


@dataclass(frozen=True, slots=True)
class JobNote:
    """The job a request acted on, set on ``request.state.audit`` by its route."""

    job_id: str
    study: str
    series: str
    what: str = ""


def note_job(request: Request, job_id: str, study: str, series: str, what: str = "") -> None:
    """Tell the audit record which job (and so which study and series) *request* acted on,
    and *what* came of it beyond the status (``cancelled``, ``preset bone, format stl``)."""
    request.state.audit = JobNote(job_id, study, series, what)


def http_records(scope: Scope, status: int, request_id: str, broken: bool) -> list[AuditRecord]:
    """:func:`record_of` as :class:`pacs_common.audit_http.AuditMiddleware` asks for it."""
    record = record_of(scope, status, request_id, broken=broken)
    return [] if record is None else [record]


def record_of(
    scope: Scope, status: int, request_id: str, *, broken: bool = False
) -> AuditRecord | None:
    """The audit record of one answered request (None for an unaudited one)."""
    method = "GET" if scope["method"] == "HEAD" else str(scope["method"])
    route = route_template(scope)
    if status == 401:
        event, action = codes.DCM.UserAuthentication, Action.EXECUTE
    elif status == 403:
        event, action = codes.DCM.SecurityAlert, Action.EXECUTE
    elif (method, route) in EVENTS:
        event, action = EVENTS[(method, route)]
    else:
        return None
    state: dict[str, Any] = scope.get("state") or {}
    principal: Principal = state.get("principal", ANONYMOUS)
    note: JobNote | None = state.get("audit")
    client = scope.get("client")
    outcome = http_outcome(status)
    description = _description(note, scope, status)
    if broken and outcome is Outcome.SUCCESS:  # the body broke off after a 2xx start
        outcome = Outcome.SERIOUS_FAILURE
        description = f"{description}; the response broke off".lstrip("; ")
    study = note.study if note and is_valid_uid(note.study) else ""
    series = note.series if note and study and is_valid_uid(note.series) else ""
    query = ""
    if event == codes.DCM.Query:
        query = unquote_plus(scope.get("query_string", b"").decode("latin-1"))
    return AuditRecord(
        time=now(),
        event_id=str(event.value),
        action=action,
        outcome=outcome,
        outcome_description=description[:1024],
        user_id=principal.subject[:256],
        user_method=principal.method[:32],
        network_address=str(client[0])[:128] if client else "",
        source=Source.EXPORTER,
        request_id=request_id[:128],
        study_uid=study,
        series_uids=[series] if series else [],
        query=query[:8192],
        http_method=str(scope["method"])[:8],
        route=route[:256],
        http_status=status if 100 <= status <= 599 else None,
    )


def _description(note: JobNote | None, scope: Scope, status: int) -> str:
    """``export job <id>`` and what came of it; the job id of the URL when the route did not
    get as far as the job (404, 401, 403)."""
    job_id = note.job_id if note else str((scope.get("path_params") or {}).get("job_id", ""))
    parts = [f"export job {job_id[:32]}" if job_id else ""]
    if note and note.what:
        parts.append(note.what)
    if status >= 400:
        parts.append(f"HTTP {status}")
    return "; ".join(part for part in parts if part)
