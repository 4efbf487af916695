"""The export jobs' REST resource.

``POST /exports`` queues a job (202, ``Location: /exports/{id}``); ``GET /exports`` lists the
newest (by study, series or state, a page at a time); ``GET /exports/{id}`` shows one (state,
progress, report, error); ``GET /exports/{id}/file`` streams its mesh;
``DELETE /exports/{id}`` cancels a queued or running job, or deletes a finished one with its
objects: the objects first, so a store that fails keeps the job (503, ``Retry-After``) and the
DELETE can be repeated, never leaving objects that no job names.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse, StreamingResponse
from pacs_common.database import SQL_INTEGER_MAX
from pacs_common.storage import ObjectNotFound, StoreError
from pacs_common.uids import validate_uid

from pacs_exporter.audit import note_job
from pacs_exporter.deps import QueueDep, StoreDep, WorkersDep
from pacs_exporter.errors import ExportError
from pacs_exporter.formats import FORMATS
from pacs_exporter.jobs.queue import Job, JobQueue, State
from pacs_exporter.pipeline import object_keys
from pacs_exporter.problems import (
    Conflict,
    NotFound,
    ServiceUnavailable,
    Unprocessable,
)
from pacs_exporter.schemas import ExportJob, ExportList, ExportRequest

router = APIRouter(prefix="/exports", tags=["exports"])
log = logging.getLogger(__name__)

JobId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="The job's id.")]
_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}


def _job(queue: JobQueue, job_id: str) -> Job:
    job = queue.get(job_id)
    if job is None:
        raise NotFound(f"no export job {job_id}")
    return job


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Ask for a mesh of a CT series",
    responses={422: {"description": "Not a valid export (the reasons).", **_PROBLEM}},
)
def submit(
    request: ExportRequest,
    queue: QueueDep,
    workers: WorkersDep,
    response: Response,
    http: Request,
) -> ExportJob:
    try:
        request.mesh_options()
    except ExportError as exc:
        raise Unprocessable(exc.reason) from exc
    job = queue.submit(request.study, request.series, request.model_dump(mode="json"))
    note_job(http, job.id, job.study, job.series, f"requested: {_asked(request)}")
    log.info("export job %s queued", job.id, extra={"job_id": job.id})  # this request -> job
    workers.wake()
    response.headers["Location"] = f"/exports/{job.id}"
    return ExportJob.of(job)


@router.get(
    "",
    summary="The export jobs, newest first",
    responses={422: {"description": "A filter that is not valid.", **_PROBLEM}},
)
def recent(
    queue: QueueDep,
    limit: Annotated[int, Query(ge=1, le=500, description="Jobs per page.")] = 50,
    offset: Annotated[
        int, Query(ge=0, le=SQL_INTEGER_MAX, description="Jobs skipped (the page's start).")
    ] = 0,
    state: Annotated[State | None, Query(description="Only jobs in this state.")] = None,
    study: Annotated[str | None, Query(description="Only jobs of this study.")] = None,
    series: Annotated[str | None, Query(description="Only jobs of this series.")] = None,
) -> ExportList:
    try:
        study = validate_uid(study, what="Study Instance UID") if study else None
        series = validate_uid(series, what="Series Instance UID") if series else None
    except ValueError as exc:
        raise Unprocessable(str(exc)) from exc
    jobs = queue.recent(limit + 1, state, study=study, series=series, offset=offset)
    return ExportList(
        jobs=[ExportJob.of(job) for job in jobs[:limit]],
        next_offset=offset + limit if len(jobs) > limit else None,
    )


@router.get(
    "/{job_id}",
    summary="One export job: state, progress, report, error",
    responses={404: _PROBLEM},
)
def show(job_id: JobId, queue: QueueDep, http: Request) -> ExportJob:
    job = _job(queue, job_id)
    note_job(http, job.id, job.study, job.series, f"viewed ({job.state.value})")
    return ExportJob.of(job)


@router.get(
    "/{job_id}/file",
    summary="Download the mesh of a succeeded job",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The mesh (model/stl, model/obj, or application/octet-stream for "
            "PLY), named in Content-Disposition.",
            "content": {f.media_type: {} for f in FORMATS.values()},
        },
        404: _PROBLEM,
        409: {"description": "The job has not succeeded.", **_PROBLEM},
    },
)
def download(job_id: JobId, queue: QueueDep, store: StoreDep, http: Request) -> StreamingResponse:
    job = _job(queue, job_id)
    asked = ExportRequest.model_validate(job.request)
    note_job(http, job.id, job.study, job.series, f"mesh: {_asked(asked)}")
    if job.state is not State.SUCCEEDED or job.file_key is None:
        raise Conflict(f"export job {job_id} is {job.state.value}: it has no file")
    output = FORMATS[asked.format]
    try:
        size = store.stat(job.file_key).size
        chunks: Iterator[bytes] = store.open(job.file_key)
    except ObjectNotFound as exc:
        raise NotFound(f"the file of export job {job_id} is no longer in the store") from exc
    filename = job.file_key.rsplit("/", 1)[-1]
    return StreamingResponse(
        chunks,
        media_type=output.media_type,
        headers={
            "Content-Length": str(size),
            "Content-Disposition": f'attachment; filename="{filename}"',
        },
    )


@router.delete(
    "/{job_id}",
    summary="Cancel a queued or running job, or delete a finished one and its file",
    response_class=Response,
    responses={
        200: {"model": ExportJob, "description": "The job was queued: it is cancelled."},
        202: {
            "model": ExportJob,
            "description": "The job is running: its worker stops at its next progress point "
            "and marks it cancelled (cancel_requested until then).",
        },
        204: {"description": "The finished job and its objects are deleted."},
        404: _PROBLEM,
        503: {
            "description": "The object store could not delete the finished job's objects: "
            "the job is kept; repeat the DELETE after Retry-After.",
            **_PROBLEM,
        },
    },
)
def cancel_or_delete(job_id: JobId, queue: QueueDep, store: StoreDep, http: Request) -> Response:
    job = _job(queue, job_id)
    if not job.finished:
        job = queue.cancel(job_id) or job
        what = "cancelled" if job.finished else "cancellation requested"
        note_job(http, job.id, job.study, job.series, what)
        return JSONResponse(
            ExportJob.of(job).model_dump(mode="json"),
            status_code=status.HTTP_200_OK if job.finished else status.HTTP_202_ACCEPTED,
        )
    # the objects first: a failure keeps the row, which names them, for the next DELETE. A
    # failed or cancelled job records no keys but may have written its mesh before it ended:
    # its keys are derived from the job (deleting a missing object is no error)
    derived = object_keys(job.id, ExportRequest.model_validate(job.request))
    keys = sorted({key for key in (job.file_key, job.report_key, *derived) if key})
    if keys:
        try:
            store.delete(keys)
        except StoreError as exc:
            raise ServiceUnavailable(
                f"the files of export job {job_id} could not be deleted ({exc}); the job "
                "is kept: repeat the DELETE later"
            ) from exc
    note_job(http, job.id, job.study, job.series, f"{job.state.value} job deleted with its files")
    if queue.remove(job_id) is None:
        raise NotFound(f"no export job {job_id}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _asked(request: ExportRequest) -> str:
    """What a job asks for, for its audit records."""
    level = f"preset {request.preset}" if request.preset else f"level {request.level} HU"
    stored = f", stored back as {request.store_back}" if request.store_back else ""
    return f"{level}, format {request.format}{stored}"
