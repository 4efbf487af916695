"""Query/Retrieve information models and levels of C-FIND (PS3.4 C.3, C.6).

The attribute sets per level come from :mod:`pacs_common.attributes` (the QIDO-RS tables); the
Patient level of the Patient Root model holds the Patient IE (group 0010, PS3.3 C.7.1.1) and
the Number of Patient Related ... attributes (PS3.4 C.6.1.1.2, table C.6-1), except the
Patient Study module's (PatientAge, PatientSize, ...), which are Study level. In the Study Root
model the patient attributes belong to the Study level (PS3.4 C.6.2.1.2, table C.6-5).
"""

from __future__ import annotations

from enum import Enum, StrEnum

from pacs_common.attributes import (
    INSTANCE_MATCHING,
    INSTANCE_RETURN,
    STUDY_LEVEL_EXTRA,
    Attribute,
    Level,
    attribute,
    level_of,
)

from pacs_bridge.sop_classes import PATIENT_ROOT_FIND, STUDY_ROOT_FIND


class QueryLevel(StrEnum):
    """Query/Retrieve Level (0008,0052) values (PS3.4 C.6.1.1, C.6.2.1)."""

    PATIENT = "PATIENT"
    STUDY = "STUDY"
    SERIES = "SERIES"
    IMAGE = "IMAGE"

    @property
    def depth(self) -> int:
        return _DEPTH[self]


_DEPTH = {level: depth for depth, level in enumerate(QueryLevel)}


class InformationModel(Enum):
    """The C-FIND SOP classes served, with the levels each allows (PS3.4 C.6.1, C.6.2)."""

    PATIENT_ROOT = str(PATIENT_ROOT_FIND)
    STUDY_ROOT = str(STUDY_ROOT_FIND)

    @property
    def levels(self) -> tuple[QueryLevel, ...]:
        if self is InformationModel.PATIENT_ROOT:
            return tuple(QueryLevel)
        return (QueryLevel.STUDY, QueryLevel.SERIES, QueryLevel.IMAGE)


#: Keys of the identifier that are not matched and belong to no level (PS3.4 C.4.1.1.3.1,
#: C.4.1.2.1): the level itself, the character set, the time zone and retrieve locations.
NOT_MATCHED = frozenset(
    attribute(keyword)
    for keyword in (
        "QueryRetrieveLevel",
        "SpecificCharacterSet",
        "TimezoneOffsetFromUTC",
        "RetrieveAETitle",
        "RetrieveURL",
        "InstanceAvailability",
    )
)

#: PS3.4 table C.6-1: Patient level attributes computed over a patient's studies.
PATIENT_COUNTS = (
    attribute("NumberOfPatientRelatedStudies"),
    attribute("NumberOfPatientRelatedSeries"),
    attribute("NumberOfPatientRelatedInstances"),
)
_PATIENT_GROUP = 0x0010  # the Patient IE (PS3.3 C.7.1.1)
_FROM_SHARED = {Level.STUDY: QueryLevel.STUDY, Level.SERIES: QueryLevel.SERIES}


def key_level(attr: Attribute, model: InformationModel) -> QueryLevel | None:
    """The level a key belongs to in *model*, or ``None`` when it is not known to belong to
    one (an optional key the bridge returns when the API holds it, at any level)."""
    if attr in PATIENT_COUNTS:
        return QueryLevel.PATIENT if model is InformationModel.PATIENT_ROOT else None
    if attr in STUDY_LEVEL_EXTRA:  # the Patient Study module (PatientAge, ...): PS3.4 C.6-2
        return QueryLevel.STUDY
    if attr.tag >> 16 == _PATIENT_GROUP:
        return QueryLevel.PATIENT if model is InformationModel.PATIENT_ROOT else QueryLevel.STUDY
    if attr in INSTANCE_RETURN or attr in INSTANCE_MATCHING:
        return QueryLevel.IMAGE
    return _FROM_SHARED.get(level_of(attr))
