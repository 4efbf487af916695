"""The JSON report written beside every mesh: what it is, how big, and whether it is closed."""

from __future__ import annotations

from typing import Any

import numpy as np

from pacs_exporter.curvature import cross_rows
from pacs_exporter.mesh import Mesh, MeshOptions
from pacs_exporter.topology import component_labels, edge_summary
from pacs_exporter.volume import Volume

__all__ = ["mesh_report"]


def mesh_report(mesh: Mesh, *, volume: Volume, options: MeshOptions) -> dict[str, Any]:
    """A JSON-ready summary of *mesh*, extracted from *volume* with *options*.

    ``volume_mm3`` is the signed enclosed volume (positive for outward faces), ``area_mm2`` the
    surface area, ``watertight`` true when every edge is shared by exactly two faces traversing
    it in opposite directions, ``euler_characteristic`` V - E + F (2 per sphere-like closed
    component, 2 - 2g for genus g), ``bounding_box`` min/max in the mesh's coordinates,
    ``degenerate_faces`` the zero-area faces.
    """
    vertices = mesh.vertices.astype(np.float64)
    faces = mesh.faces.astype(np.int64, copy=False)
    a, b, c = vertices[faces[:, 0]], vertices[faces[:, 1]], vertices[faces[:, 2]]
    cross = cross_rows(b - a, c - a)
    doubled_area = np.sqrt(np.einsum("ij,ij->i", cross, cross))
    # signed volume: sum of tetrahedra (origin, a, b, c) = dot(a, (b-a) x (c-a)) / 6
    signed_volume = float(np.einsum("ij,ij->", a, cross)) / 6.0
    del b, c, cross
    edges = edge_summary(faces, len(vertices))
    components, _ = component_labels(faces, len(vertices))
    low = vertices.min(axis=0) if len(vertices) else np.zeros(3)
    high = vertices.max(axis=0) if len(vertices) else np.zeros(3)
    return {
        "coordinate_system": f"{mesh.coordinates} mm",
        "level_hu": float(options.level),
        "volume_mm3": signed_volume,
        "area_mm2": float(doubled_area.sum()) / 2.0,
        "vertices": int(len(vertices)),
        "triangles": int(len(faces)),
        "edges": edges.edges,
        "connected_components": components,
        "watertight": edges.watertight,
        "euler_characteristic": int(len(vertices) - edges.edges + len(faces)),
        "degenerate_faces": int(np.count_nonzero(doubled_area <= 0)),
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
