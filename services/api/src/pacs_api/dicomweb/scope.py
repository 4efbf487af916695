"""Path parameters of the study / series / instance resources, validated once (PS3.18 §10.4.1)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path
from pacs_common.uids import InvalidUIDError, validate_uid

from pacs_api.errors import BadRequest, NotFound
from pacs_api.index.repository import Index, Scope, StoredInstance


def _uid(value: str, what: str) -> str:
    try:
        return validate_uid(value, what=what)
    except InvalidUIDError as exc:
        raise BadRequest(str(exc)) from None


async def study_scope(study: Annotated[str, Path(description="Study Instance UID")]) -> Scope:
    return Scope(_uid(study, "Study Instance UID"))


async def series_scope(
    study: Annotated[str, Path(description="Study Instance UID")],
    series: Annotated[str, Path(description="Series Instance UID")],
) -> Scope:
    return Scope(_uid(study, "Study Instance UID"), _uid(series, "Series Instance UID"))


async def instance_scope(
    study: Annotated[str, Path(description="Study Instance UID")],
    series: Annotated[str, Path(description="Series Instance UID")],
    instance: Annotated[str, Path(description="SOP Instance UID")],
) -> Scope:
    return Scope(
        _uid(study, "Study Instance UID"),
        _uid(series, "Series Instance UID"),
        _uid(instance, "SOP Instance UID"),
    )


StudyScope = Annotated[Scope, Depends(study_scope)]
SeriesScope = Annotated[Scope, Depends(series_scope)]
InstanceScope = Annotated[Scope, Depends(instance_scope)]


def describe(scope: Scope) -> str:
    if scope.sop_instance_uid:
        return f"instance {scope.sop_instance_uid} of series {scope.series_uid}"
    if scope.series_uid:
        return f"series {scope.series_uid} of study {scope.study_uid}"
    return f"study {scope.study_uid}"


def stored_instances(index: Index, scope: Scope) -> list[StoredInstance]:
    """The stored instances of *scope*, in series and instance order; 404 when there are none."""
    found = index.instances(scope)
    if not found:
        raise NotFound(f"no {describe(scope)} is stored")
    return found
