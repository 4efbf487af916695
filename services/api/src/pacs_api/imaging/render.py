"""The pixel pipeline: one frame of a data set to 8-bit display values (PS3.3 C.11, C.7.6.3).

Pure functions over a pydicom :class:`~pydicom.dataset.Dataset` and NumPy arrays; nothing here
reads storage or knows HTTP. The steps, in the order of the grayscale pipeline of PS3.4 N.2:

1. :func:`decode_frame`: frame *n* (1-based) of the Pixel Data, decoded by pydicom's pixel
   backend (``pydicom.pixels``) and its codec plugins. YBR_FULL and YBR_FULL_422 come out as
   RGB: pydicom converts them while decoding (``as_rgb``, :func:`convert_color_space`), or the
   JPEG codec already did; a YBR array that still reaches :func:`to_display` is converted there.
2. Grayscale (MONOCHROME1/2): the Modality LUT or rescale (PS3.3 C.11.1,
   ``apply_modality_lut``), then the VOI transformation (C.11.2): the requested window if any;
   else the object's own VOI LUT Sequence or first Window Center/Width with its VOI LUT Function
   (``apply_voi_lut``), mapped from the output range PS3.3 gives it onto 0-255; else the
   frame's minimum and maximum. MONOCHROME1 is inverted last (C.7.6.3.1.2).
3. Colour: RGB as stored; PALETTE COLOR through its lookup tables (C.7.6.3.1.5,
   ``apply_color_lut``); samples wider than 8 bits scaled by their bit depth.

Output: ``uint8`` of shape ``(rows, columns)`` for grayscale, ``(rows, columns, 3)`` for RGB.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.processing import (
    apply_color_lut,
    apply_modality_lut,
    apply_voi,
    apply_windowing,
    convert_color_space,
)
from pydicom.uid import UID

from pacs_api.imaging.windowing import FloatArray, Window, apply_window, scale_range, to_uint8

Display = npt.NDArray[np.uint8]
MONOCHROME: Final = ("MONOCHROME1", "MONOCHROME2")
YBR: Final = ("YBR_FULL", "YBR_FULL_422")
FLOAT_PIXELS: Final = ("FloatPixelData", "DoubleFloatPixelData")


class Unrenderable(Exception):
    """The data set has no image this server can render; the message says why."""


class NoSuchFrame(LookupError):
    """The frame number is beyond the frames of the data set."""


def frame_count(ds: Dataset) -> int:
    """Number of Frames (0028,0008), 1 when absent (PS3.3 C.7.6.6)."""
    try:
        return max(int(ds.get("NumberOfFrames") or 1), 1)
    except (TypeError, ValueError):
        return 1


def decode_frame(ds: Dataset, number: int) -> tuple[npt.NDArray[Any], str]:
    """Frame *number* (1-based) as pydicom decodes it, and its photometric interpretation after
    decoding (``RGB`` for YBR data that pydicom or the codec converted)."""
    if "PixelData" not in ds:
        floats = [name for name in FLOAT_PIXELS if name in ds]
        if floats:
            raise Unrenderable(f"{floats[0]} (float pixel data) is not rendered by this server")
        raise Unrenderable("the object has no Pixel Data (7FE0,0010): there is no image")
    if number > frame_count(ds):
        raise NoSuchFrame(f"frame {number} is beyond the {frame_count(ds)} frame(s)")
    syntax = UID(ds.file_meta.get("TransferSyntaxUID", ""))
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise Unrenderable(
            f"no pixel data decoder for transfer syntax {syntax} ({syntax.name})"
        ) from None
    if not decoder.is_available:
        raise Unrenderable(
            f"transfer syntax {syntax} ({syntax.name}) needs a codec this server lacks: "
            + "; ".join(decoder.missing_dependencies)
        )
    try:
        pixels, properties = decoder.as_array(ds, index=number - 1)
    except (RuntimeError, ValueError, AttributeError, KeyError, TypeError) as exc:
        raise Unrenderable(
            f"the {syntax.name} pixel data cannot be decoded: {' '.join(str(exc).split())[:400]}"
        ) from None
    photometric = str(properties.get("photometric_interpretation", ""))
    return pixels, photometric or str(ds.get("PhotometricInterpretation", ""))


def to_display(
    ds: Dataset, pixels: npt.NDArray[Any], photometric: str, window: Window | None
) -> Display:
    """8-bit display values of one decoded frame (see the module docstring for the steps)."""
    if photometric in YBR and pixels.ndim == 3:
        pixels, photometric = convert_color_space(pixels, photometric, "RGB"), "RGB"
    if photometric == "PALETTE COLOR":
        try:
            rgb = apply_color_lut(pixels, ds)
        except (ValueError, AttributeError, KeyError, IndexError) as exc:
            raise Unrenderable(f"the palette colour lookup tables are unusable: {exc}") from None
        return to_uint8(scale_range(rgb, 0.0, float(np.iinfo(rgb.dtype).max)))
    if photometric == "RGB" and pixels.ndim == 3:
        bits = int(ds.get("BitsStored") or pixels.dtype.itemsize * 8)
        return to_uint8(scale_range(pixels, 0.0, float(2**bits - 1)))
    if photometric not in MONOCHROME or pixels.ndim != 2:
        raise Unrenderable(f"photometric interpretation {photometric!r} is not rendered")
    values = np.asarray(apply_modality_lut(pixels, ds), dtype=np.float64)
    if window is not None:
        shown = apply_window(values, window)
    else:
        voi = object_voi(values, ds)
        shown = (
            scale_range(values, float(values.min()), float(values.max())) if voi is None else voi
        )
    if photometric == "MONOCHROME1":
        shown = 255.0 - shown
    return to_uint8(shown)


def object_voi(values: FloatArray, ds: Dataset) -> FloatArray | None:
    """The object's own first VOI transformation (PS3.3 C.11.2) onto ``[0, 255]``, or ``None``
    when it has none or only a malformed one.

    A VOI LUT's output range is 0 to 2^n - 1, n the third LUT Descriptor value
    (C.11.2.1.1); a window's is the range pydicom's ``apply_windowing`` maps onto (the stored
    value range after rescale), read off by windowing -inf and +inf.
    """
    try:
        if "VOILUTSequence" in ds:
            bits = int(ds.VOILUTSequence[0].LUTDescriptor[2])
            return scale_range(apply_voi(values, ds, index=0), 0.0, float(2**bits - 1))
        if "WindowCenter" in ds and "WindowWidth" in ds:
            low, high = apply_windowing(np.array([-np.inf, np.inf]), ds, index=0)
            return scale_range(apply_windowing(values, ds, index=0), float(low), float(high))
    except (ValueError, TypeError, IndexError, AttributeError, KeyError):
        return None
    return None


def render_frame(ds: Dataset, number: int, window: Window | None = None) -> Display:
    """Frame *number* (1-based) of *ds* as 8-bit display values."""
    pixels, photometric = decode_frame(ds, number)
    return to_display(ds, pixels, photometric, window)
