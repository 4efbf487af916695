"""WADO-RS (PS3.18 §10.4): retrieve, metadata and bulk data, on both deployments."""

from __future__ import annotations

from io import BytesIO

import pydicom
import pytest
from fastapi.testclient import TestClient
from pacs_common.media import APPLICATION_DICOM_JSON as DICOM_JSON
from pacs_common.media import iter_multipart_related, parse_content_type
from pacs_common.synthetic import to_bytes

from tests.support.dicom import ct_datasets, stow


def _parts(response: object) -> list[tuple[dict[str, str], bytes]]:
    assert hasattr(response, "headers") and hasattr(response, "content")
    media, params = parse_content_type(response.headers["content-type"])
    assert media == "multipart/related"
    assert params["type"] == "application/dicom"
    return [
        (p.headers, p.content)
        for p in iter_multipart_related([response.content], params["boundary"])
    ]


@pytest.fixture
def study(client: TestClient) -> list[pydicom.Dataset]:
    """Two series of one study, stored."""
    first = ct_datasets(3, seed=1)
    second = ct_datasets(2, seed=1, series_number=2)
    response = stow(client, [to_bytes(ds) for ds in first + second])
    assert response.status_code == 200, response.text
    return first + second


def test_retrieve_study_byte_identical(client: TestClient, study: list[pydicom.Dataset]) -> None:
    """A study comes back as multipart/related application/dicom, every part byte for byte as
    stored, with its transfer syntax and Content-Location (PS3.18 §10.4.1.1.1, §8.6.1.2)."""
    uid = study[0].StudyInstanceUID
    response = client.get(
        f"/dicom-web/studies/{uid}",
        headers={"Accept": 'multipart/related; type="application/dicom"'},
    )
    assert response.status_code == 200
    parts = _parts(response)
    assert sorted(data for _, data in parts) == sorted(to_bytes(ds) for ds in study)
    headers = parts[0][0]
    assert headers["content-type"].startswith(
        "application/dicom; transfer-syntax=1.2.840.10008.1.2.1"
    )
    assert f"/dicom-web/studies/{uid}/series/" in headers["content-location"]


def test_retrieve_series_and_instance(client: TestClient, study: list[pydicom.Dataset]) -> None:
    ds = study[3]
    series = client.get(f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}")
    assert [data for _, data in _parts(series)] == [to_bytes(d) for d in study[3:]]
    instance = client.get(
        f"/dicom-web/studies/{ds.StudyInstanceUID}/series/"
        f"{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}",
        headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
    )
    assert [data for _, data in _parts(instance)] == [to_bytes(ds)]


def test_retrieve_other_transfer_syntax_406(
    client: TestClient, study: list[pydicom.Dataset]
) -> None:
    """A transfer syntax we do not hold (and cannot yet transcode to) is a 406, not a 500."""
    uid = study[0].StudyInstanceUID
    response = client.get(
        f"/dicom-web/studies/{uid}",
        headers={
            "Accept": 'multipart/related; type="application/dicom"; '
            "transfer-syntax=1.2.840.10008.1.2.4.50"
        },
    )
    assert response.status_code == 406
    assert "transfer syntax" in response.json()["detail"]
    assert (
        client.get(f"/dicom-web/studies/{uid}", headers={"Accept": "image/png"}).status_code == 406
    )


def test_retrieve_unknown_study_404(client: TestClient) -> None:
    assert client.get("/dicom-web/studies/1.2.3.4.5").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/dicom-web/studies/1.2.3..4",
        "/dicom-web/studies/1.2.abc/metadata",
        "/dicom-web/studies/1.2.3/series/%2E%2E%2Fetc",
        "/dicom-web/studies/1.2.3/series/1.2/instances/..%2F..%2Fx",
    ],
)
def test_malformed_uid_in_path_400(client: TestClient, path: str) -> None:
    """UIDs in paths are checked before any lookup (PS3.5 §9.1): a malformed UID is a 400; an
    encoded ``/`` splits the path so that no resource matches (404). Never a 500."""
    response = client.get(path)
    assert response.status_code in (400, 404), response.text
    assert response.headers["content-type"] == "application/problem+json"
    if "%2F" not in path:
        assert response.status_code == 400
        assert "not a valid UID" in response.json()["detail"]


def test_series_metadata_from_index(client: TestClient, study: list[pydicom.Dataset]) -> None:
    """Series metadata is DICOM JSON of every instance, with Pixel Data as a BulkDataURI that
    resolves to exactly the pixel bytes (PS3.18 §10.4.1.1.2, F.2.6)."""
    ds = study[0]
    response = client.get(
        f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/metadata"
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == DICOM_JSON
    documents = response.json()
    assert [d["00080018"]["Value"][0] for d in documents] == [d.SOPInstanceUID for d in study[:3]]
    assert documents[0]["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": str(ds.PatientName)}]}
    pixel = documents[0]["7FE00010"]
    assert pixel["vr"] == "OW"
    assert pixel["BulkDataURI"].startswith("http://testserver/dicom-web/studies/")
    bulk = client.get(pixel["BulkDataURI"].removeprefix("http://testserver"))
    assert bulk.status_code == 200
    _, params = parse_content_type(bulk.headers["content-type"])
    [part] = list(iter_multipart_related([bulk.content], params["boundary"]))
    assert part.content == ds.PixelData


def test_study_and_instance_metadata(client: TestClient, study: list[pydicom.Dataset]) -> None:
    ds = study[4]
    whole = client.get(f"/dicom-web/studies/{ds.StudyInstanceUID}/metadata").json()
    assert len(whole) == 5
    one = client.get(
        f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}/metadata"
    ).json()
    assert len(one) == 1
    # Every attribute of the header is there, with its dictionary VR (PS3.18 F.2.2).
    parsed = pydicom.dcmread(BytesIO(to_bytes(ds)), stop_before_pixels=True)
    expected = {f"{e.tag:08X}" for e in parsed}
    assert expected <= set(one[0])
    assert one[0]["00280030"]["Value"] == [float(v) for v in ds.PixelSpacing]


def test_metadata_not_acceptable_406(client: TestClient, study: list[pydicom.Dataset]) -> None:
    response = client.get(
        f"/dicom-web/studies/{study[0].StudyInstanceUID}/metadata",
        headers={"Accept": "application/dicom+xml"},
    )
    assert response.status_code == 406


def test_delete_instance_series_study(client: TestClient, study: list[pydicom.Dataset]) -> None:
    """DELETE removes rows and objects together; the next lookup is a 404 (and so is a second
    DELETE)."""
    from tests.support.stores import stored_objects

    settings = client.app.state.settings  # type: ignore[attr-defined]
    ds = study[0]
    base = f"/dicom-web/studies/{ds.StudyInstanceUID}"
    instance = f"{base}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
    assert client.delete(instance).status_code == 204
    assert client.get(instance + "/metadata").status_code == 404
    assert client.delete(instance).status_code == 404
    assert len(stored_objects(settings)) == 4
    assert client.delete(f"{base}/series/{ds.SeriesInstanceUID}").status_code == 204
    assert len(stored_objects(settings)) == 2
    assert client.delete(base).status_code == 204
    assert stored_objects(settings) == {}
    assert client.get(f"{base}/metadata").status_code == 404
    assert client.delete(base).status_code == 404


def test_status_probes(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"index": "ok", "store": "ok"}
