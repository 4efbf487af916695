"""DICOMweb media types and multipart/related bodies (PS3.18 §8.6.1.2, RFC 2387, RFC 2046 §5.1).

STOW-RS requests and WADO-RS responses carry DICOM instances as the parts of a
``multipart/related; type="application/dicom"; boundary=...`` body (PS3.18 §8.6.1.2, §10.5.1).

- :func:`encode_multipart_related` streams such a body from an iterable of part payloads.
- :class:`MultipartDecoder` decodes one pushed chunk by chunk, with python-multipart's
  streaming :class:`~python_multipart.multipart.MultipartParser`, each part's payload going to
  a sink of the caller's (the API spools and hashes STOW-RS parts into temporary files);
- :func:`iter_multipart_related` decodes one from an iterable of chunks, one part at a time in
  memory, never the whole body.
"""

from __future__ import annotations

import io
import re
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final, Generic, Protocol, TypeVar

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

__all__ = [
    "APPLICATION_DICOM",
    "APPLICATION_DICOM_JSON",
    "APPLICATION_JSON",
    "APPLICATION_OCTET_STREAM",
    "MULTIPART_RELATED",
    "PROBLEM_JSON",
    "MultipartDecoder",
    "MultipartError",
    "Part",
    "PartSink",
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
#: Bytes of preamble tolerated before the first delimiter.
_MAX_PREAMBLE: Final = 64 * 1024


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


class PartSink(Protocol):
    """Where one part's payload goes while it arrives (memory, a spool file, a hash, ...)."""

    def write(self, data: bytes | memoryview, /) -> object: ...


SinkT = TypeVar("SinkT", bound=PartSink)


class MultipartDecoder(Generic[SinkT]):
    """Push decoder of one multipart body (RFC 2046 §5.1) on python-multipart's parser.

    :meth:`feed` takes the body chunk by chunk and returns the parts completed so far as
    ``(headers, sink)`` pairs; each part's payload goes, as it arrives, to the sink that
    *new_sink* made for it from its headers (names lower-cased). A preamble before the first
    delimiter is skipped. :meth:`finish` raises :class:`MultipartError` when the body ended
    before its close delimiter. Memory is what the sinks keep, plus one header block.
    """

    def __init__(self, boundary: str | bytes, new_sink: Callable[[dict[str, str]], SinkT]) -> None:
        boundary_bytes = boundary.encode("latin-1") if isinstance(boundary, str) else boundary
        if not boundary_bytes:
            raise MultipartError("empty multipart boundary")
        self._delimiter = b"--" + boundary_bytes
        self._new_sink = new_sink
        self._head: bytes | None = b""  # bytes before the first delimiter; None once found
        self._headers: dict[str, str] = {}
        self._field = bytearray()
        self._value = bytearray()
        self._sink: SinkT | None = None
        self._done: list[tuple[dict[str, str], SinkT]] = []
        self.ended = False
        try:
            self._parser = MultipartParser(
                boundary_bytes,
                {
                    "on_part_begin": self._on_part_begin,
                    "on_header_field": self._on_header_field,
                    "on_header_value": self._on_header_value,
                    "on_header_end": self._on_header_end,
                    "on_headers_finished": self._on_headers_finished,
                    "on_part_data": self._on_part_data,
                    "on_part_end": self._on_part_end,
                    "on_end": self._on_end,
                },
                max_header_count=_MAX_HEADER_COUNT,
            )
        except FormParserError as exc:
            raise MultipartError(f"unusable multipart boundary: {exc}") from exc

    @property
    def current(self) -> SinkT | None:
        """The sink of the part being received, if any (to release it on an error)."""
        return self._sink

    def feed(self, chunk: bytes) -> list[tuple[dict[str, str], SinkT]]:
        """Decode the next chunk; return the parts it completed."""
        if self._head is not None:
            chunk = self._after_preamble(chunk)
        if chunk:
            try:
                self._parser.write(chunk)
            except FormParserError as exc:
                raise MultipartError(f"malformed multipart body: {exc}") from exc
        done, self._done = self._done, []
        return done

    def finish(self) -> None:
        """Raise :class:`MultipartError` unless the close delimiter was seen."""
        if not self.ended:
            raise MultipartError("the multipart body ended before its close delimiter")

    def _after_preamble(self, chunk: bytes) -> bytes:
        """RFC 2046 §5.1.1: anything before the first delimiter at a line start is ignored
        (python-multipart expects the body to begin with the delimiter)."""
        assert self._head is not None
        head = self._head + chunk
        if head.startswith(self._delimiter):
            self._head = None
            return head
        at = head.find(_CRLF + self._delimiter)
        if at >= 0:
            self._head = None
            return head[at:]
        if len(head) > _MAX_PREAMBLE:
            raise MultipartError("no multipart delimiter in the first 64 KiB of the body")
        self._head = head
        return b""

    # python-multipart callbacks
    def _on_part_begin(self) -> None:
        self._headers = {}

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _on_header_end(self) -> None:
        name = self._field.decode("latin-1").strip().lower()
        self._headers[name] = self._value.decode("latin-1").strip()
        self._field.clear()
        self._value.clear()

    def _on_headers_finished(self) -> None:
        self._sink = self._new_sink(self._headers)

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._sink is None:  # a part with no header block
            self._sink = self._new_sink(self._headers)
        self._sink.write(memoryview(data)[start:end])  # no copy: the sink decides

    def _on_part_end(self) -> None:
        if self._sink is None:  # an empty part with no header block
            self._sink = self._new_sink(self._headers)
        self._done.append((self._headers, self._sink))
        self._sink = None

    def _on_end(self) -> None:
        self.ended = True


def iter_multipart_related(chunks: Iterable[bytes], boundary: str | bytes) -> Iterator[Part]:
    """Decode a multipart/related body given as *chunks*, yielding each part as it completes.

    *boundary* is the ``boundary`` parameter of the body's Content-Type (see
    :func:`parse_content_type`). Raises :class:`MultipartError` on a malformed body, including
    one that ends before its close delimiter (a truncated response).
    """
    decoder = MultipartDecoder(boundary, lambda _headers: io.BytesIO())
    for chunk in chunks:
        for headers, payload in decoder.feed(chunk):
            yield Part(headers, payload.getvalue())
    decoder.finish()
