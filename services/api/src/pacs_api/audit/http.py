"""The API's audit records of HTTP requests: what :class:`pacs_common.audit_http.AuditMiddleware`
(outermost) records for each answered request (PS3.15 A.5.3) once its response is sent.

It knows the route that answered and its path UIDs, the caller (``request.state.principal``,
set by authentication; anonymous otherwise), the client address, the status, the request id;
a route adds what only it knows on ``request.state.audit`` (:mod:`pacs_api.audit.note`). The
event is chosen by the module that answered (:data:`EVENTS_BY_MODULE`):

- QIDO-RS and the change feed: Query (110112), the query string as the query;
- STOW-RS: DICOM Instances Transferred (110104, Create) for what was stored, and a failure
  record for what was refused;
- WADO-RS, WADO-URI, frames, bulk data, rendered: DICOM Instances Transferred (Read); metadata:
  DICOM Instances Accessed (110103, Read);
- DELETE: DICOM Study Deleted (110105, Delete);
- de-identification: Export (110106) of the source study and Import (110107) of the new one;
- ``GET /audit``: Audit Log Used (110101), with the filters as the query;
- any request answered 401: User Authentication (110114) failed; 403: Security Alert (110113).

Not audited: the probes, ``/metrics``, the dashboard's static files, the OpenAPI documents,
``OPTIONS`` (capabilities, CORS preflight), ``/usage`` (counts and bytes, no patient data), a
change-feed poll that returned nothing, and ``POST /audit`` that succeeded (its records are
the audit). The records are appended in a worker thread after the response went out: the
user's request is never held up or failed by its audit record. Appending writes the stream
line and queues the row for the process's group-commit writer (:mod:`pacs_api.audit.log`): no
request pays a database commit of its own.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from pacs_common.audit import (
    Action,
    AuditRecord,
    Outcome,
    Source,
    bounded_instances,
    http_outcome,
    now,
)
from pacs_common.auth import ANONYMOUS, Principal
from pacs_common.observability.http import UNMATCHED, route_template
from pacs_common.uids import is_valid_uid
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from starlette.types import Scope

from pacs_api.audit.note import AuditNote, Instances

log = logging.getLogger(__name__)

#: The event of a request, by the module of the route that answered it.
EVENTS_BY_MODULE: dict[str, tuple[Code, Action]] = {
    "pacs_api.dicomweb.qido": (codes.DCM.Query, Action.EXECUTE),
    "pacs_api.changefeed": (codes.DCM.Query, Action.EXECUTE),
    "pacs_api.dicomweb.stow": (codes.DCM.DICOMInstancesTransferred, Action.CREATE),
    "pacs_api.dicomweb.wado": (codes.DCM.DICOMInstancesTransferred, Action.READ),
    "pacs_api.dicomweb.wado_uri": (codes.DCM.DICOMInstancesTransferred, Action.READ),
    "pacs_api.dicomweb.frames": (codes.DCM.DICOMInstancesTransferred, Action.READ),
    "pacs_api.dicomweb.bulkdata": (codes.DCM.DICOMInstancesTransferred, Action.READ),
    "pacs_api.dicomweb.rendered": (codes.DCM.DICOMInstancesTransferred, Action.READ),
    "pacs_api.dicomweb.delete": (codes.DCM.DICOMStudyDeleted, Action.DELETE),
    "pacs_api.deidentify.service": (codes.DCM.Export, Action.READ),
    "pacs_api.audit.routes": (codes.DCM.AuditLogUsed, Action.READ),
}
#: Routes whose requests are not audited (see the module docstring).
UNAUDITED_MODULES = frozenset(
    {
        "pacs_api.status",
        "pacs_api.usage",
        "pacs_api.ui.routes",
        "pacs_common.observability.http",
        "fastapi.applications",
    }
)
#: Any other route (added later, not yet classified): an access to DICOM instances.
DEFAULT_EVENT = (codes.DCM.DICOMInstancesAccessed, Action.READ)
#: WADO-URI names its UIDs in the query (PS3.18 §9.1.2.1).
_QUERY_UIDS = {"studyUID": "study", "seriesUID": "series", "objectUID": "instance"}


def http_records(scope: Scope, status: int, request_id: str, _broken: bool) -> list[AuditRecord]:
    """:func:`records_of` as :class:`pacs_common.audit_http.AuditMiddleware` asks for it."""
    return records_of(scope, status, request_id)


def records_of(scope: Scope, status: int, request_id: str) -> list[AuditRecord]:
    """The audit records of one answered request (none for an unaudited one)."""
    method = str(scope["method"])
    route = route_template(scope)
    endpoint = scope.get("endpoint")
    module = getattr(endpoint, "__module__", "")
    state: dict[str, Any] = scope.get("state") or {}
    note: AuditNote = state.get("audit") or AuditNote()
    if status == 401:
        event, action = codes.DCM.UserAuthentication, Action.EXECUTE
    elif status == 403:
        event, action = codes.DCM.SecurityAlert, Action.EXECUTE
    elif route == UNMATCHED or module in UNAUDITED_MODULES or note.skip:
        return []
    elif module == "pacs_api.audit.routes" and method != "GET":
        return []  # POST /audit: the records it appended are the audit
    else:
        event, action = EVENTS_BY_MODULE.get(module, DEFAULT_EVENT)
        if route.endswith("/metadata"):
            event = codes.DCM.DICOMInstancesAccessed
    principal: Principal = state.get("principal", ANONYMOUS)
    client = scope.get("client")
    base = AuditRecord(
        time=now(),
        event_id=str(event.value),
        action=action,
        outcome=http_outcome(status),
        user_id=principal.subject[:256],
        user_method=principal.method[:32],
        network_address=str(client[0])[:128] if client else "",
        source=Source.API,
        request_id=request_id[:128],
        http_method=method[:8],
        route=route[:256],
        http_status=status if 100 <= status <= 599 else None,
    )
    base = _with_target(base, scope)
    if event in (codes.DCM.Query, codes.DCM.AuditLogUsed):  # what was searched for
        query = unquote_plus(scope.get("query_string", b"").decode("latin-1"))
        base = base.model_copy(update={"query": query[:8192]})
    records: list[AuditRecord] = []
    if note.done is not None and status < 400:
        records.append(_concerning(base, note.done))
    elif note.failed is None:
        records.append(base)
    if note.failed is not None:
        failure = _concerning(base, note.failed)
        detail = "; ".join(note.failed.reasons)
        records.append(
            failure.model_copy(
                update={
                    "outcome": Outcome.MINOR_FAILURE,
                    "outcome_description": f"refused: {detail}"[:1024],
                }
            )
        )
    if note.created_study_uid and status < 400:
        records.append(
            base.model_copy(
                update={
                    "event_id": str(codes.DCM.Import.value),
                    "action": Action.CREATE,
                    "study_uid": note.created_study_uid,
                    "series_uids": [],
                    "sop_instance_uids": [],
                    "instance_count": 0,
                }
            )
        )
    return records


def _with_target(record: AuditRecord, scope: Scope) -> AuditRecord:
    """The study, series and instance the URL names (path, or WADO-URI's query); a value
    that is no UID is named in the outcome description instead."""
    named: dict[str, str] = {str(k): str(v) for k, v in (scope.get("path_params") or {}).items()}
    if not named.get("study"):
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        named |= {ours: query[theirs] for theirs, ours in _QUERY_UIDS.items() if theirs in query}
    invalid = [
        f"{key} {value[:80]!r}"
        for key, value in named.items()
        if key in ("study", "series", "instance") and not is_valid_uid(value)
    ]
    update: dict[str, Any] = {}
    if is_valid_uid(named.get("study", "")):
        update["study_uid"] = named["study"]
    if is_valid_uid(named.get("series", "")):
        update["series_uids"] = [named["series"]]
    if is_valid_uid(named.get("instance", "")):
        update["sop_instance_uids"] = [named["instance"]]
        update["instance_count"] = 1
    if invalid:
        update["outcome_description"] = "not a UID in the request: " + ", ".join(invalid)
    return record.model_copy(update=update) if update else record


def _concerning(record: AuditRecord, instances: Instances) -> AuditRecord:
    listed, count = bounded_instances(instances.sop_instance_uids)
    return record.model_copy(
        update={
            "study_uid": instances.study_uid or record.study_uid,
            "patient_id": instances.patient_id or record.patient_id,
            "series_uids": instances.series_uids[: len(listed) or 1000],
            "sop_instance_uids": listed,
            "instance_count": count,
        }
    )
