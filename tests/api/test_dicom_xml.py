"""DICOM XML answers (PS3.19 Annex A, Native DICOM Model) of WADO-RS metadata and QIDO-RS.

``multipart/related; type="application/dicom+xml"`` carries one ``NativeDicomModel`` document
per instance (PS3.18 §10.4.1.1.2) or per match (§10.6.3.2), on both deployments. Each document is
read back into DICOM JSON terms and compared with the JSON answer for the same resource.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pacs_api.dicomweb.xml import (
    NAME_COMPONENTS,
    NAME_GROUPS,
    NATIVE_DICOM_NS,
    json_to_native_xml,
)
from pacs_common.media import iter_multipart_related, parse_content_type
from pacs_common.synthetic import to_bytes
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from tests.support.dicom import ct_datasets, stow

XML_ACCEPT = 'multipart/related; type="application/dicom+xml"'
NAME = "Doe^John^Quincy^Dr^Jr=山田^太郎=やまだ^たろう"
NS = {"n": NATIVE_DICOM_NS}
#: VRs whose DICOM JSON values are numbers (PS3.18 F.2.3).
_INTEGER_VRS = frozenset({"IS", "SL", "SS", "SV", "UL", "US", "UV"})
_FLOAT_VRS = frozenset({"DS", "FL", "FD"})


@pytest.fixture
def series(client: TestClient) -> list[Dataset]:
    """Two CT slices with a three-group person name, a sequence and a private element."""
    datasets = ct_datasets(2, seed=3, patient_name=NAME)
    for ds in datasets:
        reference = Dataset()
        reference.ReferencedSOPClassUID = ds.SOPClassUID
        reference.ReferencedSOPInstanceUID = datasets[0].SOPInstanceUID
        ds.ReferencedImageSequence = Sequence([reference])
        block = ds.private_block(0x0009, "PACS CLOUD TEST", create=True)
        block.add_new(0x01, "LO", "private & <marked>")
    response = stow(client, [to_bytes(ds) for ds in datasets])
    assert response.status_code == 200, response.text
    return datasets


def _url(ds: Dataset) -> str:
    return f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/metadata"


def _documents(response: httpx.Response) -> list[ET.Element]:
    """The NativeDicomModel root of every part of a multipart/related DICOM XML answer."""
    assert response.status_code == 200, response.text
    media, params = parse_content_type(response.headers["content-type"])
    assert (media, params["type"]) == ("multipart/related", "application/dicom+xml")
    parts = list(iter_multipart_related([response.content], params["boundary"]))
    assert all(p.headers["content-type"] == "application/dicom+xml" for p in parts)
    assert all(p.content.startswith(b"<?xml version='1.0' encoding='utf-8'?>") for p in parts)
    roots = [ET.fromstring(p.content) for p in parts]
    assert all(root.tag == f"{{{NATIVE_DICOM_NS}}}NativeDicomModel" for root in roots)
    return roots


def _attribute(root: ET.Element, tag: str) -> ET.Element:
    found = root.find(f"n:DicomAttribute[@tag='{tag}']", NS)
    assert found is not None, tag
    return found


def _numbered(node: ET.Element, name: str) -> list[ET.Element]:
    """The *name* children of *node*, checked to be numbered 1, 2, ... (PS3.19 A.1.1)."""
    children = node.findall(f"n:{name}", NS)
    assert [c.get("number") for c in children] == [str(n) for n in range(1, len(children) + 1)]
    return children


def _as_json(root: ET.Element) -> dict[str, Any]:
    """A NativeDicomModel dataset read back as DICOM JSON (PS3.18 Annex F)."""
    dataset: dict[str, Any] = {}
    for attribute in root.findall("n:DicomAttribute", NS):
        vr = attribute.get("vr", "")
        element: dict[str, Any] = {"vr": vr}
        bulk = attribute.find("n:BulkData", NS)
        inline = attribute.find("n:InlineBinary", NS)
        if bulk is not None:
            element["BulkDataURI"] = bulk.get("uri")
        elif inline is not None:
            element["InlineBinary"] = inline.text
        elif vr == "SQ":
            element["Value"] = [_as_json(item) for item in _numbered(attribute, "Item")]
        elif vr == "PN":
            element["Value"] = [_name(name) for name in _numbered(attribute, "PersonName")]
        else:
            element["Value"] = [_typed(vr, v.text) for v in _numbered(attribute, "Value")]
        if element.get("Value") == []:
            del element["Value"]
        dataset[attribute.get("tag", "")] = element
    return dataset


def _name(node: ET.Element) -> dict[str, str]:
    groups = {}
    for group in NAME_GROUPS:
        found = node.find(f"n:{group}", NS)
        if found is not None:
            parts = [found.findtext(f"n:{component}", "", NS) for component in NAME_COMPONENTS]
            groups[group] = "^".join(parts).rstrip("^")
    return groups


def _typed(vr: str, text: str | None) -> Any:
    if text is None:
        return None
    if vr in _INTEGER_VRS:
        return int(text)
    return float(text) if vr in _FLOAT_VRS else text


def test_series_metadata_xml_one_document_per_instance(
    client: TestClient, series: list[Dataset]
) -> None:
    """Series metadata as DICOM XML: one document per instance, in the JSON answer's order, with
    keywords, person name components, numbered values, sequence items, the private creator and
    Pixel Data as a BulkData URI that resolves (PS3.19 A.1, PS3.18 §10.4.1.1.2)."""
    roots = _documents(client.get(_url(series[0]), headers={"Accept": XML_ACCEPT}))
    assert len(roots) == len(series)
    first = roots[0]
    uids = [_attribute(r, "00080018").findtext("n:Value[@number='1']", None, NS) for r in roots]
    assert uids == [ds.SOPInstanceUID for ds in series]
    assert _attribute(first, "00080018").get("keyword") == "SOPInstanceUID"

    (name,) = _numbered(_attribute(first, "00100010"), "PersonName")
    assert [name.findtext(f"n:Alphabetic/n:{c}", None, NS) for c in NAME_COMPONENTS] == [
        "Doe",
        "John",
        "Quincy",
        "Dr",
        "Jr",
    ]
    assert name.findtext("n:Ideographic/n:GivenName", None, NS) == "太郎"
    assert name.findtext("n:Phonetic/n:FamilyName", None, NS) == "やまだ"

    spacing = _numbered(_attribute(first, "00280030"), "Value")
    assert [float(v.text or "") for v in spacing] == [float(v) for v in series[0].PixelSpacing]

    (item,) = _numbered(_attribute(first, "00081140"), "Item")
    referenced = _attribute(item, "00081155")
    assert referenced.get("keyword") == "ReferencedSOPInstanceUID"
    assert referenced.findtext("n:Value", None, NS) == series[0].SOPInstanceUID

    private = _attribute(first, "00091001")
    assert (private.get("privateCreator"), private.get("keyword")) == ("PACS CLOUD TEST", None)
    assert private.findtext("n:Value", None, NS) == "private & <marked>"

    pixel = _attribute(first, "7FE00010").find("n:BulkData", NS)
    assert pixel is not None
    uri = pixel.get("uri", "")
    assert uri.startswith("http://testserver/dicom-web/studies/")
    bulk = client.get(uri.removeprefix("http://testserver"))
    _, params = parse_content_type(bulk.headers["content-type"])
    [part] = list(iter_multipart_related([bulk.content], params["boundary"]))
    assert part.content == series[0].PixelData


@pytest.mark.parametrize("level", ["study", "series", "instance"])
def test_metadata_xml_round_trips_to_json(
    client: TestClient, series: list[Dataset], level: str
) -> None:
    """Every attribute of every document reads back to the values of the DICOM JSON answer
    for the same resource: the two representations carry the same data."""
    ds = series[1]
    url = {
        "study": f"/dicom-web/studies/{ds.StudyInstanceUID}/metadata",
        "series": _url(ds),
        "instance": _url(ds).removesuffix("/metadata") + f"/instances/{ds.SOPInstanceUID}/metadata",
    }[level]
    as_json = client.get(url, headers={"Accept": "application/dicom+json"}).json()
    as_xml = [
        _as_json(root) for root in _documents(client.get(url, headers={"Accept": XML_ACCEPT}))
    ]
    assert len(as_xml) == (1 if level == "instance" else len(series))
    assert as_xml == as_json


@pytest.mark.parametrize(
    "accept",
    [
        XML_ACCEPT,
        f"application/dicom+json;q=0.5, {XML_ACCEPT}",
        "multipart/related",
        "multipart/*",
    ],
)
def test_metadata_xml_negotiated(client: TestClient, series: list[Dataset], accept: str) -> None:
    """XML when the preferred acceptable range is multipart DICOM XML (PS3.18 §8.7.3)."""
    assert len(_documents(client.get(_url(series[0]), headers={"Accept": accept}))) == 2


@pytest.mark.parametrize(
    "accept", [None, "*/*", f"{XML_ACCEPT};q=0.5, application/dicom+json", "application/*"]
)
def test_metadata_json_stays_default(
    client: TestClient, series: list[Dataset], accept: str | None
) -> None:
    headers = {"Accept": accept} if accept else {}
    response = client.get(_url(series[0]), headers=headers)
    assert response.headers["content-type"] == "application/dicom+json"


@pytest.mark.parametrize(
    "accept",
    [
        "application/dicom+xml",  # PS3.18 defines the XML answer as multipart only
        'multipart/related; type="application/dicom"',
        "text/html",
        ";;;",
    ],
)
def test_metadata_xml_unacceptable_406(
    client: TestClient, series: list[Dataset], accept: str
) -> None:
    response = client.get(_url(series[0]), headers={"Accept": accept})
    assert response.status_code == 406
    assert response.headers["content-type"] == "application/problem+json"


def test_qido_studies_xml_same_matches_as_json(client: TestClient, series: list[Dataset]) -> None:
    """QIDO-RS as DICOM XML: one document per match, the StudyInstanceUIDs and every other
    attribute as in the JSON answer (PS3.18 §10.6.3.2)."""
    other = ct_datasets(1, seed=4, patient_name="Roe^Jane")
    assert stow(client, [to_bytes(ds) for ds in other]).status_code == 200
    as_json = client.get("/dicom-web/studies").json()
    roots = _documents(client.get("/dicom-web/studies", headers={"Accept": XML_ACCEPT}))
    studies = [r.findtext("n:DicomAttribute[@tag='0020000D']/n:Value", None, NS) for r in roots]
    assert studies == [d["0020000D"]["Value"][0] for d in as_json]
    assert set(studies) == {series[0].StudyInstanceUID, other[0].StudyInstanceUID}
    assert [_as_json(root) for root in roots] == as_json


def test_qido_instances_xml_no_match_204(client: TestClient, series: list[Dataset]) -> None:
    """No match as XML is a 204: a multipart body cannot be empty (RFC 2046 §5.1.1)."""
    response = client.get(
        "/dicom-web/instances", params={"PatientID": "nobody"}, headers={"Accept": XML_ACCEPT}
    )
    assert (response.status_code, response.content) == (204, b"")


@pytest.mark.parametrize("accept", [";;;", "application/dicom+xml", "text/xml"])
def test_qido_unacceptable_406(client: TestClient, series: list[Dataset], accept: str) -> None:
    """A malformed Accept, or XML outside multipart/related, is a 406 (PS3.18 §8.7.3)."""
    response = client.get("/dicom-web/studies", headers={"Accept": accept})
    assert response.status_code == 406


def test_xml_characters_not_allowed_replaced() -> None:
    """A form feed (allowed in LT) cannot appear in XML 1.0: it becomes U+FFFD, and the
    document stays well-formed."""
    document = json_to_native_xml({"001021B0": {"vr": "LT", "Value": ["a\x0cb"]}})
    assert ET.fromstring(document).findtext("n:DicomAttribute/n:Value", None, NS) == "a\ufffdb"
