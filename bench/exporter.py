"""Mesh exporter benchmark (issue 5): a 512x512x300 int16 CT phantom, bone preset.

Each scenario runs in its own process (so peak RSS is its own) a few times; printed figures are
medians of CPU seconds (user + system of that process), wall seconds and peak RSS, with the
machine's load average. Targets from issue 5 are printed beside the figures; nothing fails.

- ``skimage``: scikit-image's ``marching_cubes`` alone on the whole volume (reference);
- ``stl``: volume in memory -> ``volume_to_mesh`` -> watertightness check -> binary STL on disk;
- ``decimate``: the same with 90 % decimation (target: a tenth of the triangles);
- ``stl-ascii``: ASCII STL of the mesh (the writer alone);
- ``report``: ``mesh_report`` of the mesh.

RSS includes the interpreter, its imports and the 157 MB input volume (``baseline`` is the RSS
once the volume is built: what the scenario adds is the difference).

    uv run python bench/exporter.py [--runs 3] [--scenarios stl,decimate,...] [--slices 300]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from pacs_common.synthetic import Phantom

SCENARIOS = ("skimage", "stl", "decimate", "stl-ascii", "report")
TARGETS = {
    "skimage": "reference (issue: 1.4-2.1 s, +450 MB)",
    "stl": "target <= 1.5 CPU-s, <= 700 MB peak RSS",
    "decimate": "target <= 6 s, watertight",
    "stl-ascii": "target <= 4 s",
    "report": "target <= 1 s",
}
SPACING = (1.25, 0.7, 0.7)


def phantom_volume(slices: int, size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """(HU int16 (slices, size, size), affine): the synthetic chest (body, bone shell) plus a
    lattice of 6 mm bone spheres (a crude trabecular load: more surface, more components)."""
    dz, dy, dx = SPACING
    phantom = Phantom.fitting(size * dx, size * dy)
    x = ((np.arange(size) - (size - 1) / 2) * dx).astype(np.float32)
    y = ((np.arange(size) - (size - 1) / 2) * dy).astype(np.float32)
    axial = np.rint(phantom.axial(x[None, :], y[:, None])).astype(np.int16)
    hu = np.empty((slices, size, size), dtype=np.int16)
    centres = [(cx, cy) for cx in np.linspace(-75, 75, 6) for cy in np.linspace(-45, 45, 4)]
    period, radius = 20.0, 6.0
    for k in range(slices):
        z = (k - (slices - 1) / 2) * dz
        hu[k] = axial
        dzc = (z + period / 2) % period - period / 2
        half_chord2 = radius**2 - dzc**2
        if half_chord2 > 0:
            for cx, cy in centres:
                i0, i1 = np.searchsorted(x, [cx - radius, cx + radius])
                j0, j1 = np.searchsorted(y, [cy - radius, cy + radius])
                inside = (x[None, i0:i1] - cx) ** 2 + (y[j0:j1, None] - cy) ** 2 <= half_chord2
                hu[k, j0:j1, i0:i1][inside] = 700
    affine = np.eye(4)
    affine[:3, 0] = (0, 0, dz)
    affine[:3, 1] = (0, dy, 0)
    affine[:3, 2] = (dx, 0, 0)
    affine[:3, 3] = (x[0], y[0], -(slices - 1) / 2 * dz)
    return hu, affine


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_scenario(name: str, slices: int) -> dict[str, Any]:
    """One scenario in this process; returns its figures."""
    from pacs_exporter.mesh import MeshOptions, volume_to_mesh
    from pacs_exporter.presets import PRESETS
    from pacs_exporter.report import mesh_report
    from pacs_exporter.topology import edge_summary
    from pacs_exporter.volume import Volume
    from pacs_exporter.writers import WRITERS
    from skimage import measure

    hu, affine = phantom_volume(slices)
    volume = Volume(hu, affine, SPACING, "2.25.1", "2.25.2")
    options = MeshOptions(level=PRESETS["bone"].level_hu)
    extra: dict[str, Any] = {}
    prepared = None
    if name in ("stl-ascii", "report"):
        prepared = volume_to_mesh(volume, options)
    baseline = rss_mb()
    cpu0, wall0 = cpu(), time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pacs-bench-exporter-") as tmp:
        if name == "skimage":
            _, faces, _, _ = measure.marching_cubes(hu, options.level)
            extra["triangles"] = len(faces)
        elif name in ("stl", "decimate"):
            if name == "decimate":
                full = len(volume_to_mesh(volume, options).faces)
                baseline, cpu0, wall0 = rss_mb(), cpu(), time.perf_counter()
                options = MeshOptions(level=options.level, decimate_to=full // 10)
            mesh = volume_to_mesh(volume, options)
            watertight = edge_summary(mesh.faces, len(mesh.vertices)).watertight
            with open(Path(tmp) / "mesh.stl", "wb") as stream:
                WRITERS["stl"](mesh, stream, "pacs-cloud bench, LPS mm")
            extra |= {
                "triangles": len(mesh.faces),
                "watertight": watertight,
                "bytes": (Path(tmp) / "mesh.stl").stat().st_size,
            }
        elif name == "stl-ascii":
            assert prepared is not None
            with open(Path(tmp) / "mesh.stl", "wb") as stream:
                WRITERS["stl-ascii"](prepared, stream, "pacs-cloud bench, LPS mm")
            extra |= {
                "triangles": len(prepared.faces),
                "bytes": (Path(tmp) / "mesh.stl").stat().st_size,
            }
        elif name == "report":
            assert prepared is not None
            report = mesh_report(prepared, volume=volume, options=options)
            extra |= {
                "triangles": report["triangles"],
                "watertight": report["watertight"],
                "components": report["connected_components"],
            }
    return {
        "cpu": cpu() - cpu0,
        "wall": time.perf_counter() - wall0,
        "peak_rss_mb": rss_mb(),
        "baseline_rss_mb": baseline,
        **extra,
    }


def bench(scenarios: list[str], runs: int, slices: int) -> None:
    print(
        f"\n== exporter: {slices}x512x512 int16 CT phantom, bone preset (226 HU)  (load average "
        f"{' '.join(f'{v:.2f}' for v in os.getloadavg())})"
    )
    for name in scenarios:
        results = []
        for _ in range(runs):
            child = subprocess.run(
                [sys.executable, __file__, "--child", name, "--slices", str(slices)],
                check=True,
                capture_output=True,
                text=True,
            )
            results.append(json.loads(child.stdout.splitlines()[-1]))
        figures = {
            key: statistics.median(r[key] for r in results)
            for key in ("cpu", "wall", "peak_rss_mb", "baseline_rss_mb")
        }
        details = {k: v for k, v in results[-1].items() if k not in figures}
        print(
            f"  {name:10s} {figures['cpu']:6.2f} CPU-s {figures['wall']:6.2f} s  peak RSS "
            f"{figures['peak_rss_mb']:6.0f} MB (baseline {figures['baseline_rss_mb']:.0f} MB)  "
            f"{details}  [{TARGETS[name]}]"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_scenario(args.child, args.slices)))
        return
    bench([s.strip() for s in args.scenarios.split(",")], args.runs, args.slices)


if __name__ == "__main__":
    main()
