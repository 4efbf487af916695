"""WADO-URI (PS3.18 §9): the single-URL retrieval of one object that EHRs and reports link to.

``GET /wado?requestType=WADO&studyUID=..&seriesUID=..&objectUID=..&contentType=application/dicom``

It lives at the server root, not under the DICOMweb service root ``/dicom-web``: WADO-URI
predates the RESTful services and the links already written into EHRs and reports are of the
form ``https://host/wado?...``.

- ``contentType=application/dicom`` answers the stored object byte for byte (§9.1.2.1.5 /
  §9.1.2.2.2); a ``transferSyntax`` other than the stored one would need transcoding: 406.
- ``image/jpeg`` (the default when ``contentType`` is absent, §9.1.2.1.5) and ``image/png``
  render the object through the same pipeline as WADO-RS ``/rendered``
  (:mod:`pacs_api.imaging`): ``windowCenter``/``windowWidth`` (§9.1.2.1.9-10, both or neither;
  a linear window), ``rows``/``columns`` (§9.1.2.1.7-8: the image scaled to fit, aspect ratio
  kept), ``imageQuality`` (§9.1.2.1.12, 1-100) and ``frameNumber`` (§9.1.2.1.14, default 1).
  ``contentType`` may list several types in order of preference (§9.1.2.1.5); the first served
  one wins; none served is a 406.
- ``anonymize=yes`` is refused (406): the object would otherwise go out identified.
- A missing or malformed parameter is a 400 naming it; ``requestType`` other than ``WADO`` is a
  400; an object not stored is a 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response, StreamingResponse
from pacs_common.uids import InvalidUIDError, validate_uid

from pacs_api.deps import IndexDep, StoreDep
from pacs_api.dicomweb.responses import WADO_URI
from pacs_api.errors import BadRequest, NotAcceptable, NotFound
from pacs_api.imaging.encode import ENCODERS, Viewport
from pacs_api.imaging.params import (
    DEFAULT_QUALITY,
    MAX_VIEWPORT,
    RenderOptions,
    parse_quality,
    parse_window,
)
from pacs_api.imaging.service import render_instance
from pacs_api.imaging.windowing import Window
from pacs_api.index.repository import Scope

router = APIRouter(tags=["WADO-URI"], default_response_class=Response)

DICOM = "application/dicom"
#: §9.1.2.1.5: without contentType an image is answered as image/jpeg.
DEFAULT_CONTENT_TYPE = "image/jpeg"


@router.get("/wado", responses=WADO_URI, summary="WADO-URI: retrieve one object (PS3.18 §9)")
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
    window_center: Annotated[str | None, Query(alias="windowCenter")] = None,
    window_width: Annotated[str | None, Query(alias="windowWidth")] = None,
    rows: Annotated[str | None, Query()] = None,
    columns: Annotated[str | None, Query()] = None,
    image_quality: Annotated[str | None, Query(alias="imageQuality")] = None,
    frame_number: Annotated[str | None, Query(alias="frameNumber")] = None,
) -> Response:
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
    served = _served_type(content_type)
    options = RenderOptions(
        media_type=served if served != DICOM else DEFAULT_CONTENT_TYPE,
        window=_window(window_center, window_width),
        viewport=_viewport(rows, columns),
        quality=parse_quality(image_quality, "imageQuality") if image_quality else DEFAULT_QUALITY,
    )
    frame = _positive(frame_number, "frameNumber") if frame_number else 1
    if anonymize is not None:
        raise NotAcceptable("anonymize is not supported: the object would be sent identified")
    found = index.instances(scope)
    if not found:
        raise NotFound(
            f"no object {scope.sop_instance_uid} in series {scope.series_uid} of "
            f"study {scope.study_uid} is stored"
        )
    stored = found[0]
    if served != DICOM:
        image = render_instance(store, stored, options, frame=frame)
        return Response(image, media_type=served)
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


def _served_type(content_type: str | None) -> str:
    """The first of the content types asked for that is served; 406 when none is."""
    wanted = [item.split(";")[0].strip().lower() for item in (content_type or "").split(",")]
    wanted = [item for item in wanted if item] or [DEFAULT_CONTENT_TYPE]
    for item in wanted:
        if item == DICOM or item in ENCODERS:
            return item
    raise NotAcceptable(
        f"contentType {', '.join(wanted)} is not served; ask for {DICOM} (the object as stored) "
        f"or a rendered {' or '.join(ENCODERS)} (PS3.18 §9.1.2.1.5)"
    )


def _positive(text: str, name: str, limit: int | None = None) -> int:
    stripped = text.strip()
    if not (stripped.isascii() and stripped.isdigit() and int(stripped) >= 1):
        raise BadRequest(f"parameter {name}={text!r} must be a whole number from 1")
    if limit is not None and int(stripped) > limit:
        raise BadRequest(f"parameter {name}={text!r} must be at most {limit}")
    return int(stripped)


def _window(center: str | None, width: str | None) -> Window | None:
    """windowCenter and windowWidth (§9.1.2.1.9-10): both or neither, a linear window."""
    if center is None and width is None:
        return None
    if center is None or width is None:
        raise BadRequest("parameters windowCenter and windowWidth go together (PS3.18 §9.1.2.1)")
    return parse_window(f"{center},{width}", parameter="windowCenter/windowWidth")


def _viewport(rows: str | None, columns: str | None) -> Viewport | None:
    """rows and columns (§9.1.2.1.7-8): the size to fit, either alone keeping the aspect."""
    if rows is None and columns is None:
        return None
    return Viewport(
        _positive(columns, "columns", MAX_VIEWPORT) if columns else None,
        _positive(rows, "rows", MAX_VIEWPORT) if rows else None,
    )
