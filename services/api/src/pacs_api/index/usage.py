"""Storage and index usage: how much the archive holds, from the index alone (no store calls).

Patients are counted through their studies: a patient row whose studies were all deleted is
no longer in the archive.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import distinct, func
from sqlmodel import col, select

from pacs_api.index.models import Instance, Series, Study
from pacs_api.index.repository import Index


@dataclass(frozen=True, slots=True)
class ModalityUsage:
    modality: str
    series: int
    instances: int
    bytes: int


@dataclass(frozen=True, slots=True)
class Usage:
    patients: int
    studies: int
    series: int
    instances: int
    bytes: int
    modalities: list[ModalityUsage]


def usage(index: Index) -> Usage:
    """Counts of patients, studies, series and instances, and the bytes of the stored objects
    (as received), in total and per modality."""
    with index.session() as session:
        patients, studies = session.exec(
            select(func.count(distinct(col(Study.patient_fk))), func.count(col(Study.pk)))
        ).one()
        series, instances, size = session.exec(
            select(
                func.count(distinct(col(Instance.series_fk))),
                func.count(col(Instance.pk)),
                func.coalesce(func.sum(col(Instance.size)), 0),
            )
        ).one()
        rows = session.exec(
            select(
                col(Series.modality),
                func.count(distinct(col(Series.pk))),
                func.count(col(Instance.pk)),
                func.coalesce(func.sum(col(Instance.size)), 0),
            )
            .join(Instance, col(Instance.series_fk) == col(Series.pk))
            .group_by(Series.modality)
            .order_by(Series.modality)
        ).all()
    return Usage(
        patients=int(patients),
        studies=int(studies),
        series=int(series),
        instances=int(instances),
        bytes=int(size),
        modalities=[
            ModalityUsage(modality=m, series=int(s), instances=int(i), bytes=int(b))
            for m, s, i, b in rows
        ],
    )
