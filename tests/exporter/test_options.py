"""Options: decimation, smoothing, component filtering, cropping."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pacs_exporter.errors import ExportError
from pacs_exporter.mesh import MeshOptions, volume_to_mesh
from pacs_exporter.topology import component_labels, edge_summary
from pacs_exporter.volume import Volume, volume_from_datasets

from tests.exporter import phantoms
from tests.exporter.conftest import area_volume_centroid

BIG, SMALL = ((0.3, -0.2, 0.4), 20.0), ((26.0, 24.0, 1.0), 4.0)
DECIMATION_TOLERANCE = 0.01
"""Decimated meshes have the target count within 1 % (fins removed after simplification)."""
SMOOTHING_VOLUME_TOLERANCE = 0.01
"""A 1 mm Gaussian shrinks a convex surface by about sigma^2 / r (0.05 mm at r = 20 mm):
0.75 % of the volume."""


@pytest.fixture(scope="module")
def two_spheres() -> Volume:
    geometry = phantoms.Geometry(shape=(48, 64, 64), spacing=(1.0, 1.0, 1.0), centre=(4, 4, 0))
    return volume_from_datasets(phantoms.series(phantoms.spheres([BIG, SMALL], 1.0), geometry))


def sphere_volume(radius: float) -> float:
    return 4 / 3 * math.pi * radius**3


@pytest.mark.parametrize("target", [500, 2000, 8000])
def test_decimation_watertight_within_tolerance(two_spheres: Volume, target: int) -> None:
    full = volume_to_mesh(two_spheres, MeshOptions(level=phantoms.LEVEL_HU))
    mesh = volume_to_mesh(two_spheres, MeshOptions(level=phantoms.LEVEL_HU, decimate_to=target))
    assert len(mesh.faces) < len(full.faces)
    assert abs(len(mesh.faces) - target) <= DECIMATION_TOLERANCE * target
    assert edge_summary(mesh.faces, len(mesh.vertices)).watertight
    _, volume, _ = area_volume_centroid(mesh)
    assert volume == pytest.approx(sphere_volume(20.0) + sphere_volume(4.0), rel=0.03)


def test_smoothing_keeps_volume_within_tolerance(two_spheres: Volume) -> None:
    options = MeshOptions(level=phantoms.LEVEL_HU, smoothing_mm=1.0, keep="largest")
    mesh = volume_to_mesh(two_spheres, options)
    _, volume, _ = area_volume_centroid(mesh)
    assert edge_summary(mesh.faces, len(mesh.vertices)).watertight
    assert volume == pytest.approx(sphere_volume(20.0), rel=SMOOTHING_VOLUME_TOLERANCE)


def test_keep_largest_drops_island(two_spheres: Volume) -> None:
    everything = volume_to_mesh(two_spheres, MeshOptions(level=phantoms.LEVEL_HU))
    assert component_labels(everything.faces, len(everything.vertices))[0] == 2
    largest = volume_to_mesh(two_spheres, MeshOptions(level=phantoms.LEVEL_HU, keep="largest"))
    assert component_labels(largest.faces, len(largest.vertices))[0] == 1
    _, volume, centroid = area_volume_centroid(largest)
    assert volume == pytest.approx(sphere_volume(20.0), rel=0.005)
    assert np.linalg.norm(centroid - BIG[0]) < 0.05


def test_min_component_drops_small_islands_only(two_spheres: Volume) -> None:
    options = MeshOptions(level=phantoms.LEVEL_HU, min_component_mm3=1000.0)  # island: 268 mm3
    mesh = volume_to_mesh(two_spheres, options)
    assert component_labels(mesh.faces, len(mesh.vertices))[0] == 1


def test_crop_half_sphere_closed(two_spheres: Volume) -> None:
    box = ((-40.0, -40.0, 0.0), (40.0, 40.0, 40.0))  # z >= 0: the upper half of the big sphere
    mesh = volume_to_mesh(two_spheres, MeshOptions(level=phantoms.LEVEL_HU, crop_lps=box))
    assert edge_summary(mesh.faces, len(mesh.vertices)).watertight
    _, volume, _ = area_volume_centroid(mesh)
    # voxel centres at z = 0.5, 1.5, ...: the cap lies half a voxel below the first, at z = 0
    upper = sum(
        math.pi * (radius + z) ** 2 * (3 * radius - (radius + z)) / 3
        for (_, _, z), radius in (BIG, SMALL)
    )
    assert volume == pytest.approx(upper, rel=0.01)
    assert mesh.vertices[:, 2].min() >= -1e-3


def test_crop_outside_volume_export_error(two_spheres: Volume) -> None:
    box = ((500.0, 500.0, 500.0), (600.0, 600.0, 600.0))
    with pytest.raises(ExportError, match="crop box holds no voxel"):
        volume_to_mesh(two_spheres, MeshOptions(level=phantoms.LEVEL_HU, crop_lps=box))


def test_level_above_everything_export_error(two_spheres: Volume) -> None:
    with pytest.raises(ExportError, match="no voxel reaches"):
        volume_to_mesh(two_spheres, MeshOptions(level=5000.0))


def test_progress_reported_to_completion(two_spheres: Volume) -> None:
    seen: list[float] = []
    volume_to_mesh(two_spheres, MeshOptions(level=phantoms.LEVEL_HU), seen.append)
    assert seen == sorted(seen) and seen[-1] == 1.0
