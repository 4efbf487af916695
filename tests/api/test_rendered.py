"""WADO-RS rendered and thumbnail resources (PS3.18 §10.4.1.1.4, §8.3.5.1, §8.7.4) on both
deployments: pixels checked against pydicom, the query parameters, content negotiation."""

from __future__ import annotations

import copy
import io
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pydicom
import pytest
from fastapi.testclient import TestClient
from pacs_common.media import iter_multipart_related, parse_content_type
from pacs_common.synthetic import ct_series, synthetic_uid, to_bytes
from PIL import Image

from tests.api.test_render_pipeline import expected_display, pixel_test_files
from tests.support.dicom import ct_datasets, stow

#: Mean absolute error (8-bit levels) allowed between a JPEG answer (quality 90, no chroma
#: subsampling) and the exact rendering; measured at most ~2.1 on pydicom's test files.
JPEG_MAE = 2.5


def stored(client: TestClient, ds: pydicom.Dataset) -> str:
    response = stow(client, [to_bytes(ds)])
    assert response.status_code == 200, response.text
    return (
        f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )


def pixels(content: bytes) -> npt.NDArray[np.int16]:
    return np.asarray(Image.open(io.BytesIO(content))).astype(np.int16)


@pytest.fixture
def ct(client: TestClient) -> list[pydicom.Dataset]:
    """Three 32x32 synthetic CT slices without noise: exact HU (air, water, bone)."""
    series = ct_datasets(3, seed=21, noise_hu=0.0)
    assert stow(client, [to_bytes(ds) for ds in series]).status_code == 200
    return series


def test_rendered_every_pydicom_test_file_matches_pydicom(client: TestClient) -> None:
    """Every pydicom test file with Pixel Data, stored (with fresh UIDs: several files share
    theirs) and rendered, is pydicom's own modality-LUT + VOI result scaled to 8 bits: exactly as
    PNG, within ``JPEG_MAE`` as JPEG. Files pydicom cannot decode here are a 406 with the
    reason (PS3.18 §8.3.5: a representation the server cannot produce)."""
    refused = []
    for path in pixel_test_files():
        ds = pydicom.dcmread(path)
        name = Path(path).name
        fresh = copy.deepcopy(ds)
        list(fresh.iterall())  # parse every raw element: files read with the wrong VR style
        fresh.StudyInstanceUID = synthetic_uid("render-study", path)
        fresh.SeriesInstanceUID = synthetic_uid("render-series", path)
        fresh.SOPInstanceUID = fresh.file_meta.MediaStorageSOPInstanceUID = synthetic_uid(path)
        try:
            data = to_bytes(fresh)
            ds = fresh
        except (TypeError, AttributeError, ValueError):  # pydicom cannot write it: as it is
            data = Path(path).read_bytes()
        response = stow(client, [data])
        if response.status_code != 200:  # refused at STOW (no transfer syntax): no image
            assert expected_display(ds) is None, (name, response.text)
            refused.append(name)
            continue
        url = stored_url(ds) + "/rendered"
        expected = expected_display(ds)
        png = client.get(url, headers={"Accept": "image/png"})
        if expected is None:
            assert png.status_code == 406, (name, png.text)
            assert "cannot" in png.json()["detail"]
            refused.append(name)
            continue
        assert png.status_code == 200, (name, png.text)
        assert png.headers["content-type"] == "image/png"
        assert np.array_equal(pixels(png.content), expected), name
        jpeg = client.get(url, headers={"Accept": "image/jpeg"})
        assert jpeg.headers["content-type"] == "image/jpeg"
        error = np.abs(pixels(jpeg.content) - expected).mean()
        assert error <= JPEG_MAE, (name, error)
    assert len(refused) <= 6, refused


def test_rendered_synthetic_ct_window_air_black_bone_white_water_grey(
    client: TestClient, ct: list[pydicom.Dataset]
) -> None:
    """window=40,400 (PS3.18 §8.3.5.1.4, linear, PS3.3 C.11.2.1.2.1) on CT in HU: air
    (-1000) black, bone (+1000) white, water (0) mid-grey ((0 - 39.5) / 399 + 0.5 of 255)."""
    ds = ct[1]
    url = stored_url(ds) + "/rendered"
    response = client.get(url, params={"window": "40,400,linear"}, headers={"Accept": "image/png"})
    assert response.status_code == 200, response.text
    image = pixels(response.content)
    hu = ds.pixel_array.astype(np.int32) + int(ds.RescaleIntercept)
    assert image.shape == hu.shape
    assert (image[hu == -1000] == 0).all() and (hu == -1000).any()
    assert (image[hu == 1000] == 255).all() and (hu == 1000).any()
    assert (image[hu == 0] == round(((0 - 39.5) / 399 + 0.5) * 255)).all() and (hu == 0).any()


def stored_url(ds: pydicom.Dataset) -> str:
    return (
        f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )


def test_rendered_default_jpeg_and_accept_gif_406(
    client: TestClient, ct: list[pydicom.Dataset]
) -> None:
    """Without Accept a rendered image is image/jpeg; image/gif is not produced: 406
    (PS3.18 §8.7.4), never a 500."""
    url = stored_url(ct[0]) + "/rendered"
    default = client.get(url)
    assert default.status_code == 200
    assert default.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(default.content)).format == "JPEG"
    gif = client.get(url, headers={"Accept": "image/gif"})
    assert gif.status_code == 406
    assert gif.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("parameter", "values"),
    [
        ("window", ["40", "40,abc", "40,400,cubic", "40,0", "40,400,linear,1", "nan,400"]),
        ("viewport", ["64", "64,x", "0,64", "64,64,0,0,0,10", "64.5,64", "99999,64"]),
        ("quality", ["0", "101", "high", "50.5"]),
    ],
)
def test_rendered_malformed_parameter_400(
    client: TestClient, ct: list[pydicom.Dataset], parameter: str, values: list[str]
) -> None:
    """A malformed window, viewport or quality (PS3.18 §8.3.5.1) is a 400 naming it."""
    url = stored_url(ct[0]) + "/rendered"
    for value in values:
        response = client.get(url, params={parameter: value})
        assert response.status_code == 400, (value, response.text)
        assert parameter in response.json()["detail"], value


def test_rendered_viewport_fits_preserving_aspect(
    client: TestClient, ct: list[pydicom.Dataset]
) -> None:
    """viewport=vw,vh scales to fit, aspect kept; sx,sy,sw,sh crops first (§8.3.5.1.3)."""
    url = stored_url(ct[0]) + "/rendered"
    assert Image.open(io.BytesIO(client.get(url, params={"viewport": "64,16"}).content)).size == (
        16,
        16,
    )
    region = client.get(url, params={"viewport": "40,40,0,0,16,8"}, headers={"Accept": "image/png"})
    assert Image.open(io.BytesIO(region.content)).size == (40, 20)


def test_rendered_frames_one_frame_or_400(client: TestClient) -> None:
    """.../frames/{n}/rendered renders frame n of a multi-frame object; several frames are a
    400; a frame beyond the object a 404."""
    path = Path(pydicom.__file__).parent / "data" / "test_files" / "SC_rgb_rle_2frame.dcm"
    ds = pydicom.dcmread(path)
    url = stored(client, ds)
    second = client.get(url + "/frames/2/rendered", headers={"Accept": "image/png"})
    assert second.status_code == 200
    assert np.array_equal(pixels(second.content), ds.pixel_array[1])
    first = client.get(url + "/rendered", headers={"Accept": "image/png"})
    assert np.array_equal(pixels(first.content), ds.pixel_array[0])
    assert client.get(url + "/frames/1,2/rendered").status_code == 400
    assert client.get(url + "/frames/3/rendered").status_code == 404


def test_rendered_series_and_study_multipart_one_part_per_instance(
    client: TestClient, ct: list[pydicom.Dataset]
) -> None:
    """The rendered series and study hold all their instances (PS3.18 §10.4.1.1.4): a
    multipart/related of image/png parts in instance order, each with its Content-Location."""
    series = f"/dicom-web/studies/{ct[0].StudyInstanceUID}/series/{ct[0].SeriesInstanceUID}"
    for url in (series, f"/dicom-web/studies/{ct[0].StudyInstanceUID}"):
        response = client.get(url + "/rendered", headers={"Accept": "image/png"})
        assert response.status_code == 200, response.text
        media, params = parse_content_type(response.headers["content-type"])
        assert media == "multipart/related" and params["type"] == "image/png"
        parts = list(iter_multipart_related([response.content], params["boundary"]))
        assert [p.headers["content-location"].split("/")[-2] for p in parts] == [
            ds.SOPInstanceUID for ds in ct
        ]
        single = client.get(stored_url(ct[1]) + "/rendered", headers={"Accept": "image/png"})
        assert parts[1].content == single.content


def test_thumbnails_middle_instance_within_128(client: TestClient) -> None:
    """Thumbnails (PS3.18 §10.4.1.1.4) fit 128x128: a series shows its middle instance, a
    study the middle instance of its first series, an instance its first frame."""
    big = ct_series(3, 256, 192, seed=23, noise_hu=0.0)  # 256 rows, 192 columns
    assert stow(client, [to_bytes(ds) for ds in big]).status_code == 200
    study = f"/dicom-web/studies/{big[0].StudyInstanceUID}"
    series_url = f"{study}/series/{big[0].SeriesInstanceUID}"
    middle = client.get(stored_url(big[1]) + "/thumbnail", headers={"Accept": "image/png"})
    assert middle.status_code == 200
    assert Image.open(io.BytesIO(middle.content)).size == (96, 128)
    for url in (series_url, study, stored_url(big[1]) + "/frames/1"):
        response = client.get(url + "/thumbnail", headers={"Accept": "image/png"})
        assert response.status_code == 200, url
        assert response.content == middle.content, url
    jpeg = client.get(series_url + "/thumbnail", params={"viewport": "64,64"})
    assert jpeg.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(jpeg.content)).size == (48, 64)


def test_rendered_unknown_instance_404(client: TestClient, ct: list[pydicom.Dataset]) -> None:
    url = f"/dicom-web/studies/{ct[0].StudyInstanceUID}/series/{ct[0].SeriesInstanceUID}"
    assert client.get(url + "/instances/1.2.3.4/rendered").status_code == 404
