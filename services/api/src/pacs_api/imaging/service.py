"""Rendering stored instances: read the object, run the pixel pipeline, encode.

The glue between the index and store on one side and the pure pipeline
(:mod:`~pacs_api.imaging.render`, :mod:`~pacs_api.imaging.encode`) on the other; pipeline
failures become the API's errors here: an object that cannot be rendered is a 406 with the
reason, a frame beyond the object's frames a 404.

The whole object is read and parsed by pydicom, which decodes only the frame asked for.
"""

from __future__ import annotations

import io

from pacs_common.storage.base import ObjectStore
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from pacs_api.errors import NotAcceptable, NotFound
from pacs_api.imaging.encode import Viewport, encode, fit
from pacs_api.imaging.params import RenderOptions
from pacs_api.imaging.render import NoSuchFrame, Unrenderable, render_frame
from pacs_api.index.repository import StoredInstance


def load(store: ObjectStore, stored: StoredInstance) -> Dataset:
    """The stored object parsed by pydicom (a store outage propagates as a 503)."""
    data = store.read(stored.object_key)
    try:
        return dcmread(io.BytesIO(data))
    except (InvalidDicomError, ValueError, EOFError, OSError) as exc:
        raise NotAcceptable(
            f"instance {stored.sop_instance_uid} cannot be parsed for rendering: {exc}"
        ) from None


def render_instance(
    store: ObjectStore,
    stored: StoredInstance,
    options: RenderOptions,
    *,
    frame: int = 1,
    default_viewport: Viewport | None = None,
) -> bytes:
    """Frame *frame* of a stored instance rendered and encoded as *options* ask."""
    ds = load(store, stored)
    try:
        image = render_frame(ds, frame, options.window)
    except NoSuchFrame as exc:
        raise NotFound(f"instance {stored.sop_instance_uid}: {exc}") from None
    except Unrenderable as exc:
        raise NotAcceptable(
            f"instance {stored.sop_instance_uid} cannot be rendered as {options.media_type}: {exc}"
        ) from None
    viewport = options.viewport or default_viewport
    if viewport is not None:
        try:
            image = fit(image, viewport)
        except ValueError as exc:
            raise NotAcceptable(f"parameter viewport: {exc}") from None
    return encode(image, options.media_type, options.quality)
