"""``GET /usage``: what the archive holds (counts and bytes), for operators and the dashboard."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from pacs_api.deps import IndexDep
from pacs_api.index.usage import usage

router = APIRouter(tags=["status"])


class ModalityUsageView(BaseModel):
    modality: str = Field(description="Modality (0008,0060) of the series ('' when absent).")
    series: int
    instances: int
    bytes: int = Field(description="Bytes of the stored objects, as received.")


class UsageView(BaseModel):
    patients: int = Field(description="Patients with at least one study.")
    studies: int
    series: int = Field(description="Series with at least one instance.")
    instances: int
    bytes: int = Field(description="Bytes of all stored objects, as received.")
    modalities: list[ModalityUsageView] = Field(description="Per modality, by name.")


@router.get("/usage", summary="Counts of patients, studies, series, instances and bytes stored")
def show_usage(index: IndexDep) -> UsageView:
    return UsageView.model_validate(usage(index), from_attributes=True)
