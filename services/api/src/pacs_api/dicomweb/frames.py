"""WADO-RS Retrieve Frames (PS3.18 §10.4.1.1.3): pixel data frames cut from the stored object.

``GET .../instances/{instance}/frames/{list}`` answers ``multipart/related`` with one part per
requested frame (1-based numbers, comma-separated, in the order asked), each part carrying its
Content-Location. Only the bytes needed are read, by ranged reads of the stored object, at the
Pixel Data extent recorded at ingest:

- Native pixel data (PS3.5 §8.2): frame *k* is the ``frame_size`` bytes after
  ``(k - 1) * frame_size``. One-bit data (BitsAllocated 1) is packed without padding between
  frames (PS3.5 §8.1.1 and §8.2), so a frame may start inside a byte: it is shifted to start
  on a byte boundary, low-order bits first.
- Encapsulated pixel data (PS3.5 §A.4): a Basic Offset Table locates each frame's fragments;
  without one, a single frame is every fragment, and several frames are split by pydicom's
  ``pydicom.encaps.get_frame`` over the Pixel Data value (never the whole object).

The media type and transfer syntax of the answer are negotiated by
:func:`~pacs_api.dicomweb.frame_media.choose_frame_media` (PS3.18 §8.7.3.3.2, §8.7.3.5):
frames are served as stored, or, asked for as native octet-stream when stored compressed,
decoded from the whole object (:class:`~pacs_api.imaging.transcode.DecodedFrames`).
"""

from __future__ import annotations

import json
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from pacs_common.dicomjson import tag_key
from pacs_common.storage.base import ObjectStore
from pydicom.encaps import generate_fragments, get_frame, parse_basic_offsets

from pacs_api.deps import BaseUrlDep, IndexDep, StoreDep
from pacs_api.dicomweb.frame_media import FrameMedia, choose_frame_media, is_native
from pacs_api.dicomweb.responses import FRAMES
from pacs_api.dicomweb.scope import InstanceScope, describe
from pacs_api.errors import BadRequest, NotAcceptable, NotFound
from pacs_api.imaging.transcode import DecodedFrames, Untranscodable
from pacs_api.index.repository import Index, Scope, StoredInstance

router = APIRouter(tags=["WADO-RS"], default_response_class=Response)

PIXEL_DATA = tag_key("PixelData")
ITEM_HEADER = 8  # (FFFE,E000) tag and 32-bit length (PS3.5 §7.5)
MAX_FRAMES_PER_REQUEST = 10_000


@router.get(
    "/studies/{study}/series/{series}/instances/{instance}/frames/{frames}",
    responses=FRAMES,
    summary="Pixel data frames (PS3.18 §10.4.1.1.3)",
)
def retrieve_frames(
    scope: InstanceScope,
    frames: str,
    request: Request,
    index: IndexDep,
    store: StoreDep,
    base: BaseUrlDep,
) -> StreamingResponse:
    numbers = parse_frame_list(frames)
    stored, layout = _locate(index, scope)
    media = choose_frame_media(request.headers.get("accept"), stored.transfer_syntax_uid)
    source = _open_frames(store, stored, layout, decode=media.decode)
    beyond = [n for n in numbers if n > source.count]
    if beyond:
        raise NotFound(
            f"frame {beyond[0]} is beyond the {source.count} frame(s) of {describe(scope)}"
        )
    location = (
        f"{base}/studies/{stored.study_uid}/series/{stored.series_uid}"
        f"/instances/{stored.sop_instance_uid}/frames"
    )
    first = source.read(numbers[0])  # errors (store outage, broken items) before any byte
    boundary = uuid.uuid4().hex
    return StreamingResponse(
        _multipart(source, numbers, first, media, location, boundary),
        media_type=f'multipart/related; type="{media.media_type}"; boundary={boundary}',
    )


def parse_frame_list(text: str) -> list[int]:
    """The 1-based frame numbers of a ``{frames}`` path segment (PS3.18 §10.4.1.1.3)."""
    items = text.split(",")
    if len(items) > MAX_FRAMES_PER_REQUEST:
        raise BadRequest(f"at most {MAX_FRAMES_PER_REQUEST} frames per request")
    if not all(item.isascii() and item.isdigit() and int(item) >= 1 for item in items):
        raise BadRequest(
            f"frame list {text!r} is not a comma-separated list of frame numbers counted "
            "from 1 (PS3.18 §10.4.1.1.3)"
        )
    return [int(item) for item in items]


@dataclass(frozen=True, slots=True)
class PixelLayout:
    """The Image Pixel Module attributes that size a frame (PS3.3 C.7.6.3)."""

    rows: int
    columns: int
    samples: int
    bits_allocated: int
    frames: int

    @property
    def frame_bits(self) -> int:
        return self.rows * self.columns * self.samples * self.bits_allocated


def _locate(index: Index, scope: Scope) -> tuple[StoredInstance, PixelLayout]:
    found = index.instances(scope)
    documents = index.metadata(scope)
    if not found or not documents:
        raise NotFound(f"no {describe(scope)} is stored")
    stored, document = found[0], json.loads(documents[0])
    if PIXEL_DATA not in document:
        raise NotFound(f"{describe(scope)} has no Pixel Data, so no frames")
    layout = PixelLayout(
        rows=_integer(document, "00280010"),
        columns=_integer(document, "00280011"),
        samples=_integer(document, "00280002", 1),
        bits_allocated=_integer(document, "00280100"),
        frames=max(_integer(document, "00280008", 1), 1),
    )
    if layout.frame_bits <= 0:
        raise NotFound(
            f"{describe(scope)} lacks Rows, Columns or Bits Allocated: its frames cannot be sized"
        )
    if layout.bits_allocated != 1 and layout.bits_allocated % 8:
        raise NotAcceptable(
            f"Bits Allocated {layout.bits_allocated} is neither 1 nor a multiple of 8 "
            "(PS3.5 §8.1.1): the frames cannot be cut"
        )
    if PIXEL_DATA not in stored.bulk:
        raise NotAcceptable(
            f"{describe(scope)} is stored in transfer syntax {stored.transfer_syntax_uid}, "
            "whose Pixel Data has no byte extent in the stored object (deflated data set); "
            "frames need transcoding, which this server does not do yet"
        )
    return stored, layout


def _integer(document: dict[str, Any], tag: str, default: int = 0) -> int:
    values = (document.get(tag) or {}).get("Value") or [default]
    try:
        return int(values[0])
    except (TypeError, ValueError):
        return default


class NativeFrames:
    """Frames of native pixel data: fixed-size bit ranges of the Pixel Data value."""

    def __init__(
        self, store: ObjectStore, key: str, extent: tuple[int, int], layout: PixelLayout
    ) -> None:
        self.store, self.key, self.bits = store, key, layout.frame_bits
        self.offset, length = extent
        # A value shorter than NumberOfFrames frames holds only its whole frames.
        self.count = min(layout.frames, (length * 8) // self.bits)

    def read(self, number: int) -> bytes:
        start = (number - 1) * self.bits
        first, stop = start // 8, -(-(start + self.bits) // 8)
        data = self.store.read(self.key, (self.offset + first, self.offset + stop))
        if start % 8 == 0 and self.bits % 8 == 0:
            return data
        packed = (int.from_bytes(data, "little") >> (start % 8)) & ((1 << self.bits) - 1)
        return packed.to_bytes(-(-self.bits // 8), "little")


class EncapsulatedFrames:
    """Frames of encapsulated pixel data (PS3.5 §A.4), located by the Basic Offset Table."""

    def __init__(self, store: ObjectStore, key: str, extent: tuple[int, int], frames: int) -> None:
        self.store, self.key, self.extent, self.count = store, key, extent, frames
        offset, length = extent
        # One read for the table's item header and, when it is complete, the table itself.
        head = store.read(key, (offset, offset + min(length, ITEM_HEADER + 4 * frames)))
        table_length = struct.unpack_from("<L", head, 4)[0] if len(head) >= ITEM_HEADER else 0
        if len(head) < ITEM_HEADER + table_length:
            head = store.read(key, (offset, offset + ITEM_HEADER + table_length))
        first = offset + ITEM_HEADER + table_length
        end = offset + length - ITEM_HEADER  # before the Sequence Delimitation Item
        offsets = parse_basic_offsets(head)
        self.ranges: list[tuple[int, int]] = []
        if len(offsets) == frames and offsets == sorted(offsets) and first + offsets[-1] < end:
            bounds = [first + o for o in offsets] + [end]
            self.ranges = list(zip(bounds[:-1], bounds[1:], strict=True))
        elif frames == 1:
            self.ranges = [(first, end)]
        self._value: bytes | None = None

    def read(self, number: int) -> bytes:
        if self.ranges:
            return b"".join(generate_fragments(self.store.read(self.key, self.ranges[number - 1])))
        if self._value is None:  # no usable offset table: split the Pixel Data value
            offset, length = self.extent
            self._value = self.store.read(self.key, (offset, offset + length))
        return get_frame(self._value, number - 1, number_of_frames=self.count)


class _CheckedFrames:
    """Turns a broken encapsulation in a stored object into a clear 404 instead of a 500."""

    def __init__(self, inner: NativeFrames | EncapsulatedFrames | DecodedFrames) -> None:
        self.inner, self.count = inner, inner.count

    def read(self, number: int) -> bytes:
        try:
            return self.inner.read(number)
        except Untranscodable as exc:
            raise NotAcceptable(f"frame {number} cannot be decoded: {exc}") from None
        except (ValueError, struct.error, IndexError) as exc:
            raise NotFound(
                f"frame {number} cannot be found in the stored Pixel Data: {exc}"
            ) from None


def _open_frames(
    store: ObjectStore, stored: StoredInstance, layout: PixelLayout, *, decode: bool
) -> _CheckedFrames:
    if decode:
        try:
            return _CheckedFrames(DecodedFrames(store.read(stored.object_key)))
        except Untranscodable as exc:
            raise NotAcceptable(f"the frames cannot be decoded: {exc}") from None
    extent = stored.bulk[PIXEL_DATA]
    try:
        if is_native(stored.transfer_syntax_uid):
            source: NativeFrames | EncapsulatedFrames = NativeFrames(
                store, stored.object_key, extent, layout
            )
        else:
            source = EncapsulatedFrames(store, stored.object_key, extent, layout.frames)
    except (ValueError, struct.error) as exc:
        raise NotFound(f"the stored encapsulated Pixel Data cannot be parsed: {exc}") from None
    return _CheckedFrames(source)


def _multipart(
    source: _CheckedFrames,
    numbers: list[int],
    first: bytes,
    media: FrameMedia,
    location: str,
    boundary: str,
) -> Iterator[bytes]:
    for position, number in enumerate(numbers):
        data = first if position == 0 else source.read(number)
        yield (
            f"--{boundary}\r\n"
            f"Content-Type: {media.media_type}; transfer-syntax={media.transfer_syntax}\r\n"
            f"Content-Length: {len(data)}\r\n"
            f"Content-Location: {location}/{number}\r\n\r\n"
        ).encode()
        yield data
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode()
