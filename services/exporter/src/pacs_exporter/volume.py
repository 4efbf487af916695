"""A CT series as one volume of Hounsfield units with its voxel-to-patient affine.

Geometry follows the Image Plane module (PS3.3 C.7.6.2, C.7.6.2.1.1): the centre of the pixel in
row ``j`` and column ``i`` of a slice lies at::

    P = ImagePositionPatient + i * PixelSpacing[1] * X + j * PixelSpacing[0] * Y

with ``X`` (the row direction cosine) = ImageOrientationPatient[0:3] and ``Y`` (the column
direction cosine) = ImageOrientationPatient[3:6], in the patient coordinate system (LPS, mm;
PS3.3 C.7.6.2.1.1). The slice normal is ``X x Y``.

Slices are ordered by their position projected on the normal, never by file name or
InstanceNumber. The affine's slice vector is the actual step between slice origins, which for a
gantry-tilted stack has a component in the image plane: the voxel grid is then sheared, and the
affine carries the shear, so vertices land where the patient is.

Stored values become HU through each slice's own Modality LUT, ``HU = stored * RescaleSlope +
RescaleIntercept`` (PS3.3 C.11.1.1.2; both Type 1 in the CT Image module, C.8.2.1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset

from pacs_exporter.errors import InputError

__all__ = [
    "EVEN_SPACING_TOLERANCE",
    "MAX_GAP_RATIO",
    "Volume",
    "volume_from_datasets",
]

MIN_SLICES: Final = 3
EVEN_SPACING_TOLERANCE: Final = 0.01
"""Gaps between slices within this fraction of the median gap count as even (no resampling)."""
MAX_GAP_RATIO: Final = 1.5
"""A gap larger than this many median gaps (a missing slice, a second stack) is refused."""
DUPLICATE_TOLERANCE_MM: Final = 1e-3
"""Two slices closer than this along the normal are duplicates."""
LINE_TOLERANCE: Final = 0.1
"""Slice origins may leave the straight line through the first and last by this many pixels."""
GEOMETRY_TOLERANCE: Final = 1e-4
"""Tolerance for equal ImageOrientationPatient cosines and PixelSpacing values (relative)."""


@dataclass(frozen=True)
class Volume:
    """A CT volume in HU and where each voxel is in the patient.

    ``hu`` has shape ``(nz, ny, nx)``: slice, row, column, dtype int16 (exact stored values) or
    float32 (non-integral rescale or resampled). ``affine`` is 4x4 float64 and maps the voxel
    index ``(k, j, i, 1)`` to patient LPS mm (the voxel's centre). ``spacing`` is ``(dz, dy,
    dx)`` in mm, the lengths of the affine's first three columns (``dz`` is the distance between
    slice origins, which exceeds the distance along the normal on a tilted stack).
    """

    hu: npt.NDArray[np.int16] | npt.NDArray[np.float32]
    affine: npt.NDArray[np.float64]
    spacing: tuple[float, float, float]
    series_instance_uid: str
    frame_of_reference_uid: str

    def __post_init__(self) -> None:
        if self.hu.ndim != 3:
            raise ValueError(f"hu must be 3-D (nz, ny, nx), not {self.hu.shape}")
        if self.affine.shape != (4, 4):
            raise ValueError(f"affine must be 4x4, not {self.affine.shape}")


def _floats(ds: Dataset, keyword: str, count: int) -> npt.NDArray[np.float64]:
    value: Any = ds.get(keyword)
    if value is None:
        raise InputError(f"instance {ds.get('SOPInstanceUID', '?')} has no {keyword}")
    try:
        array = np.array([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{keyword} is not numeric: {value!r}") from exc
    if array.shape != (count,):
        raise InputError(f"{keyword} must have {count} values, not {array.size}")
    return array


def _check_instance(ds: Dataset) -> None:
    modality = ds.get("Modality", "")
    if modality != "CT":
        raise InputError(f"the series is not CT (Modality {modality or 'missing'})")
    if "PixelData" not in ds:
        raise InputError(f"instance {ds.get('SOPInstanceUID', '?')} has no pixel data")
    if int(ds.get("SamplesPerPixel", 1)) != 1 or int(ds.get("NumberOfFrames", 1) or 1) != 1:
        raise InputError("only single-frame, single-sample CT images are supported")


def _same(datasets: Sequence[Dataset], keyword: str) -> Any:
    """The common value of *keyword*, or InputError naming the attribute."""
    first = datasets[0].get(keyword)
    for ds in datasets[1:]:
        if ds.get(keyword) != first:
            raise InputError(f"inconsistent {keyword} across the series")
    return first


def _same_vector(datasets: Sequence[Dataset], keyword: str, count: int) -> npt.NDArray[np.float64]:
    values = np.stack([_floats(ds, keyword, count) for ds in datasets])
    scale = np.maximum(np.abs(values[0]), 1.0)
    if np.any(np.abs(values - values[0]) > GEOMETRY_TOLERANCE * scale):
        raise InputError(f"inconsistent {keyword} across the series")
    first: npt.NDArray[np.float64] = values[0]
    return first


def _rescale(ds: Dataset) -> tuple[float, float]:
    """(RescaleSlope, RescaleIntercept) of one instance (PS3.3 C.11.1.1.2)."""
    return float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)


def _hu_slices(ordered: Sequence[Dataset]) -> npt.NDArray[np.int16] | npt.NDArray[np.float32]:
    """Stack the slices in HU: int16 while every slope and intercept is integral and every value
    fits, float32 otherwise."""
    rescales = [_rescale(ds) for ds in ordered]
    integral = all(s.is_integer() and b.is_integer() for s, b in rescales)
    rows, columns = int(ordered[0].Rows), int(ordered[0].Columns)
    out: npt.NDArray[Any] = np.empty(
        (len(ordered), rows, columns), dtype=np.int16 if integral else np.float32
    )
    info = np.iinfo(np.int16)
    for k, (ds, (slope, intercept)) in enumerate(zip(ordered, rescales, strict=True)):
        stored = ds.pixel_array
        if stored.shape != (rows, columns):
            raise InputError(f"slice {k} has pixel data of shape {stored.shape}")
        if out.dtype == np.int16:
            hu = stored.astype(np.int32) * int(slope) + int(intercept)
            if hu.size and (hu.min() < info.min or hu.max() > info.max):
                out = out.astype(np.float32)
            else:
                out[k] = hu
                continue
        out[k] = stored.astype(np.float32) * np.float32(slope) + np.float32(intercept)
    return out


def _resample(
    hu: npt.NDArray[Any], distances: npt.NDArray[np.float64], step: float
) -> npt.NDArray[np.float32]:
    """Linear interpolation of the slices (at *distances* along the normal, increasing) onto an
    even grid of *step* mm starting at the first slice."""
    count = int(round((distances[-1] - distances[0]) / step)) + 1
    targets = np.minimum(distances[0] + step * np.arange(count), distances[-1])
    upper = np.clip(np.searchsorted(distances, targets, side="right"), 1, len(distances) - 1)
    lower = upper - 1
    weight = (targets - distances[lower]) / (distances[upper] - distances[lower])
    out = np.empty((count, *hu.shape[1:]), dtype=np.float32)
    for m in range(count):
        w = np.float32(weight[m])
        a = hu[lower[m]].astype(np.float32)
        out[m] = a + w * (hu[upper[m]].astype(np.float32) - a)
    return out


def volume_from_datasets(datasets: Sequence[Dataset]) -> Volume:
    """The HU volume of one CT series, given its instances in any order.

    Raises :class:`InputError` when an instance is not CT or has no pixel data, when there are
    fewer than 3 slices, when Rows, Columns, ImageOrientationPatient, PixelSpacing,
    FrameOfReferenceUID or SeriesInstanceUID differ between instances, when two slices share a
    position, when the slice origins do not lie on a line, or when a gap exceeds
    :data:`MAX_GAP_RATIO` median gaps. Uneven gaps within that are resampled to the median gap
    by linear interpolation along the stack (the volume is then float32).
    """
    if len(datasets) < MIN_SLICES:
        raise InputError(
            f"a volume needs at least {MIN_SLICES} slices, the series has {len(datasets)}"
        )
    for ds in datasets:
        _check_instance(ds)
    _same(datasets, "Rows")
    _same(datasets, "Columns")
    series_uid = str(_same(datasets, "SeriesInstanceUID") or "")
    frame_uid = str(_same(datasets, "FrameOfReferenceUID") or "")
    orientation = _same_vector(datasets, "ImageOrientationPatient", 6)
    pixel_spacing = _same_vector(datasets, "PixelSpacing", 2)
    if np.any(pixel_spacing <= 0):
        raise InputError(f"PixelSpacing must be positive, not {pixel_spacing.tolist()}")

    row_cosine, column_cosine = orientation[:3], orientation[3:]
    norms = np.linalg.norm(row_cosine), np.linalg.norm(column_cosine)
    if min(norms) < 1e-6:
        raise InputError("ImageOrientationPatient has a zero direction cosine")
    row_cosine, column_cosine = row_cosine / norms[0], column_cosine / norms[1]
    if abs(float(row_cosine @ column_cosine)) > 1e-3:
        raise InputError("ImageOrientationPatient's row and column cosines are not orthogonal")
    normal = np.cross(row_cosine, column_cosine)

    positions = np.stack([_floats(ds, "ImagePositionPatient", 3) for ds in datasets])
    distances = positions @ normal
    order = np.argsort(distances, kind="stable")
    positions, distances = positions[order], distances[order]
    gaps = np.diff(distances)
    if np.any(gaps < DUPLICATE_TOLERANCE_MM):
        k = int(np.argmax(gaps < DUPLICATE_TOLERANCE_MM))
        raise InputError(
            f"two slices share the position {distances[k]:.3f} mm along the normal (duplicates)"
        )
    median_gap = float(np.median(gaps))
    if gaps.max() > MAX_GAP_RATIO * median_gap:
        raise InputError(
            f"uneven slice spacing: a gap of {gaps.max():.3f} mm against a median of "
            f"{median_gap:.3f} mm exceeds {MAX_GAP_RATIO}x (missing slices?)"
        )
    # The stack's direction per mm along the normal: (0, 0, 1) in the slice frame unless tilted.
    direction = (positions[-1] - positions[0]) / (distances[-1] - distances[0])
    on_line = positions[0] + np.outer(distances - distances[0], direction)
    off_line = float(np.linalg.norm(positions - on_line, axis=1).max())
    if off_line > LINE_TOLERANCE * float(pixel_spacing.min()):
        raise InputError(
            f"slice origins leave a straight line by {off_line:.3f} mm (a curved or mixed stack)"
        )

    ordered = [datasets[int(n)] for n in order]
    hu = _hu_slices(ordered)
    if np.abs(gaps - median_gap).max() > EVEN_SPACING_TOLERANCE * median_gap:
        hu = _resample(hu, distances, median_gap)
        step = median_gap
    else:
        step = float(distances[-1] - distances[0]) / (len(distances) - 1)

    affine = np.eye(4, dtype=np.float64)
    affine[:3, 0] = direction * step
    affine[:3, 1] = column_cosine * pixel_spacing[0]
    affine[:3, 2] = row_cosine * pixel_spacing[1]
    affine[:3, 3] = positions[0]
    spacing = tuple(float(s) for s in np.linalg.norm(affine[:3, :3], axis=0))
    return Volume(
        hu=hu,
        affine=affine,
        spacing=(spacing[0], spacing[1], spacing[2]),
        series_instance_uid=series_uid,
        frame_of_reference_uid=frame_uid,
    )
