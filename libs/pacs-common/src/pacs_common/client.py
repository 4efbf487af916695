"""A typed DICOMweb client (PS3.18) on ``httpx``: STOW-RS, QIDO-RS, WADO-RS and DELETE.

The client is handed an :class:`httpx.Client` and never creates one, so the caller owns
connection pooling, timeouts, authentication and transport: a Starlette ``TestClient`` runs the
API in-process, ``httpx.MockTransport`` fakes a server. *base_url* is the DICOMweb root (the
service's ``.../dicom-web``), absolute or relative to the client's own ``base_url``::

    with httpx.Client(timeout=60) as http:
        dicomweb = DicomWebClient(http, "http://127.0.0.1:8080/dicom-web")
        result = dicomweb.store(instances)
        result.raise_for_failures()
        studies = dicomweb.search_studies(PatientID="PACS-SYNTH-0001")

Given a *token* (an API key or a JWT), every request carries ``Authorization: Bearer``
(RFC 6750 §2.1); :class:`BearerToken` does the same for any ``httpx`` call.

Errors:

    DicomWebError          any HTTP error status; carries status, title and problem+json detail
    MultipartError         a multipart response that is not well-formed (from pacs_common.media)
    httpx.TransportError   the server cannot be reached (passed through unchanged)
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from httpx._client import UseClientDefault

from pacs_common.dicomjson import JsonDataset, first_value, tag_key
from pacs_common.media import (
    APPLICATION_DICOM,
    APPLICATION_DICOM_JSON,
    APPLICATION_JSON,
    MULTIPART_RELATED,
    PROBLEM_JSON,
    MultipartError,
    encode_multipart_related,
    iter_multipart_related,
    parse_content_type,
)
from pacs_common.uids import validate_uid

__all__ = [
    "BearerToken",
    "DicomWebClient",
    "DicomWebError",
    "FailedSOP",
    "QueryValue",
    "ReferencedSOP",
    "StoreResult",
]

#: A QIDO-RS matching key value; a sequence becomes a comma-separated list (PS3.18 §8.3.4.1).
QueryValue = str | int | Sequence[str]

#: STOW-RS statuses whose body is a store response (PS3.18 §10.5.3, table 10.5.3-1):
#: 200 all stored, 202 some stored (or stored with warnings), 409 none stored.
_STORE_RESPONSE_STATUSES = frozenset({200, 202, 409})
_UID_NAMES = {
    "studies": "Study Instance UID",
    "series": "Series Instance UID",
    "instances": "SOP Instance UID",
}


class DicomWebError(Exception):
    """The server answered with an error status.

    ``detail`` is the ``detail`` of an ``application/problem+json`` body (RFC 9457) when the
    server sent one, otherwise the start of the body's text.
    """

    def __init__(
        self,
        method: str,
        url: str,
        status: int,
        *,
        title: str | None = None,
        detail: str | None = None,
        problem: Mapping[str, Any] | None = None,
    ) -> None:
        self.method = method
        self.url = url
        self.status = status
        self.title = title
        self.detail = detail
        self.problem = dict(problem) if problem is not None else None
        text = f"{method} {url} -> {status}"
        if title:
            text += f" {title}"
        if detail:
            text += f": {detail}"
        super().__init__(text)

    @classmethod
    def from_response(cls, response: httpx.Response) -> DicomWebError:
        """Build the error of a (read) response, taking problem+json details when present."""
        request = response.request
        media_type = parse_content_type(response.headers.get("content-type", ""))[0]
        problem: dict[str, Any] | None = None
        if media_type in (PROBLEM_JSON, APPLICATION_JSON):
            try:
                parsed = response.json()
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                problem = parsed
        if problem is not None:
            title = problem.get("title")
            detail = problem.get("detail")
            return cls(
                request.method,
                str(request.url),
                response.status_code,
                title=str(title) if title is not None else response.reason_phrase,
                detail=str(detail) if detail is not None else None,
                problem=problem,
            )
        text = response.text.strip()
        return cls(
            request.method,
            str(request.url),
            response.status_code,
            title=response.reason_phrase,
            detail=text[:500] or None,
        )


@dataclass(frozen=True, slots=True)
class ReferencedSOP:
    """An instance the server stored (an item of ReferencedSOPSequence, PS3.18 §10.5.3)."""

    sop_class_uid: str | None
    sop_instance_uid: str | None
    retrieve_url: str | None = None
    warning_reason: int | None = None


@dataclass(frozen=True, slots=True)
class FailedSOP:
    """An instance the server refused (an item of FailedSOPSequence, PS3.18 §10.5.3).

    ``failure_reason`` is a C-STORE status code (PS3.4 B.2.3, PS3.18 table 10.5.3-2), for
    example 0xA900 for a data set that does not match its SOP class; ``error_comment`` the
    server's words for it (ErrorComment, PS3.7 C.4), when it sent them.
    """

    sop_class_uid: str | None
    sop_instance_uid: str | None
    failure_reason: int | None
    error_comment: str | None = None


@dataclass(frozen=True, slots=True)
class StoreResult:
    """A parsed STOW-RS store response (PS3.18 §10.5.3).

    ``status`` is the HTTP status: 200 (all stored), 202 (partly stored, or stored with
    warnings) or 409 (nothing stored). :meth:`raise_for_failures` turns failures into an error.
    """

    status: int
    url: str = ""
    referenced: list[ReferencedSOP] = field(default_factory=list)
    failed: list[FailedSOP] = field(default_factory=list)
    retrieve_url: str | None = None
    raw: JsonDataset = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.failed and self.status != 409

    def raise_for_failures(self) -> StoreResult:
        """Return self when nothing failed, else raise :class:`DicomWebError` listing failures."""
        if self.ok:
            return self
        shown = ", ".join(
            f"{f.sop_instance_uid} (0x{f.failure_reason:04X})"
            if f.failure_reason is not None
            else f"{f.sop_instance_uid}"
            for f in self.failed[:5]
        )
        more = f" and {len(self.failed) - 5} more" if len(self.failed) > 5 else ""
        raise DicomWebError(
            "POST",
            self.url,
            self.status,
            title="store failures",
            detail=f"{len(self.failed)} instance(s) not stored: {shown}{more}",
        )

    @classmethod
    def from_json(cls, status: int, body: JsonDataset, *, url: str = "") -> StoreResult:
        """Parse the DICOM JSON store response *body* (PS3.18 §10.5.3, Annex F)."""
        referenced = [
            ReferencedSOP(
                sop_class_uid=first_value(item, "ReferencedSOPClassUID"),
                sop_instance_uid=first_value(item, "ReferencedSOPInstanceUID"),
                retrieve_url=first_value(item, "RetrieveURL"),
                warning_reason=_int_or_none(first_value(item, "WarningReason")),
            )
            for item in _sequence(body, "ReferencedSOPSequence")
        ]
        failed = [
            FailedSOP(
                sop_class_uid=first_value(item, "ReferencedSOPClassUID"),
                sop_instance_uid=first_value(item, "ReferencedSOPInstanceUID"),
                failure_reason=_int_or_none(first_value(item, "FailureReason")),
                error_comment=first_value(item, "ErrorComment"),
            )
            for item in _sequence(body, "FailedSOPSequence")
        ]
        return cls(
            status=status,
            url=url,
            referenced=referenced,
            failed=failed,
            retrieve_url=first_value(body, "RetrieveURL"),
            raw=body,
        )


def _sequence(ds: JsonDataset, keyword: str) -> list[JsonDataset]:
    element = ds.get(tag_key(keyword)) or {}
    items = element.get("Value") or []
    return [item for item in items if isinstance(item, dict)]


def _int_or_none(value: Any) -> int | None:
    return int(value) if value is not None else None


def _dicom_accept(transfer_syntax: str | None) -> str:
    """The Accept header of a WADO-RS instance retrieval (PS3.18 §8.7.3.5.2)."""
    accept = f'{MULTIPART_RELATED}; type="{APPLICATION_DICOM}"'
    if transfer_syntax:
        accept += f"; transfer-syntax={transfer_syntax}"
    return accept


class BearerToken(httpx.Auth):
    """``Authorization: Bearer <token>`` on every request (RFC 6750 §2.1): pass it as
    ``httpx.Client(auth=...)`` or per request."""

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


def bearer(token: str | None) -> httpx.Auth | UseClientDefault:
    """The ``auth`` of a request: *token* as a bearer token, else the client's own."""
    return BearerToken(token) if token else httpx.USE_CLIENT_DEFAULT


class DicomWebClient:
    """DICOMweb (PS3.18) calls against one server, through a caller-owned ``httpx.Client``;
    with *token*, each request carries it as a bearer token."""

    def __init__(self, http: httpx.Client, base_url: str, *, token: str | None = None) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self._auth = bearer(token)

    # -- helpers ---------------------------------------------------------------------------

    def _url(self, *segments: str) -> str:
        return "/".join((self.base_url, *segments))

    def _resource(self, *pairs: tuple[str, str]) -> str:
        """The URL of ``studies/{uid}/series/{uid}/...`` with each UID validated (PS3.5 §9.1),
        so that no value can add a path segment or a query to the URL."""
        segments: list[str] = []
        for kind, uid in pairs:
            segments += [kind, validate_uid(uid, what=_UID_NAMES[kind])]
        return self._url(*segments)

    @staticmethod
    def _check(response: httpx.Response) -> httpx.Response:
        if response.is_error:
            response.read()
            raise DicomWebError.from_response(response)
        return response

    def _get_json(self, url: str, params: Sequence[tuple[str, str]] = ()) -> list[JsonDataset]:
        response = self._check(
            self.http.get(
                url,
                params=tuple(params),
                headers={"Accept": APPLICATION_DICOM_JSON},
                auth=self._auth,
            )
        )
        if response.status_code == 204 or not response.content:
            return []
        body = response.json()
        if not isinstance(body, list):
            detail = "expected a JSON array of DICOM JSON datasets"
            raise DicomWebError("GET", url, response.status_code, detail=detail)
        return body

    # -- STOW-RS (PS3.18 §10.5) ------------------------------------------------------------

    def store(self, instances: Iterable[bytes], study_uid: str | None = None) -> StoreResult:
        """Store Part 10 *instances* with one STOW-RS request (``POST .../studies[/{study}]``).

        The body is streamed from *instances*. Returns the parsed store response for 200, 202
        and 409 (check :attr:`StoreResult.ok` or call :meth:`StoreResult.raise_for_failures`);
        raises :class:`DicomWebError` for any other error status.
        """
        body, content_type = encode_multipart_related(instances, APPLICATION_DICOM)
        url = self._resource(("studies", study_uid)) if study_uid else self._url("studies")
        response = self.http.post(
            url,
            content=body,
            headers={"Content-Type": content_type, "Accept": APPLICATION_DICOM_JSON},
            auth=self._auth,
        )
        status, url = response.status_code, str(response.request.url)
        media_type = parse_content_type(response.headers.get("content-type", ""))[0]
        if status in _STORE_RESPONSE_STATUSES and media_type in (
            APPLICATION_DICOM_JSON,
            APPLICATION_JSON,
        ):
            parsed = response.json()
            if isinstance(parsed, dict):
                return StoreResult.from_json(status, parsed, url=url)
        self._check(response)
        if status == 204 or not response.content:
            return StoreResult(status=status, url=url)
        raise DicomWebError(
            "POST", url, status, detail=f"unexpected store response of type {media_type!r}"
        )

    # -- QIDO-RS (PS3.18 §10.6) ------------------------------------------------------------

    @staticmethod
    def _query(
        filters: Mapping[str, QueryValue],
        includefield: Sequence[str] | None,
        fuzzymatching: bool | None,
        limit: int | None,
        offset: int | None,
    ) -> list[tuple[str, str]]:
        """Query parameters (PS3.18 §8.3.4): matching keys, includefield, fuzzy, paging."""
        params: list[tuple[str, str]] = []
        for key, value in filters.items():
            if isinstance(value, str | int):
                params.append((key, str(value)))
            else:
                params.append((key, ",".join(value)))
        params.extend(("includefield", name) for name in includefield or ())
        if fuzzymatching is not None:
            params.append(("fuzzymatching", "true" if fuzzymatching else "false"))
        if limit is not None:
            params.append(("limit", str(limit)))
        if offset is not None:
            params.append(("offset", str(offset)))
        return params

    def search_studies(
        self,
        *,
        includefield: Sequence[str] | None = None,
        fuzzymatching: bool | None = None,
        limit: int | None = None,
        offset: int | None = None,
        **filters: QueryValue,
    ) -> list[JsonDataset]:
        """``GET .../studies?{query}``; *filters* are attribute keywords or tags to match."""
        params = self._query(filters, includefield, fuzzymatching, limit, offset)
        return self._get_json(self._url("studies"), params)

    def search_series(
        self,
        study_uid: str | None = None,
        *,
        includefield: Sequence[str] | None = None,
        fuzzymatching: bool | None = None,
        limit: int | None = None,
        offset: int | None = None,
        **filters: QueryValue,
    ) -> list[JsonDataset]:
        """``GET .../series`` or ``.../studies/{study}/series``, with a query."""
        url = (
            self._resource(("studies", study_uid)) + "/series" if study_uid else self._url("series")
        )
        params = self._query(filters, includefield, fuzzymatching, limit, offset)
        return self._get_json(url, params)

    def search_instances(
        self,
        study_uid: str | None = None,
        series_uid: str | None = None,
        *,
        includefield: Sequence[str] | None = None,
        fuzzymatching: bool | None = None,
        limit: int | None = None,
        offset: int | None = None,
        **filters: QueryValue,
    ) -> list[JsonDataset]:
        """``GET .../instances``, ``.../studies/{study}/instances`` or
        ``.../studies/{study}/series/{series}/instances``, with a query."""
        if series_uid and not study_uid:
            raise ValueError("series_uid needs study_uid")
        if study_uid and series_uid:
            url = self._resource(("studies", study_uid), ("series", series_uid)) + "/instances"
        elif study_uid:
            url = self._resource(("studies", study_uid)) + "/instances"
        else:
            url = self._url("instances")
        params = self._query(filters, includefield, fuzzymatching, limit, offset)
        return self._get_json(url, params)

    # -- WADO-RS (PS3.18 §10.4) ------------------------------------------------------------

    def _retrieve(self, url: str, transfer_syntax: str | None) -> Iterator[bytes]:
        headers = {"Accept": _dicom_accept(transfer_syntax)}
        with self.http.stream("GET", url, headers=headers, auth=self._auth) as r:
            self._check(r)
            media_type, params = parse_content_type(r.headers.get("content-type", ""))
            if media_type != MULTIPART_RELATED or "boundary" not in params:
                raise MultipartError(
                    f"expected a multipart/related response with a boundary from {url}, "
                    f"got {r.headers.get('content-type')!r}"
                )
            for part in iter_multipart_related(r.iter_bytes(), params["boundary"]):
                yield part.content

    def retrieve_study(
        self, study_uid: str, *, transfer_syntax: str | None = None
    ) -> Iterator[bytes]:
        """The Part 10 bytes of every instance of a study, streamed one instance at a time.

        The request is sent when iteration starts. *transfer_syntax* adds a
        ``transfer-syntax`` parameter to the Accept header (``*`` for "as stored").
        """
        return self._retrieve(self._resource(("studies", study_uid)), transfer_syntax)

    def retrieve_series(
        self, study_uid: str, series_uid: str, *, transfer_syntax: str | None = None
    ) -> Iterator[bytes]:
        """The Part 10 bytes of every instance of a series; see :meth:`retrieve_study`."""
        url = self._resource(("studies", study_uid), ("series", series_uid))
        return self._retrieve(url, transfer_syntax)

    def retrieve_instance(
        self,
        study_uid: str,
        series_uid: str,
        sop_instance_uid: str,
        *,
        transfer_syntax: str | None = None,
    ) -> Iterator[bytes]:
        """The Part 10 bytes of one instance (a one-part multipart body); see
        :meth:`retrieve_study`."""
        url = self._resource(
            ("studies", study_uid), ("series", series_uid), ("instances", sop_instance_uid)
        )
        return self._retrieve(url, transfer_syntax)

    def metadata(
        self, study_uid: str, series_uid: str | None = None, sop_instance_uid: str | None = None
    ) -> list[JsonDataset]:
        """DICOM JSON metadata of a study, series or instance (``.../metadata``, PS3.18 §10.4)."""
        if sop_instance_uid and not series_uid:
            raise ValueError("sop_instance_uid needs series_uid")
        pairs = [("studies", study_uid)]
        if series_uid:
            pairs.append(("series", series_uid))
        if sop_instance_uid:
            pairs.append(("instances", sop_instance_uid))
        return self._get_json(self._resource(*pairs) + "/metadata")

    # -- DELETE ----------------------------------------------------------------------------

    def _delete(self, url: str) -> None:
        self._check(self.http.delete(url, auth=self._auth))

    def delete_study(self, study_uid: str) -> None:
        """``DELETE .../studies/{study}``."""
        self._delete(self._resource(("studies", study_uid)))

    def delete_series(self, study_uid: str, series_uid: str) -> None:
        """``DELETE .../studies/{study}/series/{series}``."""
        self._delete(self._resource(("studies", study_uid), ("series", series_uid)))

    def delete_instance(self, study_uid: str, series_uid: str, sop_instance_uid: str) -> None:
        """``DELETE .../studies/{study}/series/{series}/instances/{sop}``."""
        self._delete(
            self._resource(
                ("studies", study_uid), ("series", series_uid), ("instances", sop_instance_uid)
            )
        )
