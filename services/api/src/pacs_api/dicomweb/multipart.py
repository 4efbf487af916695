"""Reading a multipart/related request body as a stream (PS3.18 §8.6.1.2, RFC 2387).

The body is pushed chunk by chunk through python-multipart's parser; each part is spooled to a
:class:`~tempfile.SpooledTemporaryFile` (in memory up to a threshold, then on disk) and hashed as
it arrives. At most one part is held at a time, so memory is bounded by the spool threshold,
whatever the size of the body.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import IO, Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser

from pacs_api.errors import BadRequest, PayloadTooLarge


@dataclass(frozen=True, slots=True)
class MediaType:
    """A parsed media type: ``type/subtype`` in lower case and its parameters."""

    value: str
    params: dict[str, str]

    @classmethod
    def parse(cls, header: str) -> MediaType:
        message = Message()
        message["content-type"] = header
        params = message.get_params() or []
        value = params[0][0].lower() if params else ""
        rest = {str(k).lower(): str(v) for k, v in params[1:]}
        return cls(value, rest)


@dataclass(slots=True)
class Part:
    """One received body part: its headers, its bytes (spooled) and their digest."""

    headers: dict[str, str]
    file: IO[bytes]
    size: int = 0
    sha256: str = ""
    _hash: Any = field(default_factory=hashlib.sha256, repr=False)

    @property
    def content_type(self) -> MediaType:
        return MediaType.parse(self.headers.get("content-type", ""))

    def close(self) -> None:
        self.file.close()


class MultipartReader:
    """Push-parser for one multipart body; finished parts are collected in :attr:`ready`."""

    def __init__(self, boundary: str, *, spool_bytes: int, spool_dir: Path | None) -> None:
        self._spool_bytes = spool_bytes
        self._spool_dir = str(spool_dir) if spool_dir else None
        self._current: Part | None = None
        self._field = b""
        self._value = b""
        self._headers: dict[str, str] = {}
        self.ready: list[Part] = []
        self.complete = False
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
                "on_end": self._end,
            },
        )

    def feed(self, chunk: bytes) -> None:
        try:
            self._parser.write(chunk)
        except MultipartParseError as exc:
            raise BadRequest(f"malformed multipart/related body: {exc}") from None

    def close(self) -> None:
        """Discard any part not yet handed out."""
        for part in self.ready:
            part.close()
        self.ready.clear()
        if self._current is not None:
            self._current.close()
            self._current = None

    # python-multipart callbacks
    def _part_begin(self) -> None:
        self._headers = {}

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        name = self._field.decode("latin-1").strip().lower()
        self._headers[name] = self._value.decode("latin-1").strip()
        self._field = self._value = b""

    def _headers_finished(self) -> None:
        spool = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - closed by Part.close
            max_size=self._spool_bytes, dir=self._spool_dir
        )
        self._current = Part(self._headers, spool)

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        assert self._current is not None
        view = data[start:end]
        self._current.file.write(view)
        self._current._hash.update(view)
        self._current.size += end - start

    def _part_end(self) -> None:
        part = self._current
        if part is None:  # a part without a header block
            part = Part({}, tempfile.SpooledTemporaryFile(max_size=self._spool_bytes))
        part.sha256 = part._hash.hexdigest()
        part.file.seek(0)
        self.ready.append(part)
        self._current = None

    def _end(self) -> None:
        self.complete = True


def boundary_of(content_type: MediaType) -> str:
    boundary = content_type.params.get("boundary", "")
    if not boundary:
        raise BadRequest("the multipart/related Content-Type has no boundary parameter")
    if len(boundary) > 70:  # RFC 2046 §5.1.1
        raise BadRequest("the multipart boundary is longer than 70 characters (RFC 2046 §5.1.1)")
    return boundary


async def read_parts(
    chunks: AsyncIterator[bytes],
    reader: MultipartReader,
    *,
    max_body_bytes: int,
) -> AsyncIterator[Part]:
    """Feed the body to *reader*, yielding each part as soon as it is complete.

    Raises :class:`PayloadTooLarge` past *max_body_bytes* and :class:`BadRequest` when the body
    ends before its closing boundary.
    """
    received = 0
    async for chunk in chunks:
        received += len(chunk)
        if received > max_body_bytes:
            raise PayloadTooLarge(f"the request body exceeds the limit of {max_body_bytes} bytes")
        reader.feed(chunk)
        while reader.ready:
            yield reader.ready.pop(0)
    if not reader.complete:
        raise BadRequest(
            "the multipart/related body ended before its closing boundary (truncated request?)"
        )
