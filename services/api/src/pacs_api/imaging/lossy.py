"""Lossy image compression: its marks in the data set and the JPEG Baseline encoder.

PS3.3 C.7.6.1.1.5: once an image has been lossy compressed, Lossy Image Compression
(0028,2110) is "01" for good, even after decompression; Lossy Image Compression Ratio
(0028,2112) and Method (0028,2114) list every lossy step in the order applied.

- :func:`is_lossy` and :func:`keep_lossy_marks`: a lossy source decoded for re-encoding keeps
  (or, when the object lacks them, gains) those marks.
- :func:`encode_jpeg_baseline`: JPEG Baseline (Process 1, PS3.5 §8.2.1) with Pillow, because
  pydicom has no JPEG Baseline encoder. Only 8-bit unsigned MONOCHROME1/2 and RGB data qualify
  (Process 1 is 8-bit only); colour is encoded as YCbCr without subsampling, so Photometric
  Interpretation becomes YBR_FULL (PS3.5 §8.2.1). The quality is fixed at :data:`QUALITY`.
"""

from __future__ import annotations

import io
from typing import Final

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.multival import MultiValue
from pydicom.uid import (
    HTJ2K,
    JPEG2000,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLSNearLossless,
)

from pacs_api.imaging.render import decode_frame, frame_count

#: Lossy Image Compression Method (0028,2114) defined terms (PS3.3 C.7.6.1.1.5.1) of the
#: transfer syntaxes that are, or may be, lossy.
METHODS: Final[dict[str, str]] = {
    JPEGBaseline8Bit: "ISO_10918_1",
    JPEGExtended12Bit: "ISO_10918_1",
    JPEGLSNearLossless: "ISO_14495_1",
    JPEG2000: "ISO_15444_1",
    HTJ2K: "ISO_15444_15",
}
#: JPEG quality (Pillow's 1-95 scale) of transcoded JPEG Baseline frames.
QUALITY: Final = 90


def is_lossy(ds: Dataset, syntax: str) -> bool:
    """Whether *ds*, held in *syntax*, has been lossy compressed: it says so, or its syntax
    is a lossy one and it does not say otherwise (JPEG 2000 and near-lossless JPEG-LS may
    carry reversible data, marked "00")."""
    marked = str(ds.get("LossyImageCompression", "")).strip()
    return marked == "01" or (syntax in METHODS and marked != "00")


def keep_lossy_marks(ds: Dataset, syntax: str, stored_length: int) -> None:
    """Mark *ds*, lossy and about to be re-encoded, as lossy (PS3.3 C.7.6.1.1.5). Ratio and
    method are added only when the object has neither, from *syntax* and the length of the
    stored encapsulated Pixel Data, so the two lists stay in step."""
    ds.LossyImageCompression = "01"
    if "LossyImageCompressionRatio" in ds or "LossyImageCompressionMethod" in ds:
        return
    if syntax in METHODS and stored_length:
        ds.LossyImageCompressionRatio = f"{_native_length(ds) / stored_length:.2f}"
        ds.LossyImageCompressionMethod = METHODS[syntax]


def _native_length(ds: Dataset) -> int:
    bits = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel") or 1)
    return bits * int(ds.BitsAllocated) * frame_count(ds) // 8


def _values(ds: Dataset, keyword: str) -> list[str]:
    value = ds.get(keyword)
    if value is None or value == "":
        return []
    if isinstance(value, MultiValue | list):
        return [str(v) for v in value]
    return [str(value)]


def _add_lossy_step(ds: Dataset, ratio: float, method: str) -> None:
    """Append one lossy step to the marks (PS3.3 C.7.6.1.1.5: values in the order applied)."""
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionRatio = [*_values(ds, "LossyImageCompressionRatio"), f"{ratio:.2f}"]
    ds.LossyImageCompressionMethod = [*_values(ds, "LossyImageCompressionMethod"), method]


def encode_jpeg_baseline(ds: Dataset) -> None:
    """Replace the native Pixel Data of *ds* by JPEG Baseline frames, encapsulated with a
    Basic Offset Table (PS3.5 §8.2.1, Annex A.4), and record the lossy step.

    Raises :class:`ValueError` for data that Process 1 cannot hold."""
    photometric = str(ds.get("PhotometricInterpretation", ""))
    samples = int(ds.get("SamplesPerPixel") or 1)
    if (
        (photometric, samples) not in (("MONOCHROME1", 1), ("MONOCHROME2", 1), ("RGB", 3))
        or int(ds.BitsAllocated) != 8
        or int(ds.BitsStored) != 8
        or int(ds.get("PixelRepresentation") or 0) != 0
    ):
        raise ValueError(
            "JPEG Baseline holds only 8-bit unsigned MONOCHROME1, MONOCHROME2 or RGB data, "
            f"not {ds.get('BitsStored')}-bit {photometric} (PS3.5 §8.2.1)"
        )
    frames: list[bytes] = []
    for number in range(1, frame_count(ds) + 1):
        pixels, _ = decode_frame(ds, number)
        out = io.BytesIO()
        image = Image.fromarray(np.ascontiguousarray(pixels, np.uint8))  # L or RGB
        image.save(out, format="JPEG", quality=QUALITY, subsampling=0)
        frames.append(out.getvalue())
    native_length = _native_length(ds)
    ds.PixelData = encapsulate(frames, has_bot=True)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    if samples == 3:
        ds.PhotometricInterpretation = "YBR_FULL"
        ds.PlanarConfiguration = 0
    _add_lossy_step(ds, native_length / sum(len(f) for f in frames), METHODS[JPEGBaseline8Bit])
