"""PS3.15 Table E.1-1, the Basic Application Level Confidentiality Profile, as actions per tag.

Where the table comes from: the ``dicom-anonymizer`` package (KitwareMedical, BSD-3-Clause,
pinned 2.1.0), module ``dicomanonymizer.dicom_anonymization_databases.dicomfields_2026c``,
which its maintainers generate from the standard's own Table E.1-1 of DICOM edition 2026c
(the "Basic Prof." column, one list per action code). We read the lists, we do not copy them.

That package holds the Basic Profile column only. The two option columns we offer are therefore
stated here, citing the standard:

- Retain Longitudinal Temporal Information with Modified Dates (PS3.15 E.3.6, column
  "Rtn. Long. Modif. Dates Opt."): every date and time attribute of the table is "C" (cleaned,
  here: shifted). We apply it to the table's attributes whose VR is DA or DT (shifted by whole
  days, so TM values stay as they are).
- Retain Device Identity (PS3.15 E.3.5, column "Rtn. Dev. Id. Opt."): the attributes marked
  "K" in that column, listed in :data:`DEVICE_IDENTITY` by keyword (the library has no option
  columns; the list is short and each keyword is checked against pydicom's dictionary).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from importlib import metadata
from types import MappingProxyType

from dicomanonymizer.dicom_anonymization_databases import (  # type: ignore[import-untyped]
    dicomfields_2026c as _table,
)
from pydicom.sr.codedict import codes
from pydicom.tag import BaseTag, Tag

#: The standard edition of the table and where it is read from (said in answers and logs).
TABLE_EDITION = "2026c"
TABLE_SOURCE = (
    f"PS3.15 Table E.1-1 (DICOM {TABLE_EDITION}) from dicom-anonymizer "
    f"{metadata.version('dicom-anonymizer')} (dicomfields_{TABLE_EDITION})"
)


class Action(StrEnum):
    """The action codes of PS3.15 Table E.1-1 (E.3.1), reduced to what we do for each.

    Compound codes are resolved as the standard allows (E.1.1 "X/Z": X unless Z is needed for
    IOD conformance, and so on); we pick the branch that keeps the objects valid without
    knowing each IOD's types: X/Z and X/Z/D empty the value (Z), X/D removes (X), Z/D empties,
    X/Z/U* keeps the sequence with its UIDs replaced and other values emptied.
    """

    REMOVE = "X"
    EMPTY = "Z"
    DUMMY = "D"
    UID = "U"
    UID_IN_SEQUENCE = "X/Z/U*"


#: Library list name -> the action we apply.
_LISTS: dict[str, Action] = {
    "D_TAGS": Action.DUMMY,
    "Z_TAGS": Action.EMPTY,
    "X_TAGS": Action.REMOVE,
    "U_TAGS": Action.UID,
    "Z_D_TAGS": Action.EMPTY,
    "X_Z_TAGS": Action.EMPTY,
    "X_D_TAGS": Action.REMOVE,
    "X_Z_D_TAGS": Action.EMPTY,
    "X_Z_U_STAR_TAGS": Action.UID_IN_SEQUENCE,
}


def _load() -> dict[BaseTag, tuple[str, Action]]:
    actions: dict[BaseTag, tuple[str, Action]] = {}
    for name, action in _LISTS.items():
        for entry in getattr(_table, name):
            if len(entry) != 2:
                continue  # a masked repeating group: REMOVED_GROUP_RANGES
            actions[Tag(*entry)] = (name.removesuffix("_TAGS").replace("_", "/"), action)
    return actions


#: Every tag of Table E.1-1 -> (its code in the table, e.g. "X/Z", and the action we apply).
TABLE: Mapping[BaseTag, tuple[str, Action]] = MappingProxyType(_load())

#: Repeating groups the table lists by pattern (50xx Curve Data, 60xx Overlay Data and
#: Overlay Comments: "X"). We remove the whole group: an overlay without its data is invalid.
REMOVED_GROUP_RANGES = ((0x5000, 0x50FF), (0x6000, 0x60FF))

#: PS3.15 Table E.1-1, column "Rtn. Dev. Id. Opt.": the attributes marked K (kept), by their
#: keywords in pydicom's data dictionary (a misspelt keyword fails at import, not silently).
DEVICE_IDENTITY: frozenset[BaseTag] = frozenset(
    Tag(keyword)
    for keyword in (
        "CassetteID",
        "DetectorID",
        "DeviceSerialNumber",
        "DeviceUID",
        "DeviceLabel",
        "GantryID",
        "GeneratorID",
        "PerformedStationAETitle",
        "PerformedStationGeographicLocationCodeSequence",
        "PerformedStationNameCodeSequence",
        "PlateID",
        "ScheduledStationAETitle",
        "ScheduledStationGeographicLocationCodeSequence",
        "ScheduledStationName",
        "ScheduledStationNameCodeSequence",
        "SourceSerialNumber",
        "StationName",
        "TreatmentMachineName",
        "ManufacturerDeviceClassUID",
    )
)


class MethodCode(StrEnum):
    """PS3.16 CID 7050 "De-identification Method" (scheme DCM): the codes we apply."""

    BASIC = codes.DCM.BasicApplicationConfidentialityProfile.value
    RETAIN_LONGITUDINAL_MODIFIED_DATES = (
        codes.DCM.RetainLongitudinalTemporalInformationModifiedDatesOption.value
    )
    RETAIN_DEVICE_IDENTITY = codes.DCM.RetainDeviceIdentityOption.value


#: Each method's Code Meaning, from pydicom's copy of PS3.16 (DCM code dictionary).
METHOD_MEANINGS: Mapping[MethodCode, str] = MappingProxyType(
    {
        MethodCode.BASIC: codes.DCM.BasicApplicationConfidentialityProfile.meaning,
        MethodCode.RETAIN_LONGITUDINAL_MODIFIED_DATES: (
            codes.DCM.RetainLongitudinalTemporalInformationModifiedDatesOption.meaning
        ),
        MethodCode.RETAIN_DEVICE_IDENTITY: codes.DCM.RetainDeviceIdentityOption.meaning,
    }
)

#: Modalities whose images commonly carry burned-in text (PS3.15 E.1.1 warns of them): when
#: Burned In Annotation is absent, their instances are flagged for review too.
BURNS_IN = frozenset({"US", "SC", "XA", "RF", "ES", "XC", "OT", "DX", "CR", "MG", "IO", "PX"})
