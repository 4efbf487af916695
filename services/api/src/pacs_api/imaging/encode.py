"""Viewport (crop, flip, scale) and encoding of 8-bit display images (PS3.18 §8.3.5.1).

Images are ``uint8`` arrays of shape ``(rows, columns)`` (grayscale) or
``(rows, columns, 3)`` (RGB), as :func:`pacs_api.imaging.render.render_frame` returns them.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
from PIL import Image

from pacs_api.imaging.render import Display

JPEG: Final = "image/jpeg"
PNG: Final = "image/png"


@dataclass(frozen=True, slots=True)
class Region:
    """A region of the source image (PS3.18 §8.3.5.1.3 ``sx,sy,sw,sh``), in pixels from its
    top-left corner; a negative width or height flips the region along that axis."""

    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Viewport:
    """The size the image is scaled to fit, keeping its aspect ratio (``None``: no limit along
    that axis), an optional source region, and whether a smaller image may be enlarged."""

    width: int | None
    height: int | None
    region: Region | None = None
    enlarge: bool = True


def crop(image: Display, region: Region) -> Display:
    """The part of *image* inside *region* (clipped to the image), flipped as it asks."""
    rows, columns = image.shape[:2]
    x0, x1 = sorted((region.x, region.x + region.width))
    y0, y1 = sorted((region.y, region.y + region.height))
    x0, x1 = max(x0, 0), min(x1, columns)
    y0, y1 = max(y0, 0), min(y1, rows)
    if x0 >= x1 or y0 >= y1:
        raise ValueError(f"the region lies outside the {columns}x{rows} image")
    part = image[y0:y1, x0:x1]
    if region.width < 0:
        part = part[:, ::-1]
    if region.height < 0:
        part = part[::-1, :]
    return np.ascontiguousarray(part)


def fit(image: Display, viewport: Viewport) -> Display:
    """*image* cropped to the viewport's region and scaled to fit it, aspect ratio kept."""
    if viewport.region is not None:
        image = crop(image, viewport.region)
    rows, columns = image.shape[:2]
    scales = [
        limit / size
        for limit, size in ((viewport.width, columns), (viewport.height, rows))
        if limit is not None
    ]
    scale = min(scales, default=1.0)
    if not viewport.enlarge:
        scale = min(scale, 1.0)
    size = (max(round(columns * scale), 1), max(round(rows * scale), 1))
    if size == (columns, rows):
        return image
    resized = Image.fromarray(image).resize(size, Image.Resampling.LANCZOS)
    return np.asarray(resized, dtype=np.uint8)


def _jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    # No chroma subsampling (4:4:4): colour images keep their full colour resolution.
    image.save(out, format="JPEG", quality=quality, subsampling=0)
    return out.getvalue()


def _png(image: Image.Image, _quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")  # lossless: quality does not apply
    return out.getvalue()


#: Rendered media types this server produces (PS3.18 §8.7.4, Table 8.7.4-1), by encoder.
ENCODERS: Final[dict[str, Callable[[Image.Image, int], bytes]]] = {JPEG: _jpeg, PNG: _png}


def encode(image: Display, media_type: str, quality: int) -> bytes:
    """*image* encoded as *media_type* (a key of :data:`ENCODERS`); *quality* 1-100 for JPEG."""
    return ENCODERS[media_type](Image.fromarray(image), quality)
