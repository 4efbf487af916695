"""Images whose Pixel Data is incomplete, in each way :mod:`pacs_common.pixel_check` knows."""

from __future__ import annotations

from typing import Any

from pacs_common.synthetic import to_bytes
from pydicom import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import RLELossless

from tests.support.dicom import ct_datasets


def ct(seed: int = 0, **kwargs: Any) -> Dataset:
    """One complete 32 x 32, 16-bit synthetic CT slice (2,048 bytes of Pixel Data); *kwargs*
    as :func:`pacs_common.synthetic.iter_ct_series` takes them (patient_name, ...)."""
    return ct_datasets(1, seed=seed, **kwargs)[0]


def truncated(seed: int = 0, **kwargs: Any) -> bytes:
    """A file cut short inside its Pixel Data: the element declares more than follows."""
    data = to_bytes(ct(seed, **kwargs))
    return data[: len(data) - 100]


def short_native(seed: int = 0) -> bytes:
    """A well-formed file whose native Pixel Data holds half of Rows x Columns x 2 bytes."""
    ds = ct(seed)
    ds.PixelData = ds.PixelData[: len(ds.PixelData) // 2]
    return to_bytes(ds)


def header_only(seed: int = 0, **kwargs: Any) -> bytes:
    """A CT image without Pixel Data."""
    ds = ct(seed, **kwargs)
    del ds.PixelData
    return to_bytes(ds)


def encapsulated(seed: int = 0, *, delimited: bool = True) -> bytes:
    """An RLE Lossless CT (PS3.5 §A.4: offset table item, one fragment, delimiter); without its
    Sequence Delimitation Item when *delimited* is false (the last 8 bytes cut)."""
    ds = ct(seed)
    ds.file_meta.TransferSyntaxUID = RLELossless
    ds.PixelData = encapsulate([b"\x00" * 64])
    ds["PixelData"].VR = "OB"
    data = to_bytes(ds)
    return data if delimited else data[:-8]
