"""Volume to watertight triangle mesh in patient millimetres: the exporter's pure core.

``volume_to_mesh`` takes arrays and returns arrays (no file or network I/O):

1. crop to ``crop_lps`` (a box in LPS mm), then to the bounding box of the voxels at or above
   the level grown by one sample (the neighbours below the level place the outermost vertices;
   nothing further out can hold surface);
2. optionally keep only the largest connected object, or drop objects under a size (26-connected
   voxels at or above the level: a cavity stays with the object that encloses it);
3. optionally smooth: a Gaussian on the volume, sigma per axis ``smoothing_mm / spacing``;
4. marching cubes (scikit-image's Lewiner variant, topologically consistent) per slab of z with
   one slice of overlap, so only a slab at a time is converted to float32; the slabs' vertices
   on shared planes are merged;
5. the volume's border is closed: each slab is padded with the border reflected about the level
   (``2 * level - v``, kept below the level), which puts the closing cap half a voxel outside
   the last sampled plane, where the data ends, and makes the surface watertight;
6. vertices to patient LPS mm through the affine (PS3.3 C.7.6.2.1.1), faces wound so that their
   normals point out of the object (positive signed volume), whatever the affine's handedness;
   by default, vertices offset along their normals to undo the volume that flat triangles cut
   off curved surfaces (:mod:`pacs_exporter.curvature`);
7. optionally decimate to a target triangle count (Fast Quadric Mesh Simplification through
   ``fast-simplification``, then fins and degenerate faces removed, watertightness verified);
8. optionally to RAS (x and y negated).

For integer volumes and an integral level, marching cubes runs at ``level - 0.5`` HU: a
sample equal to the level would put a vertex on the sample itself, shared by several edges, and
make zero-area triangles; the nudge keeps "inside" meaning ``HU >= level``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
from scipy import ndimage
from skimage import measure

from pacs_exporter.curvature import correct_curvature
from pacs_exporter.errors import ExportError
from pacs_exporter.topology import edge_summary, remove_degenerate_and_fins
from pacs_exporter.volume import Volume

__all__ = ["Mesh", "MeshOptions", "SLAB_VOXELS", "volume_to_mesh"]

SLAB_VOXELS: Final = 1 << 23
"""Voxels per marching-cubes slab (32 MB of float32): bounds the extractor's working memory."""
INTEGER_LEVEL_NUDGE: Final = 0.5
GAUSSIAN_TRUNCATE: Final = 4.0
"""Gaussian kernels reach this many sigmas (scipy.ndimage's default)."""
DECIMATION_AGGRESSIVENESS: Final = 7
"""fast-simplification's ``agg`` (its default): higher is faster and less exact."""

Box = tuple[tuple[float, float, float], tuple[float, float, float]]
Region = tuple[slice, slice, slice]


@dataclass
class Mesh:
    """A triangle mesh: ``vertices`` (V, 3) float32 in mm, ``faces`` (F, 3) int32 or int64
    vertex indices wound counter-clockwise seen from outside; ``coordinates`` names the frame
    of the vertices (patient LPS, or RAS: x and y negated)."""

    vertices: npt.NDArray[np.floating[Any]]
    faces: npt.NDArray[np.integer[Any]]
    coordinates: Literal["LPS", "RAS"] = "LPS"


@dataclass(frozen=True)
class MeshOptions:
    """What surface to extract and how to shape it.

    ``level`` in HU (see :mod:`pacs_exporter.presets`); ``smoothing_mm`` is the Gaussian's
    sigma in mm (0: none); ``decimate_to`` a target triangle count; ``keep`` "largest" keeps the
    largest connected object; ``min_component_mm3`` drops objects smaller than that;
    ``crop_lps`` is ``((x0, y0, z0), (x1, y1, z1))`` in LPS mm; ``coordinates`` the output frame;
    ``curvature_correction`` offsets the vertices along their normals to undo marching cubes'
    volume deficit on curved surfaces (see :mod:`pacs_exporter.curvature`; about 0.1 s per
    million triangles; off: the raw marching-cubes vertices).
    """

    level: float
    smoothing_mm: float = 0.0
    decimate_to: int | None = None
    keep: Literal["all", "largest"] = "all"
    min_component_mm3: float = 0.0
    crop_lps: Box | None = None
    coordinates: Literal["LPS", "RAS"] = "LPS"
    curvature_correction: bool = True

    def __post_init__(self) -> None:
        if not np.isfinite(self.level):
            raise ExportError(f"the level must be a finite HU value, not {self.level}")
        if not self.smoothing_mm >= 0:
            raise ExportError(f"smoothing_mm must be >= 0, not {self.smoothing_mm}")
        if self.decimate_to is not None and self.decimate_to < 4:
            raise ExportError(f"decimate_to must be at least 4 triangles, not {self.decimate_to}")
        if self.keep not in ("all", "largest"):
            raise ExportError(f"keep must be 'all' or 'largest', not {self.keep!r}")
        if not self.min_component_mm3 >= 0:
            raise ExportError(f"min_component_mm3 must be >= 0, not {self.min_component_mm3}")
        if self.coordinates not in ("LPS", "RAS"):
            raise ExportError(f"coordinates must be 'LPS' or 'RAS', not {self.coordinates!r}")
        if self.crop_lps is not None:
            low, high = np.asarray(self.crop_lps[0]), np.asarray(self.crop_lps[1])
            if low.shape != (3,) or high.shape != (3,) or np.any(low >= high):
                raise ExportError("crop_lps must be ((x0, y0, z0), (x1, y1, z1)) with x0 < x1 ...")


def _axis_aligned(matrix: npt.NDArray[np.float64]) -> bool:
    """True when each voxel axis runs along one patient axis (no obliquity, no tilt)."""
    nonzero = np.abs(matrix) > 1e-9 * np.abs(matrix).max()
    return bool(np.all(nonzero.sum(axis=0) == 1) and np.all(nonzero.sum(axis=1) == 1))


def _crop(volume: Volume, box: Box) -> tuple[Region, npt.NDArray[np.bool_] | None]:
    """The index region holding the voxel centres inside *box*, and for an oblique volume the
    mask (shape of the region) of those centres actually inside it."""
    matrix, origin = volume.affine[:3, :3], volume.affine[:3, 3]
    low, high = np.asarray(box[0], np.float64), np.asarray(box[1], np.float64)
    corners = np.array([[(low, high)[c >> n & 1][n] for n in range(3)] for c in range(8)])
    index = np.linalg.solve(matrix, (corners - origin).T).T
    aligned = _axis_aligned(matrix)
    first = np.ceil(index.min(axis=0) - 1e-6) if aligned else np.floor(index.min(axis=0))
    last = np.floor(index.max(axis=0) + 1e-6) if aligned else np.ceil(index.max(axis=0))
    first = np.maximum(first, 0).astype(int)
    last = np.minimum(last, np.array(volume.hu.shape) - 1).astype(int)
    if np.any(last < first):
        raise ExportError("the crop box holds no voxel of the volume")
    region = (
        slice(int(first[0]), int(last[0]) + 1),
        slice(int(first[1]), int(last[1]) + 1),
        slice(int(first[2]), int(last[2]) + 1),
    )
    if aligned:
        return region, None
    k, j, i = (np.arange(s.start, s.stop, dtype=np.float64) for s in region)
    inside = np.ones((len(k), len(j), len(i)), dtype=bool)
    for axis in range(3):
        coordinate = (
            origin[axis]
            + (k * matrix[axis, 0])[:, None, None]
            + (j * matrix[axis, 1])[None, :, None]
            + (i * matrix[axis, 2])[None, None, :]
        )
        inside &= (coordinate >= low[axis]) & (coordinate <= high[axis])
    return region, inside


def _occupied(data: npt.NDArray[Any], level: float) -> Region | None:
    """The bounding region of the samples ``>= level``, scanned a slab at a time."""
    nz, ny, nx = data.shape
    step = max(1, SLAB_VOXELS // max(1, ny * nx))
    z_any = np.zeros(nz, dtype=bool)
    y_any = np.zeros(ny, dtype=bool)
    x_any = np.zeros(nx, dtype=bool)
    for z0 in range(0, nz, step):
        above: npt.NDArray[np.bool_] = np.asarray(data[z0 : z0 + step] >= level)
        rows = np.any(above, axis=2)
        z_any[z0 : z0 + step] = np.any(rows, axis=1)
        y_any |= np.any(rows, axis=0)
        x_any |= np.any(above, axis=(0, 1))
    if not z_any.any():
        return None
    spans = [np.flatnonzero(a) for a in (z_any, y_any, x_any)]
    return (
        slice(int(spans[0][0]), int(spans[0][-1]) + 1),
        slice(int(spans[1][0]), int(spans[1][-1]) + 1),
        slice(int(spans[2][0]), int(spans[2][-1]) + 1),
    )


def _grow(region: Region, margin: tuple[int, int, int], shape: tuple[int, ...]) -> Region:
    grown = [
        slice(max(0, s.start - m), min(n, s.stop + m))
        for s, m, n in zip(region, margin, shape, strict=True)
    ]
    return grown[0], grown[1], grown[2]


def _filter_components(
    data: npt.NDArray[Any], level: float, below: float, options: MeshOptions, voxel_mm3: float
) -> npt.NDArray[Any]:
    """*data* with the objects that *options* drops set to *below* (26-connected voxels)."""
    above = data >= level
    labels, count = ndimage.label(above, structure=np.ones((3, 3, 3), dtype=bool))
    if count == 0:
        return data
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    sizes[0] = 0
    keep = sizes * voxel_mm3 >= options.min_component_mm3
    keep[0] = False
    if options.keep == "largest":
        largest = int(np.argmax(sizes))
        keep[:] = False
        keep[largest] = True
    dropped = ~keep[labels] & above
    del labels
    out = np.array(data, dtype=np.result_type(data.dtype, np.float32), copy=True)
    out[dropped] = below
    return out


def _padded_slab(
    block: npt.NDArray[Any], level: float, below: float, pad_low: bool, pad_high: bool
) -> npt.NDArray[np.float32]:
    """*block* as float32, padded by one sample in y and x (and in z where asked) with the
    border reflected about *level* and kept under *below* < level."""
    nz, ny, nx = block.shape
    low, high = int(pad_low), int(pad_high)
    out = np.empty((nz + low + high, ny + 2, nx + 2), dtype=np.float32)
    cap = np.float32(below)
    out[:low] = cap
    out[low + nz :] = cap
    inner = out[low : low + nz]
    inner[:, 1:-1, 1:-1] = block
    inner[:, :, 0] = cap
    inner[:, :, -1] = cap
    inner[:, 0, :] = cap
    inner[:, -1, :] = cap
    twice = np.float32(2 * level)
    np.minimum(twice - inner[:, 1, 1:-1], cap, out=inner[:, 0, 1:-1])
    np.minimum(twice - inner[:, -2, 1:-1], cap, out=inner[:, -1, 1:-1])
    np.minimum(twice - inner[:, 1:-1, 1], cap, out=inner[:, 1:-1, 0])
    np.minimum(twice - inner[:, 1:-1, -2], cap, out=inner[:, 1:-1, -1])
    if low:
        np.minimum(twice - out[1, 1:-1, 1:-1], cap, out=out[0, 1:-1, 1:-1])
    if high:
        np.minimum(twice - out[-2, 1:-1, 1:-1], cap, out=out[-1, 1:-1, 1:-1])
    return out


def _on_plane(vertices: npt.NDArray[np.float32], z: float) -> npt.NDArray[np.int64]:
    """Indices of the *vertices* on the plane ``k = z``, ordered by (j, i)."""
    on = np.flatnonzero(vertices[:, 0] == np.float32(z))
    return on[np.lexsort((vertices[on, 2], vertices[on, 1]))]


def _march(
    data: npt.NDArray[Any],
    level: float,
    below: float,
    progress: Callable[[float], None],
    flip: bool = False,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.integer[Any]]]:
    """Marching cubes over *data* a slab at a time; vertices as (k, j, i) indices of *data*,
    faces in scikit-image's winding (reversed with *flip*).

    Slabs share one plane of samples: both compute the same vertices on it (identical floats:
    each interpolates the same two samples along an edge in the plane), one to one. Each slab's
    vertices on its first plane are paired with the previous slab's on its last (both ordered
    by (j, i)) and dropped; the slab's faces are renumbered in the one gather that also offsets
    them, so no pass over the whole mesh is needed.
    """
    nz, ny, nx = data.shape
    depth = max(2, SLAB_VOXELS // max(1, (ny + 2) * (nx + 2)))
    starts = list(range(0, max(1, nz - 1), depth - 1))
    index_dtype = np.int32 if 3 * (nz + 2) * (ny + 2) * (nx + 2) < 2**31 else np.int64
    order = [0, 2, 1] if flip else [0, 1, 2]
    vertex_parts: list[npt.NDArray[np.float32]] = []
    face_parts: list[npt.NDArray[np.integer[Any]]] = []
    previous_top = np.zeros(0, dtype=np.int64)  # global ids on the last slab's last plane
    previous_at = np.zeros((0, 2), dtype=np.float32)  # and their (j, i)
    count = 0
    for n, z0 in enumerate(starts):
        z1 = min(nz, z0 + depth)
        first, last = z0 == 0, z1 == nz
        block = data[z0:z1]
        if block.max() < level:
            previous_top, previous_at = np.zeros(0, dtype=np.int64), np.zeros((0, 2), np.float32)
            progress((n + 1) / len(starts))
            continue
        slab = _padded_slab(block, level, below, first, last)
        vertices, faces, _, _ = measure.marching_cubes(  # type: ignore[no-untyped-call]
            slab, level, allow_degenerate=True
        )
        del slab
        vertices -= np.array([(1 if first else 0) - z0, 1, 1], dtype=np.float32)
        bottom = _on_plane(vertices, z0) if not first else np.zeros(0, dtype=np.int64)
        if not np.array_equal(vertices[bottom, 1:], previous_at):
            raise ExportError(f"internal: slabs disagree on the vertices of slice {z0}")
        keep = np.ones(len(vertices), dtype=bool)
        keep[bottom] = False
        renumber = np.empty(len(vertices), dtype=index_dtype)
        kept = int(np.count_nonzero(keep))
        renumber[keep] = np.arange(count, count + kept, dtype=index_dtype)
        renumber[bottom] = previous_top
        top = _on_plane(vertices, z1 - 1) if not last else np.zeros(0, dtype=np.int64)
        previous_top, previous_at = renumber[top].astype(np.int64), vertices[top, 1:]
        vertex_parts.append(vertices[keep] if len(bottom) else vertices)
        face_parts.append(renumber[faces[:, order]])
        count += kept
        progress((n + 1) / len(starts))
    if not vertex_parts:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), index_dtype)
    if len(vertex_parts) == 1:
        return vertex_parts[0], face_parts[0]
    return np.concatenate(vertex_parts), np.concatenate(face_parts)


def _decimate(
    vertices: npt.NDArray[np.float32], faces: npt.NDArray[np.integer[Any]], target: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.integer[Any]]]:
    """Quadric decimation to about *target* faces, kept watertight or refused."""
    import fast_simplification

    if target >= len(faces):
        return vertices, faces
    reduced_vertices, reduced_faces = fast_simplification.simplify(
        vertices, faces, 1.0 - target / len(faces), agg=DECIMATION_AGGRESSIVENESS
    )
    reduced_faces = remove_degenerate_and_fins(np.asarray(reduced_faces))
    used = np.zeros(len(reduced_vertices), dtype=bool)
    used[reduced_faces.ravel()] = True
    renumber = np.cumsum(used, dtype=np.int64) - 1
    out_vertices = np.asarray(reduced_vertices, dtype=np.float32)[used]
    out_faces = renumber[reduced_faces]
    if not edge_summary(out_faces, len(out_vertices)).watertight:
        raise ExportError(
            f"decimation to {target} triangles did not keep the mesh watertight; "
            "ask for more triangles"
        )
    return out_vertices, out_faces


def volume_to_mesh(
    volume: Volume,
    options: MeshOptions,
    progress: Callable[[float], None] | None = None,
) -> Mesh:
    """The closed surface ``HU = options.level`` of *volume* as a mesh in patient mm.

    Vertices are float32 in LPS mm (or RAS, per ``options.coordinates``), faces (F, 3) wound
    with outward normals. *progress* is called with fractions in [0, 1]. Raises
    :class:`ExportError` when the crop is empty, no voxel reaches the level, or decimation
    cannot keep the mesh watertight.
    """
    report = progress or (lambda _fraction: None)
    matrix, origin = volume.affine[:3, :3], volume.affine[:3, 3]
    data: npt.NDArray[Any] = volume.hu
    level = float(options.level)
    if np.issubdtype(data.dtype, np.integer) and level.is_integer():
        level -= INTEGER_LEVEL_NUDGE
    below = level - max(1e-3, 1e-6 * abs(level))
    offset = np.zeros(3, dtype=np.int64)

    if options.crop_lps is not None:
        region, inside = _crop(volume, options.crop_lps)
        data = data[region]
        offset += [s.start for s in region]
        if inside is not None:
            data = np.where(inside, data, np.float32(min(below, float(data.min()))))
    occupied = _occupied(data, level)
    if occupied is None:
        raise ExportError(f"no voxel reaches the level of {options.level:g} HU")
    sigma = tuple(options.smoothing_mm / s for s in volume.spacing)
    # one sample more on every side: the surface lies between the outermost samples at or
    # above the level and their neighbours below it, which place its vertices
    reach = [GAUSSIAN_TRUNCATE * s if options.smoothing_mm > 0 else 0.0 for s in sigma]
    margin = [int(np.ceil(r)) + 1 for r in reach]
    occupied = _grow(occupied, (margin[0], margin[1], margin[2]), data.shape)
    data = data[occupied]
    offset += [s.start for s in occupied]
    report(0.05)

    if options.keep == "largest" or options.min_component_mm3 > 0:
        voxel_mm3 = abs(float(np.linalg.det(matrix)))
        data = _filter_components(data, level, below, options, voxel_mm3)
    if options.smoothing_mm > 0:
        data = ndimage.gaussian_filter(
            data, sigma, output=np.float32, mode="nearest", truncate=GAUSSIAN_TRUNCATE
        )
    report(0.1)

    # Lewiner's triangles face outward in (z, y, x) index order, a left-handed frame for a
    # right-handed affine: reversed when the affine keeps handedness
    flip = bool(np.linalg.det(matrix) > 0)
    index_vertices, faces = _march(data, level, below, lambda f: report(0.1 + 0.7 * f), flip)
    if len(faces) == 0:
        raise ExportError(f"no surface at the level of {options.level:g} HU")
    pinned = None
    if options.curvature_correction:
        # the closing caps: vertices between the outermost samples and the padding
        upper = np.array(data.shape, dtype=np.float32) - 1
        pinned = np.any((index_vertices < 0) | (index_vertices > upper), axis=1)
    # float32 throughout: index coordinates are exact to 1e-7 voxel, patient ones to 3e-5 mm
    index_vertices += offset.astype(np.float32)
    out_vertices = index_vertices @ matrix.T.astype(np.float32)
    out_vertices += origin.astype(np.float32)
    del index_vertices
    if options.curvature_correction:
        out_vertices = correct_curvature(out_vertices, faces, pinned)
    report(0.85)

    if options.decimate_to is not None:
        out_vertices, faces = _decimate(out_vertices, faces, options.decimate_to)
    if options.coordinates == "RAS":
        out_vertices[:, :2] *= -1
    report(1.0)
    index_dtype = np.int32 if len(out_vertices) < np.iinfo(np.int32).max else np.int64
    return Mesh(out_vertices, faces.astype(index_dtype, copy=False), options.coordinates)
