"""WADO-URI (PS3.18 §9): the single-URL retrieval of one object that EHRs and reports link to.

``GET /wado?requestType=WADO&studyUID=..&seriesUID=..&objectUID=..&contentType=application/dicom``

It lives at the server root, not under the DICOMweb service root ``/dicom-web``: WADO-URI
predates the RESTful services and the links already written into EHRs and reports are of the
form ``https://host/wado?...``.

- ``contentType=application/dicom`` answers the stored object byte for byte (§9.1.2.1.5 /
  §9.1.2.2.2); a ``transferSyntax`` other than the stored one would need transcoding: 406.
- Rendered media types (``image/jpeg`` and the others, and the default when ``contentType`` is
  absent, which §9.1.2.1.5 makes ``image/jpeg`` for images) are not served yet: 406 naming
  ``contentType=application/dicom``. ``contentType`` may list several types in order of
  preference (§9.1.2.1.5); the first served one wins.
- ``anonymize=yes`` is refused (406): the object would otherwise go out identified.
- A missing or malformed parameter is a 400 naming it; ``requestType`` other than ``WADO`` is a
  400; an object not stored is a 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pacs_common.uids import InvalidUIDError, validate_uid

from pacs_api.deps import IndexDep, StoreDep
from pacs_api.errors import BadRequest, NotAcceptable, NotFound
from pacs_api.index.repository import Scope

router = APIRouter(tags=["WADO-URI"])

DICOM = "application/dicom"
#: §9.1.2.1.5: without contentType an image is answered as image/jpeg.
DEFAULT_CONTENT_TYPE = "image/jpeg"


@router.get("/wado", summary="WADO-URI: retrieve one object (PS3.18 §9)")
def wado_uri(
    index: IndexDep,
    store: StoreDep,
    request_type: Annotated[str | None, Query(alias="requestType")] = None,
    study_uid: Annotated[str | None, Query(alias="studyUID")] = None,
    series_uid: Annotated[str | None, Query(alias="seriesUID")] = None,
    object_uid: Annotated[str | None, Query(alias="objectUID")] = None,
    content_type: Annotated[str | None, Query(alias="contentType")] = None,
    transfer_syntax: Annotated[str | None, Query(alias="transferSyntax")] = None,
    anonymize: Annotated[str | None, Query()] = None,
) -> StreamingResponse:
    required = {
        "requestType": request_type,
        "studyUID": study_uid,
        "seriesUID": series_uid,
        "objectUID": object_uid,
    }
    missing = [name for name, value in required.items() if not value]
    if missing:
        raise BadRequest(f"missing required parameter(s): {', '.join(missing)} (PS3.18 §9.1.2.1)")
    if request_type != "WADO":
        raise BadRequest(f"requestType must be WADO, not {request_type!r} (PS3.18 §9.1.2.1.1)")
    scope = Scope(
        _uid(study_uid, "studyUID"), _uid(series_uid, "seriesUID"), _uid(object_uid, "objectUID")
    )
    _check_dicom_wanted(content_type)
    if anonymize is not None:
        raise NotAcceptable("anonymize is not supported: the object would be sent identified")
    found = index.instances(scope)
    if not found:
        raise NotFound(
            f"no object {scope.sop_instance_uid} in series {scope.series_uid} of "
            f"study {scope.study_uid} is stored"
        )
    stored = found[0]
    if transfer_syntax and transfer_syntax != stored.transfer_syntax_uid:
        raise NotAcceptable(
            f"the object is stored in transfer syntax {stored.transfer_syntax_uid}, not "
            f"{transfer_syntax}; transcoding is not available yet (PS3.18 §9.1.2.2.3)"
        )
    body = store.open(stored.object_key)  # a store outage is a 503 before any byte
    return StreamingResponse(body, media_type=DICOM, headers={"Content-Length": str(stored.size)})


def _uid(value: str | None, name: str) -> str:
    try:
        return validate_uid(value or "", what=name)
    except InvalidUIDError as exc:
        raise BadRequest(f"parameter {name}: {exc}") from None


def _check_dicom_wanted(content_type: str | None) -> None:
    """Raise 406 unless application/dicom is among the content types asked for."""
    wanted = [item.split(";")[0].strip().lower() for item in (content_type or "").split(",")]
    wanted = [item for item in wanted if item] or [DEFAULT_CONTENT_TYPE]
    if DICOM not in wanted:
        raise NotAcceptable(
            f"contentType {', '.join(wanted)} needs rendering, which is not available yet; "
            f"ask with contentType={DICOM} for the object as stored (PS3.18 §9.1.2.1.5)"
        )
