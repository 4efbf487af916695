"""Edges, watertightness and connected components of a triangle mesh, vectorised.

A mesh is watertight here when every edge is shared by exactly two faces that traverse it in
opposite directions: closed, 2-manifold along edges, consistently oriented. All functions take
``faces`` of shape (F, 3) (vertex indices) and are O(F log F) (one sort of the 3F half-edges).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = ["EdgeSummary", "component_labels", "edge_summary", "remove_degenerate_and_fins"]

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class EdgeSummary:
    """The undirected edges of a mesh and whether it is watertight and consistently oriented."""

    edges: int
    watertight: bool


def edge_summary(faces: npt.NDArray[np.integer], vertex_count: int) -> EdgeSummary:
    """Count the undirected edges and check watertightness in one sort of the half-edges.

    Each half-edge ``a -> b`` gets the key ``(min * V + max) * 2 + (a < b)``. Sorted, a
    watertight oriented mesh shows every undirected edge exactly twice, once in each direction:
    keys come in pairs ``(2e, 2e + 1)`` with distinct ``e`` from pair to pair.
    """
    if len(faces) == 0:
        return EdgeSummary(edges=0, watertight=False)
    a = faces.ravel()
    b = faces[:, [1, 2, 0]].ravel()
    forward = a < b
    keys = np.minimum(a, b).astype(np.int64)
    keys *= vertex_count
    keys += np.maximum(a, b)
    keys *= 2
    keys += forward
    del a, b, forward
    keys.sort()
    undirected = keys >> 1
    edges = int(np.count_nonzero(undirected[1:] != undirected[:-1])) + 1
    watertight = False
    if keys.size % 2 == 0:
        first, second = keys[0::2], keys[1::2]
        watertight = bool(
            np.all(first & 1 == 0) and np.array_equal(second, first + 1) and edges * 2 == keys.size
        )
    return EdgeSummary(edges=edges, watertight=watertight)


def component_labels(faces: npt.NDArray[np.integer], vertex_count: int) -> tuple[int, IntArray]:
    """(number of components, label of each face); faces sharing a vertex are connected."""
    if len(faces) == 0:
        return 0, np.zeros(0, dtype=np.int64)
    f = faces.astype(np.int64, copy=False)
    rows = np.concatenate([f[:, 0], f[:, 1]])
    cols = np.concatenate([f[:, 1], f[:, 2]])
    graph = coo_matrix(
        (np.ones(rows.size, dtype=np.int8), (rows, cols)), shape=(vertex_count, vertex_count)
    ).tocsr()
    count, vertex_labels = connected_components(graph, directed=False)
    return int(count), vertex_labels[f[:, 0]].astype(np.int64)


def remove_degenerate_and_fins(faces: npt.NDArray[np.integer]) -> IntArray:
    """*faces* without those that repeat a vertex, and without every face whose vertex set
    appears more than once (two faces glued back to back, a zero-volume fin that a decimator can
    leave); removing both copies leaves their neighbours sharing the edges two by two."""
    f = faces.astype(np.int64, copy=False)
    keep = (f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])
    f = f[keep]
    if len(f) == 0:
        return np.asarray(f, dtype=np.int64)
    ordered = np.sort(f, axis=1)
    _, inverse, counts = np.unique(ordered, axis=0, return_inverse=True, return_counts=True)
    kept: IntArray = f[counts[inverse.ravel()] == 1]
    return kept
