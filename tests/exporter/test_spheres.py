"""Accuracy on analytic spheres written as CT series: area, volume, closure, orientation.

With the default options (curvature correction on, no smoothing), measured: area +0.30 %
(r 10 mm, 1 mm), +0.19 % (r 10 mm, 0.7x0.7x2.5 mm: 8 slices across the sphere), +0.22 % and
+0.17 % (r 40 mm); volume +0.01 %, -0.30 %, +0.00 %, -0.00 %. Without the correction (raw marching
cubes) the areas are within 0.5 % but the 10 mm spheres lose 0.64 % and 1.06 % of their volume:
flat triangles cut chords through the curved surface (``test_sphere_raw_marching_cubes_*``).
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

AREA_TOLERANCE = 0.01
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
    assert abs(area / (4 * math.pi * radius**2) - 1) <= AREA_TOLERANCE
    assert abs(signed_volume / (4 / 3 * math.pi * radius**3) - 1) <= VOLUME_TOLERANCE
    assert signed_volume > 0  # outward normals
    assert np.linalg.norm(centroid - CENTRE) < 0.05
    assert edge_summary(mesh.faces, len(mesh.vertices)).watertight
    assert zero_area_faces(mesh) == 0
    report = mesh_report(mesh, volume=volume, options=options)
    assert report["watertight"] and report["connected_components"] == 1
    assert report["euler_characteristic"] == 2
    assert report["volume_mm3"] == pytest.approx(signed_volume)


@pytest.mark.parametrize(
    ("spacing", "volume_error"),
    [(ISOTROPIC, -0.0064), (CLINICAL, -0.0106)],
    ids=["1mm", "clinical"],
)
def test_sphere_raw_marching_cubes_loses_volume_correction_restores(
    spacing: tuple[float, float, float], volume_error: float
) -> None:
    volume = volume_from_datasets(sphere_series(10, spacing))
    exact = 4 / 3 * math.pi * 10**3
    raw = volume_to_mesh(volume, MeshOptions(level=phantoms.LEVEL_HU, curvature_correction=False))
    corrected = volume_to_mesh(volume, MeshOptions(level=phantoms.LEVEL_HU))
    np.testing.assert_array_equal(raw.faces, corrected.faces)  # same topology
    _, raw_volume, _ = area_volume_centroid(raw)
    _, corrected_volume, _ = area_volume_centroid(corrected)
    assert raw_volume / exact - 1 == pytest.approx(volume_error, abs=0.001)
    assert abs(corrected_volume / exact - 1) < abs(raw_volume / exact - 1) / 2
    # the correction moves vertices by hundredths of a millimetre
    assert np.abs(corrected.vertices - raw.vertices).max() < 0.1


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


def test_sphere_in_slabs_same_mesh_as_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    from pacs_exporter import mesh as mesh_module

    volume = volume_from_datasets(sphere_series(10, CLINICAL))
    options = MeshOptions(level=phantoms.LEVEL_HU)
    whole = volume_to_mesh(volume, options)
    # three slices per slab: every seam crosses the sphere
    monkeypatch.setattr(mesh_module, "SLAB_VOXELS", 3 * 52 * 52)
    slabs = volume_to_mesh(volume, options)
    assert len(slabs.vertices) == len(whole.vertices)
    assert len(slabs.faces) == len(whole.faces)
    assert edge_summary(slabs.faces, len(slabs.vertices)).watertight
    assert zero_area_faces(slabs) == 0
    whole_area, whole_volume, _ = area_volume_centroid(whole)
    slab_area, slab_volume, _ = area_volume_centroid(slabs)
    assert slab_area == pytest.approx(whole_area, rel=1e-6)
    assert slab_volume == pytest.approx(whole_volume, rel=1e-6)
