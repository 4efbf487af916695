"""One export, from the series on the API to the mesh in the object store.

::

    metadata (WADO-RS)      size of the series -> memory estimate (BudgetExceeded early)
    instances (WADO-RS)     as stored, decoded by pydicom                  progress  0..40 %
    volume_from_datasets    HU volume and its LPS affine (InputError)       progress 40..50 %
    volume_to_mesh          the core, reporting its progress               progress 50..90 %
    writer -> temp file     the format's writer, then the object store     progress 90..95 %
    report, store back      JSON report beside the mesh; Encapsulated STL  progress 95..99 %

Objects go under ``exports/{job}/``: the mesh as ``{series}.{ext}`` and the report as
``{series}.json``. *progress* is called at every progress point with a percentage; it raises
to stop the export there (cancellation, a lost lease), which the core lets through.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from typing import Any

import httpx
import numpy as np
from pacs_common.client import DicomWebClient, DicomWebError
from pacs_common.storage import ObjectStore, StoreError
from pydicom.dataset import Dataset

from pacs_exporter.encapsulated import encapsulated_stl, to_bytes
from pacs_exporter.errors import BudgetExceeded, ExportError
from pacs_exporter.formats import FORMATS
from pacs_exporter.memory import estimate_peak_bytes
from pacs_exporter.mesh import Mesh, volume_to_mesh
from pacs_exporter.report import mesh_report
from pacs_exporter.schemas import ExportRequest
from pacs_exporter.series import SeriesSize, Unavailable, fetch_series, series_size
from pacs_exporter.volume import volume_from_datasets
from pacs_exporter.writers import WRITERS

__all__ = ["Exported", "input_bytes", "object_keys", "run_export"]

#: Bytes per voxel of the input held while the volume is built: the stored pixel data (at
#: most 2 bytes per sample for CT, PS3.3 C.8.2.1.1.4) and the volume (float32 at worst).
INPUT_BYTES_PER_VOXEL = 2 + 4

Progress = Callable[[float], None]


@dataclass(frozen=True)
class Exported:
    report: dict[str, Any]
    file_key: str
    report_key: str
    stored_instance: str | None


def object_keys(job_id: str, request: ExportRequest) -> tuple[str, str]:
    """The keys of a job's mesh and report in the object store."""
    extension = FORMATS[request.format].extension
    return (
        f"exports/{job_id}/{request.series}.{extension}",
        f"exports/{job_id}/{request.series}.json",
    )


def input_bytes(size: SeriesSize) -> int:
    return size.voxels * INPUT_BYTES_PER_VOXEL


def _check_budget(size: SeriesSize, request: ExportRequest, budget: int) -> int:
    """The job's estimated peak: its input plus the core's estimate (PS: the core's
    :func:`~pacs_exporter.memory.estimate_peak_bytes`); BudgetExceeded over *budget*."""
    shape = (size.instances, size.rows, size.columns)
    estimate = input_bytes(size) + estimate_peak_bytes(shape, np.float32, request.mesh_options())
    if estimate > budget:
        raise BudgetExceeded(
            f"a {shape[0]}x{shape[1]}x{shape[2]} series needs about {estimate / 1e6:.0f} MB "
            f"with these options, over the memory budget of {budget / 1e6:.0f} MB"
        )
    return estimate


def _header(ds: Dataset) -> Dataset:
    if "PixelData" in ds:
        del ds.PixelData
    return ds


def _comment(request: ExportRequest, mesh: Mesh) -> str:
    what = f"preset {request.preset}" if request.preset else "level"
    return (
        f"pacs-cloud mesh, {mesh.coordinates} mm, {what} {request.level_hu:g} HU, "
        f"series {request.series}"
    )


def _put(store: ObjectStore, key: str, data: Any, length: int) -> None:
    try:
        store.put(key, data, length)
    except StoreError as exc:
        raise Unavailable(f"the object store is unavailable: {exc}") from exc


def _binary_stl_lps(mesh: Mesh, comment: str) -> bytes:
    """The mesh as binary STL in LPS mm, the Frame of Reference's own coordinates (RAS
    negates x and y, a rotation: the winding stays outward)."""
    if mesh.coordinates == "RAS":
        vertices = mesh.vertices.copy()
        vertices[:, :2] *= -1
        mesh = Mesh(vertices, mesh.faces, "LPS")
    buffer = BytesIO()
    WRITERS["stl"](mesh, buffer, comment.replace("RAS mm", "LPS mm"))
    return buffer.getvalue()


def _store_back(
    client: DicomWebClient, request: ExportRequest, mesh: Mesh, sources: list[Dataset]
) -> str:
    """Store the mesh into its study as an Encapsulated STL; its SOP Instance UID."""
    name = request.preset or f"level {request.level_hu:g} HU"
    ds = encapsulated_stl(
        _binary_stl_lps(mesh, _comment(request, mesh)),
        sources,
        title=f"{name} surface mesh",
        description=f"pacs-cloud mesh ({name})",
    )
    try:
        result = client.store([to_bytes(ds)], study_uid=request.study)
    except httpx.TransportError as exc:
        raise Unavailable(f"the API cannot be reached to store the mesh back: {exc}") from exc
    except DicomWebError as exc:
        if exc.status >= 500:
            raise Unavailable(f"the API could not store the mesh back: {exc}") from exc
        raise ExportError(f"the API refused the Encapsulated STL: {exc}") from exc
    if not result.ok:
        raise ExportError(f"the API refused the Encapsulated STL: {result.failed}")
    return str(ds.SOPInstanceUID)


def run_export(
    job_id: str,
    request: ExportRequest,
    *,
    client: DicomWebClient,
    store: ObjectStore,
    budget_bytes: int,
    progress: Progress,
    spool_dir: str | None = None,
) -> Exported:
    """Run one export; raises :class:`ExportError` (final: input, budget, options) or
    :class:`Unavailable` (retry later), or whatever *progress* raises to stop."""
    options = request.mesh_options()
    size = series_size(client, request.study, request.series)
    estimate = _check_budget(size, request, budget_bytes)
    progress(1.0)

    datasets = fetch_series(
        client,
        request.study,
        request.series,
        lambda count: progress(1.0 + 39.0 * min(1.0, count / size.instances)),
    )
    volume = volume_from_datasets(datasets)
    # Only the headers are needed further on (store back references the source instances):
    # drop the pixel data before the mesh stages allocate theirs.
    datasets = [_header(ds) for ds in datasets] if request.store_back else []
    progress(50.0)

    mesh = volume_to_mesh(volume, options, lambda fraction: progress(50.0 + 40.0 * fraction))
    output = FORMATS[request.format]
    file_key, report_key = object_keys(job_id, request)
    comment = _comment(request, mesh)
    with tempfile.TemporaryFile(dir=spool_dir, prefix="pacs-export-") as spool:
        output.writer(mesh, spool, comment)
        length = spool.tell()
        progress(92.0)
        spool.seek(0)
        _put(store, file_key, spool, length)
    progress(95.0)

    report = mesh_report(mesh, volume=volume, options=options)
    report.update(
        study_instance_uid=request.study,
        format=request.format,
        media_type=output.media_type,
        file_bytes=length,
        preset=request.preset,
        estimated_peak_bytes=estimate,
    )
    stored_instance = None
    if request.store_back:
        stored_instance = _store_back(client, request, mesh, datasets)
        report["stored_instance"] = stored_instance
        progress(98.0)
    body = json.dumps(report, indent=2, sort_keys=True).encode()
    _put(store, report_key, BytesIO(body), len(body))
    progress(99.0)
    return Exported(report, file_key, report_key, stored_instance)
