"""QIDO-RS searches over the index (PS3.18 §10.6): a :class:`QidoQuery` in, a page out.

:func:`run_search` runs one SQL select for the matching entities (keys turned into clauses by
:mod:`pacs_api.index.matching`), then renders the page with a fixed number of further queries
(:mod:`pacs_api.index.search_results`), whatever the page size.

Which keys may be matched (PS3.18 §10.6.1, PS3.4 C.4.1.3.1.1 hierarchical search): the attributes
of the query level and, for levels the path does not fix, of the levels above it. So
``/series?PatientID=x`` matches on the study's patient, while ``/studies/{uid}/series`` ignores
study-level keys with a warning. Keys the index cannot match on are ignored with a warning, as
PS3.18 §8.3 asks.

What is returned (PS3.18 §10.6.3.3): the level's table of return attributes and those of the
levels above it that the path does not fix; the UIDs of the enclosing levels; every matching
key (PS3.4 C.2.2.2.3: keys are also return keys); and the includefield attributes at or above
the query level. ``includefield=all`` adds every indexed attribute at or above the level and
every element of a representative instance's metadata at or above the level.

Order is deterministic: studies newest first (date, time, then insertion), series by Series
Number, instances by Instance Number (missing numbers last, then insertion order).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pacs_common.attributes import RETURN_ATTRIBUTES, Attribute, Level, attribute, level_of
from pacs_common.dicomjson import JsonDataset
from pacs_common.uids import InvalidUIDError, validate_uid
from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import Session
from sqlmodel import col

from pacs_api.errors import BadRequest
from pacs_api.index import matching
from pacs_api.index.models import Instance, Patient, Series, Study
from pacs_api.index.search_results import COUNTED, RANK, PageRenderer

__all__ = ["QidoQuery", "QidoResult", "run_search"]


@dataclass(frozen=True, slots=True)
class QidoQuery:
    """One QIDO-RS search: level, path scope, keys, return attributes and the page asked for.

    *matching* holds (attribute, raw query value) pairs; values are parsed (and rejected with
    :class:`BadRequest`) by :func:`run_search`. *study_uid* and *series_uid* are the UIDs of the
    path, validated here.
    """

    level: Level
    base_url: str
    limit: int
    offset: int = 0
    study_uid: str | None = None
    series_uid: str | None = None
    matching: Sequence[tuple[Attribute, str]] = ()
    includefields: Sequence[Attribute] = ()
    include_all: bool = False
    fuzzymatching: bool = False

    def __post_init__(self) -> None:
        if self.limit < 0 or self.offset < 0:
            raise ValueError("limit and offset must not be negative")
        if self.level is Level.STUDY and (self.study_uid or self.series_uid):
            raise ValueError("a study-level search has no scope")
        if self.series_uid and (self.level is not Level.IMAGE or not self.study_uid):
            raise ValueError("a series scope needs an instance-level search in a study")
        try:
            if self.study_uid is not None:
                validate_uid(self.study_uid, what="Study Instance UID")
            if self.series_uid is not None:
                validate_uid(self.series_uid, what="Series Instance UID")
        except InvalidUIDError as exc:
            raise BadRequest(str(exc)) from None

    @property
    def open_levels(self) -> tuple[Level, ...]:
        """The levels whose keys may be matched: the query level and the unscoped ones above."""
        levels = [Level.STUDY] if not self.study_uid else []
        if self.level is not Level.STUDY and not self.series_uid:
            levels.append(Level.SERIES)
        if self.level is Level.IMAGE:
            levels.append(Level.IMAGE)
        return tuple(levels)


@dataclass(slots=True)
class QidoResult:
    """One page of matches as DICOM JSON datasets (PS3.18 Annex F)."""

    datasets: list[JsonDataset]
    truncated: bool = False  # more matches exist beyond this page
    warnings: list[str] = field(default_factory=list)


def run_search(session: Session, query: QidoQuery) -> QidoResult:
    """Run *query* (PS3.18 §10.6.1) and render its page (PS3.18 §10.6.3)."""
    warnings: list[str] = []
    clauses, matched = _match(query, session.get_bind().dialect.name, warnings)
    returned = _returned(query, matched, warnings)
    statement = _select(query, returned).where(*_scope(query), *clauses)
    statement = statement.limit(query.limit + 1).offset(query.offset)
    rows = session.connection().execute(statement).mappings().all()
    page = rows[: query.limit]
    renderer = PageRenderer(session.connection(), query.level, query.base_url, query.include_all)
    datasets = renderer.render(page, returned)
    return QidoResult(datasets, truncated=len(rows) > query.limit, warnings=warnings)


def _match(
    query: QidoQuery, dialect: str, warnings: list[str]
) -> tuple[list[ColumnElement[bool]], list[Attribute]]:
    """The clauses of the keys, and the keys that stay in the answer."""
    clauses: list[ColumnElement[bool]] = []
    on_patient: list[ColumnElement[bool]] = []
    kept: list[Attribute] = []
    unmatchable: list[str] = []
    out_of_scope: list[str] = []
    for attr, raw in query.matching:
        universal = not raw.strip()  # a return key only (PS3.4 C.2.2.2.3)
        if level_of(attr) not in query.open_levels:
            if universal and RANK[level_of(attr)] <= RANK[query.level]:
                kept.append(attr)  # asks for an attribute the path fixes: like includefield
            else:
                out_of_scope.append(attr.keyword)
            continue
        kept.append(attr)
        if not matching.is_matchable(attr):
            if not universal:
                unmatchable.append(attr.keyword)
            continue
        clause = matching.match_clause(attr, raw, dialect=dialect, fuzzy=query.fuzzymatching)
        if clause is not None:
            patient = attr.keyword in matching.PATIENT_KEYWORDS
            (on_patient if patient else clauses).append(clause)
    if on_patient:
        clauses.append(matching.patient_clause(on_patient))
    if unmatchable:
        warnings.append(
            "Matching on these attributes is not supported, so they were ignored: "
            + ", ".join(unmatchable)
        )
    if out_of_scope:
        warnings.append(
            f"These attributes cannot be matched in a {query.level.lower()}-level search with "
            "this path, so they were ignored: " + ", ".join(out_of_scope)
        )
    return clauses, kept


def _returned(query: QidoQuery, matched: list[Attribute], warnings: list[str]) -> list[Attribute]:
    """The attributes of every answer, without duplicates (PS3.18 §10.6.3.3)."""
    returned: dict[int, Attribute] = {}
    for level in query.open_levels:
        returned.update((a.tag, a) for a in RETURN_ATTRIBUTES[level])
    enclosing = {
        Level.SERIES: ["StudyInstanceUID"],
        Level.IMAGE: ["StudyInstanceUID", "SeriesInstanceUID"],
    }
    returned.update((a.tag, a) for a in map(attribute, enclosing.get(query.level, [])))
    returned.update((a.tag, a) for a in matched)
    too_low = []
    for attr in query.includefields:
        if RANK[level_of(attr)] > RANK[query.level]:
            too_low.append(attr.keyword)
        else:
            returned.setdefault(attr.tag, attr)
    if query.include_all:
        for keyword in matching.COLUMNS:
            attr = attribute(keyword)
            if RANK[level_of(attr)] <= RANK[query.level]:
                returned.setdefault(attr.tag, attr)
    if too_low:
        warnings.append(
            f"These attributes are below the {query.level.lower()} level, so they were not "
            "included: " + ", ".join(too_low)
        )
    return list(returned.values())


#: The UIDs every row needs for its RetrieveURL, per level.
_PATH_UIDS = {
    Level.STUDY: ("StudyInstanceUID",),
    Level.SERIES: ("StudyInstanceUID", "SeriesInstanceUID"),
    Level.IMAGE: ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"),
}


def _select(query: QidoQuery, returned: list[Attribute]) -> Select[Any]:
    """The page select: the keys of each row, then every returned attribute held in a column
    (index columns and the computed attributes kept on the rows), labelled by keyword."""
    columns: list[Any] = [col(Study.pk).label("study_pk")]
    if query.level is not Level.STUDY:
        columns.append(col(Series.pk).label("series_pk"))
    if query.level is Level.IMAGE:
        columns.append(col(Instance.pk).label("instance_pk"))
    keywords = dict.fromkeys(_PATH_UIDS[query.level])
    keywords.update((a.keyword, None) for a in returned if a.keyword in matching.COLUMNS)
    columns += [matching.COLUMNS[keyword].value.label(keyword) for keyword in keywords]
    counted = [a.keyword for a in returned if a.keyword in COUNTED]
    columns += [COUNTED[keyword].label(keyword) for keyword in counted]
    statement = select(*columns)
    if query.level is Level.STUDY:
        statement = statement.select_from(Study)
        order = [col(Study.study_date).desc(), col(Study.study_time).desc(), col(Study.pk)]
    elif query.level is Level.SERIES:
        statement = statement.select_from(Series).join(Study, col(Study.pk) == Series.study_fk)
        order = [col(Series.series_number).asc().nulls_last(), col(Series.pk)]
    else:
        statement = (
            statement.select_from(Instance)
            .join(Series, col(Series.pk) == Instance.series_fk)
            .join(Study, col(Study.pk) == Series.study_fk)
        )
        order = [col(Instance.instance_number).asc().nulls_last(), col(Instance.pk)]
    statement = statement.join(Patient, col(Patient.pk) == Study.patient_fk)
    return statement.order_by(*order)


def _scope(query: QidoQuery) -> list[ColumnElement[bool]]:
    scope: list[ColumnElement[bool]] = []
    if query.study_uid:
        scope.append(col(Study.study_instance_uid) == query.study_uid)
    if query.series_uid:
        scope.append(col(Series.series_instance_uid) == query.series_uid)
    return scope
