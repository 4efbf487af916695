"""DICOMweb media types and multipart/related bodies (PS3.18 §8.6.1.2, RFC 2387, RFC 2046 §5.1).

STOW-RS requests and WADO-RS responses carry DICOM instances as the parts of a
``multipart/related; type="application/dicom"; boundary=...`` body (PS3.18 §8.6.1.2, §10.5.1).

- :func:`encode_multipart_related` streams such a body from an iterable of part payloads.
- :func:`iter_multipart_related` decodes one from an iterable of chunks, one part at a time, with
  python-multipart's streaming :class:`~python_multipart.multipart.MultipartParser`; it holds
  one part in memory at a time, never the whole body.
"""

from __future__ import annotations

import re
import secrets
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

__all__ = [
    "APPLICATION_DICOM",
    "APPLICATION_DICOM_JSON",
    "APPLICATION_JSON",
    "APPLICATION_OCTET_STREAM",
    "MULTIPART_RELATED",
    "PROBLEM_JSON",
    "MultipartError",
    "Part",
    "encode_multipart_related",
    "iter_multipart_related",
    "multipart_related_type",
    "new_boundary",
    "parse_content_type",
]

#: DICOM Part 10 instances (PS3.18 §8.7.3.2, PS3.10).
APPLICATION_DICOM: Final = "application/dicom"
#: The DICOM JSON Model (PS3.18 Annex F): QIDO-RS results, metadata, the STOW-RS response.
APPLICATION_DICOM_JSON: Final = "application/dicom+json"
APPLICATION_JSON: Final = "application/json"
#: Bulk data and uncompressed frames (PS3.18 §8.7.3.3).
APPLICATION_OCTET_STREAM: Final = "application/octet-stream"
#: Multi-part payloads (RFC 2387); the ``type`` parameter names the parts' media type.
MULTIPART_RELATED: Final = "multipart/related"
#: Error details (RFC 9457).
PROBLEM_JSON: Final = "application/problem+json"

_CRLF: Final = b"\r\n"
#: RFC 2046 §5.1.1: 1 to 70 characters; we also keep to the characters valid in an HTTP token,
#: so the boundary parameter never needs quoting.
_BOUNDARY_RE: Final = re.compile(r"^[0-9A-Za-z'+_.-]{1,70}$")
#: Headers allowed per part (python-multipart's default of 8 is tight for WADO-RS parts, which
#: may carry Content-Type, Content-Length, Content-Location, Content-ID, MIME-Version, ...).
_MAX_HEADER_COUNT: Final = 32


class MultipartError(ValueError):
    """A body that is not a well-formed multipart/related message, or an unusable boundary."""


@dataclass(slots=True)
class Part:
    """One body part: its headers (names lower-cased) and its payload."""

    headers: dict[str, str] = field(default_factory=dict)
    content: bytes = b""

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")


def new_boundary() -> str:
    """A fresh random boundary; 128 random bits make a collision with part data negligible."""
    return f"pacs-cloud-{secrets.token_hex(16)}"


def multipart_related_type(content_type: str, boundary: str) -> str:
    """The Content-Type header of a multipart/related body whose parts are *content_type*."""
    return f'{MULTIPART_RELATED}; type="{content_type}"; boundary={boundary}'


def parse_content_type(header: str) -> tuple[str, dict[str, str]]:
    """Split a Content-Type header into its lower-cased media type and its parameters.

    Parameter names are lower-cased; quoted values are unquoted (RFC 9110 §8.3.1).
    """
    media_type, params = parse_options_header(header)
    return (
        media_type.decode("latin-1").strip().lower(),
        {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in params.items()},
    )


def encode_multipart_related(
    parts: Iterable[bytes],
    content_type: str = APPLICATION_DICOM,
    *,
    boundary: str | None = None,
) -> tuple[Iterator[bytes], str]:
    """Encode *parts* as a multipart/related body (PS3.18 §8.6.1.2, RFC 2046 §5.1.1).

    Returns ``(body, content_type_header)``. The body is a lazy iterator of chunks (each part's
    payload is passed through without copying), suitable as an ``httpx`` request ``content``;
    ``b"".join(body)`` gives the whole body. Each part carries a Content-Type of
    *content_type*. With a caller-supplied *boundary*, a part that contains the delimiter
    raises :class:`MultipartError` while the body is being produced.
    """
    if boundary is None:
        boundary = new_boundary()
    elif not _BOUNDARY_RE.match(boundary):
        raise MultipartError(f"unusable multipart boundary {boundary!r} (RFC 2046 §5.1.1)")
    delimiter = b"--" + boundary.encode("ascii")
    part_head = delimiter + _CRLF + b"Content-Type: " + content_type.encode("ascii") + _CRLF * 2

    def body() -> Iterator[bytes]:
        for payload in parts:
            if payload.startswith(delimiter) or _CRLF + delimiter in payload:
                # RFC 2046 §5.1.1: the delimiter (at a line start) must not occur in any part.
                raise MultipartError("a part contains the multipart delimiter")
            yield part_head
            yield payload
            yield _CRLF
        yield delimiter + b"--" + _CRLF

    return body(), multipart_related_type(content_type, boundary)


class _Decoder:
    """python-multipart callbacks collecting finished parts into a queue."""

    def __init__(self) -> None:
        self.done: deque[Part] = deque()
        self.ended = False
        self._headers: dict[str, str] = {}
        self._field = bytearray()
        self._value = bytearray()
        self._data = bytearray()

    def on_part_begin(self) -> None:
        self._headers = {}
        self._data = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        name = self._field.decode("latin-1").strip().lower()
        self._headers[name] = self._value.decode("latin-1").strip()
        self._field.clear()
        self._value.clear()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        self._data += data[start:end]

    def on_part_end(self) -> None:
        self.done.append(Part(self._headers, bytes(self._data)))
        self._data = bytearray()

    def on_end(self) -> None:
        self.ended = True


def _skip_preamble(chunks: Iterable[bytes], delimiter: bytes) -> Iterator[bytes]:
    """Drop an RFC 2046 §5.1.1 preamble: anything before the first delimiter at a line start.

    python-multipart expects the body to begin with the delimiter (after optional CRLFs).
    """
    head = b""
    it = iter(chunks)
    for chunk in it:
        head += chunk
        if head.startswith(delimiter):
            break
        at = head.find(_CRLF + delimiter)
        if at >= 0:
            head = head[at:]
            break
        if len(head) > 64 * 1024:
            raise MultipartError("no multipart delimiter in the first 64 KiB of the body")
    yield head
    yield from it


def iter_multipart_related(chunks: Iterable[bytes], boundary: str | bytes) -> Iterator[Part]:
    """Decode a multipart/related body given as *chunks*, yielding each part as it completes.

    *boundary* is the ``boundary`` parameter of the body's Content-Type (see
    :func:`parse_content_type`). Raises :class:`MultipartError` on a malformed body, including
    one that ends before its close delimiter (a truncated response).
    """
    boundary_bytes = boundary.encode("latin-1") if isinstance(boundary, str) else boundary
    if not boundary_bytes:
        raise MultipartError("empty multipart boundary")
    decoder = _Decoder()
    try:
        parser = MultipartParser(
            boundary_bytes,
            {
                "on_part_begin": decoder.on_part_begin,
                "on_header_field": decoder.on_header_field,
                "on_header_value": decoder.on_header_value,
                "on_header_end": decoder.on_header_end,
                "on_part_data": decoder.on_part_data,
                "on_part_end": decoder.on_part_end,
                "on_end": decoder.on_end,
            },
            max_header_count=_MAX_HEADER_COUNT,
        )
        for chunk in _skip_preamble(chunks, b"--" + boundary_bytes):
            if chunk:
                parser.write(chunk)
            while decoder.done:
                yield decoder.done.popleft()
        parser.finalize()
    except FormParserError as exc:
        raise MultipartError(f"malformed multipart body: {exc}") from exc
    if not decoder.ended:
        raise MultipartError("multipart body ended before its close delimiter")
