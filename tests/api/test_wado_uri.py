"""WADO-URI (PS3.18 §9) at the server root ``/wado``, on both deployments."""

from __future__ import annotations

import io

import pydicom
import pytest
from fastapi.testclient import TestClient
from pacs_common.synthetic import to_bytes
from PIL import Image

from tests.support.dicom import ct_datasets, stow


@pytest.fixture
def ct(client: TestClient) -> pydicom.Dataset:
    ds = ct_datasets(1, seed=11)[0]
    assert stow(client, [to_bytes(ds)]).status_code == 200
    return ds


def query(ds: pydicom.Dataset, **extra: str) -> dict[str, str]:
    return {
        "requestType": "WADO",
        "studyUID": ds.StudyInstanceUID,
        "seriesUID": ds.SeriesInstanceUID,
        "objectUID": ds.SOPInstanceUID,
        **extra,
    }


def test_wado_uri_application_dicom_byte_identical(client: TestClient, ct: pydicom.Dataset) -> None:
    """``contentType=application/dicom`` answers the stored object byte for byte
    (PS3.18 §9.1.2.1.5), also when listed after a type that is not served."""
    for content_type in ("application/dicom", "image/gif,application/dicom"):
        response = client.get("/wado", params=query(ct, contentType=content_type))
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/dicom"
        assert response.content == to_bytes(ct)


def test_wado_uri_stored_transfer_syntax_200_other_406(
    client: TestClient, ct: pydicom.Dataset
) -> None:
    """transferSyntax equal to the stored one is served; another needs transcoding: 406."""
    stored = ct.file_meta.TransferSyntaxUID
    same = client.get(
        "/wado", params=query(ct, contentType="application/dicom", transferSyntax=stored)
    )
    assert same.status_code == 200
    other = client.get(
        "/wado",
        params=query(ct, contentType="application/dicom", transferSyntax="1.2.840.10008.1.2.4.50"),
    )
    assert other.status_code == 406
    assert "transcoding" in other.json()["detail"]


@pytest.mark.parametrize("extra", [{"contentType": "image/jpeg"}, {}])
def test_wado_uri_image_jpeg_rendered(
    client: TestClient, ct: pydicom.Dataset, extra: dict[str, str]
) -> None:
    """image/jpeg, also the default without contentType (§9.1.2.1.5), renders the object."""
    response = client.get("/wado", params=query(ct, **extra))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(response.content)).size == (ct.Columns, ct.Rows)


def test_wado_uri_png_window_rows_same_as_wado_rs_rendered(
    client: TestClient, ct: pydicom.Dataset
) -> None:
    """windowCenter/windowWidth, rows (§9.1.2.1.7-10) go through the same pipeline as WADO-RS
    ``window`` and ``viewport`` (PS3.18 §8.3.5.1): the same PNG."""
    uri = client.get(
        "/wado",
        params=query(ct, contentType="image/png", windowCenter="40", windowWidth="400", rows="16"),
    )
    assert uri.status_code == 200, uri.text
    assert uri.headers["content-type"] == "image/png"
    rendered = client.get(
        f"/dicom-web/studies/{ct.StudyInstanceUID}/series/{ct.SeriesInstanceUID}"
        f"/instances/{ct.SOPInstanceUID}/rendered",
        params={"window": "40,400", "viewport": "16,16"},
        headers={"Accept": "image/png"},
    )
    assert uri.content == rendered.content


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"windowCenter": "40"}, "windowWidth"),
        ({"windowCenter": "40", "windowWidth": "wide"}, "windowCenter/windowWidth"),
        ({"imageQuality": "0"}, "imageQuality"),
        ({"rows": "-3"}, "rows"),
        ({"columns": "x"}, "columns"),
        ({"frameNumber": "0"}, "frameNumber"),
    ],
)
def test_wado_uri_malformed_rendering_parameter_400(
    client: TestClient, ct: pydicom.Dataset, extra: dict[str, str], named: str
) -> None:
    response = client.get("/wado", params=query(ct, contentType="image/jpeg", **extra))
    assert response.status_code == 400
    assert named in response.json()["detail"]


def test_wado_uri_frame_beyond_object_404(client: TestClient, ct: pydicom.Dataset) -> None:
    response = client.get("/wado", params=query(ct, contentType="image/jpeg", frameNumber="2"))
    assert response.status_code == 404


def test_wado_uri_content_type_not_served_406(client: TestClient, ct: pydicom.Dataset) -> None:
    """A contentType list with no served type is a 406 naming the served ones."""
    response = client.get("/wado", params=query(ct, contentType="image/gif"))
    assert response.status_code == 406
    assert "application/dicom" in response.json()["detail"]


def test_wado_uri_anonymize_refused_406(client: TestClient, ct: pydicom.Dataset) -> None:
    """An object asked for de-identified is never sent identified."""
    response = client.get(
        "/wado", params=query(ct, contentType="application/dicom", anonymize="yes")
    )
    assert response.status_code == 406


@pytest.mark.parametrize("missing", ["requestType", "studyUID", "seriesUID", "objectUID"])
def test_wado_uri_missing_parameter_400(
    client: TestClient, ct: pydicom.Dataset, missing: str
) -> None:
    """A missing required parameter is a 400 that names it (§9.1.2.1)."""
    params = query(ct, contentType="application/dicom")
    del params[missing]
    response = client.get("/wado", params=params)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert missing in response.json()["detail"]


def test_wado_uri_malformed_uid_400(client: TestClient, ct: pydicom.Dataset) -> None:
    response = client.get("/wado", params=query(ct, seriesUID="1.2.abc"))
    assert response.status_code == 400
    assert "seriesUID" in response.json()["detail"]


def test_wado_uri_request_type_not_wado_400(client: TestClient, ct: pydicom.Dataset) -> None:
    response = client.get("/wado", params=query(ct, requestType="WADO-RS"))
    assert response.status_code == 400
    assert "requestType" in response.json()["detail"]


def test_wado_uri_unknown_object_404(client: TestClient, ct: pydicom.Dataset) -> None:
    response = client.get(
        "/wado", params=query(ct, objectUID="1.2.3.4.5", contentType="application/dicom")
    )
    assert response.status_code == 404
