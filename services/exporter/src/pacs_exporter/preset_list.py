"""``GET /presets``: the named isosurface levels an export may ask for (for pickers such as the
API's dashboard), from :data:`pacs_exporter.presets.PRESETS`."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from pacs_exporter.presets import PRESETS

router = APIRouter(tags=["exports"])


class PresetView(BaseModel):
    name: str = Field(description="The value of an export's 'preset'.")
    level_hu: float = Field(description="The isosurface level, HU.")
    description: str
    reference: str = Field(description="Where the level comes from.")


@router.get("/presets", summary="The named isosurface levels (presets), in HU")
def presets() -> list[PresetView]:
    return [
        PresetView(
            name=p.name, level_hu=p.level_hu, description=p.description, reference=p.reference
        )
        for p in PRESETS.values()
    ]
