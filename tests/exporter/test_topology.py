"""Watertightness and edge counts, checked batch by batch: the same answer across batch edges."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from pacs_exporter import topology
from pacs_exporter.topology import edge_summary

TETRAHEDRON = np.array([[0, 2, 1], [0, 1, 3], [1, 2, 3], [0, 3, 2]], dtype=np.int32)


def tetrahedra(count: int) -> npt.NDArray[np.int32]:
    """*count* disjoint closed tetrahedra, outward winding."""
    return np.concatenate([TETRAHEDRON + 4 * n for n in range(count)]).astype(np.int32)


@pytest.fixture(params=[1, 3, 1 << 18], ids=["batch1", "batch3", "default"])
def batch(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(topology, "CHUNK_FACES", request.param)
    return int(request.param)


def test_closed_tetrahedra_watertight_edges_counted(batch: int) -> None:
    summary = edge_summary(tetrahedra(7), 28)
    assert summary.watertight
    assert summary.edges == 7 * 6


@pytest.mark.parametrize(
    "change",
    ["drop_face", "flip_face", "duplicate_face", "shared_edge_four_faces", "shared_face_inside"],
)
def test_open_or_inconsistent_mesh_not_watertight(batch: int, change: str) -> None:
    faces = tetrahedra(7)
    if change == "drop_face":
        faces = faces[1:]
    elif change == "flip_face":
        faces[5] = faces[5, ::-1]
    elif change == "duplicate_face":
        faces = np.concatenate([faces, faces[:1]])
    elif change == "shared_edge_four_faces":
        # a second tetrahedron glued to the first along edge 0-1: four faces on one edge,
        # each direction twice (every pair of keys is "opposite", the edges repeat)
        other = np.array([[0, 1, 4], [1, 0, 5], [0, 5, 4], [1, 4, 5]], dtype=np.int32)
        faces = np.concatenate([TETRAHEDRON, other])
    elif change == "shared_face_inside":
        # a closed mesh plus a face and its reverse: every edge still pairs up once per
        # direction on the face, but those edges are shared by four faces
        faces = np.concatenate([faces, faces[:1], faces[:1, ::-1]])
    assert not edge_summary(faces, int(faces.max()) + 1).watertight


def test_edge_count_matches_unique_edges_on_random_faces(batch: int) -> None:
    rng = np.random.default_rng(5)
    for count in range(1, 30):
        faces = rng.integers(0, 6, (count, 3))
        pairs = np.sort(np.stack([faces, np.roll(faces, -1, axis=1)], axis=2).reshape(-1, 2))
        assert edge_summary(faces, 6).edges == len(np.unique(pairs, axis=0))
