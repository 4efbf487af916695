"""QIDO-RS / C-FIND attributes per query level, written once and shared by every service.

The sets are listed by keyword; tags and VRs always come from pydicom's data dictionary.

Sources:
- PS3.18 §10.6.1.2.3 (table 10.6.1-5, "QIDO-RS required matching attributes"; table 6.7.1-1 in
  editions before 2019) for the attributes an origin server must match on.
- PS3.18 §10.6.3.3 (tables 10.6.3-3, -4, -5, "Study's / Series' / Instance's Query
  Attributes"; tables 6.7.1-2, -2a, -2b before 2019) for the attributes every answer returns.
- PS3.4 C.3 (Patient Root / Study Root information models) for the level each attribute
  belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword


class Level(StrEnum):
    """A query/retrieve level (PS3.4 C.3)."""

    STUDY = "STUDY"
    SERIES = "SERIES"
    IMAGE = "IMAGE"


@dataclass(frozen=True, slots=True)
class Attribute:
    """One data-dictionary attribute: keyword, integer tag and (first) VR."""

    keyword: str
    tag: int
    vr: str

    @property
    def key(self) -> str:
        """The DICOM JSON key, e.g. ``"0020000D"`` (PS3.18 F.2.1)."""
        return f"{self.tag:08X}"


@cache
def attribute(keyword_or_tag: str | int) -> Attribute:
    """Look an attribute up by keyword, by integer tag, or by an 8-hex-digit tag string.

    Raises ``KeyError`` for a keyword or tag the dictionary does not know.
    """
    if isinstance(keyword_or_tag, str):
        text = keyword_or_tag.strip()
        tag = tag_for_keyword(text)
        if tag is None:
            if len(text) == 8 and all(c in "0123456789abcdefABCDEF" for c in text):
                tag = int(text, 16)
            else:
                raise KeyError(f"{keyword_or_tag!r} is neither a keyword nor a tag")
    else:
        tag = keyword_or_tag
    try:
        vr = str(dictionary_VR(tag)).split(" or ")[0]
    except KeyError:
        raise KeyError(f"tag {tag:08X} is not in the DICOM data dictionary") from None
    return Attribute(keyword_for_tag(tag) or f"{tag:08X}", tag, vr)


def _attrs(*keywords: str) -> tuple[Attribute, ...]:
    return tuple(attribute(k) for k in keywords)


# PS3.18 table 10.6.1-5: attributes every origin server matches on, per level.
STUDY_MATCHING = _attrs(
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "ModalitiesInStudy",
    "ReferringPhysicianName",
    "PatientName",
    "PatientID",
    "StudyInstanceUID",
    "StudyID",
)
SERIES_MATCHING = _attrs(
    "Modality",
    "SeriesInstanceUID",
    "SeriesNumber",
    "PerformedProcedureStepStartDate",
    "PerformedProcedureStepStartTime",
)
INSTANCE_MATCHING = _attrs("SOPClassUID", "SOPInstanceUID", "InstanceNumber")

# PS3.18 table 10.6.3-3: Study's query attributes (returned by every study-level answer).
STUDY_RETURN = _attrs(
    "SpecificCharacterSet",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "InstanceAvailability",
    "ModalitiesInStudy",
    "ReferringPhysicianName",
    "TimezoneOffsetFromUTC",
    "RetrieveURL",
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyID",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
)
# PS3.18 table 10.6.3-4: Series' query attributes.
SERIES_RETURN = _attrs(
    "SpecificCharacterSet",
    "Modality",
    "TimezoneOffsetFromUTC",
    "SeriesDescription",
    "RetrieveURL",
    "SeriesInstanceUID",
    "SeriesNumber",
    "NumberOfSeriesRelatedInstances",
    "PerformedProcedureStepStartDate",
    "PerformedProcedureStepStartTime",
)
# PS3.18 table 10.6.3-5: Instance's query attributes.
INSTANCE_RETURN = _attrs(
    "SpecificCharacterSet",
    "SOPClassUID",
    "SOPInstanceUID",
    "InstanceAvailability",
    "TimezoneOffsetFromUTC",
    "RetrieveURL",
    "InstanceNumber",
    "Rows",
    "Columns",
    "BitsAllocated",
    "NumberOfFrames",
)

# Attributes of the Patient and Study IEs (PS3.3 C.7.1.1 Patient, C.7.2.1 General Study,
# C.7.2.2 Patient Study): what "includefield=all" returns at the study level.
STUDY_LEVEL_EXTRA = _attrs(
    "StudyDescription",
    "PatientAge",
    "PatientSize",
    "PatientWeight",
    "IssuerOfPatientID",
    "OtherPatientIDsSequence",
    "PatientComments",
    "EthnicGroup",
    "PhysiciansOfRecord",
    "NameOfPhysiciansReadingStudy",
    "ProcedureCodeSequence",
    "ReferencedStudySequence",
    "AdmittingDiagnosesDescription",
    "IssuerOfAccessionNumberSequence",
)
# Attributes of the Series, Frame of Reference and Equipment IEs (PS3.3 C.7.3.1 General Series,
# C.7.4.1 Frame of Reference, C.7.5.1 General Equipment).
SERIES_LEVEL_EXTRA = _attrs(
    "BodyPartExamined",
    "Laterality",
    "ProtocolName",
    "PatientPosition",
    "SeriesDate",
    "SeriesTime",
    "OperatorsName",
    "PerformingPhysicianName",
    "RequestAttributesSequence",
    "FrameOfReferenceUID",
    "PositionReferenceIndicator",
    "Manufacturer",
    "ManufacturerModelName",
    "InstitutionName",
    "StationName",
    "DeviceSerialNumber",
    "SoftwareVersions",
)

RETURN_ATTRIBUTES: dict[Level, tuple[Attribute, ...]] = {
    Level.STUDY: STUDY_RETURN,
    Level.SERIES: SERIES_RETURN,
    Level.IMAGE: INSTANCE_RETURN,
}


def level_of(attr: Attribute) -> Level:
    """The information-model level an attribute belongs to (PS3.4 C.3); IMAGE when unknown."""
    if attr in STUDY_RETURN or attr in STUDY_MATCHING or attr in STUDY_LEVEL_EXTRA:
        return Level.STUDY
    if (attr.tag >> 16) == 0x0010:  # the Patient IE: group 0010 (PS3.3 C.7.1)
        return Level.STUDY
    if attr in SERIES_RETURN or attr in SERIES_MATCHING or attr in SERIES_LEVEL_EXTRA:
        return Level.SERIES
    return Level.IMAGE
