"""Reading a multipart/related request body as a stream (PS3.18 §8.6.1.2, RFC 2387).

The body is pushed chunk by chunk through the shared :class:`~pacs_common.media.MultipartDecoder`;
each part is spooled to a :class:`~tempfile.SpooledTemporaryFile` (in memory up to a
threshold, then on disk) and hashed as it arrives. Memory is bounded by the spool threshold of
the parts held (at most two in STOW-RS), whatever the size of the body.
"""

from __future__ import annotations

import hashlib
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
    """One received body part: its headers, its bytes (spooled) and their SHA-256."""

    def __init__(self, headers: dict[str, str], spool_bytes: int, spool_dir: Path | None) -> None:
        self.headers = headers
        self.file: IO[bytes] = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - see close()
            max_size=spool_bytes, dir=str(spool_dir) if spool_dir else None
        )
        self.size = 0
        self._hash = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self._hash.update(data)
        self.size += len(data)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    @property
    def content_type(self) -> MediaType:
        return MediaType.parse(self.headers.get("content-type", ""))

    def close(self) -> None:
        self.file.close()


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
                part.file.seek(0)
                yield part
        decoder.finish()
    except MultipartError as exc:
        raise BadRequest(f"malformed multipart/related body: {exc}") from None
    finally:
        for part in ready:
            part.close()
        if decoder.current is not None:
            decoder.current.close()
