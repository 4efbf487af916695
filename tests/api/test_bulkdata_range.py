"""Bulk data byte ranges (PS3.18 §10.4.1.1.5, §8.7.3; RFC 9110 §14), on both deployments."""

from __future__ import annotations

import pydicom
import pytest
from fastapi.testclient import TestClient
from pacs_common.media import iter_multipart_related, parse_content_type
from pacs_common.synthetic import to_bytes

from tests.support.dicom import ct_datasets, stow

OCTET = "application/octet-stream"


@pytest.fixture
def instance(client: TestClient) -> tuple[pydicom.Dataset, str]:
    """A stored CT slice and the URL of its Pixel Data bulk data."""
    ds = ct_datasets(1, seed=7)[0]
    assert stow(client, [to_bytes(ds)]).status_code == 200
    url = (
        f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}/bulkdata/7FE00010"
    )
    return ds, url


def test_bulkdata_range_single_part_206(
    client: TestClient, instance: tuple[pydicom.Dataset, str]
) -> None:
    """``Range: bytes=a-b`` with Accept application/octet-stream: 206 with exactly those bytes
    of the value and ``Content-Range: bytes a-b/length`` (RFC 9110 §14.4, §15.3.7)."""
    ds, url = instance
    response = client.get(url, headers={"Accept": OCTET, "Range": "bytes=10-19"})
    assert response.status_code == 206
    assert response.headers["content-type"] == OCTET
    assert response.headers["content-range"] == f"bytes 10-19/{len(ds.PixelData)}"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.content == ds.PixelData[10:20]


@pytest.mark.parametrize(
    ("spec", "start", "stop"),
    [("bytes=100-", 100, None), ("bytes=-16", -16, None), ("bytes=0-99999999", 0, None)],
)
def test_bulkdata_open_suffix_and_clamped_ranges_206(
    client: TestClient,
    instance: tuple[pydicom.Dataset, str],
    spec: str,
    start: int,
    stop: int | None,
) -> None:
    """Open-ended, suffix and past-the-end ranges (RFC 9110 §14.1.2)."""
    ds, url = instance
    response = client.get(url, headers={"Accept": OCTET, "Range": spec})
    assert response.status_code == 206
    assert response.content == ds.PixelData[start:stop]


def test_bulkdata_range_multipart_part_carries_content_range(
    client: TestClient, instance: tuple[pydicom.Dataset, str]
) -> None:
    """With the multipart Accept that dicomweb-client sends, the 206 answer is one part holding
    the range, its Content-Range on the part (the positions are in the bulk data value, not in
    the multipart framing) and its Content-Location (PS3.18 §8.6.1.2)."""
    ds, url = instance
    response = client.get(
        url,
        headers={"Accept": f'multipart/related; type="{OCTET}"', "Range": "bytes=2-5"},
    )
    assert response.status_code == 206
    _, params = parse_content_type(response.headers["content-type"])
    [part] = list(iter_multipart_related([response.content], params["boundary"]))
    assert part.content == ds.PixelData[2:6]
    assert part.headers["content-range"] == f"bytes 2-5/{len(ds.PixelData)}"
    assert part.headers["content-location"] == f"http://testserver{url}"
    assert "content-range" not in response.headers


def test_bulkdata_without_range_advertises_accept_ranges(
    client: TestClient, instance: tuple[pydicom.Dataset, str]
) -> None:
    ds, url = instance
    response = client.get(url, headers={"Accept": OCTET})
    assert response.status_code == 200
    assert response.headers["accept-ranges"] == "bytes"
    assert response.content == ds.PixelData


@pytest.mark.parametrize("spec", ["bytes=99999999-", "bytes=-0"])
def test_bulkdata_unsatisfiable_range_416(
    client: TestClient, instance: tuple[pydicom.Dataset, str], spec: str
) -> None:
    """A range that starts past the end is a 416 with ``Content-Range: bytes */length``."""
    ds, url = instance
    response = client.get(url, headers={"Range": spec})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(ds.PixelData)}"
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "spec", ["bytes=5-2", "bytes=0-1,4-5", "items=0-1", "bytes=a-b", "bytes=-", "bytes=+1-2"]
)
def test_bulkdata_ignored_range_200(
    client: TestClient, instance: tuple[pydicom.Dataset, str], spec: str
) -> None:
    """Invalid, multi-range and other-unit headers are ignored: the whole value, 200
    (RFC 9110 §14.2 lets a server ignore Range)."""
    ds, url = instance
    response = client.get(url, headers={"Accept": OCTET, "Range": spec})
    assert response.status_code == 200
    assert response.content == ds.PixelData


def test_bulkdata_if_range_mismatch_200(
    client: TestClient, instance: tuple[pydicom.Dataset, str]
) -> None:
    """``If-Range`` with another validator than the ETag gets the whole value (§13.1.5)."""
    ds, url = instance
    etag = client.get(url, headers={"Accept": OCTET}).headers["etag"]
    same = client.get(url, headers={"Accept": OCTET, "Range": "bytes=0-3", "If-Range": etag})
    assert same.status_code == 206
    other = client.get(url, headers={"Accept": OCTET, "Range": "bytes=0-3", "If-Range": '"x"'})
    assert other.status_code == 200
    assert other.content == ds.PixelData


def test_bulkdata_not_acceptable_406(
    client: TestClient, instance: tuple[pydicom.Dataset, str]
) -> None:
    _, url = instance
    assert client.get(url, headers={"Accept": "image/png"}).status_code == 406
