"""Peak memory of :func:`~pacs_exporter.mesh.volume_to_mesh`, estimated before work starts.

The estimate is the memory the call allocates on top of its input volume, as an upper bound:
the sum of the largest working arrays of each stage (they do not all live at once). The surface
size is not known before extraction; unless the caller passes ``triangles``, it is taken as
:data:`SURFACE_FACTOR` times the area of the volume box's walls in voxel faces, which holds for
anatomy (the benchmark's 512x512x300 bone phantom: 2.5 M triangles against 4.6 M assumed) but
not for noise at the level (a surface through every voxel). ``tests/exporter/test_memory.py``
measures the real peak with tracemalloc and checks that the estimate, given the surface size,
bounds it within :data:`STATED_FACTOR` (3.6-6.6x measured; tracemalloc misses the C++
allocations of scikit-image and fast-simplification, so the true ratio is lower).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from pacs_exporter.errors import BudgetExceeded
from pacs_exporter.mesh import SLAB_VOXELS, MeshOptions

__all__ = ["STATED_FACTOR", "SURFACE_FACTOR", "check_budget", "estimate_peak_bytes"]

SURFACE_FACTOR: Final = 8
"""Assumed triangles per voxel face of the box's walls: 2 triangles per surface voxel face
for a surface four times the box's walls."""
STATED_FACTOR: Final = 8.0
"""The estimate (surface size given) exceeds the traced peak by at most this factor."""
EXTRACT_BYTES_PER_TRIANGLE: Final = 200
"""Face and vertex arrays while slabs are joined, merged, transformed (int64 faces, float64
vertices, two copies at the joins)."""
DECIMATE_BYTES_PER_TRIANGLE: Final = 300
"""fast-simplification's C++ triangles, vertices (quadrics), references and array copies."""


def assumed_triangles(shape: tuple[int, int, int]) -> int:
    nz, ny, nx = shape
    return SURFACE_FACTOR * (ny * nx + nz * nx + nz * ny)


def estimate_peak_bytes(
    shape: tuple[int, int, int],
    dtype: npt.DTypeLike,
    options: MeshOptions,
    *,
    triangles: int | None = None,
) -> int:
    """Upper bound of the bytes ``volume_to_mesh`` allocates for a volume of *shape* (nz, ny,
    nx) and *dtype* with *options*; *triangles* is the expected surface size if known."""
    nz, ny, nx = shape
    voxels = nz * ny * nx
    itemsize = np.dtype(dtype).itemsize
    work = max(itemsize, 4)
    triangles = assumed_triangles(shape) if triangles is None else triangles
    slab = min(max(SLAB_VOXELS, 2 * (ny + 2) * (nx + 2)), (nz + 2) * (ny + 2) * (nx + 2))
    peak = 3 * slab * 4  # a padded float32 slab, its comparison mask, skimage's own copy
    if options.crop_lps is not None:
        peak += voxels * (1 + 8 + work)  # inside mask, one float64 coordinate, the masked copy
    if options.keep == "largest" or options.min_component_mm3 > 0:
        peak += voxels * (1 + 4 + 1 + 1 + 4)  # above, labels, two masks, float32 copy
    if options.smoothing_mm > 0:
        # the smoothed region grows by 4 sigma but stays inside the volume
        peak += voxels * 4 * 2  # float32 output and scipy's line buffers
    peak += triangles * EXTRACT_BYTES_PER_TRIANGLE
    if options.decimate_to is not None:
        peak += triangles * DECIMATE_BYTES_PER_TRIANGLE
    return int(peak)


def check_budget(
    shape: tuple[int, int, int],
    dtype: npt.DTypeLike,
    options: MeshOptions,
    budget_bytes: int,
    *,
    triangles: int | None = None,
) -> int:
    """The estimate, or :class:`BudgetExceeded` when it is over *budget_bytes*."""
    estimate = estimate_peak_bytes(shape, dtype, options, triangles=triangles)
    if estimate > budget_bytes:
        raise BudgetExceeded(
            f"a {shape[0]}x{shape[1]}x{shape[2]} volume needs about {estimate / 1e6:.0f} MB "
            f"with these options, over the budget of {budget_bytes / 1e6:.0f} MB"
        )
    return estimate
