"""The XML representation of metadata and search answers: PS3.19 Annex A, Native DICOM Model.

WADO-RS Retrieve Metadata (PS3.18 §10.4.1.1.2) and QIDO-RS (§10.6.3) answer, when the client
asks for it, ``multipart/related; type="application/dicom+xml"`` (§8.7.3, §8.7.4): one
``<NativeDicomModel>`` document per instance or per match. PS3.18 defines no single-part
``application/dicom+xml`` answer for these resources (a document holds one dataset), so a bare
``application/dicom+xml`` is not acceptable on its own.

The documents are converted from the DICOM JSON (PS3.18 Annex F) the server already holds, so
both representations carry the same attributes and values. The mapping, per DICOM JSON element:

- ``DicomAttribute`` with ``tag`` (8 hex digits), ``vr``, ``keyword`` (pydicom's data
  dictionary; omitted for private and unknown tags) and ``privateCreator`` for a private data
  element whose creator is in the same dataset (PS3.19 A.1.1);
- each value as ``Value number="n"`` (1-based; an empty value of a multi-valued attribute is an
  empty ``Value``), a PN value as ``PersonName number="n"`` with ``Alphabetic``,
  ``Ideographic`` and ``Phonetic`` groups, each split at ``^`` into ``FamilyName``,
  ``GivenName``, ``MiddleName``, ``NamePrefix`` and ``NameSuffix`` (PS3.5 §6.2, PS3.19 A.1.3),
  a sequence item as ``Item number="n"`` holding its attributes;
- ``BulkDataURI`` as ``BulkData uri=`` and ``InlineBinary`` as ``InlineBinary`` (base64).

Text is written by :mod:`xml.etree.ElementTree`, which escapes markup characters. Characters
XML 1.0 cannot carry at all (C0 controls other than tab, LF and CR, e.g. the form feed LT and ST
allow; lone surrogates) are written as U+FFFD REPLACEMENT CHARACTER: the XML answer is then
well-formed, and the JSON answer keeps the exact value.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from fastapi.responses import Response
from pacs_common.media import encode_multipart_related
from pydicom.datadict import keyword_for_tag

from pacs_api.dicomweb.multipart import MediaType
from pacs_api.dicomweb.negotiation import parse_accept
from pacs_api.errors import NotAcceptable

#: The default namespace of the Native DICOM Model schema (PS3.19 A.1.6).
NATIVE_DICOM_NS = "http://dicom.nema.org/PS3.19/models/NativeDICOM"
DICOM_XML = "application/dicom+xml"
MULTIPART_XML = f'multipart/related; type="{DICOM_XML}"'
#: The component groups of a PN value, in DICOM order (PS3.5 §6.2.1).
NAME_GROUPS = ("Alphabetic", "Ideographic", "Phonetic")
#: The five ``^``-separated components of each group (PS3.5 table 6.2-1 PN).
NAME_COMPONENTS = ("FamilyName", "GivenName", "MiddleName", "NamePrefix", "NameSuffix")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def json_to_native_xml(dataset: Mapping[str, Any]) -> bytes:
    """One DICOM JSON dataset (PS3.18 Annex F) as a Native DICOM Model document (PS3.19 A.1):
    UTF-8 with an XML declaration, attributes in ascending tag order."""
    # The namespace is declared, not qualified: ElementTree's default_namespace option refuses
    # unqualified attribute names, and PS3.19 attributes (tag, vr, ...) are in no namespace.
    root = ET.Element("NativeDicomModel", {"xmlns": NATIVE_DICOM_NS})
    _add_attributes(root, dataset)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document


def xml_answer(datasets: Iterable[Mapping[str, Any]]) -> Response:
    """``multipart/related; type="application/dicom+xml"``, one document per dataset (PS3.18
    §8.7.4); ``204 No Content`` when there are none, as a multipart body needs at least one part
    (RFC 2046 §5.1.1) and PS3.18 §10.6.3.2 lets a search with no match answer 204."""
    documents = [json_to_native_xml(dataset) for dataset in datasets]
    if not documents:
        return Response(status_code=204)
    body, content_type = encode_multipart_related(documents, DICOM_XML)
    return Response(b"".join(body), media_type=content_type)


def admits_xml(media: MediaType) -> bool:
    """Whether one Accept media range admits ``multipart/related;
    type="application/dicom+xml"`` (PS3.18 §8.7.3); the XML answers are the only multipart
    ones of these resources, so ``multipart/*`` and an untyped ``multipart/related`` do."""
    if media.value == "multipart/*":
        return True
    part_type = media.params.get("type", DICOM_XML).lower()
    return media.value == "multipart/related" and part_type in (DICOM_XML, "application/*", "*/*")


def prefers_xml(accept: str | None, json_ranges: Collection[str]) -> bool:
    """Whether the highest-q acceptable range of *accept* asks for XML rather than one of
    *json_ranges* (the JSON answer, the default); 406 when it admits neither."""
    for accepted in parse_accept(accept):
        if accepted.media.value in json_ranges:
            return False
        if admits_xml(accepted.media):
            return True
    raise NotAcceptable(
        f"cannot answer Accept: {accept!r}; this resource is served as application/dicom+json "
        f"or as {MULTIPART_XML} (PS3.18 §8.7.3)"
    )


def _add_attributes(parent: ET.Element, dataset: Mapping[str, Any]) -> None:
    for key in sorted(dataset, key=str.upper):
        element: Mapping[str, Any] = dataset[key]
        tag = int(key, 16)
        vr = str(element.get("vr", "UN"))
        attributes = {"tag": key.upper(), "vr": vr}
        if (tag >> 16) & 1:  # an odd group: private (PS3.5 §7.8.1)
            creator = _private_creator(dataset, tag)
            if creator:
                attributes["privateCreator"] = _text(creator)
        elif keyword := keyword_for_tag(tag):
            attributes["keyword"] = keyword
        node = ET.SubElement(parent, "DicomAttribute", attributes)
        _add_values(node, vr, element)


def _add_values(node: ET.Element, vr: str, element: Mapping[str, Any]) -> None:
    if "BulkDataURI" in element:
        ET.SubElement(node, "BulkData", {"uri": _text(element["BulkDataURI"])})
        return
    if "InlineBinary" in element:
        ET.SubElement(node, "InlineBinary").text = _text(element["InlineBinary"])
        return
    for number, value in enumerate(element.get("Value") or (), start=1):
        if vr == "SQ":
            item = ET.SubElement(node, "Item", {"number": str(number)})
            _add_attributes(item, value or {})
        elif vr == "PN":
            _add_person_name(node, number, value or {})
        else:
            child = ET.SubElement(node, "Value", {"number": str(number)})
            if value is not None:
                child.text = _text(value)


def _add_person_name(node: ET.Element, number: int, value: Mapping[str, Any]) -> None:
    """A PN value: each non-empty group, each non-empty component (PS3.19 A.1.3); the last
    component keeps any further ``^`` of a malformed value, so nothing is lost."""
    name = ET.SubElement(node, "PersonName", {"number": str(number)})
    for group in NAME_GROUPS:
        text = value.get(group)
        if not text:
            continue
        group_node = ET.SubElement(name, group)
        components = str(text).split("^", len(NAME_COMPONENTS) - 1)
        for component, part in zip(NAME_COMPONENTS, components, strict=False):
            if part:
                ET.SubElement(group_node, component).text = _text(part)


def _private_creator(dataset: Mapping[str, Any], tag: int) -> str | None:
    """The Private Creator of a private data element (gggg,xxee) with xx >= 0x10: the value of
    (gggg,00xx) in the same dataset (PS3.5 §7.8.1); ``None`` for the creator elements."""
    group, element = tag >> 16, tag & 0xFFFF
    if element < 0x1000:
        return None
    creator = dataset.get(f"{group:04X}00{element >> 8:02X}") or {}
    values = creator.get("Value") or []
    return str(values[0]) if values and values[0] is not None else None


def _text(value: object) -> str:
    """A value's text: JSON numbers as Python writes them (the shortest repr that round-trips
    for a float), and characters XML 1.0 cannot carry replaced (see the module docstring)."""
    return _NOT_XML.sub("\ufffd", str(value))
