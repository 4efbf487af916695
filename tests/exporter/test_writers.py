"""Each writer's output read back (numpy-stl for STL, small parsers for PLY and OBJ)."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from pacs_exporter.mesh import Mesh, MeshOptions, volume_to_mesh
from pacs_exporter.writers import WRITERS, vertex_normals
from stl import mesh as stl_mesh

from tests.exporter import phantoms

COMMENT = "pacs-cloud test mesh, LPS mm"


@pytest.fixture(scope="module")
def mesh() -> Mesh:
    from pacs_exporter.volume import volume_from_datasets

    geometry = phantoms.Geometry(shape=(20, 24, 24), spacing=(1.0, 1.0, 1.0), centre=(-7, 3, 150))
    field = phantoms.spheres([((-7.2, 3.3, 150.1), 7.0)], 1.0)
    return volume_to_mesh(
        volume_from_datasets(phantoms.series(field, geometry)), MeshOptions(level=phantoms.LEVEL_HU)
    )


def written(mesh: Mesh, name: str) -> bytes:
    stream = io.BytesIO()
    WRITERS[name](mesh, stream, COMMENT)
    return stream.getvalue()


def test_binary_stl_round_trip(mesh: Mesh) -> None:
    data = written(mesh, "stl")
    assert len(data) == 84 + 50 * len(mesh.faces)
    assert data[:80].rstrip() == COMMENT.encode()
    back = stl_mesh.Mesh.from_file("m.stl", fh=io.BytesIO(data), calculate_normals=False)
    np.testing.assert_array_equal(back.vectors, mesh.vertices[mesh.faces])
    expected = np.cross(back.v1 - back.v0, back.v2 - back.v0)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(back.normals, expected, atol=1e-5)


def test_ascii_stl_round_trip(mesh: Mesh) -> None:
    data = written(mesh, "stl-ascii")
    assert data.startswith(b"solid pacs-cloud_test_mesh,_LPS_mm\n")
    back = stl_mesh.Mesh.from_file("m.stl", fh=io.BytesIO(data))
    # six decimals, read back into float32
    np.testing.assert_allclose(back.vectors, mesh.vertices[mesh.faces], atol=1e-6, rtol=1e-7)


def test_ply_round_trip(mesh: Mesh) -> None:
    data = written(mesh, "ply")
    end = data.index(b"end_header\n") + len(b"end_header\n")
    header = data[:end].decode()
    assert f"comment {COMMENT}" in header
    vertex_count = int(re.search(r"element vertex (\d+)", header).group(1))  # type: ignore[union-attr]
    face_count = int(re.search(r"element face (\d+)", header).group(1))  # type: ignore[union-attr]
    vertices = np.frombuffer(data, "<f4", vertex_count * 3, end).reshape(-1, 3)
    faces = np.frombuffer(
        data, np.dtype([("n", "u1"), ("i", "<i4", 3)]), face_count, end + vertex_count * 12
    )
    assert len(data) == end + vertex_count * 12 + face_count * 13
    np.testing.assert_array_equal(vertices, mesh.vertices)
    assert np.all(faces["n"] == 3)
    np.testing.assert_array_equal(faces["i"], mesh.faces)


def test_obj_round_trip_with_normals(mesh: Mesh) -> None:
    text = written(mesh, "obj").decode()
    assert text.startswith(f"# {COMMENT}\n")
    v, vn, f = [], [], []
    for line in text.splitlines():
        kind, *rest = line.split()
        if kind == "v":
            v.append([float(x) for x in rest])
        elif kind == "vn":
            vn.append([float(x) for x in rest])
        elif kind == "f":
            pairs = [token.split("//") for token in rest]
            assert all(a == b for a, b in pairs)
            f.append([int(a) - 1 for a, _ in pairs])
    np.testing.assert_allclose(v, mesh.vertices, atol=1e-6, rtol=1e-7)
    np.testing.assert_allclose(vn, vertex_normals(mesh.vertices, mesh.faces), atol=5e-7)
    np.testing.assert_array_equal(f, mesh.faces)
    # normals point away from the sphere's centre
    outward = np.einsum("ij,ij->i", np.asarray(vn), mesh.vertices - mesh.vertices.mean(axis=0))
    assert np.all(outward > 0)
