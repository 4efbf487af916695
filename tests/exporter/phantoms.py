"""Analytic phantoms written as CT Image Storage series in any geometry.

The instances start from :func:`pacs_common.synthetic.ct_series` (complete CT Image IODs that
pass dciodvfy) and get their geometry and pixels replaced: ImageOrientationPatient,
ImagePositionPatient (PS3.3 C.7.6.2) and PatientPosition (C.7.3.1) from a :class:`Geometry`,
pixel data sampled from a function of patient LPS coordinates (mm). Objects are drawn with a
linear ramp of HU across their surface (a blurred edge, as a CT's point spread function makes),
so the isosurface at the ramp's middle is the analytic surface.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from pacs_common.synthetic import ct_series
from pydicom.dataset import Dataset
from pydicom.valuerep import format_number_as_ds

Field = Callable[
    [npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]],
    npt.NDArray[np.float64],
]
INSIDE_HU = 1000.0
OUTSIDE_HU = 0.0
LEVEL_HU = 500.0

#: ImageOrientationPatient (row cosine, column cosine) of axial slices per PatientPosition.
POSITIONS = {
    "HFS": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
    "HFP": ((-1.0, 0.0, 0.0), (0.0, -1.0, 0.0)),
    "FFS": ((-1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
    "FFP": ((1.0, 0.0, 0.0), (0.0, -1.0, 0.0)),
}


@dataclass(frozen=True)
class Geometry:
    """Where a series' voxels are: ``shape`` (nz, ny, nx), ``spacing`` (dz along the normal,
    row spacing, column spacing) mm, the volume's centre in LPS mm, the cosines, a gantry tilt
    (degrees, shearing the stack along the column direction) and the order slices are listed."""

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    centre: tuple[float, float, float] = (0.0, 0.0, 0.0)
    row_cosine: tuple[float, float, float] = (1.0, 0.0, 0.0)
    column_cosine: tuple[float, float, float] = (0.0, 1.0, 0.0)
    tilt_degrees: float = 0.0
    patient_position: str = "HFS"
    reverse: bool = False

    @classmethod
    def positioned(cls, position: str, **kwargs: object) -> Geometry:
        row, column = POSITIONS[position]
        return replace(
            cls(**kwargs),  # type: ignore[arg-type]
            row_cosine=row,
            column_cosine=column,
            patient_position=position,
        )

    def vectors(self) -> tuple[npt.NDArray[np.float64], ...]:
        """(origin of the first slice, slice step, row step, column step) in LPS mm."""
        row = np.asarray(self.row_cosine, dtype=np.float64)
        column = np.asarray(self.column_cosine, dtype=np.float64)
        normal = np.cross(row, column)
        dz, dy, dx = self.spacing
        step = normal * dz + column * dz * np.tan(np.radians(self.tilt_degrees))
        nz, ny, nx = self.shape
        centre = np.asarray(self.centre, dtype=np.float64)
        origin = centre - (
            (nz - 1) / 2 * step + (ny - 1) / 2 * dy * column + (nx - 1) / 2 * dx * row
        )
        return origin, step, column * dy, row * dx


def oblique_cosines(
    yaw: float, pitch: float, roll: float
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Row and column cosines of axial ones rotated by the angles (degrees) about z, y, x."""
    a, b, c = np.radians([yaw, pitch, roll])
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rx = np.array([[1, 0, 0], [0, np.cos(c), -np.sin(c)], [0, np.sin(c), np.cos(c)]])
    rotation = rz @ ry @ rx
    row, column = rotation[:, 0], rotation[:, 1]
    return (
        (float(row[0]), float(row[1]), float(row[2])),
        (float(column[0]), float(column[1]), float(column[2])),
    )


def ramp(signed_distance: npt.NDArray[np.float64], width: float) -> npt.NDArray[np.float64]:
    """HU from a signed distance (negative inside): INSIDE_HU deep inside, OUTSIDE_HU outside,
    linear over *width* mm centred on the surface (LEVEL_HU on it)."""
    fraction = np.clip(0.5 - signed_distance / width, 0.0, 1.0)
    return OUTSIDE_HU + (INSIDE_HU - OUTSIDE_HU) * fraction


def spheres(
    centres_radii: Sequence[tuple[tuple[float, float, float], float]], width: float
) -> Field:
    """A field of solid spheres ((x, y, z), radius) in LPS mm, edges ramped over *width*."""

    def field(
        x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], z: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float64]:
        hu = np.full(np.broadcast(x, y, z).shape, OUTSIDE_HU)
        for (cx, cy, cz), radius in centres_radii:
            distance = np.sqrt((x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2) - radius
            hu = np.maximum(hu, ramp(distance, width))
        return hu

    return field


def series(
    field: Field,
    geometry: Geometry,
    *,
    modality: str = "CT",
    slope: float = 1.0,
    intercept: float = -1024.0,
    seed: int = 0,
) -> list[Dataset]:
    """The CT series sampling *field* (HU at LPS mm) on *geometry*'s voxel centres."""
    nz, ny, nx = geometry.shape
    origin, step, row_step, column_step = geometry.vectors()
    # deep copies: ct_series' instances share their common DataElement objects, so setting an
    # attribute on one instance would set it on all (one deepcopy per instance)
    template = ct_series(
        nz,
        ny,
        nx,
        noise_hu=0.0,
        signed=True,
        seed=seed,
        spacing=(geometry.spacing[1], geometry.spacing[2]),
        slice_thickness=geometry.spacing[0],
    )
    datasets = [copy.deepcopy(ds) for ds in template]
    j = np.arange(ny, dtype=np.float64)[:, None, None]
    i = np.arange(nx, dtype=np.float64)[None, :, None]
    orientation = [*geometry.row_cosine, *geometry.column_cosine]
    for k, ds in enumerate(datasets):
        position = origin + k * step
        points = position + j * row_step + i * column_step  # (ny, nx, 3)
        hu = field(points[..., 0], points[..., 1], points[..., 2])
        stored = np.rint((hu - intercept) / slope)
        ds.PixelData = np.clip(stored, -32768, 32767).astype("<i2").tobytes()
        ds.ImageOrientationPatient = [format_number_as_ds(round(v, 10)) for v in orientation]
        ds.ImagePositionPatient = [format_number_as_ds(round(float(v), 6)) for v in position]
        ds.SliceLocation = format_number_as_ds(round(float(position[2]), 6))
        ds.PatientPosition = geometry.patient_position
        ds.GantryDetectorTilt = format_number_as_ds(geometry.tilt_degrees)
        ds.RescaleSlope = format_number_as_ds(slope)
        ds.RescaleIntercept = format_number_as_ds(intercept)
        ds.Modality = modality
    return datasets[::-1] if geometry.reverse else datasets
