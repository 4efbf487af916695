"""The rendering query parameters (PS3.18 §8.3.5.1, and §9.1.2 for WADO-URI), parsed once.

Malformed values are a 400 naming the parameter. The rendered media type comes from the Accept
header (PS3.18 §8.7.4): image/jpeg (also for ``*/*`` and ``image/*``, and without Accept) or
image/png; anything else is a 406.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Final

from fastapi import Depends, Query, Request

from pacs_api.dicomweb.negotiation import parse_accept
from pacs_api.errors import BadRequest, NotAcceptable
from pacs_api.imaging.encode import ENCODERS, JPEG, Region, Viewport
from pacs_api.imaging.windowing import FUNCTIONS, Window

DEFAULT_QUALITY: Final = 90
#: Largest viewport side served: the answer is rendered in memory.
MAX_VIEWPORT: Final = 8192
#: Thumbnails fit this box unless a viewport is asked for (PS3.18 §10.4.1.1.4 leaves it open).
THUMBNAIL: Final = Viewport(128, 128, enlarge=False)


@dataclass(frozen=True, slots=True)
class RenderOptions:
    media_type: str = JPEG
    window: Window | None = None
    viewport: Viewport | None = None
    quality: int = DEFAULT_QUALITY


def rendered_media_type(accept: str | None) -> str:
    """The rendered media type to answer with for an Accept header; 406 when none fits.

    ``multipart/related; type=...`` is read as its part type (the study and series resources
    answer multipart)."""
    for accepted in parse_accept(accept):
        media = accepted.media
        value = media.value
        if value == "multipart/related":
            value = media.params.get("type", "*/*").strip().lower()
        if value in ("*/*", "image/*", "multipart/*"):
            return JPEG
        if value in ENCODERS:
            return value
    raise NotAcceptable(
        f"cannot answer Accept: {accept!r}; rendered images are served as "
        f"{' or '.join(ENCODERS)} (PS3.18 §8.7.4)"
    )


def _numbers(text: str, parameter: str, counts: tuple[int, ...]) -> list[float]:
    items = [item.strip() for item in text.split(",")]
    try:
        values = [float(item) for item in items]
    except ValueError:
        values = []
    if len(items) not in counts or len(values) != len(items) or not all(map(math.isfinite, values)):
        raise BadRequest(
            f"parameter {parameter}={text!r} must be {' or '.join(map(str, counts))} "
            "comma-separated numbers (PS3.18 §8.3.5.1)"
        )
    return values


def parse_window(text: str, parameter: str = "window") -> Window:
    """``window=center,width[,function]`` (PS3.18 §8.3.5.1.4); the function is linear,
    linear-exact or sigmoid (PS3.3 C.11.2.1.2, C.11.2.1.3), linear when left out."""
    parts = text.split(",")
    if len(parts) not in (2, 3):
        raise BadRequest(
            f"parameter {parameter}={text!r} must be center,width[,function] (PS3.18 §8.3.5.1.4)"
        )
    center, width = _numbers(",".join(parts[:2]), parameter, (2,))
    name = parts[2].strip().lower() if len(parts) == 3 else "linear"
    function = FUNCTIONS.get(name)
    if function is None:
        raise BadRequest(
            f"parameter {parameter}: function {name!r} is not linear, linear-exact or sigmoid "
            "(PS3.18 §8.3.5.1.4)"
        )
    try:
        return Window(center, width, function)
    except ValueError as exc:
        raise BadRequest(f"parameter {parameter}={text!r}: {exc}") from None


def parse_viewport(text: str) -> Viewport:
    """``viewport=vw,vh[,sx,sy,sw,sh]`` (PS3.18 §8.3.5.1.3): the image (or its region from
    ``sx,sy`` of ``sw`` by ``sh`` pixels, negative to flip) scaled to fit ``vw`` by ``vh``."""
    values = _numbers(text, "viewport", (2, 6))
    if not all(v.is_integer() for v in values):
        raise BadRequest(f"parameter viewport={text!r} must be whole numbers of pixels")
    width, height, *rest = (int(v) for v in values)
    if not (0 < width <= MAX_VIEWPORT and 0 < height <= MAX_VIEWPORT):
        raise BadRequest(f"parameter viewport: vw and vh must be 1 to {MAX_VIEWPORT} pixels")
    region = Region(*rest) if rest else None
    if region is not None and (region.x < 0 or region.y < 0 or not region.width * region.height):
        raise BadRequest("parameter viewport: sx, sy must be >= 0 and sw, sh must not be 0")
    return Viewport(width, height, region)


def parse_quality(text: str, parameter: str = "quality") -> int:
    """``quality`` (PS3.18 §8.3.5.1.2) / ``imageQuality`` (§9.1.2.1.12): 1 to 100."""
    stripped = text.strip()
    if not (stripped.isascii() and stripped.isdigit() and 1 <= int(stripped) <= 100):
        raise BadRequest(f"parameter {parameter}={text!r} must be a whole number from 1 to 100")
    return int(stripped)


async def rendered_options(
    request: Request,
    window: Annotated[
        str | None, Query(description="center,width[,linear|linear-exact|sigmoid]")
    ] = None,
    viewport: Annotated[str | None, Query(description="vw,vh[,sx,sy,sw,sh]")] = None,
    quality: Annotated[str | None, Query(description="JPEG quality, 1-100")] = None,
) -> RenderOptions:
    """The rendering options of a DICOMweb ``/rendered`` or ``/thumbnail`` request."""
    return RenderOptions(
        media_type=rendered_media_type(request.headers.get("accept")),
        window=parse_window(window) if window is not None else None,
        viewport=parse_viewport(viewport) if viewport is not None else None,
        quality=parse_quality(quality) if quality is not None else DEFAULT_QUALITY,
    )


RenderOptionsDep = Annotated[RenderOptions, Depends(rendered_options)]
