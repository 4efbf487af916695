"""Media types and transfer syntaxes of frames (PS3.18 §8.7.3.3.2, §8.7.3.5).

Frames are served in the transfer syntax they are stored in, or decoded to native frames. An
Accept header is read range by range, highest q first, and the first range that the stored
frames satisfy, as they are or decoded, wins:

- ``*/*``, ``multipart/*``, or ``multipart/related`` without ``type``: the frames as stored
  (not big-endian native data, whose byte order a client that did not ask cannot know).
- ``multipart/related; type="application/octet-stream"``: native little-endian frames, labelled
  Explicit VR Little Endian (the default for octet-stream, §8.7.3.3.2). With
  ``transfer-syntax=*`` any stored frames, compressed ones included, are sent as octet-stream
  labelled with their stored syntax (what dicomweb-client and OHIF ask for).
- ``multipart/related; type="image/jpeg"`` (and the other compressed types below, or a
  wildcard such as ``image/*``): compressed frames whose media type matches.
- An explicit ``transfer-syntax=UID`` matches only the stored syntax (Implicit and Explicit VR
  Little Endian give the same native frame bytes, so either names them).
- Decoded: ``multipart/related; type="application/octet-stream"`` without ``transfer-syntax``
  or with Explicit (or Implicit) VR Little Endian, for frames stored compressed: each frame is
  decoded (:class:`~pacs_api.imaging.transcode.DecodedFrames`) and sent native, which is
  what viewers without a codec need. YBR colour comes out as RGB.

Anything else would need re-encoding the frames (a compressed media type other than the
stored one, native frames of a retired big-endian object): 406 with the reason (§8.7.3.5 lets
the origin server refuse what it cannot produce).
"""

from __future__ import annotations

from dataclasses import dataclass

from pacs_common.media import APPLICATION_OCTET_STREAM as OCTET_STREAM

from pacs_api.dicomweb.multipart import MediaType
from pacs_api.dicomweb.negotiation import parse_accept
from pacs_api.errors import NotAcceptable
from pacs_api.imaging.transcode import refusal

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
EXPLICIT_BE = "1.2.840.10008.1.2.2"

#: The media type of a compressed frame per transfer syntax (PS3.18 §8.7.3.3.2). Syntaxes not
#: listed (private ones) are sent as application/octet-stream with their transfer-syntax.
FRAME_MEDIA_TYPES = {
    "1.2.840.10008.1.2.4.50": "image/jpeg",  # JPEG Baseline (Process 1)
    "1.2.840.10008.1.2.4.51": "image/jpeg",  # JPEG Extended (Process 2 & 4)
    "1.2.840.10008.1.2.4.57": "image/jpeg",  # JPEG Lossless (Process 14)
    "1.2.840.10008.1.2.4.70": "image/jpeg",  # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.80": "image/jls",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81": "image/jls",  # JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.90": "image/jp2",  # JPEG 2000 Lossless Only
    "1.2.840.10008.1.2.4.91": "image/jp2",  # JPEG 2000
    "1.2.840.10008.1.2.4.92": "image/jpx",  # JPEG 2000 Part 2 Multi-component Lossless Only
    "1.2.840.10008.1.2.4.93": "image/jpx",  # JPEG 2000 Part 2 Multi-component
    "1.2.840.10008.1.2.4.201": "image/jphc",  # High-Throughput JPEG 2000 Lossless Only
    "1.2.840.10008.1.2.4.202": "image/jphc",  # HTJ2K with RPCL Options Lossless Only
    "1.2.840.10008.1.2.4.203": "image/jphc",  # High-Throughput JPEG 2000
    "1.2.840.10008.1.2.5": "image/dicom-rle",  # RLE Lossless
}
#: MPEG-2, MPEG-4 AVC/H.264 and HEVC/H.265 streams (PS3.5 §8.2.5-8.2.8): frames are not
#: separately encoded, so they cannot be cut from the stream.
VIDEO_PREFIX = "1.2.840.10008.1.2.4.10"


def is_native(transfer_syntax: str) -> bool:
    """Whether pixel data in this syntax is native (PS3.5 §8.2), not encapsulated."""
    return transfer_syntax in (IMPLICIT_LE, EXPLICIT_LE, EXPLICIT_BE)


@dataclass(frozen=True, slots=True)
class FrameMedia:
    """How the frames are answered: each part's media type and transfer-syntax parameter."""

    media_type: str
    transfer_syntax: str
    #: Whether the stored frames are decoded to native ones (else sent as stored).
    decode: bool = False


def choose_frame_media(accept: str | None, stored_syntax: str) -> FrameMedia:
    """The answer for an Accept header and the stored syntax; 406 when none fits."""
    if stored_syntax.startswith(VIDEO_PREFIX):
        raise NotAcceptable(
            f"the pixel data is a video stream ({stored_syntax}) whose frames are not encoded "
            "separately; retrieve the instance or its Pixel Data bulk data instead"
        )
    for accepted in parse_accept(accept):
        answer = _match(accepted.media, stored_syntax) or _decoded(accepted.media, stored_syntax)
        if answer is not None:
            return answer
    stored_media = _stored_media(stored_syntax)
    reason = None if is_native(stored_syntax) else refusal(stored_syntax, EXPLICIT_LE)
    raise NotAcceptable(
        f"the frames are stored in transfer syntax {stored_syntax} ({stored_media}); "
        f"Accept: {accept!r} asks for a form that needs transcoding them, which this server "
        "does only to native frames (application/octet-stream)"
        + (f", and cannot do for these: {reason}" if reason else "")
        + '; ask for multipart/related; type="application/octet-stream"; '
        "transfer-syntax=* to receive the frames as stored (PS3.18 §8.7.3.5)"
    )


def _stored_media(stored_syntax: str) -> str:
    if is_native(stored_syntax):
        return OCTET_STREAM
    return FRAME_MEDIA_TYPES.get(stored_syntax, OCTET_STREAM)


def _match(media: MediaType, stored_syntax: str) -> FrameMedia | None:
    if media.value in ("*/*", "multipart/*"):
        part, syntax = "*/*", None
    elif media.value == "multipart/related":
        part = media.params.get("type", "*/*").strip().lower()
        syntax = media.params.get("transfer-syntax")
    else:
        return None
    stored_media = _stored_media(stored_syntax)
    label = EXPLICIT_LE if stored_syntax == IMPLICIT_LE else stored_syntax
    if part == OCTET_STREAM:
        if syntax == "*" or syntax in (stored_syntax, label):
            return FrameMedia(OCTET_STREAM, label)
        if syntax is None and label == EXPLICIT_LE:  # the octet-stream default (§8.7.3.3.2)
            return FrameMedia(OCTET_STREAM, label)
        return None
    if not _covers(part, stored_media):
        return None
    if syntax == "*" or syntax in (stored_syntax, label):
        return FrameMedia(stored_media, label)
    if syntax is None and stored_syntax != EXPLICIT_BE:
        return FrameMedia(stored_media, label)
    return None


def _decoded(media: MediaType, stored_syntax: str) -> FrameMedia | None:
    """Native frames decoded from compressed ones, when the range asks for them and the
    stored syntax has a decoder here (PS3.18 §8.7.3.3.2)."""
    if media.value != "multipart/related" or is_native(stored_syntax):
        return None
    part = media.params.get("type", "").strip().lower()
    syntax = media.params.get("transfer-syntax")
    if part != OCTET_STREAM or syntax not in (None, EXPLICIT_LE, IMPLICIT_LE):
        return None
    if refusal(stored_syntax, EXPLICIT_LE) is not None:
        return None
    return FrameMedia(OCTET_STREAM, EXPLICIT_LE, decode=True)


def _covers(pattern: str, media_type: str) -> bool:
    """Whether a media range (``*/*``, ``image/*`` or a type) includes *media_type*."""
    if pattern in ("*/*", media_type):
        return True
    return pattern.endswith("/*") and media_type.startswith(pattern[:-1])
