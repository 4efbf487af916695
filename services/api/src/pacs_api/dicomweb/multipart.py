"""Reading a multipart/related request body as a stream (PS3.18 §8.6.1.2, RFC 2387).

The body is pushed chunk by chunk through the shared :class:`~pacs_common.media.MultipartDecoder`;
each part is kept in memory up to a threshold, then spooled to a temporary file, and hashed as
it arrives. Memory is bounded by the spool threshold of
the parts held (at most two in STOW-RS), whatever the size of the body.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pacs_common.media import MultipartDecoder, MultipartError, parse_content_type

from pacs_api.errors import BadRequest, PayloadTooLarge


@dataclass(frozen=True, slots=True)
class MediaType:
    """A parsed media type: ``type/subtype`` in lower case and its parameters."""

    value: str
    params: dict[str, str]

    @classmethod
    def parse(cls, header: str) -> MediaType:
        value, params = parse_content_type(header)
        return cls(value, params)


class Part:
    """One received body part: its headers, its bytes and their SHA-256.

    The bytes are kept as the received chunks while they fit in *spool_bytes* (joined once,
    when the part is complete) and spill to an anonymous temporary file beyond that.
    """

    def __init__(self, headers: dict[str, str], spool_bytes: int, spool_dir: Path | None) -> None:
        self.headers = headers
        self.size = 0
        self._spool_bytes = spool_bytes
        self._spool_dir = spool_dir
        self._chunks: list[bytes | memoryview] = []
        self._file: IO[bytes] | None = None
        self._hash = hashlib.sha256()

    def write(self, data: bytes | memoryview) -> None:
        self._hash.update(data)
        self.size += len(data)
        if self._file is not None:
            self._file.write(data)
            return
        self._chunks.append(data)
        if self.size > self._spool_bytes:
            self._file = tempfile.TemporaryFile(dir=self._spool_dir)  # noqa: SIM115 - close()
            self._file.writelines(self._chunks)
            self._chunks.clear()

    def complete(self) -> None:
        """The part is whole: make :attr:`file` readable from its start."""
        if self._file is None:
            self._file = io.BytesIO(b"".join(self._chunks))
            self._chunks.clear()
        self._file.seek(0)

    @property
    def file(self) -> IO[bytes]:
        if self._file is None:
            raise RuntimeError("the part is not complete")
        return self._file

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    @property
    def content_type(self) -> MediaType:
        return MediaType.parse(self.headers.get("content-type", ""))

    def close(self) -> None:
        self._chunks.clear()
        if self._file is not None:
            self._file.close()


def boundary_of(content_type: MediaType) -> str:
    boundary = content_type.params.get("boundary", "")
    if not boundary:
        raise BadRequest("the multipart/related Content-Type has no boundary parameter")
    if len(boundary) > 70:  # RFC 2046 §5.1.1
        raise BadRequest("the multipart boundary is longer than 70 characters (RFC 2046 §5.1.1)")
    return boundary


async def read_parts(
    chunks: AsyncIterator[bytes],
    boundary: str,
    *,
    spool_bytes: int,
    spool_dir: Path | None,
    max_body_bytes: int,
) -> AsyncIterator[Part]:
    """Yield each part of the body as soon as it is complete, positioned at its start.

    The caller owns (and closes) every part yielded. Raises :class:`PayloadTooLarge` past
    *max_body_bytes* and :class:`BadRequest` for a malformed body or one that ends before its
    closing boundary.
    """
    decoder = MultipartDecoder(boundary, lambda headers: Part(headers, spool_bytes, spool_dir))
    ready: list[Part] = []
    received = 0
    try:
        async for chunk in chunks:
            received += len(chunk)
            if received > max_body_bytes:
                raise PayloadTooLarge(
                    f"the request body exceeds the limit of {max_body_bytes} bytes"
                )
            ready.extend(part for _, part in decoder.feed(chunk))
            while ready:
                part = ready.pop(0)
                part.complete()
                yield part
        decoder.finish()
    except MultipartError as exc:
        raise BadRequest(f"malformed multipart/related body: {exc}") from None
    finally:
        for part in ready:
            part.close()
        if decoder.current is not None:
            decoder.current.close()
