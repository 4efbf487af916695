"""Transcoding a stored DICOM object to another transfer syntax (PS3.18 §8.7.3.5, PS3.5 §10).

A pure function over bytes: :func:`transcode` takes the bytes of a stored Part 10 object
(PS3.10 §7) and a target Transfer Syntax UID and returns the bytes of a new Part 10 object in
that syntax, with the same SOP Instance UID; nothing here reads storage or knows HTTP.
:func:`refusal` says, from the two UIDs alone and without decoding anything, why a pair cannot
be transcoded, so that a request is refused (406) before any byte of the answer is sent.

Targets (:data:`TARGETS`):

- native (PS3.5 §8.2, Annex A.1, A.2, A.5): Implicit VR Little Endian, Explicit VR Little
  Endian and Deflated Explicit VR Little Endian, written by pydicom;
- lossless encapsulated (PS3.5 §8.2, Annex A.4): RLE Lossless (§8.2.2, Annex G), JPEG-LS
  Lossless (§8.2.3), JPEG 2000 Lossless Only (§8.2.4), through pydicom's encoders (its own RLE,
  ``pyjpegls`` and ``pylibjpeg-openjpeg``);
- JPEG Lossless (PS3.5 §8.2.1, Annex A.4.1): Process 14 Selection Value 1 (the DICOM default
  lossless JPEG) and Process 14, by GDCM, for which pydicom has no encoder: see
  :mod:`~pacs_api.imaging.jpeg_lossless`;
- JPEG Baseline (Process 1, §8.2.1), lossy, by Pillow: see :mod:`~pacs_api.imaging.lossy`.

Compressed sources are decoded frame by frame by :func:`~pacs_api.imaging.render.decode_frame`
(pydicom's pixel backend and its pylibjpeg plugins). YBR colour data come out as RGB (PS3.3
C.7.6.3.1.2), and Photometric Interpretation says so; Planar Configuration becomes 0.

Lossy sources may be decoded and re-encoded, losslessly or not: PS3.3 C.7.6.1.1.5 requires the
result to keep Lossy Image Compression (0028,2110) "01" and its ratio and method, which
:func:`~pacs_api.imaging.lossy.keep_lossy_marks` sees to. Explicit VR Big Endian sources
(retired, PS3.5 A.3) are refused: pydicom cannot re-encode their other OB/OW values safely.
"""

from __future__ import annotations

import io
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.encoders.base import get_encoder
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)

from pacs_api.imaging.jpeg_lossless import encode_jpeg_lossless
from pacs_api.imaging.lossy import encode_jpeg_baseline, is_lossy, keep_lossy_marks
from pacs_api.imaging.render import Unrenderable, decode_frame, frame_count

#: Native targets (PS3.5 Annex A.1, A.2, A.5).
NATIVE: Final = frozenset(
    {ImplicitVRLittleEndian, ExplicitVRLittleEndian, DeflatedExplicitVRLittleEndian}
)
#: Lossless encapsulated targets, encoded by pydicom's encoder for each (PS3.5 Annex A.4).
ENCAPSULATED: Final = frozenset({RLELossless, JPEGLSLossless, JPEG2000Lossless})
#: JPEG Lossless targets, encoded by GDCM (PS3.5 Annex A.4.1).
JPEG_LOSSLESS: Final = frozenset({JPEGLosslessSV1, JPEGLossless})
#: Every transfer syntax this module writes.
TARGETS: Final = NATIVE | ENCAPSULATED | JPEG_LOSSLESS | {JPEGBaseline8Bit}

#: What pydicom and the codec plugins raise for data they cannot decode or encode.
CODEC_ERRORS: Final = (
    ValueError,
    RuntimeError,
    NotImplementedError,
    AttributeError,
    KeyError,
    TypeError,
    IndexError,
    OverflowError,
)


class Untranscodable(Exception):
    """The object cannot be transcoded to the syntax asked for; the message says why."""


def _described(uid: str) -> str:
    name = UID(uid).name
    return f"{uid} ({name})" if name != uid else uid


def refusal(source: str, target: str) -> str | None:
    """Why an object stored in *source* cannot be served in *target*, or ``None`` when it
    can be (as stored, or by :func:`transcode`). Decides from the UIDs and the installed
    codecs only; a particular object may still fail to encode (:class:`Untranscodable`)."""
    if source == target:
        return None
    if target not in TARGETS:
        return f"this server does not produce transfer syntax {_described(target)}"
    if not UID(source).is_transfer_syntax:  # private or unknown: its encoding is not known
        return f"objects stored in transfer syntax {source!r} are served only as stored"
    if UID(source).is_compressed:
        try:
            decoder = get_decoder(UID(source))
        except NotImplementedError:
            return f"no pixel data decoder exists here for {_described(source)}"
        if not decoder.is_available:
            return f"decoding {_described(source)} needs " + "; ".join(decoder.missing_dependencies)
    elif not UID(source).is_little_endian:
        return f"objects stored in {_described(source)} (retired) are served only as stored"
    if target in ENCAPSULATED and not (encoder := get_encoder(UID(target))).is_available:
        return f"encoding {_described(target)} needs " + "; ".join(encoder.missing_dependencies)
    return None


def _parse(data: bytes) -> Dataset:
    try:
        return dcmread(io.BytesIO(data))
    except (InvalidDicomError, ValueError, EOFError, OSError, KeyError) as exc:
        raise Untranscodable(f"the stored object cannot be parsed: {exc}") from None


def transcode(data: bytes, target: str) -> bytes:
    """The Part 10 object *data* re-encoded in transfer syntax *target* (PS3.5 §10).

    Raises :class:`Untranscodable` with the reason when :func:`refusal` refuses the pair or the
    object's pixel data cannot be decoded or encoded (for example a bit depth the encoder
    does not support)."""
    ds = _parse(data)
    source = str(ds.file_meta.get("TransferSyntaxUID", ""))
    reason = refusal(source, target)
    if reason is not None:
        raise Untranscodable(reason)
    if source == target:
        return data
    has_pixels = "PixelData" in ds
    compressed = has_pixels and UID(source).is_compressed
    stored_length = len(ds.PixelData) if compressed else 0
    if not has_pixels and target not in NATIVE:
        raise Untranscodable(
            f"the object has no Pixel Data to encode in {_described(target)}; "
            "ask for a native transfer syntax (PS3.5 §8.2)"
        )
    try:
        if compressed:
            _decode_to_native(ds)
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        if has_pixels and is_lossy(ds, source):
            keep_lossy_marks(ds, source, stored_length)
        if target in ENCAPSULATED:
            ds.compress(UID(target), generate_instance_uid=False)
        elif target in JPEG_LOSSLESS:
            encode_jpeg_lossless(ds, target)
        elif target == JPEGBaseline8Bit:
            encode_jpeg_baseline(ds)
        ds.file_meta.TransferSyntaxUID = UID(target)
        out = io.BytesIO()
        ds.save_as(out, enforce_file_format=True)
    except Unrenderable as exc:
        raise Untranscodable(str(exc)) from None
    except CODEC_ERRORS as exc:
        raise Untranscodable(
            f"the pixel data cannot be transcoded to {_described(target)}: "
            + " ".join(str(exc).split())[:400]
        ) from None
    return out.getvalue()


class DecodedFrames:
    """The frames of a stored object decoded to native little-endian bytes (PS3.5 §8.2), one
    frame at a time, as WADO-RS sends frames asked for as application/octet-stream (PS3.18
    §8.7.3.3.2) when they are stored compressed. YBR colour comes out as RGB (see the module
    docstring); 1-bit frames are packed from the first pixel, low-order bits first."""

    def __init__(self, data: bytes) -> None:
        self.ds = _parse(data)
        self.count = frame_count(self.ds)

    def read(self, number: int) -> bytes:
        """Frame *number* (1-based); :class:`Untranscodable` when it cannot be decoded."""
        try:
            pixels, _ = decode_frame(self.ds, number)
        except Unrenderable as exc:
            raise Untranscodable(str(exc)) from None
        return _native_bytes(pixels, int(self.ds.BitsAllocated))


def _native_bytes(pixels: npt.NDArray[Any], bits_allocated: int) -> bytes:
    """Decoded pixels as native Pixel Data bytes: little endian, colour-by-pixel, and 1-bit
    values packed eight to a byte (PS3.5 §8.1.1, §8.2)."""
    if bits_allocated == 1:
        return np.packbits(np.asarray(pixels, np.uint8).ravel(), bitorder="little").tobytes()
    return np.ascontiguousarray(pixels, pixels.dtype.newbyteorder("<")).tobytes()


def _decode_to_native(ds: Dataset) -> None:
    """Replace encapsulated Pixel Data by its native little-endian form (PS3.5 §8.2),
    frame after frame, updating Photometric Interpretation and Planar Configuration."""
    photometric = str(ds.get("PhotometricInterpretation", ""))
    frames: list[npt.NDArray[Any]] = []
    for number in range(1, frame_count(ds) + 1):
        pixels, photometric = decode_frame(ds, number)
        frames.append(pixels)
    bits_allocated = int(ds.BitsAllocated)
    # One-bit frames are packed without padding between them (PS3.5 §8.1.1).
    value = _native_bytes(np.stack(frames), bits_allocated)
    ds.PixelData = value + b"\0" * (len(value) % 2)
    ds["PixelData"].VR = "OB" if bits_allocated <= 8 else "OW"
    ds["PixelData"].is_undefined_length = False
    ds.PhotometricInterpretation = photometric
    if int(ds.get("SamplesPerPixel") or 1) > 1:
        ds.PlanarConfiguration = 0
    else:
        ds.pop("PlanarConfiguration", None)
