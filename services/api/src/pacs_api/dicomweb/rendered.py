"""WADO-RS rendered and thumbnail resources (PS3.18 §10.4.1.1.4, §8.3.5, §8.7.4).

Rendered images are image/jpeg (the default) or image/png, chosen by the Accept header, with
the ``window``, ``viewport`` and ``quality`` query parameters of §8.3.5.1; the pixel pipeline
is :mod:`pacs_api.imaging.render` (Modality LUT, VOI, photometric interpretation).

- ``.../instances/{i}/rendered``: frame 1 of the instance, as one image.
- ``.../instances/{i}/frames/{n}/rendered``: frame *n*; a list of several frames is a 400
  (ask for frames one at a time).
- ``/studies/{s}/rendered`` and ``.../series/{se}/rendered``: every instance of the study or
  series rendered (frame 1), as ``multipart/related; type="image/jpeg"`` (or image/png), one
  part per instance in series and instance order (§10.4.1.1.4: the rendered study and series
  resources hold all their instances). Instances without a renderable image (structured
  reports, presentation states, a codec we lack) are left out; none at all is a 406.
- ``.../thumbnail`` on study, series, instance and frame: one small JPEG (or PNG) fitting
  128x128 (never enlarged) unless ``viewport`` says otherwise. A series is represented by its
  middle instance (in instance order), a study by the middle instance of its first series, an
  instance by its frame 1.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from itertools import chain

from fastapi import APIRouter
from fastapi.responses import Response, StreamingResponse
from pacs_common.storage.base import ObjectStore

from pacs_api.deps import BaseUrlDep, IndexDep, StoreDep
from pacs_api.dicomweb.frames import parse_frame_list
from pacs_api.dicomweb.responses import RENDERED, RENDERED_MANY
from pacs_api.dicomweb.scope import (
    InstanceScope,
    SeriesScope,
    StudyScope,
    stored_instances,
)
from pacs_api.errors import BadRequest, NotAcceptable, NotFound
from pacs_api.imaging.params import THUMBNAIL, RenderOptions, RenderOptionsDep
from pacs_api.imaging.service import render_instance
from pacs_api.index.repository import StoredInstance

router = APIRouter(tags=["WADO-RS rendered"], default_response_class=Response)

INSTANCE = "/studies/{study}/series/{series}/instances/{instance}"


@router.get(
    "/studies/{study}/rendered",
    responses=RENDERED_MANY,
    summary="A study's instances rendered (§10.4.1.1.4)",
)
def study_rendered(
    scope: StudyScope,
    options: RenderOptionsDep,
    index: IndexDep,
    store: StoreDep,
    base: BaseUrlDep,
) -> StreamingResponse:
    return _multipart(stored_instances(index, scope), options, store, base)


@router.get(
    "/studies/{study}/series/{series}/rendered",
    responses=RENDERED_MANY,
    summary="A series' instances rendered",
)
def series_rendered(
    scope: SeriesScope,
    options: RenderOptionsDep,
    index: IndexDep,
    store: StoreDep,
    base: BaseUrlDep,
) -> StreamingResponse:
    return _multipart(stored_instances(index, scope), options, store, base)


@router.get(INSTANCE + "/rendered", responses=RENDERED, summary="An instance rendered (frame 1)")
def instance_rendered(
    scope: InstanceScope, options: RenderOptionsDep, index: IndexDep, store: StoreDep
) -> Response:
    image = render_instance(store, stored_instances(index, scope)[0], options)
    return Response(image, media_type=options.media_type)


@router.get(
    INSTANCE + "/frames/{frames}/rendered", responses=RENDERED, summary="One frame rendered"
)
def frame_rendered(
    scope: InstanceScope,
    frames: str,
    options: RenderOptionsDep,
    index: IndexDep,
    store: StoreDep,
) -> Response:
    stored = stored_instances(index, scope)[0]
    image = render_instance(store, stored, options, frame=_one_frame(frames))
    return Response(image, media_type=options.media_type)


@router.get(
    "/studies/{study}/thumbnail", responses=RENDERED, summary="A study's thumbnail (§10.4.1.1.4)"
)
def study_thumbnail(
    scope: StudyScope, options: RenderOptionsDep, index: IndexDep, store: StoreDep
) -> Response:
    instances = stored_instances(index, scope)
    first_series = [i for i in instances if i.series_uid == instances[0].series_uid]
    return _thumbnail(first_series[len(first_series) // 2], options, store)


@router.get(
    "/studies/{study}/series/{series}/thumbnail", responses=RENDERED, summary="A series' thumbnail"
)
def series_thumbnail(
    scope: SeriesScope, options: RenderOptionsDep, index: IndexDep, store: StoreDep
) -> Response:
    instances = stored_instances(index, scope)
    return _thumbnail(instances[len(instances) // 2], options, store)


@router.get(INSTANCE + "/thumbnail", responses=RENDERED, summary="An instance's thumbnail")
def instance_thumbnail(
    scope: InstanceScope, options: RenderOptionsDep, index: IndexDep, store: StoreDep
) -> Response:
    return _thumbnail(stored_instances(index, scope)[0], options, store)


@router.get(
    INSTANCE + "/frames/{frames}/thumbnail", responses=RENDERED, summary="A frame's thumbnail"
)
def frame_thumbnail(
    scope: InstanceScope,
    frames: str,
    options: RenderOptionsDep,
    index: IndexDep,
    store: StoreDep,
) -> Response:
    return _thumbnail(stored_instances(index, scope)[0], options, store, _one_frame(frames))


def _one_frame(frames: str) -> int:
    numbers = parse_frame_list(frames)
    if len(numbers) != 1:
        raise BadRequest(
            f"frame list {frames!r} names {len(numbers)} frames; a rendered frame or thumbnail "
            "is one image: ask for one frame at a time"
        )
    return numbers[0]


def _thumbnail(
    stored: StoredInstance, options: RenderOptions, store: ObjectStore, frame: int = 1
) -> Response:
    image = render_instance(store, stored, options, frame=frame, default_viewport=THUMBNAIL)
    return Response(image, media_type=options.media_type)


def _multipart(
    instances: list[StoredInstance], options: RenderOptions, store: ObjectStore, base: str
) -> StreamingResponse:
    rendered = _renderable(instances, options, store)
    first = next(rendered, None)  # errors (store outage, nothing renderable) before any byte
    if first is None:
        raise NotAcceptable(f"none of the {len(instances)} instance(s) can be rendered")
    boundary = uuid.uuid4().hex
    return StreamingResponse(
        _parts(first, rendered, options.media_type, base, boundary),
        media_type=f'multipart/related; type="{options.media_type}"; boundary={boundary}',
    )


def _renderable(
    instances: list[StoredInstance], options: RenderOptions, store: ObjectStore
) -> Iterator[tuple[StoredInstance, bytes]]:
    for stored in instances:
        try:
            yield stored, render_instance(store, stored, options)
        except (NotAcceptable, NotFound):
            continue  # no image in this instance: not part of the rendered study or series


def _parts(
    first: tuple[StoredInstance, bytes],
    rest: Iterator[tuple[StoredInstance, bytes]],
    media_type: str,
    base: str,
    boundary: str,
) -> Iterator[bytes]:
    for stored, image in chain([first], rest):
        location = (
            f"{base}/studies/{stored.study_uid}/series/{stored.series_uid}"
            f"/instances/{stored.sop_instance_uid}/rendered"
        )
        yield (
            f"--{boundary}\r\nContent-Type: {media_type}\r\nContent-Length: {len(image)}\r\n"
            f"Content-Location: {location}\r\n\r\n"
        ).encode()
        yield image
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode()
