"""The output formats the service offers: each writer's file extension and media type.

- ``stl`` and ``stl-ascii``: ``model/stl``, registered with IANA in 2018 (ASTM; the IANA media
  types registry, ``model/stl``).
- ``obj``: ``model/obj``, registered with IANA in 2021 (the Khronos/3MF submission).
- ``ply``: no media type is registered for PLY, and RFC 6838 §3.4 discourages unregistered
  ``x-`` subtypes such as ``model/x-ply``, so a binary PLY is ``application/octet-stream``
  (RFC 2046 §4.5.1), named by its ``.ply`` filename in Content-Disposition (RFC 6266).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pacs_exporter.writers import WRITERS, Writer

__all__ = ["FORMATS", "OutputFormat"]


@dataclass(frozen=True)
class OutputFormat:
    name: str
    extension: str
    media_type: str

    @property
    def writer(self) -> Writer:
        return WRITERS[self.name]


FORMATS: Final[dict[str, OutputFormat]] = {
    f.name: f
    for f in (
        OutputFormat("stl", "stl", "model/stl"),
        OutputFormat("stl-ascii", "stl", "model/stl"),
        OutputFormat("ply", "ply", "application/octet-stream"),
        OutputFormat("obj", "obj", "model/obj"),
    )
}
assert set(FORMATS) == set(WRITERS), "every writer needs a media type and an extension"
