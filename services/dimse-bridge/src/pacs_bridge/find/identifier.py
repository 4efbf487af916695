"""A C-FIND identifier (PS3.4 C.4.1.1.3) read into a :class:`FindRequest` for QIDO-RS.

- Query/Retrieve Level (0008,0052) is required and must be a level of the information model,
  else :class:`InvalidIdentifier` (answered 0xA900, PS3.4 C.4.1.1.4).
- A key of a level below the query level is invalid (PS3.4 C.2.2.1, C.4.1.2.1): 0xA900.
  Keys of higher levels are matched as well (QIDO-RS matches them, PS3.18 §10.6.1.2).
- Keys with a value become QIDO-RS matching parameters with the same value: single values,
  ``*``/``?`` wildcards, ``lo-hi`` ranges and backslash-separated lists (UID lists included)
  mean the same in both (PS3.4 C.2.2.2, PS3.18 §8.3.4.1). Zero-length keys are universal
  matching. Every key is also asked for with ``includefield``, so the API returns it.
- Sequence keys are returned, not matched (sequence matching, PS3.4 C.2.2.2.6, has no QIDO-RS
  parameter). Private, group-length and unknown keys are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pacs_common.attributes import attribute
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from pacs_bridge.find.levels import NOT_MATCHED, InformationModel, QueryLevel, key_level

_QUERY_RETRIEVE_LEVEL = attribute("QueryRetrieveLevel")


class InvalidIdentifier(ValueError):
    """The identifier does not fit the C-FIND SOP class (PS3.4 C.4.1.1.4: 0xA900)."""


@dataclass(frozen=True, slots=True)
class RequestedKey:
    """A key of the identifier, answered in every match (PS3.4 C.4.1.1.3.2)."""

    tag: int
    vr: str

    @property
    def json_key(self) -> str:
        return f"{self.tag:08X}"


@dataclass(slots=True)
class FindRequest:
    """What a C-FIND asks: the level, QIDO-RS matching parameters and the keys to answer."""

    model: InformationModel
    level: QueryLevel
    matching: dict[str, str] = field(default_factory=dict)
    includefields: list[str] = field(default_factory=list)
    requested: list[RequestedKey] = field(default_factory=list)


def read_identifier(identifier: Dataset, model: InformationModel) -> FindRequest:
    """The request of a C-FIND identifier, else :class:`InvalidIdentifier`."""
    level = _query_level(identifier, model)
    request = FindRequest(model=model, level=level)
    for element in identifier:
        if element.tag.is_private or element.tag.element == 0 or element.tag.group < 0x0008:
            continue
        try:
            attr = attribute(int(element.tag))
        except KeyError:
            continue  # not in the data dictionary: the bridge cannot name it to the API
        request.requested.append(RequestedKey(attr.tag, element.VR))
        if attr in NOT_MATCHED:
            continue
        key = key_level(attr, model)
        if key is not None and key.depth > level.depth:
            raise InvalidIdentifier(f"{attr.keyword} is a {key} key, below the {level} level")
        value = _query_value(element)
        if value:
            request.matching[attr.keyword] = value
        request.includefields.append(attr.keyword)
    return request


def _query_level(identifier: Dataset, model: InformationModel) -> QueryLevel:
    element = identifier.get(_QUERY_RETRIEVE_LEVEL.tag)
    text = str(element.value or "").strip() if element is not None else ""
    if not text:
        raise InvalidIdentifier("the identifier has no Query/Retrieve Level (0008,0052)")
    try:
        level = QueryLevel(text)
    except ValueError:
        raise InvalidIdentifier(f"unknown Query/Retrieve Level {text!r}") from None
    if level not in model.levels:
        raise InvalidIdentifier(f"the {model.name} model has no {level} level")
    return level


def _query_value(element: DataElement) -> str:
    """The QIDO-RS parameter value of a key: its values joined by backslash, or ``""``."""
    value = element.value
    if value is None or element.VR == "SQ":
        return ""
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(str(v) for v in value)
    if isinstance(value, bytes):
        return ""  # binary VRs have no matching (PS3.4 C.2.2.2)
    return str(value).strip()
