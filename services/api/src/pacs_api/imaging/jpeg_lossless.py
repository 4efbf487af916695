"""JPEG Lossless encoding (PS3.5 §8.2.1, Annex A.4.1) with GDCM, for transcoding on retrieval
(PS3.18 §8.7.3.5).

pydicom 3 decodes JPEG Lossless, Non-Hierarchical (Process 14, 1.2.840.10008.1.2.4.57) and its
First-Order Prediction form (Process 14 Selection Value 1, 1.2.840.10008.1.2.4.70) but has no
encoder for either, so :func:`encode_jpeg_lossless` encodes each frame with GDCM's
``ImageChangeTransferSyntax`` (``python-gdcm``) in memory, from an in-memory ``gdcm.Image``,
and encapsulates the frames with pydicom, one fragment per frame and a Basic Offset Table
(PS3.5 A.4). Everything else in the data set stays pydicom's. GDCM uses predictor 1 for both
syntaxes, which .4.57 allows.

Process 14 holds 2 to 16 bits per sample (ISO 10918-1 H.1.2.1), in one or three components:
only MONOCHROME1, MONOCHROME2, PALETTE COLOR and RGB data with Bits Allocated 8 or 16 are
encoded (colour without a colour transform, so Photometric Interpretation stays as it is);
anything else raises :class:`ValueError` with the reason. Every encoded frame is decoded again
by pydicom and compared with the source frame, so that a result that would not decode to
exactly the source's pixels is refused rather than served.
"""

from __future__ import annotations

from typing import Any, Final

import gdcm  # type: ignore[import-untyped]  # python-gdcm has no type information
import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import UID, JPEGLossless, JPEGLosslessSV1

from pacs_api.imaging.render import decode_frame, frame_count

#: GDCM's transfer syntax for each JPEG Lossless syntax produced (PS3.5 A.4.1).
SYNTAXES: Final[dict[str, int]] = {
    JPEGLosslessSV1: gdcm.TransferSyntax.JPEGLosslessProcess14_1,
    JPEGLossless: gdcm.TransferSyntax.JPEGLosslessProcess14,
}
#: (Photometric Interpretation, Samples per Pixel) pairs encoded.
PHOTOMETRICS: Final = (
    ("MONOCHROME1", 1),
    ("MONOCHROME2", 1),
    ("PALETTE COLOR", 1),
    ("RGB", 3),
)


def check_encodable(ds: Dataset) -> None:
    """Raise :class:`ValueError` saying why the native pixel data of *ds* cannot be JPEG
    Lossless (Process 14 precision 2 to 16 bits, PS3.5 §8.2.1), or return."""
    photometric = str(ds.get("PhotometricInterpretation", ""))
    samples = int(ds.get("SamplesPerPixel") or 1)
    allocated = int(ds.BitsAllocated)
    stored = int(ds.get("BitsStored") or allocated)
    if (photometric, samples) not in PHOTOMETRICS:
        raise ValueError(
            "JPEG Lossless is produced here only for MONOCHROME1, MONOCHROME2, PALETTE COLOR "
            f"or RGB data, not {samples}-sample {photometric} (PS3.5 §8.2.1)"
        )
    if allocated not in (8, 16) or not 2 <= stored <= allocated:
        raise ValueError(
            "JPEG Lossless (Process 14) holds 2 to 16 bits per sample in 8 or 16 allocated, "
            f"not Bits Allocated {allocated}, Bits Stored {stored} (PS3.5 §8.2.1)"
        )


def _encode_frame(ds: Dataset, pixels: npt.NDArray[Any], syntax: str) -> bytes:
    """One native frame's JPEG Lossless codestream from GDCM; :class:`ValueError` if GDCM
    fails.

    The ``gdcm.Image`` is the one an ``ImageWriter`` owns, and the writer stays referenced
    until the codestream is copied out, as pydicom's own GDCM encoder does: a ``gdcm.Image``
    made directly from Python is freed under GDCM's reference count, which aborts the process.
    """
    samples = int(ds.get("SamplesPerPixel") or 1)
    allocated = int(ds.BitsAllocated)
    stored = int(ds.get("BitsStored") or allocated)
    writer = gdcm.ImageWriter()
    image = writer.GetImage()
    image.SetNumberOfDimensions(2)
    image.SetDimensions((int(ds.Columns), int(ds.Rows), 1))
    kind = gdcm.PhotometricInterpretation.GetPIType(str(ds.PhotometricInterpretation))
    image.SetPhotometricInterpretation(gdcm.PhotometricInterpretation(kind))
    image.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.ImplicitVRLittleEndian))
    image.SetPixelFormat(
        gdcm.PixelFormat(
            samples,
            allocated,
            stored,
            stored - 1,
            int(ds.get("PixelRepresentation") or 0),
        )
    )
    if samples > 1:
        image.SetPlanarConfiguration(0)
    element = gdcm.DataElement(gdcm.Tag(0x7FE0, 0x0010))
    dtype = np.dtype(f"<{'i' if pixels.dtype.kind == 'i' else 'u'}{allocated // 8}")
    element.SetByteStringValue(np.ascontiguousarray(pixels, dtype).tobytes())
    image.SetDataElement(element)
    change = gdcm.ImageChangeTransferSyntax()
    change.SetTransferSyntax(gdcm.TransferSyntax(SYNTAXES[syntax]))
    change.SetInput(image)
    if not change.Change():
        raise ValueError("GDCM could not encode the frame")
    fragments = change.GetOutput().GetDataElement().GetSequenceOfFragments()
    if fragments is None or fragments.GetNumberOfFragments() != 1:
        raise ValueError("GDCM did not produce one JPEG fragment for the frame")
    value = fragments.GetFragment(0).GetByteValue()
    # SWIG hands char* buffers over as str, bytes >= 0x80 as lone surrogates.
    data = bytes(value.GetBuffer().encode("utf-8", "surrogateescape"))
    if len(data) != int(str(value.GetLength())):  # a gdcm.VL, which has no __int__
        raise ValueError("GDCM's JPEG fragment could not be read back")
    del change, image, writer  # in this order: the writer owns the image
    return data


def encode_jpeg_lossless(ds: Dataset, syntax: str) -> None:
    """Replace the native (little-endian) Pixel Data of *ds* by JPEG Lossless frames in
    *syntax* (.4.70 or .4.57), encapsulated with a Basic Offset Table (PS3.5 A.4.1), and set
    the File Meta Transfer Syntax UID to *syntax*.

    Raises :class:`ValueError` with the reason for data Process 14 cannot hold, or when an
    encoded frame does not decode to exactly the source frame (then *ds* keeps its native
    Pixel Data)."""
    check_encodable(ds)
    native_syntax = ds.file_meta.TransferSyntaxUID
    sources = [decode_frame(ds, number)[0] for number in range(1, frame_count(ds) + 1)]
    frames = [_encode_frame(ds, pixels, syntax) for pixels in sources]
    native = ds.PixelData
    native_vr = ds["PixelData"].VR
    planar = ds.get("PlanarConfiguration")
    if int(ds.get("SamplesPerPixel") or 1) > 1:
        ds.PlanarConfiguration = 0  # the frames were encoded colour-by-pixel
    ds.PixelData = encapsulate(frames, has_bot=True)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.file_meta.TransferSyntaxUID = UID(syntax)
    try:
        for number, pixels in enumerate(sources, 1):
            if not np.array_equal(decode_frame(ds, number)[0], pixels):
                raise ValueError(f"frame {number} does not decode to the source pixels")
    except Exception:
        ds.PixelData = native
        ds["PixelData"].VR = native_vr
        ds["PixelData"].is_undefined_length = False
        ds.file_meta.TransferSyntaxUID = native_syntax
        if planar is not None:
            ds.PlanarConfiguration = planar
        raise
