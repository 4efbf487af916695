"""Markers land where they are in the patient, whatever the patient position, slice order,
obliquity or gantry tilt: no mirrored or misplaced models."""

from __future__ import annotations

import numpy as np
import pytest
from pacs_exporter.mesh import MeshOptions, volume_to_mesh
from pacs_exporter.topology import component_labels, edge_summary
from pacs_exporter.volume import volume_from_datasets

from tests.exporter import phantoms
from tests.exporter.conftest import area_volume_centroid

SPACING = (2.0, 1.5, 1.5)
#: An asymmetric set of markers (LPS mm, radius mm): no mirror or rotation maps it onto itself.
MARKERS = [((14.0, -6.0, 3.0), 7.0), ((-12.0, 9.0, -5.0), 5.0), ((3.0, 15.0, 11.0), 4.0)]
FIELD = phantoms.spheres(MARKERS, width=2.0)
CENTRE = (1.3, 2.1, 1.7)


def marker_centroids(geometry: phantoms.Geometry) -> list[np.ndarray]:
    volume = volume_from_datasets(phantoms.series(FIELD, geometry))
    mesh = volume_to_mesh(volume, MeshOptions(level=phantoms.LEVEL_HU))
    assert edge_summary(mesh.faces, len(mesh.vertices)).watertight
    count, labels = component_labels(mesh.faces, len(mesh.vertices))
    assert count == len(MARKERS)
    measured = []
    for label in range(count):
        _, signed_volume, centroid = area_volume_centroid(mesh, mesh.faces[labels == label])
        assert signed_volume > 0
        measured.append((signed_volume, centroid))
    measured.sort(key=lambda item: -item[0])  # largest marker first, as in MARKERS
    return [centroid for _, centroid in measured]


def assert_markers_in_place(geometry: phantoms.Geometry) -> None:
    half_voxel = 0.5 * min(geometry.spacing)
    for (position, _), centroid in zip(MARKERS, marker_centroids(geometry), strict=True):
        assert np.linalg.norm(centroid - np.asarray(position)) < half_voxel


@pytest.mark.parametrize("reverse", [False, True], ids=["in-order", "reversed"])
@pytest.mark.parametrize("position", ["HFS", "FFS", "HFP", "FFP"])
def test_patient_position_markers_in_place(position: str, reverse: bool) -> None:
    geometry = phantoms.Geometry.positioned(
        position, shape=(24, 32, 32), spacing=SPACING, centre=CENTRE, reverse=reverse
    )
    assert_markers_in_place(geometry)


@pytest.mark.parametrize("reverse", [False, True], ids=["in-order", "reversed"])
def test_oblique_markers_in_place(reverse: bool) -> None:
    row, column = phantoms.oblique_cosines(25.0, -15.0, 20.0)
    geometry = phantoms.Geometry(
        shape=(30, 36, 36),
        spacing=SPACING,
        centre=CENTRE,
        row_cosine=row,
        column_cosine=column,
        reverse=reverse,
    )
    assert_markers_in_place(geometry)


def test_gantry_tilt_markers_in_place() -> None:
    geometry = phantoms.Geometry(
        shape=(24, 40, 32), spacing=SPACING, centre=CENTRE, tilt_degrees=20.0, reverse=True
    )
    volume = volume_from_datasets(phantoms.series(FIELD, geometry))
    # the slice step leaves the normal: the affine's first column carries the shear
    assert abs(volume.affine[1, 0]) == pytest.approx(SPACING[0] * np.tan(np.radians(20.0)))
    assert_markers_in_place(geometry)


def test_ras_output_negates_x_and_y() -> None:
    geometry = phantoms.Geometry(shape=(24, 32, 32), spacing=SPACING, centre=CENTRE)
    volume = volume_from_datasets(phantoms.series(FIELD, geometry))
    lps = volume_to_mesh(volume, MeshOptions(level=phantoms.LEVEL_HU))
    ras = volume_to_mesh(volume, MeshOptions(level=phantoms.LEVEL_HU, coordinates="RAS"))
    assert ras.coordinates == "RAS"
    np.testing.assert_array_equal(ras.vertices, lps.vertices * np.float32([-1, -1, 1]))
    assert area_volume_centroid(ras)[1] > 0  # still outward
