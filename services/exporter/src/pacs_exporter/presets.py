"""Named isosurface levels (HU) for the tissues 3D-printing labs ask for.

Each level is the lower bound of a predefined CT threshold range of Materialise Mimics, the
segmentation software most cited in medical 3D-printing papers: the surface of "bone" is where
the HU rise through 226. Upper bounds matter for a two-sided threshold mask, not for one
isosurface, and are kept in the description. The ranges were taken from Mimics' documented
predefined threshold sets as widely quoted in the literature; check them against the Mimics
reference guide of your version before clinical use. Hounsfield units: air -1000, water 0
(the CT Image module's rescale yields HU when RescaleType is HU, PS3.3 C.8.2.1, C.11.1.1.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["PRESETS", "Preset"]

_MIMICS: Final = "Materialise Mimics predefined threshold set"


@dataclass(frozen=True)
class Preset:
    """A named isosurface level in HU, with where it comes from."""

    name: str
    level_hu: float
    description: str
    reference: str


PRESETS: Final[dict[str, Preset]] = {
    preset.name: preset
    for preset in (
        Preset(
            "bone",
            226.0,
            "all bone, cortical and cancellous (226..3071 HU)",
            f"{_MIMICS} 'Bone (CT)' 226..3071 HU",
        ),
        Preset(
            "compact bone",
            662.0,
            "cortical bone only (662..1988 HU)",
            f"{_MIMICS} 'Compact Bone (Adult CT)' 662..1988 HU",
        ),
        Preset(
            "spongial bone",
            148.0,
            "cancellous bone and denser (148..661 HU)",
            f"{_MIMICS} 'Spongial Bone (Adult CT)' 148..661 HU",
        ),
        Preset(
            "enamel",
            1553.0,
            "tooth enamel, adult (1553..2850 HU)",
            f"{_MIMICS} 'Enamel (Adult CT)' 1553..2850 HU",
        ),
        Preset(
            "soft tissue",
            -700.0,
            "soft tissue and denser: the body (-700..225 HU)",
            f"{_MIMICS} 'Soft Tissue (CT)' -700..225 HU",
        ),
        Preset(
            "skin",
            -718.0,
            "the skin surface against air (-718..-177 HU)",
            f"{_MIMICS} 'Skin Tissue (Adult CT)' -718..-177 HU",
        ),
        Preset(
            "fat",
            -205.0,
            "fat and denser (-205..-51 HU)",
            f"{_MIMICS} 'Fat Tissue (Adult CT)' -205..-51 HU",
        ),
        Preset(
            "muscle",
            -5.0,
            "muscle and denser (-5..135 HU)",
            f"{_MIMICS} 'Muscle Tissue (Adult CT)' -5..135 HU",
        ),
    )
}
