"""DICOM JSON Model helpers (PS3.18 Annex F).

Elements are keyed by the 8-hex-digit tag; the VR comes from pydicom's data dictionary, never a
hand-typed table.
"""

from __future__ import annotations

from typing import Any

from pacs_common.attributes import attribute

JsonDataset = dict[str, Any]


def tag_key(keyword_or_tag: str | int) -> str:
    """The DICOM JSON key (``"0020000D"``) of a keyword or an integer tag."""
    return attribute(keyword_or_tag).key


def vr_of(keyword_or_tag: str | int) -> str:
    """The dictionary VR of an attribute (the first one where the dictionary lists several)."""
    return attribute(keyword_or_tag).vr


def element(keyword: str, *values: Any) -> JsonDataset:
    """One DICOM JSON element: ``{"00100020": {"vr": "LO", "Value": [...]}}``.

    Person names are given as strings and encoded as ``{"Alphabetic": ...}`` (PS3.18 F.2.2).
    With no values the element is present and empty (no ``Value``), as PS3.18 F.2.5 allows.
    """
    vr = vr_of(keyword)
    item: dict[str, Any] = {"vr": vr}
    kept = [v for v in values if v is not None and v != ""]
    if kept:
        if vr == "PN":
            item["Value"] = [v if isinstance(v, dict) else {"Alphabetic": str(v)} for v in kept]
        else:
            item["Value"] = list(kept)
    return {tag_key(keyword): item}


def first_value(ds: JsonDataset, keyword: str) -> Any:
    """The first value of an attribute in a DICOM JSON dataset, or ``None``."""
    item = ds.get(tag_key(keyword))
    if not item:
        return None
    values = item.get("Value")
    if not values:
        return None
    value = values[0]
    if isinstance(value, dict) and "Alphabetic" in value:
        return value["Alphabetic"]
    return value
