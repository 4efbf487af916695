"""The JSON report written beside every mesh: what it is, how big, and whether it is closed."""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt

from pacs_exporter.curvature import cross_rows
from pacs_exporter.mesh import Mesh, MeshOptions
from pacs_exporter.topology import component_labels, edge_summary
from pacs_exporter.volume import Volume

__all__ = ["mesh_report"]

CHUNK_FACES: Final = 1 << 18
"""Faces measured per batch: float64 temporaries of a few MB, reused by the allocator."""


def _measures(
    vertices: npt.NDArray[np.float64], faces: npt.NDArray[np.integer[Any]]
) -> tuple[float, float, int]:
    """(area, signed volume, zero-area faces): the volume is the sum of the tetrahedra
    (origin, a, b, c), ``dot(a, (b - a) x (c - a)) / 6``."""
    area, volume, degenerate = 0.0, 0.0, 0
    for start in range(0, len(faces), CHUNK_FACES):
        chunk = faces[start : start + CHUNK_FACES]
        a = vertices[chunk[:, 0]]
        cross = cross_rows(vertices[chunk[:, 1]] - a, vertices[chunk[:, 2]] - a)
        doubled_area = np.sqrt(np.einsum("ij,ij->i", cross, cross))
        area += float(doubled_area.sum()) / 2.0
        volume += float(np.einsum("ij,ij->", a, cross)) / 6.0
        degenerate += int(np.count_nonzero(doubled_area <= 0))
    return area, volume, degenerate


def mesh_report(mesh: Mesh, *, volume: Volume, options: MeshOptions) -> dict[str, Any]:
    """A JSON-ready summary of *mesh*, extracted from *volume* with *options*.

    ``volume_mm3`` is the signed enclosed volume (positive for outward faces), ``area_mm2`` the
    surface area, ``watertight`` true when every edge is shared by exactly two faces traversing
    it in opposite directions, ``euler_characteristic`` V - E + F (2 per sphere-like closed
    component, 2 - 2g for genus g), ``bounding_box`` min/max in the mesh's coordinates,
    ``degenerate_faces`` the zero-area faces.
    """
    vertices = mesh.vertices.astype(np.float64)
    faces = mesh.faces
    area, signed_volume, degenerate = _measures(vertices, faces)
    edges = edge_summary(faces, len(vertices))
    components, _ = component_labels(faces, len(vertices))
    low = vertices.min(axis=0) if len(vertices) else np.zeros(3)
    high = vertices.max(axis=0) if len(vertices) else np.zeros(3)
    return {
        "coordinate_system": f"{mesh.coordinates} mm",
        "level_hu": float(options.level),
        "volume_mm3": signed_volume,
        "area_mm2": area,
        "vertices": int(len(vertices)),
        "triangles": int(len(faces)),
        "edges": edges.edges,
        "connected_components": components,
        "watertight": edges.watertight,
        "euler_characteristic": int(len(vertices) - edges.edges + len(faces)),
        "degenerate_faces": degenerate,
        "bounding_box": {"min": low.tolist(), "max": high.tolist()},
        "spacing_mm": list(volume.spacing),
        "series_instance_uid": volume.series_instance_uid,
        "frame_of_reference_uid": volume.frame_of_reference_uid,
        "options": {
            "smoothing_mm": options.smoothing_mm,
            "decimate_to": options.decimate_to,
            "keep": options.keep,
            "min_component_mm3": options.min_component_mm3,
            "crop_lps": options.crop_lps,
        },
    }
