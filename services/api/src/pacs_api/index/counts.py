"""The computed attributes kept on the study and series rows (PS3.4 C.3.4, PS3.18 table
6.7.1-2a): Number of Series Related Instances on the series; Number of Study Related Series,
Number of Study Related Instances and Modalities in Study on the study.

A QIDO-RS page reads them with its own rows (:mod:`pacs_api.index.search_results`) instead of
counting the instances of every study on the page. They stay exact because every transaction
that stores, replaces or deletes instances calls :func:`refresh` for the series it touched and
their studies before it commits, after :func:`pacs_api.index.versions.bump` has locked those
rows (and, on delete, after the emptied rows are pruned). :func:`refresh` recounts from the
instance and series rows, it does not add deltas, so whatever a path did, the values are the
rows' own.

Why recounting is exact under concurrency: the recount runs in a statement that starts after
this transaction holds the row locks of the series and studies it recounts (on PostgreSQL a
READ COMMITTED statement sees everything committed before it started; SQLite serialises
writers). Any other transaction that changes the instances of a series, or the series of a
study, takes the same locks before its own recount, so the last one to commit recounts after
every other change to those rows is committed, and sees it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from sqlalchemy import Connection, bindparam, func, select, update
from sqlmodel import col

from pacs_api.index.models import Instance, Series, Study

#: Separator of the values of a multi-valued attribute (PS3.5 §6.4).
VALUE_SEPARATOR = "\\"


@dataclass(slots=True)
class _StudyCounts:
    series: int = 0
    instances: int = 0
    modalities: set[str] = field(default_factory=set)


def refresh(
    connection: Connection, series_pks: Collection[int], study_pks: Collection[int]
) -> None:
    """Recount *series_pks* and *study_pks* from their rows (locked by this transaction; keys
    of rows deleted meanwhile are skipped)."""
    if series_pks:
        per_series = (
            select(func.count())
            .select_from(Instance)
            .where(col(Instance.series_fk) == col(Series.pk))
            .scalar_subquery()
        )
        connection.execute(
            update(Series)
            .where(col(Series.pk).in_(sorted(series_pks)))
            .values(number_of_instances=per_series)
        )
    if not study_pks:
        return
    counted = {pk: _StudyCounts() for pk in study_pks}
    rows = connection.execute(
        select(
            col(Series.study_fk),
            col(Series.modality),
            func.count(),
            func.coalesce(func.sum(col(Series.number_of_instances)), 0),
        )
        .where(col(Series.study_fk).in_(sorted(study_pks)))
        .group_by(col(Series.study_fk), col(Series.modality))
    )
    for study_pk, modality, series, instances in rows:
        study = counted[study_pk]
        study.series += int(series)
        study.instances += int(instances)
        if modality:
            study.modalities.add(modality)
    connection.execute(
        update(Study)
        .where(col(Study.pk) == bindparam("study_pk"))
        .values(
            number_of_series=bindparam("series"),
            number_of_instances=bindparam("instances"),
            modalities_in_study=bindparam("modalities"),
        ),
        [
            {
                "study_pk": pk,
                "series": study.series,
                "instances": study.instances,
                "modalities": VALUE_SEPARATOR.join(sorted(study.modalities)),
            }
            for pk, study in sorted(counted.items())
        ],
    )
