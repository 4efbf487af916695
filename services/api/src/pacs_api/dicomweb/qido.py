"""QIDO-RS: the Search transaction (PS3.18 §10.6).

Six resources, one per query level and scope (PS3.18 table 10.6.1-1):
``/studies``, ``/studies/{study}/series``, ``/series``,
``/studies/{study}/series/{series}/instances``, ``/studies/{study}/instances``, ``/instances``.

Each route parses the query parameters (:mod:`pacs_api.dicomweb.qido_params`), asks the index
(:func:`pacs_api.index.search.run_search`) and answers:

- ``200`` with an ``application/dicom+json`` array (PS3.18 §10.6.3, Annex F), also when
  nothing matches (``[]``): PS3.18 allows ``204`` there too, but an empty array is one code
  path for every client and is what OHIF and dicomweb-client handle without special cases.
  A client accepting only ``application/json`` gets the same array under that type.
- ``multipart/related; type="application/dicom+xml"`` when asked (§10.6.3.2): one PS3.19
  Native DICOM Model document per match (:mod:`pacs_api.dicomweb.xml`), ``204`` when nothing
  matches (a multipart body cannot be empty). Any other Accept is answered ``406``.
- ``Warning: 299 {host} "<text>"`` headers (RFC 7234 §5.5; PS3.18 §8.3.4.2 uses them for
  fuzzy matching) for every ignored parameter or key, a lowered limit, and when more
  matches exist beyond the page ("use offset to page").
- ``400`` for a malformed value, naming the parameter and the value.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pacs_common.attributes import Level
from pacs_common.media import APPLICATION_DICOM_JSON as DICOM_JSON

from pacs_api.deps import BaseUrlDep, IndexDep, SettingsDep
from pacs_api.dicomweb.negotiation import parse_accept
from pacs_api.dicomweb.qido_params import parse_query
from pacs_api.dicomweb.responses import QIDO
from pacs_api.dicomweb.scope import SeriesScope, StudyScope
from pacs_api.dicomweb.xml import MULTIPART_XML, admits_xml, xml_answer
from pacs_api.errors import NotAcceptable, warning_header
from pacs_api.index.repository import Index, Scope
from pacs_api.settings import Settings

router = APIRouter(tags=["QIDO-RS"], default_response_class=Response)

JSON = "application/json"
TRUNCATED = "The number of results exceeded the limit; use offset to page"
_AGENT = re.compile(r"[A-Za-z0-9.\-]+(?::\d+)?|\[[0-9A-Fa-f:.]+\](?::\d+)?")

_PARAMETERS = (
    "Matching keys by keyword or tag (`PatientName=DOE*`, `00100020=PAT1`, "
    "`StudyDate=20240101-`), `includefield`, `limit`, `offset`, `fuzzymatching` "
    "(PS3.18 §8.3.4)."
)


@router.get(
    "/studies",
    responses=QIDO,
    summary="Search for studies (PS3.18 §10.6)",
    description=_PARAMETERS,
)
def search_studies(
    request: Request, index: IndexDep, settings: SettingsDep, base: BaseUrlDep
) -> Response:
    return _search(request, index, settings, base, Level.STUDY, None)


@router.get(
    "/studies/{study}/series",
    responses=QIDO,
    summary="Search for series of a study",
    description=_PARAMETERS,
)
def search_study_series(
    scope: StudyScope, request: Request, index: IndexDep, settings: SettingsDep, base: BaseUrlDep
) -> Response:
    return _search(request, index, settings, base, Level.SERIES, scope)


@router.get("/series", responses=QIDO, summary="Search for series", description=_PARAMETERS)
def search_series(
    request: Request, index: IndexDep, settings: SettingsDep, base: BaseUrlDep
) -> Response:
    return _search(request, index, settings, base, Level.SERIES, None)


@router.get(
    "/studies/{study}/series/{series}/instances",
    responses=QIDO,
    summary="Search for instances of a series",
    description=_PARAMETERS,
)
def search_series_instances(
    scope: SeriesScope, request: Request, index: IndexDep, settings: SettingsDep, base: BaseUrlDep
) -> Response:
    return _search(request, index, settings, base, Level.IMAGE, scope)


@router.get(
    "/studies/{study}/instances",
    responses=QIDO,
    summary="Search for instances of a study",
    description=_PARAMETERS,
)
def search_study_instances(
    scope: StudyScope, request: Request, index: IndexDep, settings: SettingsDep, base: BaseUrlDep
) -> Response:
    return _search(request, index, settings, base, Level.IMAGE, scope)


@router.get("/instances", responses=QIDO, summary="Search for instances", description=_PARAMETERS)
def search_instances(
    request: Request, index: IndexDep, settings: SettingsDep, base: BaseUrlDep
) -> Response:
    return _search(request, index, settings, base, Level.IMAGE, None)


def _search(
    request: Request,
    index: Index,
    settings: Settings,
    base: str,
    level: Level,
    scope: Scope | None,
) -> Response:
    media_type = answer_media_type(", ".join(request.headers.getlist("accept")) or None)
    query, warnings = parse_query(
        request.query_params.multi_items(),
        level=level,
        settings=settings,
        base_url=base,
        study_uid=scope.study_uid if scope else None,
        series_uid=scope.series_uid if scope else None,
    )
    result = index.search(query)
    if media_type == MULTIPART_XML:
        response = xml_answer(result.datasets)
    else:
        response = JSONResponse(result.datasets, media_type=media_type)
    agent = _warn_agent(base)
    for text in [*warnings, *result.warnings, *([TRUNCATED] if result.truncated else [])]:
        response.headers.append("Warning", warning_header(text, agent))
    return response


def answer_media_type(accept: str | None) -> str:
    """The media type of the answer: DICOM JSON unless the client's preferred range is plain
    JSON or multipart DICOM XML (PS3.18 §10.6.3, §8.7.4)."""
    for accepted in parse_accept(accept):
        if accepted.media.value in (DICOM_JSON, "application/*", "*/*"):
            return DICOM_JSON
        if accepted.media.value == JSON:
            return JSON
        if admits_xml(accepted.media):
            return MULTIPART_XML
    raise NotAcceptable(
        f"cannot answer Accept: {accept!r}; QIDO-RS answers are {DICOM_JSON} or "
        f"{MULTIPART_XML} (PS3.18 §10.6.3)"
    )


def _warn_agent(base: str) -> str:
    """RFC 7234 warn-agent: the service's ``host[:port]``, or a pseudonym when odd."""
    netloc = urlsplit(base).netloc
    return netloc if _AGENT.fullmatch(netloc) else "pacs-cloud"
