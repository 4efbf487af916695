"""Helpers for the exporter's tests: mesh measures computed independently of the report."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from pacs_exporter.mesh import Mesh


def area_volume_centroid(
    mesh: Mesh, faces: npt.NDArray[np.integer] | None = None
) -> tuple[float, float, npt.NDArray[np.float64]]:
    """Area (mm2), signed volume (mm3) and volume centroid (mm) of *faces* (default: all)."""
    f = mesh.faces if faces is None else faces
    v = mesh.vertices.astype(np.float64)
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    area = float(np.linalg.norm(np.cross(b - a, c - a), axis=1).sum()) / 2
    tetra = np.einsum("ij,ij->i", a, np.cross(b, c)) / 6
    volume = float(tetra.sum())
    centroid = (tetra[:, None] * (a + b + c) / 4).sum(axis=0) / volume
    return area, volume, centroid


def zero_area_faces(mesh: Mesh) -> int:
    v = mesh.vertices.astype(np.float64)
    f = mesh.faces
    cross = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    return int(np.count_nonzero(np.linalg.norm(cross, axis=1) <= 0))
