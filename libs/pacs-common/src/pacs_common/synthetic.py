"""Synthetic CT Image Storage series with known geometry and known Hounsfield units.

For demos, tests and benchmarks: every instance is a complete CT Image IOD (PS3.3 A.3) with the
Type 1 and Type 2 attributes of each of its modules, so ``dciodvfy`` reports no errors, and a
Part 10 file meta header (PS3.10 §7.1) with Explicit VR Little Endian.

The pixel data samples an analytic :class:`Phantom` in patient coordinates (LPS, mm):

- air outside the body, -1000 HU;
- an elliptic water cylinder along z (the body), 0 HU;
- an elliptic bone shell inside it (a "rib cage"), +1000 HU;
- a sphere of +400 HU (an enhancing lesion), centred on the series' middle slice;

plus optional Gaussian noise. Stored values are ``HU + 1024`` (RescaleSlope 1, RescaleIntercept
-1024, PS3.3 C.11.1.1.2), 16 bits allocated, unsigned 12-bit by default or signed 16-bit.

Geometry (PS3.3 C.7.6.2): axial slices (ImageOrientationPatient ``1\\0\\0\\0\\1\\0``), the image
centred on x = y = 0, slice centres at ``z = (k - (n - 1) / 2) * slice_spacing`` for the k-th
slice (InstanceNumber k + 1), so SliceLocation equals the z of ImagePositionPatient.

Everything is deterministic for given arguments: UIDs are UUID-derived (``2.25.``, PS3.5 §B.2)
from a UUID-5 of the seed and the identifying arguments, and the noise of slice k comes from a
generator seeded with ``(seed, series_number, k)``, so a lazily iterated series is the same as a
listed one.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from io import BytesIO
from typing import Final, ParamSpec

import numpy as np
import numpy.typing as npt
from pydicom import dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
)
from pydicom.valuerep import format_number_as_ds

__all__ = [
    "AIR_HU",
    "BONE_HU",
    "RESCALE_INTERCEPT",
    "SPHERE_HU",
    "WATER_HU",
    "Phantom",
    "ct_series",
    "iter_ct_series",
    "iter_study",
    "study",
    "synthetic_uid",
    "to_bytes",
]

AIR_HU: Final = -1000
WATER_HU: Final = 0
BONE_HU: Final = 1000
SPHERE_HU: Final = 400
RESCALE_INTERCEPT: Final = -1024

#: Fixed, so that a given seed always yields the same study (dates included).
DEFAULT_STUDY_DATETIME: Final = datetime(2025, 1, 15, 9, 30, 0)
DEFAULT_PATIENT_NAME: Final = "Synthetic^Phantom"
DEFAULT_PATIENT_ID: Final = "PACS-SYNTH-0001"

_UID_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_OID, "pacs-cloud.synthetic")
_IMPLEMENTATION_VERSION: Final = "PACSCLOUD_010"

FloatArray = npt.NDArray[np.float32]
P = ParamSpec("P")


def synthetic_uid(*parts: object) -> str:
    """A deterministic UID for *parts*: ``2.25.`` + a UUID-5 as an integer (PS3.5 §B.2)."""
    name = "|".join(str(part) for part in parts)
    return f"2.25.{uuid.uuid5(_UID_NAMESPACE, name).int}"


@dataclass(frozen=True, slots=True)
class Phantom:
    """An analytic CT phantom in patient coordinates (LPS, mm), centred on the origin.

    The body and the bone shell are infinite along z; the sphere is centred at
    ``(sphere_x, sphere_y, sphere_z)``. Later shapes overwrite earlier ones: air, body, bone
    shell, sphere.
    """

    body_a: float
    """Semi-axis of the body ellipse along x (patient left), mm."""
    body_b: float
    """Semi-axis of the body ellipse along y (patient posterior), mm."""
    shell_inner: float = 0.80
    """Inner edge of the bone shell, as a fraction of the body's semi-axes."""
    shell_outer: float = 0.88
    """Outer edge of the bone shell, as a fraction of the body's semi-axes."""
    sphere_radius: float = 30.0
    sphere_x: float = 0.0
    sphere_y: float = 0.0
    sphere_z: float = 0.0

    @classmethod
    def fitting(cls, width: float, height: float) -> Phantom:
        """The default phantom for a field of view of *width* x *height* mm centred on 0."""
        return cls(
            body_a=0.42 * width,
            body_b=0.32 * height,
            sphere_radius=0.08 * min(width, height),
            sphere_x=0.15 * width,
        )

    def axial(self, x: npt.ArrayLike, y: npt.ArrayLike) -> FloatArray:
        """HU of the z-invariant shapes (air, body, bone shell) at points *x*, *y* (broadcast)."""
        xa = np.asarray(x, dtype=np.float32) / np.float32(self.body_a)
        yb = np.asarray(y, dtype=np.float32) / np.float32(self.body_b)
        r2 = xa * xa + yb * yb
        hu = np.where(r2 <= 1.0, np.float32(WATER_HU), np.float32(AIR_HU))
        shell = (r2 >= self.shell_inner**2) & (r2 <= self.shell_outer**2)
        return np.where(shell, np.float32(BONE_HU), hu).astype(np.float32, copy=False)

    def sphere_mask(
        self, x: npt.ArrayLike, y: npt.ArrayLike, z: npt.ArrayLike
    ) -> npt.NDArray[np.bool_]:
        """True where a point lies inside the sphere (broadcast)."""
        dx = np.asarray(x, dtype=np.float32) - np.float32(self.sphere_x)
        dy = np.asarray(y, dtype=np.float32) - np.float32(self.sphere_y)
        dz = np.asarray(z, dtype=np.float32) - np.float32(self.sphere_z)
        return np.asarray(dx * dx + dy * dy + dz * dz <= np.float32(self.sphere_radius**2))

    def hu(self, x: npt.ArrayLike, y: npt.ArrayLike, z: npt.ArrayLike) -> FloatArray:
        """Noise-free HU at points (*x*, *y*, *z*) in mm, broadcast together."""
        return np.where(self.sphere_mask(x, y, z), np.float32(SPHERE_HU), self.axial(x, y)).astype(
            np.float32, copy=False
        )


def _ds(value: float) -> str:
    """A Decimal String value (PS3.5 table 6.2-1: at most 16 characters)."""
    return format_number_as_ds(float(round(value, 6)))


def _file_meta(sop_instance_uid: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = UID(sop_instance_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = _IMPLEMENTATION_VERSION
    return meta


def _series_template(
    *,
    rows: int,
    columns: int,
    spacing: tuple[float, float],
    slice_thickness: float,
    slice_spacing: float,
    patient_name: str,
    patient_id: str,
    study_uid: str,
    series_uid: str,
    frame_of_reference_uid: str,
    series_number: int,
    series_description: str,
    study_description: str,
    accession_number: str,
    study_id: str,
    study_datetime: datetime,
    signed: bool,
    convolution_kernel: str,
) -> Dataset:
    """The attributes every instance of the series shares, grouped by CT Image IOD module."""
    date, time = study_datetime.strftime("%Y%m%d"), study_datetime.strftime("%H%M%S")
    ds = Dataset()
    # SOP Common (PS3.3 C.12.1); SOPInstanceUID is set per instance.
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = CTImageStorage
    # Patient (C.7.1.1)
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    # General Study (C.7.2.1)
    ds.StudyInstanceUID = study_uid
    ds.StudyDate = date
    ds.StudyTime = time
    ds.ReferringPhysicianName = ""
    ds.StudyID = study_id
    ds.AccessionNumber = accession_number
    ds.StudyDescription = study_description
    # General Series (C.7.3.1); PatientPosition is Type 2C, required for CT.
    ds.Modality = "CT"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.SeriesDescription = series_description
    ds.SeriesDate = date
    ds.SeriesTime = time
    ds.BodyPartExamined = "CHEST"
    ds.PatientPosition = "HFS"
    # Frame of Reference (C.7.4.1)
    ds.FrameOfReferenceUID = frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    # General Equipment (C.7.5.1)
    ds.Manufacturer = "pacs-cloud"
    ds.ManufacturerModelName = "Synthetic CT phantom"
    ds.SoftwareVersions = "pacs-cloud synthetic 0.1"
    # General Acquisition (C.7.10.1) and General Image (C.7.6.1)
    ds.AcquisitionNumber = 1
    ds.AcquisitionDate = date
    ds.AcquisitionTime = time
    ds.ContentDate = date
    ds.ContentTime = time
    ds.BurnedInAnnotation = "NO"
    ds.LossyImageCompression = "00"
    # Image Plane (C.7.6.2); ImagePositionPatient and SliceLocation are set per instance.
    ds.PixelSpacing = [_ds(spacing[0]), _ds(spacing[1])]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.SliceThickness = _ds(slice_thickness)
    ds.SpacingBetweenSlices = _ds(slice_spacing)
    # Image Pixel (C.7.6.3) with the CT Image module's constraints (C.8.2.1.1)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = 16
    ds.BitsStored = 16 if signed else 12
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if signed else 0
    # CT Image (C.8.2.1)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.RescaleIntercept = _ds(RESCALE_INTERCEPT)
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.KVP = "120"
    ds.DataCollectionDiameter = "500"
    ds.ReconstructionDiameter = _ds(max(columns * spacing[1], rows * spacing[0]))
    ds.GantryDetectorTilt = "0"
    ds.TableHeight = "150"
    ds.RotationDirection = "CW"
    ds.XRayTubeCurrent = 200
    ds.ExposureTime = 500
    ds.ConvolutionKernel = convolution_kernel
    # VOI LUT (C.11.2): a soft-tissue window.
    ds.WindowCenter = "40"
    ds.WindowWidth = "400"
    return ds


def iter_ct_series(
    n_slices: int = 120,
    rows: int = 512,
    columns: int = 512,
    *,
    spacing: tuple[float, float] = (0.7, 0.7),
    slice_thickness: float = 1.25,
    slice_spacing: float | None = None,
    patient_name: str = DEFAULT_PATIENT_NAME,
    patient_id: str = DEFAULT_PATIENT_ID,
    study_uid: str | None = None,
    series_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    series_number: int = 1,
    series_description: str | None = None,
    study_description: str = "Synthetic CT phantom",
    accession_number: str = "",
    study_id: str = "1",
    study_datetime: datetime = DEFAULT_STUDY_DATETIME,
    seed: int = 0,
    noise_hu: float = 10.0,
    signed: bool = False,
    phantom: Phantom | None = None,
    convolution_kernel: str = "STANDARD",
) -> Iterator[Dataset]:
    """Yield the instances of one axial CT series, in InstanceNumber order.

    *spacing* is PixelSpacing: (row spacing, column spacing) in mm. *slice_spacing* is the
    distance between slice centres (default: *slice_thickness*). Unset UIDs are derived from
    *seed*, *patient_id* and *series_number*; the Frame of Reference UID from the study UID, so
    series of one study built with the same *seed* share it. *phantom* defaults to
    :meth:`Phantom.fitting` the field of view. *noise_hu* is the standard deviation of the
    Gaussian noise added before rounding (0 for exact phantom values).
    """
    if n_slices < 1 or rows < 1 or columns < 1:
        raise ValueError("n_slices, rows and columns must be positive")
    if min(spacing) <= 0 or slice_thickness <= 0:
        raise ValueError("spacing and slice_thickness must be positive")
    step = slice_thickness if slice_spacing is None else slice_spacing
    if step <= 0:
        raise ValueError("slice_spacing must be positive")
    row_spacing, col_spacing = spacing
    study_uid = study_uid or synthetic_uid(seed, patient_id, "study")
    series_uid = series_uid or synthetic_uid(seed, study_uid, "series", series_number)
    frame_of_reference_uid = frame_of_reference_uid or synthetic_uid(seed, study_uid, "for")
    if phantom is None:
        phantom = Phantom.fitting(columns * col_spacing, rows * row_spacing)

    template = _series_template(
        rows=rows,
        columns=columns,
        spacing=spacing,
        slice_thickness=slice_thickness,
        slice_spacing=step,
        patient_name=patient_name,
        patient_id=patient_id,
        study_uid=study_uid,
        series_uid=series_uid,
        frame_of_reference_uid=frame_of_reference_uid,
        series_number=series_number,
        series_description=series_description or f"Phantom {slice_thickness:g} mm",
        study_description=study_description,
        accession_number=accession_number,
        study_id=study_id,
        study_datetime=study_datetime,
        signed=signed,
        convolution_kernel=convolution_kernel,
    )

    # Pixel centres: column j at x0 + j * col_spacing, row i at y0 + i * row_spacing.
    x0 = -(columns - 1) / 2 * col_spacing
    y0 = -(rows - 1) / 2 * row_spacing
    x = (x0 + np.arange(columns, dtype=np.float64) * col_spacing).astype(np.float32)[None, :]
    y = (y0 + np.arange(rows, dtype=np.float64) * row_spacing).astype(np.float32)[:, None]
    axial = phantom.axial(x, y)  # (rows, columns), the same on every slice
    dx, dy = x - np.float32(phantom.sphere_x), y - np.float32(phantom.sphere_y)
    sphere_r2 = dx * dx + dy * dy  # squared in-plane distance to the sphere's axis

    stored_max = (1 << template.BitsStored) - 1 if not signed else np.iinfo(np.int16).max
    stored_min = 0 if not signed else np.iinfo(np.int16).min
    dtype = np.dtype("<i2") if signed else np.dtype("<u2")

    for k in range(n_slices):
        z = (k - (n_slices - 1) / 2) * step
        hu = axial.copy()
        half_chord2 = phantom.sphere_radius**2 - (z - phantom.sphere_z) ** 2
        if half_chord2 >= 0:
            hu[sphere_r2 <= np.float32(half_chord2)] = SPHERE_HU
        if noise_hu > 0:
            rng = np.random.default_rng([seed, series_number, k])
            hu += rng.standard_normal(hu.shape, dtype=np.float32) * np.float32(noise_hu)
        stored = np.clip(np.rint(hu) - RESCALE_INTERCEPT, stored_min, stored_max).astype(dtype)

        # A copy per instance: instances sharing DataElements would all change when a caller
        # sets a value (``ds.RescaleSlope = 2``) on one of them.
        ds = copy.deepcopy(template)
        sop_uid = synthetic_uid(series_uid, "instance", k + 1)
        ds.SOPInstanceUID = sop_uid
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [_ds(x0), _ds(y0), _ds(z)]
        ds.SliceLocation = _ds(z)
        ds.PixelData = stored.tobytes()
        ds["PixelData"].VR = "OW"
        ds.file_meta = _file_meta(sop_uid)
        yield ds


def iter_study(
    n_slices: int = 120,
    rows: int = 512,
    columns: int = 512,
    *,
    spacing: tuple[float, float] = (0.7, 0.7),
    seed: int = 0,
    patient_name: str = DEFAULT_PATIENT_NAME,
    patient_id: str = DEFAULT_PATIENT_ID,
    study_uid: str | None = None,
    slice_thickness: float = 1.25,
    thick_slice_thickness: float = 5.0,
    noise_hu: float = 10.0,
) -> Iterator[Dataset]:
    """Yield a two-series CT study: *n_slices* thin slices, then a thick reconstruction.

    Both series cover the same z range (to within one thick slice) and share the Frame of
    Reference (one acquisition, two reconstructions). Series 2 has ``round(n_slices *
    slice_thickness / thick_slice_thickness)`` slices (at least one), a smoother kernel and half
    the noise.
    """
    study_uid = study_uid or synthetic_uid(seed, patient_id, "study")
    reconstructions = (
        (1, n_slices, slice_thickness, noise_hu, "SHARP"),
        (
            2,
            max(1, round(n_slices * slice_thickness / thick_slice_thickness)),
            thick_slice_thickness,
            noise_hu / 2,
            "SMOOTH",
        ),
    )
    for series_number, count, thickness, noise, kernel in reconstructions:
        yield from iter_ct_series(
            count,
            rows,
            columns,
            spacing=spacing,
            slice_thickness=thickness,
            series_number=series_number,
            noise_hu=noise,
            convolution_kernel=kernel,
            seed=seed,
            patient_name=patient_name,
            patient_id=patient_id,
            study_uid=study_uid,
        )


def _listed(generator: Callable[P, Iterator[Dataset]], name: str) -> Callable[P, list[Dataset]]:
    """*generator* with its output collected in a list (and its signature kept for type checks)."""

    def listed(*args: P.args, **kwargs: P.kwargs) -> list[Dataset]:
        return list(generator(*args, **kwargs))

    listed.__name__ = listed.__qualname__ = name
    listed.__doc__ = f"The list of what :func:`{generator.__name__}` yields."
    return listed


ct_series = _listed(iter_ct_series, "ct_series")
study = _listed(iter_study, "study")


def to_bytes(ds: Dataset) -> bytes:
    """The DICOM Part 10 encoding of *ds* (preamble, ``DICM``, file meta; PS3.10 §7.1)."""
    buffer = BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()
