"""The REST API's bodies: what a client asks for (:class:`ExportRequest`) and what it sees of
a job (:class:`ExportJob`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pacs_common.uids import validate_uid
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pacs_exporter.jobs.queue import Job, State
from pacs_exporter.mesh import MeshOptions
from pacs_exporter.presets import PRESETS

Format = Literal["stl", "stl-ascii", "ply", "obj"]
Point = tuple[float, float, float]


class Crop(BaseModel):
    """A box in patient LPS mm (PS3.3 C.7.6.2.1.1): only voxels inside it are meshed."""

    model_config = ConfigDict(extra="forbid")

    min: Point = Field(description="(x, y, z) of the box's low corner, mm.")
    max: Point = Field(description="(x, y, z) of the box's high corner, mm.")

    @model_validator(mode="after")
    def _ordered(self) -> Crop:
        if any(low >= high for low, high in zip(self.min, self.max, strict=True)):
            raise ValueError("each of crop.min's coordinates must be below crop.max's")
        return self


class ExportRequest(BaseModel):
    """A mesh of one CT series on the API, at a preset's level or an explicit one."""

    model_config = ConfigDict(extra="forbid")

    study: str = Field(description="Study Instance UID.")
    series: str = Field(description="Series Instance UID (a CT series of the study).")
    preset: str | None = Field(
        None, description=f"A named level: {', '.join(repr(name) for name in PRESETS)}."
    )
    level: float | None = Field(None, description="The isosurface level in HU (or a preset).")
    format: Format = "stl"
    coordinates: Literal["LPS", "RAS"] = Field(
        "LPS", description="Frame of the vertices: patient LPS mm (DICOM's) or RAS mm."
    )
    smoothing_mm: float = Field(0.0, ge=0, le=20, description="Gaussian sigma in mm (0: none).")
    decimate_to: int | None = Field(None, ge=4, description="Target triangle count.")
    keep: Literal["all", "largest"] = Field(
        "all", description="'largest' keeps the largest connected object only."
    )
    min_component_mm3: float = Field(0.0, ge=0, description="Drop objects smaller than this.")
    crop: Crop | None = None
    curvature_correction: bool = Field(
        True,
        description="Offset the vertices along their normals to undo the volume flat "
        "triangles cut off curved surfaces (false: the raw marching-cubes vertices).",
    )
    store_back: bool = Field(
        False,
        description="Also store the mesh into the study as an Encapsulated STL instance "
        "(PS3.3 A.85) by STOW-RS.",
    )

    @field_validator("study", "series")
    @classmethod
    def _uid(cls, value: str, info: ValidationInfo) -> str:
        what = "Study Instance UID" if info.field_name == "study" else "Series Instance UID"
        return validate_uid(value, what=what)

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, value: str | None) -> str | None:
        if value is not None and value not in PRESETS:
            raise ValueError(f"unknown preset {value!r}; known: {', '.join(PRESETS)}")
        return value

    @field_validator("level")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not -32768.0 <= value <= 65535.0:
            raise ValueError("level must be an HU value between -32768 and 65535")
        return value

    @model_validator(mode="after")
    def _one_level(self) -> ExportRequest:
        if (self.preset is None) == (self.level is None):
            raise ValueError("give exactly one of preset and level")
        return self

    @property
    def level_hu(self) -> float:
        if self.level is not None:
            return self.level
        assert self.preset is not None
        return PRESETS[self.preset].level_hu

    def mesh_options(self) -> MeshOptions:
        """The core's options (raises :class:`~pacs_exporter.errors.ExportError`)."""
        return MeshOptions(
            level=self.level_hu,
            smoothing_mm=self.smoothing_mm,
            decimate_to=self.decimate_to,
            keep=self.keep,
            min_component_mm3=self.min_component_mm3,
            crop_lps=(self.crop.min, self.crop.max) if self.crop is not None else None,
            coordinates=self.coordinates,
            curvature_correction=self.curvature_correction,
        )


class ExportJob(BaseModel):
    """An export job as the API shows it."""

    id: str
    state: State = Field(description="queued, running, succeeded, failed or cancelled.")
    progress: float = Field(description="Percent done (100 when succeeded).")
    request: ExportRequest
    attempts: int = Field(description="Times a worker started it.")
    cancel_requested: bool = Field(description="Cancellation asked; the worker stops soon.")
    error: str = Field(description="Why it failed (or the last retried failure).")
    report: dict[str, Any] | None = Field(description="The mesh's report once succeeded.")
    file: str | None = Field(description="Where to download the mesh once succeeded.")
    stored_instance: str | None = Field(
        description="SOP Instance UID of the Encapsulated STL stored back, if asked."
    )
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, job: Job) -> ExportJob:
        return cls(
            id=job.id,
            state=job.state,
            progress=round(job.progress, 1),
            request=ExportRequest.model_validate(job.request),
            attempts=job.attempts,
            cancel_requested=job.cancel_requested and not job.finished,
            error=job.error,
            report=job.report,
            file=f"/exports/{job.id}/file" if job.state is State.SUCCEEDED else None,
            stored_instance=job.stored_instance,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
        )


class ExportList(BaseModel):
    jobs: list[ExportJob]
