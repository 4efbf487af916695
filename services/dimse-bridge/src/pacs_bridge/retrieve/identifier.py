"""A C-GET or C-MOVE identifier (PS3.4 C.4.3.2.1, C.4.2.2.1) read into a :class:`RetrieveRequest`.

Retrieval is by unique keys (PS3.4 C.4.3.1.3.1, C.4.2.1.4.1, with the relational retrieve of
C.4.3.1.3.2 and C.4.2.1.4.2): Patient ID (0010,0020) at the PATIENT level of the Patient Root
model, Study, Series and SOP Instance UID at the STUDY, SERIES and IMAGE levels (PS3.4 C.6.1.1,
C.6.2.1).

- The identifier is first read as a C-FIND identifier (:mod:`pacs_bridge.find.identifier`):
  the level must be one of the model's and no key may lie below it (0xA900).
- The unique key of the retrieve level is required and may be a list of values.
- Unique keys of higher levels are optional (relational retrieve) and single-valued.
- Unique keys hold no wildcards. Other keys are not matched: retrieval selects instances by
  unique keys only.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from pacs_common.attributes import Attribute, attribute
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from pacs_bridge.find.identifier import InvalidIdentifier, read_identifier
from pacs_bridge.find.levels import InformationModel, QueryLevel
from pacs_bridge.sop_classes import (
    PATIENT_ROOT_GET,
    PATIENT_ROOT_MOVE,
    STUDY_ROOT_GET,
    STUDY_ROOT_MOVE,
)

#: The unique key of each level (PS3.4 C.6.1.1.1-C.6.1.1.5, C.6.2.1.1-C.6.2.1.4).
UNIQUE_KEYS: dict[QueryLevel, Attribute] = {
    QueryLevel.PATIENT: attribute("PatientID"),
    QueryLevel.STUDY: attribute("StudyInstanceUID"),
    QueryLevel.SERIES: attribute("SeriesInstanceUID"),
    QueryLevel.IMAGE: attribute("SOPInstanceUID"),
}
_WILDCARDS = frozenset("*?")


class RetrieveModel(Enum):
    """The C-GET and C-MOVE SOP classes served (PS3.4 C.6.1.3, C.6.2.3)."""

    PATIENT_ROOT_GET = str(PATIENT_ROOT_GET)
    STUDY_ROOT_GET = str(STUDY_ROOT_GET)
    PATIENT_ROOT_MOVE = str(PATIENT_ROOT_MOVE)
    STUDY_ROOT_MOVE = str(STUDY_ROOT_MOVE)

    @property
    def information_model(self) -> InformationModel:
        if self in (RetrieveModel.PATIENT_ROOT_GET, RetrieveModel.PATIENT_ROOT_MOVE):
            return InformationModel.PATIENT_ROOT
        return InformationModel.STUDY_ROOT


@dataclass(frozen=True, slots=True)
class RetrieveRequest:
    """What a C-GET or C-MOVE asks for: the level and the unique keys as QIDO-RS matching
    parameters (a list of values joined by backslash, PS3.18 §8.3.4.1)."""

    model: InformationModel
    level: QueryLevel
    keys: dict[str, str]


def read_retrieve_identifier(identifier: Dataset, model: InformationModel) -> RetrieveRequest:
    """The request of a C-GET or C-MOVE identifier, else :class:`InvalidIdentifier`."""
    level = read_identifier(identifier, model).level
    keys: dict[str, str] = {}
    for key_level in model.levels[: model.levels.index(level) + 1]:
        attr = UNIQUE_KEYS[key_level]
        values = _values(identifier, attr)
        if key_level is level and not values:
            raise InvalidIdentifier(f"a {level} level retrieve needs {attr.keyword} values")
        if key_level is not level and len(values) > 1:
            raise InvalidIdentifier(f"{attr.keyword} above the retrieve level holds one value")
        if any(_WILDCARDS & set(value) for value in values):
            raise InvalidIdentifier(f"{attr.keyword} is a unique key: no wildcards")
        if values:
            keys[attr.keyword] = "\\".join(values)
    return RetrieveRequest(model, level, keys)


def _values(identifier: Dataset, attr: Attribute) -> list[str]:
    element = identifier.get(attr.tag)
    value = element.value if element is not None else None
    if value is None:
        return []
    items = value if isinstance(value, MultiValue | list | tuple) else [value]
    return [text for text in (str(item).strip() for item in items) if text]
