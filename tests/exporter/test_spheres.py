"""Accuracy on analytic spheres written as CT series: area, volume, closure, orientation.

Measured (raw marching cubes, no smoothing): area +0.4 % (r 40 mm, 1 mm), +0.7 % (r 40 mm,
0.7x0.7x2.5 mm), +1.3 % (r 10 mm, 1 mm), +3.4 % (r 10 mm, 0.7x0.7x2.5 mm: 8 slices across the
sphere); volume within 0.45 % everywhere. Marching cubes' facets zig-zag around the true surface
and overstate the area most where the sampling is coarse against the curvature; the 1 % area
target holds at 40 mm and not at 10 mm, and the bounds below say so.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from pacs_exporter.mesh import MeshOptions, volume_to_mesh
from pacs_exporter.report import mesh_report
from pacs_exporter.topology import edge_summary
from pacs_exporter.volume import volume_from_datasets

from tests.exporter import phantoms
from tests.exporter.conftest import area_volume_centroid, zero_area_faces

CENTRE = (0.31, -0.27, 0.43)  # off the voxel grid on every axis
ISOTROPIC = (1.0, 1.0, 1.0)
CLINICAL = (2.5, 0.7, 0.7)  # (slice, row, column) mm

AREA_TOLERANCE = {
    (40, ISOTROPIC): 0.01,
    (40, CLINICAL): 0.01,
    (10, ISOTROPIC): 0.015,
    (10, CLINICAL): 0.04,
}
VOLUME_TOLERANCE = 0.005


def sphere_series(radius: float, spacing: tuple[float, float, float], margin: float = 3.0):
    shape = tuple(int(math.ceil((2 * radius + 2 * margin * max(spacing)) / s)) for s in spacing)
    geometry = phantoms.Geometry(shape=shape, spacing=spacing)  # type: ignore[arg-type]
    field = phantoms.spheres([(CENTRE, radius)], width=max(spacing))
    return phantoms.series(field, geometry)


@pytest.mark.parametrize("spacing", [ISOTROPIC, CLINICAL], ids=["1mm", "0.7x0.7x2.5mm"])
@pytest.mark.parametrize("radius", [10, 40])
def test_sphere_area_volume_closed_outward(
    radius: int, spacing: tuple[float, float, float]
) -> None:
    volume = volume_from_datasets(sphere_series(radius, spacing))
    options = MeshOptions(level=phantoms.LEVEL_HU)
    mesh = volume_to_mesh(volume, options)
    area, signed_volume, centroid = area_volume_centroid(mesh)
    assert abs(area / (4 * math.pi * radius**2) - 1) <= AREA_TOLERANCE[(radius, spacing)]
    assert abs(signed_volume / (4 / 3 * math.pi * radius**3) - 1) <= VOLUME_TOLERANCE
    assert signed_volume > 0  # outward normals
    assert np.linalg.norm(centroid - CENTRE) < 0.05
    assert edge_summary(mesh.faces, len(mesh.vertices)).watertight
    assert zero_area_faces(mesh) == 0
    report = mesh_report(mesh, volume=volume, options=options)
    assert report["watertight"] and report["connected_components"] == 1
    assert report["euler_characteristic"] == 2
    assert report["volume_mm3"] == pytest.approx(signed_volume)


def test_sphere_cut_by_volume_border_closed() -> None:
    radius, spacing = 10.0, ISOTROPIC
    geometry = phantoms.Geometry(shape=(16, 30, 30), spacing=spacing, centre=(0.0, 0.0, 6.0))
    # the sphere's lower part lies below the first slice (z = -1.5): the border cuts it
    volume = volume_from_datasets(
        phantoms.series(phantoms.spheres([(CENTRE, radius)], 1.0), geometry)
    )
    mesh = volume_to_mesh(volume, MeshOptions(level=phantoms.LEVEL_HU))
    assert edge_summary(mesh.faces, len(mesh.vertices)).watertight
    assert zero_area_faces(mesh) == 0
    _, signed_volume, _ = area_volume_centroid(mesh)
    # the cap sits half a slice below the first slice's centre: a sphere cut at z = -2.0
    h = radius - (CENTRE[2] - (-2.0))
    cap = math.pi * h * h * (3 * radius - h) / 3
    assert signed_volume == pytest.approx(4 / 3 * math.pi * radius**3 - cap, rel=0.01)
    assert mesh.vertices[:, 2].min() == pytest.approx(-2.0, abs=1e-4)
