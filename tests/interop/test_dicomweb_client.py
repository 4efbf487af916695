"""Interoperability: a third-party DICOMweb client (``dicomweb-client``) against a running
server, and every pydicom test file through STOW-RS and WADO-RS byte for byte."""

from __future__ import annotations

import os
from io import BytesIO
from pathlib import Path

import httpx
import pydicom
from dicomweb_client.api import DICOMwebClient
from pacs_api.settings import Settings
from pacs_common.media import iter_multipart_related, parse_content_type
from pacs_common.synthetic import to_bytes
from pydicom.data import get_testdata_file
from pydicom.dataelem import RawDataElement

from tests.support.dicom import ct_datasets, failed, referenced, stow, values
from tests.support.server import running_api


def test_dicomweb_client_store_search_retrieve(settings: Settings) -> None:
    """dicomweb-client stores a series, finds it with QIDO-RS and retrieves it with WADO-RS
    (PS3.18 §10.5, §10.6, §10.4) from a real HTTP server."""
    # As Part 10 files (with preamble), which is what dicomweb-client reads back.
    datasets = [pydicom.dcmread(BytesIO(to_bytes(ds))) for ds in ct_datasets(3, seed=7)]
    with running_api(settings) as url:
        client = DICOMwebClient(url=url)
        result = client.store_instances(datasets=datasets)
        assert len(result.ReferencedSOPSequence) == 3
        studies = client.search_for_studies(search_filters={"PatientID": datasets[0].PatientID})
        assert [s["0020000D"]["Value"][0] for s in studies] == [datasets[0].StudyInstanceUID]
        series = client.search_for_series(datasets[0].StudyInstanceUID)
        assert series[0]["00080060"]["Value"] == ["CT"]
        retrieved = client.retrieve_series(
            datasets[0].StudyInstanceUID, datasets[0].SeriesInstanceUID
        )
        assert sorted(ds.SOPInstanceUID for ds in retrieved) == sorted(
            ds.SOPInstanceUID for ds in datasets
        )
        assert retrieved[0].pixel_array.shape == (32, 32)
        metadata = client.retrieve_series_metadata(
            datasets[0].StudyInstanceUID, datasets[0].SeriesInstanceUID
        )
        assert len(metadata) == 3


def _pydicom_test_files() -> list[Path]:
    """Every file of pydicom's test set that pydicom reads as a Part 10 file."""
    root = Path(get_testdata_file("CT_small.dcm")).parent  # type: ignore[arg-type]
    readable = []
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        try:
            pydicom.dcmread(path)
        except Exception:  # noqa: BLE001 - not a Part 10 file pydicom can read
            continue
        readable.append(path)
    return readable


def _expected_refusal(path: Path) -> str | None:
    """Why an independent look at the file says it must be refused, or None."""
    ds = pydicom.dcmread(path)
    if "TransferSyntaxUID" not in ds.file_meta:
        return "no Transfer Syntax UID"
    for keyword in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
        if not str(ds.get(keyword, "") or "").strip():
            return f"{keyword} is missing"
    if "Image Storage" in ds.SOPClassUID.name and "PixelData" not in ds:
        return "without Pixel Data"
    size = os.path.getsize(path)
    if not ds.file_meta.TransferSyntaxUID.is_deflated:
        raw = pydicom.dcmread(path, defer_size=0)  # every value left unread, offsets known
        for elem in raw._dict.values():
            if isinstance(elem, RawDataElement) and elem.length != 0xFFFFFFFF:
                if elem.value_tell + elem.length > size:
                    return "truncated"
    return None


def test_pydicom_test_files_round_trip(client: httpx.Client) -> None:
    """Every readable pydicom test file is stored and retrieved byte-identically, or refused for
    the reason an independent check gives (missing Type 1 UID, image without Pixel Data,
    truncated). Each is deleted after its round trip, as several share UIDs."""
    files = _pydicom_test_files()
    assert len(files) > 80
    stored = 0
    for path in files:
        data = path.read_bytes()
        response = stow(client, [data])
        expected = _expected_refusal(path)
        if expected is not None:
            assert response.status_code == 409, (path.name, response.text)
            reason = values(failed(response)[0], "00000902")[0]
            assert expected in reason, (path.name, reason)
            continue
        assert response.status_code == 200, (path.name, response.text)
        url = values(referenced(response)[0], "00081190")[0].removeprefix("http://testserver")
        retrieved = client.get(
            url,
            headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
        )
        assert retrieved.status_code == 200, path.name
        _, params = parse_content_type(retrieved.headers["content-type"])
        parts = list(iter_multipart_related([retrieved.content], params["boundary"]))
        assert [p.content for p in parts] == [data], path.name
        assert client.delete(url).status_code == 204
        stored += 1
    assert stored > 60
