"""Rendering one page of QIDO-RS matches as DICOM JSON (PS3.18 §10.6.3, Annex F).

Values come from three places, each fetched once per page, never once per row:

- index columns, selected with the page itself;
- computed attributes (PS3.4 C.3.4, PS3.18 table 6.7.1-2a): Number of Study Related Series /
  Instances, Modalities in Study and Number of Series Related Instances are kept on the study
  and series rows (:mod:`pacs_api.index.counts`) and selected with the page like index
  columns (:data:`COUNTED`); RetrieveURL (PS3.18 §10.6.3.3) and Instance Availability
  (``ONLINE``: every instance is in the store) are made here;
- for anything else, a representative instance's stored metadata (the instance itself at the
  instance level, else the instance with the lowest key in the series or study), all fetched
  in one select.

An attribute without a value is present and empty (``{"vr": ..}`` without ``Value``), as
PS3.18 F.2.5 allows and C-FIND does for return keys without a value (PS3.4 C.2.2.2.3).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from enum import Enum
from functools import lru_cache
from typing import Any

from pacs_common.attributes import Attribute, Level, attribute, level_of
from pacs_common.dicomjson import JsonDataset
from sqlalchemy import Connection, RowMapping, Select, func, select
from sqlalchemy.orm import Mapped
from sqlmodel import col

from pacs_api.index.matching import COLUMNS, INTEGER_VRS
from pacs_api.index.models import Instance, Series, Study

#: Query levels from the top of the information model (PS3.4 C.3) down.
RANK = {Level.STUDY: 0, Level.SERIES: 1, Level.IMAGE: 2}
_KEY_OF = {Level.STUDY: "study_pk", Level.SERIES: "series_pk", Level.IMAGE: "instance_pk"}
#: Computed attributes held on the study and series rows, selected with the page.
COUNTED: dict[str, Mapped[Any]] = {
    "NumberOfStudyRelatedSeries": col(Study.number_of_series),
    "NumberOfStudyRelatedInstances": col(Study.number_of_instances),
    "ModalitiesInStudy": col(Study.modalities_in_study),
    "NumberOfSeriesRelatedInstances": col(Series.number_of_instances),
}


class _Source(Enum):
    """Where a returned attribute's value comes from."""

    ROW = "row"  # an index column or a computed attribute, selected with the page
    METADATA = "metadata"  # the representative instance's stored metadata
    RETRIEVE_URL = "retrieve-url"  # PS3.18 §10.6.3.3
    AVAILABILITY = "availability"  # Instance Availability: ONLINE


def _source(keyword: str) -> _Source:
    if keyword in COLUMNS or keyword in COUNTED:
        return _Source.ROW
    if keyword == "RetrieveURL":
        return _Source.RETRIEVE_URL
    if keyword == "InstanceAvailability":
        return _Source.AVAILABILITY
    return _Source.METADATA


def _first(item: tuple[str, Attribute, _Source]) -> str:
    return item[0]


_UNSPLIT_VRS = frozenset({"LT", "ST", "UT", "UR"})  # text VRs whose values may hold "\"
_PN_GROUPS = ("Alphabetic", "Ideographic", "Phonetic")


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
        # Where each returned attribute's value comes from, decided once per page, in the
        # order of their keys (PS3.18 F.2: elements in tag order).
        fields = sorted(((a.key, a, _source(a.keyword)) for a in returned), key=_first)
        needs_metadata = self.include_all or any(f[2] is _Source.METADATA for f in fields)
        metadata = self._metadata(rows) if needs_metadata else {}
        datasets = []
        for row in rows:
            stored = metadata.get(row[_KEY_OF[self.level]], {})
            dataset: JsonDataset = {}
            for key, attr, source in fields:
                if source is _Source.ROW:
                    dataset[key] = _element(attr, row[attr.keyword])
                elif source is _Source.METADATA:
                    dataset[key] = stored.get(key) or {"vr": attr.vr}
                elif source is _Source.RETRIEVE_URL:
                    dataset[key] = _element(attr, self._retrieve_url(row))
                else:
                    dataset[key] = _element(attr, "ONLINE")
            if self.include_all:
                dataset = dict(sorted({**self._all_of(stored), **dataset}.items()))
            datasets.append(dataset)
        return datasets

    def _retrieve_url(self, row: RowMapping) -> str:
        """``{base}/studies/{uid}[/series/{uid}[/instances/{uid}]]`` (PS3.18 §10.6.3.3)."""
        url = f"{self.base_url}/studies/{row['StudyInstanceUID']}"
        if self.level is not Level.STUDY:
            url += f"/series/{row['SeriesInstanceUID']}"
        if self.level is Level.IMAGE:
            url += f"/instances/{row['SOPInstanceUID']}"
        return url

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
    if value is None or value == "":
        return item
    values: list[Any]
    if attr.vr in INTEGER_VRS:
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
