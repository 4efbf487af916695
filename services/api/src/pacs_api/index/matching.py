"""Match clauses for QIDO-RS keys: PS3.4 C.2.2.2 attribute matching over the index columns.

One table, :data:`COLUMNS`, says which attributes live in a column of the index (keyed by
keyword) and which of them can be matched in SQL. :func:`match_clause` turns one key
(attribute, raw query value) into a SQLAlchemy boolean clause, or ``None`` for universal
matching. Kinds of matching, by VR:

- Universal (C.2.2.2.3): an empty value, or a value of a single ``*`` for any VR.
- Single value (C.2.2.2.1): exact and case-sensitive, except PN (see below).
- List of UIDs (C.2.2.2.2): UI values separated by backslash, or by comma as PS3.18 §8.3.4.1
  (``uid-list-match``) allows; every UID is validated (PS3.5 §9.1).
- Wild card (C.2.2.2.4): ``*`` and ``?`` for AE, CS, LO, LT, PN, SH, ST, UC, UR and UT.
  PostgreSQL evaluates ``LIKE .. ESCAPE '\\'`` with ``%``, ``_`` and ``\\`` escaped; SQLite's
  LIKE ignores ASCII case, so there the same pattern is evaluated with ``GLOB`` (case-sensitive,
  ``*``/``?`` as in DICOM, ``[`` escaped). Both give the same rows.
- Range (C.2.2.2.5) for DA and TM: ``lo-hi``, ``-hi``, ``lo-``. Entities with an empty value
  never match a range. A date range and a time range in the same query (StudyDate with
  StudyTime) are matched independently, not as one combined date-time range (the combined form
  of C.2.2.2.5 needs extended negotiation, which QIDO-RS lacks).
- Multiple values (C.2.2.2.8): backslash-separated values of any other VR match when any value
  matches; each value may itself be a wild card or a range.
- Person names (C.2.2.2.1 allows literal matching insensitive to case): the upper-cased
  pattern is matched against the ``*_norm`` column. With ``fuzzymatching=true`` (PS3.18
  §8.3.4.2; PS3.4 C.2.2.2.1.1 leaves the rules to the implementation) a value without wild
  cards matches when each of its words begins a name component or a word of one, in any order
  and case: ``john smi`` matches ``SMITH^JOHN^A``. Diacritics are not folded.
- IS and US: integer equality, so ``+7`` and ``007`` match ``7`` (PS3.4 C.2.2.2.1 leaves
  this to the implementation since CP-2305).

Times are compared as strings (see :mod:`pacs_api.index.models`); the bounds are normalized so
that stored values of any precision (``14``, ``1415``, ``141500.123``) compare correctly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from pacs_common.attributes import Attribute
from pacs_common.uids import is_valid_uid
from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.orm import Mapped, aliased
from sqlmodel import col

from pacs_api.errors import BadRequest
from pacs_api.index.models import Instance, Patient, Series, Study


@dataclass(frozen=True, slots=True)
class IndexColumn:
    """Where an attribute's value lives: ``value`` is returned, ``match`` is matched on
    (``None``: returned only)."""

    value: Mapped[Any]
    match: Mapped[Any] | None = None


def _column(
    value: Mapped[Any], *, match: Mapped[Any] | None = None, matchable: bool = True
) -> IndexColumn:
    return IndexColumn(value, match if match is not None else (value if matchable else None))


#: Attributes held in index columns, by keyword (levels per PS3.4 C.3, see models.py).
COLUMNS: dict[str, IndexColumn] = {
    # Patient IE (PS3.3 C.7.1.1)
    "PatientName": _column(col(Patient.patient_name), match=col(Patient.patient_name_norm)),
    "PatientID": _column(col(Patient.patient_id)),
    "IssuerOfPatientID": _column(col(Patient.issuer_of_patient_id)),
    "PatientBirthDate": _column(col(Patient.patient_birth_date)),
    "PatientSex": _column(col(Patient.patient_sex)),
    # Study IE (PS3.3 C.7.2.1)
    "StudyInstanceUID": _column(col(Study.study_instance_uid)),
    "StudyDate": _column(col(Study.study_date)),
    "StudyTime": _column(col(Study.study_time)),
    "AccessionNumber": _column(col(Study.accession_number)),
    "StudyID": _column(col(Study.study_id)),
    "StudyDescription": _column(col(Study.study_description)),
    "ReferringPhysicianName": _column(
        col(Study.referring_physician_name), match=col(Study.referring_physician_name_norm)
    ),
    # Returned, never matched: SpecificCharacterSet describes the encoding and
    # TimezoneOffsetFromUTC qualifies the dates and times; neither is a key in its own right.
    "TimezoneOffsetFromUTC": _column(col(Study.timezone_offset_from_utc), matchable=False),
    "SpecificCharacterSet": _column(col(Study.specific_character_set), matchable=False),
    # Series IE (PS3.3 C.7.3.1)
    "SeriesInstanceUID": _column(col(Series.series_instance_uid)),
    "Modality": _column(col(Series.modality)),
    "SeriesNumber": _column(col(Series.series_number)),
    "SeriesDescription": _column(col(Series.series_description)),
    "PerformedProcedureStepStartDate": _column(col(Series.performed_procedure_step_start_date)),
    "PerformedProcedureStepStartTime": _column(col(Series.performed_procedure_step_start_time)),
    "BodyPartExamined": _column(col(Series.body_part_examined)),
    # Instance (PS3.3 C.12.1 SOP Common, C.7.6.1 General Image, C.7.6.3 Image Pixel)
    "SOPInstanceUID": _column(col(Instance.sop_instance_uid)),
    "SOPClassUID": _column(col(Instance.sop_class_uid)),
    "InstanceNumber": _column(col(Instance.instance_number)),
    "Rows": _column(col(Instance.rows)),
    "Columns": _column(col(Instance.columns)),
    "BitsAllocated": _column(col(Instance.bits_allocated)),
    "NumberOfFrames": _column(col(Instance.number_of_frames)),
}

#: Matched with an EXISTS over the study's series (PS3.4 C.3.4 Modalities in Study).
MODALITIES_IN_STUDY = "ModalitiesInStudy"

#: Keys of the patient row (PS3.3 C.7.1.1), matched together by :func:`patient_clause`.
PATIENT_KEYWORDS = frozenset(
    keyword for keyword, entry in COLUMNS.items() if getattr(entry.value, "class_", None) is Patient
)

WILDCARD_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})
INTEGER_VRS = frozenset({"IS", "US", "UL", "SS", "SL", "UV", "SV"})
_LIKE_ESCAPE = "\\"
_TIME = re.compile(r"([0-9]{2})(?:([0-9]{2})(?:([0-9]{2})(?:\.([0-9]{1,6}))?)?)?")
_INTEGER = re.compile(r"[+-]?[0-9]{1,12}")


def is_matchable(attr: Attribute) -> bool:
    """True when :func:`match_clause` can match *attr* in SQL."""
    if attr.keyword == MODALITIES_IN_STUDY:
        return True
    entry = COLUMNS.get(attr.keyword)
    return entry is not None and entry.match is not None


def match_clause(
    attr: Attribute, raw: str, *, dialect: str, fuzzy: bool = False
) -> ColumnElement[bool] | None:
    """The clause for one key, ``None`` for universal matching; BadRequest for a bad value.

    *dialect* is the SQLAlchemy dialect name; it only chooses how wild cards are spelled.
    """
    if attr.keyword == MODALITIES_IN_STUDY:
        series = aliased(Series)
        inner = _values_clause(attr, raw, col(series.modality), dialect, fuzzy)
        if inner is None:
            return None
        return exists().where(col(series.study_fk) == col(Study.pk), inner)
    entry = COLUMNS.get(attr.keyword)
    if entry is None or entry.match is None:
        raise ValueError(f"{attr.keyword} cannot be matched; check is_matchable() first")
    return _values_clause(attr, raw, entry.match, dialect, fuzzy)


def patient_clause(clauses: list[ColumnElement[bool]]) -> ColumnElement[bool]:
    """The clauses of patient keys as one semi-join of the study on its patient:
    ``study.patient_fk IN (SELECT patient.pk FROM patient WHERE ..)``.

    The same rows as the clauses on the joined patient (a study has one patient), but
    PostgreSQL plans it from the patient index: with the clauses on the join, a name prefix
    matching a few hundred studies (``PatientName=CLA*`` at 1,000,000 instances) was planned
    as a walk of every study in date order, probing each one's patient (docs/capacity.md).
    """
    patients = select(col(Patient.pk)).where(*clauses).correlate(None)
    return col(Study.patient_fk).in_(patients)


def _values_clause(
    attr: Attribute, raw: str, column: Mapped[Any], dialect: str, fuzzy: bool
) -> ColumnElement[bool] | None:
    separators = r"[\\,]" if attr.vr == "UI" else r"\\"
    values = [v.strip() for v in re.split(separators, raw)]
    values = [v for v in values if v]
    if not values or "*" in values:
        return None  # universal matching, PS3.4 C.2.2.2.3
    if attr.vr == "UI":
        bad = [v for v in values if not is_valid_uid(v)]
        if bad:
            raise _bad(attr, raw, f"{bad[0]!r} is not a valid UID (PS3.5 §9.1)")
        return column == values[0] if len(values) == 1 else column.in_(values)
    if attr.vr in INTEGER_VRS:
        numbers = [_integer(attr, raw, v) for v in values]
        return column == numbers[0] if len(numbers) == 1 else column.in_(numbers)
    clauses = [_one_value(attr, raw, v, column, dialect, fuzzy) for v in values]
    return clauses[0] if len(clauses) == 1 else or_(*clauses)


def _one_value(
    attr: Attribute, raw: str, value: str, column: Mapped[Any], dialect: str, fuzzy: bool
) -> ColumnElement[bool]:
    if attr.vr == "DA":
        low_date, high_date = _range_texts(attr, raw, value)
        low = _date(attr, raw, low_date) if low_date else None
        high = _date(attr, raw, high_date) if high_date else None
        if low is not None and high is not None and low > high:
            raise _bad(attr, raw, f"the range {value!r} ends before it starts")
        return _between(column, low, high)
    if attr.vr == "TM":
        low_time, high_time = _range_texts(attr, raw, value)
        low = _time_bounds(attr, raw, low_time)[0] if low_time else None
        high = _time_bounds(attr, raw, high_time)[1] if high_time else None
        if low is not None and high is not None and low > high:
            raise _bad(attr, raw, f"the range {value!r} ends before it starts")
        return _between(column, low, high)
    if attr.vr == "PN":
        value = value.upper()
        if fuzzy and "*" not in value and "?" not in value:
            return _fuzzy_name(value, column)
    if attr.vr in WILDCARD_VRS and ("*" in value or "?" in value):
        if dialect == "sqlite":
            return column.op("GLOB", is_comparison=True)(value.replace("[", "[[]"))
        return column.like(_like_pattern(value), escape=_LIKE_ESCAPE)
    return column == value


def _fuzzy_name(value: str, column: Mapped[Any]) -> ColumnElement[bool]:
    """Every word of *value* begins the name, a component (after ``^`` or ``=``) or a word."""
    words = [w for w in re.split(r"[\s^=,]+", value) if w]
    clauses = []
    for word in words or [value]:
        escaped = _like_pattern(word)
        clauses.append(
            or_(
                *(
                    column.like(f"{prefix}{escaped}%", escape=_LIKE_ESCAPE)
                    for prefix in ("", "%^", "%=", "% ")
                )
            )
        )
    return and_(*clauses)


def _like_pattern(value: str) -> str:
    """DICOM wild cards as a LIKE pattern: escape LIKE's own metacharacters first."""
    escaped = "".join(_LIKE_ESCAPE + c if c in (_LIKE_ESCAPE, "%", "_") else c for c in value)
    return escaped.replace("*", "%").replace("?", "_")


def _between(column: Mapped[Any], low: str | None, high: str | None) -> ColumnElement[bool]:
    if low is not None and low == high:
        return column == low
    clauses = [column != ""]  # an empty value never matches a range
    if low is not None:
        clauses.append(column >= low)
    if high is not None:
        clauses.append(column <= high)
    return and_(*clauses)


def _range_texts(attr: Attribute, raw: str, value: str) -> tuple[str, str]:
    """The two ends of ``lo-hi``, ``-hi`` or ``lo-`` (empty: open); a single value twice."""
    if "-" not in value:
        return value, value
    low, _, high = value.partition("-")
    if "-" in high or not (low or high):
        raise _bad(attr, raw, f"{value!r} is not a value or a range lo-hi (PS3.4 C.2.2.2.5)")
    return low, high


def _date(attr: Attribute, raw: str, text: str) -> str:
    """A DA value ``YYYYMMDD`` that is a real calendar date (PS3.5 table 6.2-1)."""
    if len(text) == 8 and text.isascii() and text.isdigit():
        try:
            date(int(text[:4]), int(text[4:6]), int(text[6:]))
            return text
        except ValueError:
            pass
    raise _bad(attr, raw, f"{text!r} is not a date YYYYMMDD (PS3.5 table 6.2-1)")


def _time_bounds(attr: Attribute, raw: str, text: str) -> tuple[str, str]:
    """A TM value ``HH[MM[SS[.F{1,6}]]]`` as (lowest, highest) string it stands for.

    The lowest drops trailing zero components (``120000`` -> ``12``) so that a stored value
    of coarser precision still compares as not earlier; the highest pads with nines
    (``1415`` -> ``141599.999999``), so every stored value within the given precision
    compares as not later.
    """
    found = _TIME.fullmatch(text)
    if found is None:
        raise _bad(attr, raw, f"{text!r} is not a time HHMMSS.FFFFFF (PS3.5 table 6.2-1)")
    hours, minutes, seconds, fraction = found.groups()
    if int(hours) > 23 or int(minutes or 0) > 59 or int(seconds or 0) > 60:
        raise _bad(attr, raw, f"{text!r} is not a time of day (PS3.5 table 6.2-1)")
    parts = [hours, minutes or "", seconds or ""]
    fraction = (fraction or "").rstrip("0")
    low = "".join(parts) + (f".{fraction}" if fraction else "")
    if not fraction:
        while len(parts) > 1 and parts[-1] in ("", "00"):
            parts.pop()
        low = "".join(parts)
    high = (
        hours + (minutes or "99") + (seconds or "99") + "." + (found.group(4) or "").ljust(6, "9")
    )
    return low, high


def _integer(attr: Attribute, raw: str, text: str) -> int:
    """An IS/US value: an optional sign and at most 12 digits (PS3.5 table 6.2-1)."""
    if not _INTEGER.fullmatch(text):
        raise _bad(attr, raw, f"{text!r} is not an integer")
    return int(text)


def _bad(attr: Attribute, raw: str, reason: str) -> BadRequest:
    shown = raw if len(raw) <= 80 else raw[:77] + "..."
    return BadRequest(f"{attr.keyword}={shown!r}: {reason}")
