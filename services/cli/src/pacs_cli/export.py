"""``pacs export``: a mesh of a CT series from the exporter's REST API (``pacs_exporter``).

``POST /exports`` queues the job; ``GET /exports/{id}`` is polled for its state and progress
until it succeeded or failed; ``GET /exports/{id}/file`` streams the mesh to a file (written
beside its final name, then renamed); the job's report is printed. Ctrl-C cancels the job
(``DELETE /exports/{id}``).
"""

from __future__ import annotations

import enum
import os
import re
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from pacs_cli.common import (
    DEFAULT_EXPORTER_URL,
    TIMEOUT,
    Exit,
    Token,
    bearer_auth,
    console,
    fail,
)
from pacs_cli.query import uid

FINISHED = ("succeeded", "failed", "cancelled")


class Format(enum.StrEnum):
    STL = "stl"
    STL_ASCII = "stl-ascii"
    PLY = "ply"
    OBJ = "obj"


class Coordinates(enum.StrEnum):
    LPS = "LPS"
    RAS = "RAS"


class Keep(enum.StrEnum):
    ALL = "all"
    LARGEST = "largest"


class StoreBack(enum.StrEnum):
    STL = "stl"
    OBJ = "obj"


class Exporter:
    """The exporter's REST API; an unreachable exporter or an error answer exits with 5."""

    def __init__(self, http: httpx.Client, url: str) -> None:
        self.http = http
        self.url = url.rstrip("/")

    def call(self, method: str, path: str, **options: Any) -> httpx.Response:
        try:
            response = self.http.request(method, f"{self.url}{path}", **options)
        except httpx.TransportError as exc:
            message = f"the exporter at {self.url} cannot be reached: {exc}"
            raise fail(Exit.UNAVAILABLE, message) from None
        if response.is_error:
            raise fail(
                Exit.USAGE if response.status_code == 422 else Exit.UNAVAILABLE,
                f"{method} {self.url}{path} -> {response.status_code}: {_detail(response)}",
            )
        return response

    def job(self, job_id: str) -> dict[str, Any]:
        body: dict[str, Any] = self.call("GET", f"/exports/{job_id}").json()
        return body

    def download(self, job_id: str, out: Path | None) -> tuple[Path, int]:
        """Stream the job's mesh to *out* (default: its name from Content-Disposition)."""
        url = f"{self.url}/exports/{job_id}/file"
        try:
            with self.http.stream("GET", url) as response:
                if response.is_error:
                    response.read()
                    message = f"GET {url} -> {response.status_code}: {_detail(response)}"
                    raise fail(Exit.UNAVAILABLE, message)
                path = out or Path(_filename(response) or f"{job_id}.mesh")
                partial = path.with_name(f".{path.name}.part")
                size = 0
                with open(partial, "wb") as file:
                    for chunk in response.iter_bytes():
                        file.write(chunk)
                        size += len(chunk)
                os.replace(partial, path)
        except httpx.TransportError as exc:
            message = f"the exporter at {self.url} cannot be reached: {exc}"
            raise fail(Exit.UNAVAILABLE, message) from None
        return path, size


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])
    return response.text[:500]


def _filename(response: httpx.Response) -> str | None:
    """The file name of a Content-Disposition header, without any directory part."""
    match = re.search(r'filename="([^"/\\]+)"', response.headers.get("content-disposition", ""))
    return match.group(1) if match else None


def follow(
    exporter: Exporter, job: dict[str, Any], out: Console, poll_seconds: float
) -> dict[str, Any]:
    """Poll *job* until it is finished, with a bar on a terminal, lines otherwise."""
    progress = Progress(
        TextColumn("{task.description:<9}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=out,
        disable=not out.is_terminal,
    )
    shown: tuple[str, int] | None = None
    with progress:
        task = progress.add_task(job["state"], total=100)
        while True:
            progress.update(task, description=job["state"], completed=job["progress"])
            step = (job["state"], int(job["progress"] // 10))
            if not out.is_terminal and step != shown:
                out.print(f"job {job['id']}: {job['state']} {job['progress']:.0f}%", markup=False)
                shown = step
            if job["state"] in FINISHED:
                return job
            time.sleep(poll_seconds)
            job = exporter.job(job["id"])


def print_report(out: Console, report: dict[str, Any], path: Path, size: int) -> None:
    volume = float(report["volume_mm3"])
    lines = [
        f"mesh {path} ({size} bytes)",
        f"  volume      {volume:.1f} mm3 ({volume / 1000:.2f} mL)",
        f"  area        {float(report['area_mm2']):.1f} mm2",
        f"  triangles   {report['triangles']} ({report['vertices']} vertices)",
        f"  watertight  {'yes' if report['watertight'] else 'no'}"
        f" ({report['connected_components']} connected components)",
        f"  level       {report['level_hu']:g} HU, {report['coordinate_system']}",
    ]
    if box := report.get("bounding_box"):
        low = ", ".join(f"{v:.1f}" for v in box["min"])
        high = ", ".join(f"{v:.1f}" for v in box["max"])
        lines.append(f"  bounds      ({low}) .. ({high}) mm")
    for line in lines:
        out.print(line, markup=False)


EXITS = (
    "Exit 0 when the mesh is downloaded, 2 when the exporter refuses the request (the "
    "reason), 5 when it cannot be reached or answers an error, 6 when the job failed (its "
    "reason), 130 on Ctrl-C (the job is cancelled)."
)


def command(
    series: Annotated[str, typer.Argument(help="Series Instance UID (a CT series).", parser=uid)],
    study: Annotated[str, typer.Option(help="Its Study Instance UID.", parser=uid)],
    preset: Annotated[
        str | None,
        typer.Option(help="A named level: bone, 'compact bone', 'soft tissue'... [default: bone]"),
    ] = None,
    level: Annotated[
        float | None, typer.Option(help="The isosurface level in HU (instead of a preset).")
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="The mesh's file format.")] = Format.STL,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", dir_okay=False, help="The mesh file [default: the name it is served by]"
        ),
    ] = None,
    coordinates: Annotated[
        Coordinates, typer.Option(help="Frame of the vertices (mm).")
    ] = Coordinates.LPS,
    smoothing: Annotated[
        float, typer.Option(min=0, max=20, help="Gaussian smoothing sigma in mm (0: none).")
    ] = 0.0,
    decimate: Annotated[int | None, typer.Option(min=4, help="Target triangle count.")] = None,
    keep: Annotated[Keep, typer.Option(help="'largest': the largest object only.")] = Keep.ALL,
    min_component: Annotated[
        float, typer.Option(min=0, help="Drop objects smaller than this (mm3).")
    ] = 0.0,
    curvature_correction: Annotated[
        bool, typer.Option(help="Undo the volume flat triangles cut off curved surfaces.")
    ] = True,
    store_back: Annotated[
        StoreBack | None,
        typer.Option(help="Also store the mesh into the study as an Encapsulated STL or OBJ."),
    ] = None,
    exporter_url: Annotated[
        str,
        typer.Option(
            "--exporter",
            envvar="PACS_EXPORTER_URL",
            help="The exporter's REST API.",
            show_default=True,
        ),
    ] = DEFAULT_EXPORTER_URL,
    poll: Annotated[float, typer.Option(min=0.05, help="Seconds between progress checks.")] = 0.5,
    token: Token = None,
) -> None:
    """Export a mesh of SERIES: follow the job's progress, download the mesh, print its report."""
    if preset is not None and level is not None:
        raise typer.BadParameter("give --preset or --level, not both", param_hint="--level")
    body: dict[str, Any] = {
        "study": study,
        "series": series,
        "preset": preset if preset is not None or level is not None else "bone",
        "level": level,
        "format": fmt.value,
        "coordinates": coordinates.value,
        "smoothing_mm": smoothing,
        "decimate_to": decimate,
        "keep": keep.value,
        "min_component_mm3": min_component,
        "curvature_correction": curvature_correction,
        "store_back": store_back.value if store_back else None,
    }
    stdout = console()
    with httpx.Client(timeout=TIMEOUT, auth=bearer_auth(token)) as http:
        exporter = Exporter(http, exporter_url)
        job: dict[str, Any] = exporter.call("POST", "/exports", json=body).json()
        try:
            job = follow(exporter, job, stdout, poll)
        except KeyboardInterrupt:
            exporter.call("DELETE", f"/exports/{job['id']}")
            raise fail(Exit.INTERRUPTED, f"interrupted: export job {job['id']} cancelled") from None
        if job["state"] != "succeeded":
            reason = job["error"] or "cancelled"
            raise fail(Exit.JOB_FAILED, f"export job {job['id']} {job['state']}: {reason}")
        try:
            path, size = exporter.download(job["id"], out)
        except KeyboardInterrupt:
            message = f"interrupted: the mesh stays at {exporter.url}/exports/{job['id']}/file"
            raise fail(Exit.INTERRUPTED, message) from None
    print_report(stdout, job["report"], path, size)
    if job.get("stored_instance"):
        stdout.print(f"stored back as SOP Instance {job['stored_instance']}", markup=False)
