"""Rendering one page of QIDO-RS matches as DICOM JSON (PS3.18 §10.6.3, Annex F).

Values come from three places, each fetched once per page, never once per row:

- index columns, selected with the page itself;
- computed attributes (PS3.4 C.3.4): Number of Study Related Series / Instances and
  Modalities in Study from one ``GROUP BY study, modality`` over the page's studies, Number of
  Series Related Instances from one ``GROUP BY series`` over the page's series; RetrieveURL
  (PS3.18 §10.6.3.3) and Instance Availability (``ONLINE``: every instance is in the store);
- for anything else, a representative instance's stored metadata (the instance itself at the
  instance level, else the instance with the lowest key in the series or study), all fetched
  in one select.

An attribute without a value is present and empty (``{"vr": ..}`` without ``Value``), as
PS3.18 F.2.5 allows and C-FIND does for return keys without a value (PS3.4 C.2.2.2.3).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pacs_common.attributes import Attribute, Level, attribute, level_of
from pacs_common.dicomjson import JsonDataset
from sqlalchemy import Connection, RowMapping, Select, distinct, func, select
from sqlmodel import col

from pacs_api.index.matching import COLUMNS, INTEGER_VRS
from pacs_api.index.models import Instance, Series

#: Query levels from the top of the information model (PS3.4 C.3) down.
RANK = {Level.STUDY: 0, Level.SERIES: 1, Level.IMAGE: 2}
_KEY_OF = {Level.STUDY: "study_pk", Level.SERIES: "series_pk", Level.IMAGE: "instance_pk"}
_STUDY_COMPUTED = frozenset(
    {"NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances", "ModalitiesInStudy"}
)
_SERIES_COMPUTED = frozenset({"NumberOfSeriesRelatedInstances"})
_COMPUTED = _STUDY_COMPUTED | _SERIES_COMPUTED | {"RetrieveURL", "InstanceAvailability"}
_UNSPLIT_VRS = frozenset({"LT", "ST", "UT", "UR"})  # text VRs whose values may hold "\"
_PN_GROUPS = ("Alphabetic", "Ideographic", "Phonetic")


@dataclass(slots=True)
class _StudyCounts:
    series: int = 0
    instances: int = 0
    modalities: set[str] = field(default_factory=set)


class PageRenderer:
    """Turns the rows of one page into DICOM JSON datasets with a fixed number of queries."""

    def __init__(self, connection: Connection, level: Level, base_url: str, include_all: bool):
        self.connection = connection
        self.level = level
        self.base_url = base_url
        self.include_all = include_all

    def render(
        self, rows: Sequence[RowMapping], returned: Sequence[Attribute]
    ) -> list[JsonDataset]:
        if not rows:
            return []
        keywords = {a.keyword for a in returned}
        studies = self._study_counts(rows) if keywords & _STUDY_COMPUTED else {}
        series = self._series_counts(rows) if keywords & _SERIES_COMPUTED else {}
        from_metadata = [
            a for a in returned if a.keyword not in COLUMNS and a.keyword not in _COMPUTED
        ]
        metadata = self._metadata(rows) if from_metadata or self.include_all else {}
        datasets = []
        for row in rows:
            stored = metadata.get(row[_KEY_OF[self.level]], {})
            dataset: JsonDataset = self._all_of(stored) if self.include_all else {}
            for attr in from_metadata:
                dataset[attr.key] = stored.get(attr.key) or {"vr": attr.vr}
            for attr in returned:
                if attr.keyword in COLUMNS:
                    dataset[attr.key] = _element(attr, row[attr.keyword])
                elif attr.keyword in _COMPUTED:
                    value = self._computed(attr.keyword, row, studies, series)
                    dataset[attr.key] = _element(attr, value)
            datasets.append(dict(sorted(dataset.items())))
        return datasets

    def _computed(
        self,
        keyword: str,
        row: RowMapping,
        studies: dict[int, _StudyCounts],
        series: dict[int, int],
    ) -> Any:
        if keyword == "RetrieveURL":
            return self._retrieve_url(row)
        if keyword == "InstanceAvailability":
            return "ONLINE"
        if keyword == "NumberOfSeriesRelatedInstances":
            return series.get(row["series_pk"], 0)
        counts = studies.get(row["study_pk"], _StudyCounts())
        if keyword == "NumberOfStudyRelatedSeries":
            return counts.series
        if keyword == "NumberOfStudyRelatedInstances":
            return counts.instances
        return sorted(counts.modalities)

    def _retrieve_url(self, row: RowMapping) -> str:
        """``{base}/studies/{uid}[/series/{uid}[/instances/{uid}]]`` (PS3.18 §10.6.3.3)."""
        url = f"{self.base_url}/studies/{row['StudyInstanceUID']}"
        if self.level is not Level.STUDY:
            url += f"/series/{row['SeriesInstanceUID']}"
        if self.level is Level.IMAGE:
            url += f"/instances/{row['SOPInstanceUID']}"
        return url

    def _study_counts(self, rows: Sequence[RowMapping]) -> dict[int, _StudyCounts]:
        """One ``GROUP BY study, modality`` over the page's studies."""
        keys = sorted({row["study_pk"] for row in rows})
        statement = (
            select(
                col(Series.study_fk),
                col(Series.modality),
                func.count(distinct(col(Series.pk))),
                func.count(col(Instance.pk)),
            )
            .select_from(Series)
            .outerjoin(Instance, col(Instance.series_fk) == Series.pk)
            .where(col(Series.study_fk).in_(keys))
            .group_by(col(Series.study_fk), col(Series.modality))
        )
        counts: dict[int, _StudyCounts] = {}
        for study_pk, modality, n_series, n_instances in self.connection.execute(statement):
            study = counts.setdefault(study_pk, _StudyCounts())
            study.series += n_series
            study.instances += n_instances
            if modality:
                study.modalities.add(modality)
        return counts

    def _series_counts(self, rows: Sequence[RowMapping]) -> dict[int, int]:
        """One ``GROUP BY series`` over the page's series."""
        keys = sorted({row["series_pk"] for row in rows})
        statement = (
            select(col(Instance.series_fk), func.count(col(Instance.pk)))
            .where(col(Instance.series_fk).in_(keys))
            .group_by(col(Instance.series_fk))
        )
        return {row[0]: row[1] for row in self.connection.execute(statement)}

    def _metadata(self, rows: Sequence[RowMapping]) -> dict[int, JsonDataset]:
        """The stored metadata of one representative instance per row, in one select."""
        keys = sorted({row[_KEY_OF[self.level]] for row in rows})
        statement: Select[Any, str]
        if self.level is Level.IMAGE:
            statement = select(col(Instance.pk), col(Instance.metadata_json)).where(
                col(Instance.pk).in_(keys)
            )
        else:
            owner = col(Instance.series_fk) if self.level is Level.SERIES else col(Series.study_fk)
            lowest = (
                select(owner.label("owner"), func.min(col(Instance.pk)).label("representative"))
                .select_from(Instance)
                .join(Series, col(Series.pk) == Instance.series_fk)
                .where(owner.in_(keys))
                .group_by(owner)
                .subquery()
            )
            statement = select(lowest.c.owner, col(Instance.metadata_json)).join(
                lowest, col(Instance.pk) == lowest.c.representative
            )
        return {key: json.loads(text) for key, text in self.connection.execute(statement)}

    def _all_of(self, stored: JsonDataset) -> JsonDataset:
        """The stored elements at or above the query level (``includefield=all``), without
        bulk data: a search answers attributes, WADO-RS serves bulk data (PS3.18 §10.6.3)."""
        top = RANK[self.level]
        return {
            key: item
            for key, item in stored.items()
            if "BulkDataURI" not in item
            and "InlineBinary" not in item
            and (self.level is Level.IMAGE or RANK[_level_of_key(key)] <= top)
        }


@lru_cache(maxsize=4096)
def _level_of_key(key: str) -> Level:
    """The level of a DICOM JSON key; private and unknown tags belong to the instance."""
    try:
        return level_of(attribute(key))
    except KeyError:
        return Level.IMAGE


def _element(attr: Attribute, value: Any) -> dict[str, Any]:
    """One DICOM JSON element (PS3.18 F.2.2); present and empty without a value."""
    item: dict[str, Any] = {"vr": attr.vr}
    if value is None or value == "" or value == []:
        return item
    if isinstance(value, list):
        values: list[Any] = value
    elif attr.vr in INTEGER_VRS:
        values = [int(value)]
    elif attr.vr in _UNSPLIT_VRS:
        values = [str(value)]
    else:
        values = [v or None for v in str(value).split("\\")]  # an empty value is null, F.2.5
    if attr.vr == "PN":
        values = [_person_name(v) for v in values]
    item["Value"] = values
    return item


def _person_name(value: str | None) -> dict[str, str] | None:
    """A PN value as its component groups (PS3.18 F.2.2, PS3.5 §6.2.1)."""
    if not value:
        return None
    groups = value.split("=")
    return {name: text for name, text in zip(_PN_GROUPS, groups, strict=False) if text}
