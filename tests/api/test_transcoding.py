"""WADO-RS transfer syntax negotiation and transcoding (PS3.18 §8.7.3.5, PS3.5 §8, §10), on
both deployments.

Every transcoded answer is checked by decoding it with pydicom and comparing with pydicom's
own decoding of the original. Transcoding to a native or lossless syntax must give exactly the
original's decoded pixels, lossy sources included: the server decodes with the same pydicom
decoders, so the loss lies in the stored data, and the tolerance for lossy sources is zero.
Only a lossy target (JPEG Baseline) differs, within :data:`JPEG_TOLERANCE`.
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import numpy as np
import pydicom
import pytest
from fastapi.testclient import TestClient
from pacs_api.imaging.transcode import refusal
from pacs_common.media import iter_multipart_related, parse_content_type
from pacs_common.synthetic import synthetic_uid, to_bytes
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import (
    MPEG2MPML,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)

from tests.support.dicom import ct_datasets, stow

#: JPEG Baseline at quality 90 without subsampling: largest and mean absolute error allowed
#: per 8-bit sample against the original.
JPEG_TOLERANCE = (16, 2.0)


def accept(*syntaxes: tuple[str, float]) -> dict[str, str]:
    ranges = [
        f'multipart/related; type="application/dicom"; transfer-syntax={uid};q={q}'
        for uid, q in syntaxes
    ]
    return {"Accept": ", ".join(ranges)}


def pydicom_file(name: str) -> Dataset:
    path = get_testdata_file(name)
    assert isinstance(path, str | Path)
    ds = pydicom.dcmread(path)
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID"):  # some test files lack them
        if not ds.get(keyword):
            setattr(ds, keyword, synthetic_uid("transcoding", keyword, name))
    return ds


def stored(client: TestClient, *datasets: Dataset) -> str:
    response = stow(client, [to_bytes(ds) for ds in datasets])
    assert response.status_code == 200, response.text
    ds = datasets[0]
    url = f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
    return url if len(datasets) > 1 else f"{url}/instances/{ds.SOPInstanceUID}"


def parts(response: object) -> list[tuple[dict[str, str], bytes]]:
    assert hasattr(response, "headers") and hasattr(response, "content")
    media, params = parse_content_type(response.headers["content-type"])
    assert media == "multipart/related"
    found = iter_multipart_related([response.content], params["boundary"])
    return [(p.headers, p.content) for p in found]


def retrieve(client: TestClient, url: str, *syntaxes: tuple[str, float]) -> list[Dataset]:
    """The instances of *url* asked for in *syntaxes*, each part's Content-Type checked
    against the syntax its object is in."""
    response = client.get(url, headers=accept(*syntaxes))
    assert response.status_code == 200, response.text
    found = []
    for headers, data in parts(response):
        ds = pydicom.dcmread(BytesIO(data))
        expected = f"application/dicom; transfer-syntax={ds.file_meta.TransferSyntaxUID}"
        assert headers["content-type"] == expected
        assert headers["content-length"] == str(len(data))
        found.append(ds)
    return found


@pytest.mark.parametrize(
    ("name", "lossy"),
    [
        ("examples_ybr_color.dcm", True),  # JPEG Baseline, YBR_FULL_422, 30 frames
        ("SC_rgb_jpeg_dcmtk.dcm", True),  # JPEG Baseline, YBR_FULL
        ("JPEG2000.dcm", True),  # JPEG 2000 (lossy)
        ("MR_small_jp2klossless.dcm", False),  # JPEG 2000 Lossless Only
        ("MR_small_jpeg_ls_lossless.dcm", False),  # JPEG-LS Lossless
        ("JPEGLSNearLossless_16.dcm", True),  # JPEG-LS Near-Lossless, unmarked in the file
        ("MR_small_RLE.dcm", False),  # RLE Lossless, 16-bit
        ("SC_rgb_rle_2frame.dcm", False),  # RLE Lossless, RGB, 2 frames
        ("CT_small.dcm", False),  # native Explicit VR Little Endian
    ],
)
@pytest.mark.parametrize(
    "target", [ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian]
)
def test_retrieve_as_native_equals_pydicom_decoding(
    client: TestClient, name: str, lossy: bool, target: str
) -> None:
    """An instance asked for in a native syntax decodes to exactly pydicom's decoding of the
    original (YBR as RGB); a lossy source stays marked lossy (PS3.3 C.7.6.1.1.5)."""
    original = pydicom_file(name)
    [ds] = retrieve(client, stored(client, original), (target, 1.0))
    assert ds.file_meta.TransferSyntaxUID == target
    assert ds.SOPInstanceUID == original.SOPInstanceUID
    assert np.array_equal(ds.pixel_array, original.pixel_array)
    if original.SamplesPerPixel == 3:
        assert ds.PhotometricInterpretation == "RGB"
    if lossy:
        assert ds.LossyImageCompression == "01"
        assert "LossyImageCompressionRatio" in ds or "LossyImageCompressionMethod" not in ds
    else:
        assert ds.get("LossyImageCompression", "00") == "00"


@pytest.mark.parametrize("target", [RLELossless, JPEGLSLossless, JPEG2000Lossless])
def test_native_ct_to_lossless_syntax_exact(client: TestClient, target: str) -> None:
    """A native CT series asked for in a lossless compressed syntax comes back in it, part by
    part labelled, and pydicom decodes every instance to exactly the original pixels."""
    series = ct_datasets(3, seed=7)
    found = retrieve(client, stored(client, *series), (target, 1.0))
    assert [ds.SOPInstanceUID for ds in found] == [ds.SOPInstanceUID for ds in series]
    for ds, original in zip(found, series, strict=True):
        assert ds.file_meta.TransferSyntaxUID == target
        assert np.array_equal(ds.pixel_array, original.pixel_array)
        assert ds.get("LossyImageCompression", "00") == "00"


@pytest.mark.parametrize("target", [JPEGLosslessSV1, JPEGLossless])
def test_native_ct_to_jpeg_lossless_exact(client: TestClient, target: str) -> None:
    """A native 16-bit CT series asked for as JPEG Lossless, Process 14 Selection Value 1 or
    Process 14 (PS3.5 A.4.1, PS3.18 §8.7.3.5), comes back in it, encoded by GDCM, and pydicom
    decodes every instance to exactly the original pixels, not marked lossy."""
    series = ct_datasets(3, seed=11)
    found = retrieve(client, stored(client, *series), (target, 1.0))
    assert [ds.SOPInstanceUID for ds in found] == [ds.SOPInstanceUID for ds in series]
    for ds, original in zip(found, series, strict=True):
        assert ds.file_meta.TransferSyntaxUID == target
        assert ds.PhotometricInterpretation == "MONOCHROME2"
        assert np.array_equal(ds.pixel_array, original.pixel_array)
        assert ds.get("LossyImageCompression", "00") == "00"


def test_rgb_multiframe_to_jpeg_lossless_sv1_exact(client: TestClient) -> None:
    """8-bit RGB in two RLE frames asked for as JPEG Lossless SV1 (PS3.5 A.4.1, PS3.18
    §8.7.3.5): one fragment per frame, still RGB (no colour transform), and pydicom decodes it
    to exactly the original pixels."""
    original = pydicom_file("SC_rgb_rle_2frame.dcm")
    [ds] = retrieve(client, stored(client, original), (JPEGLosslessSV1, 1.0))
    assert ds.file_meta.TransferSyntaxUID == JPEGLosslessSV1
    assert ds.SOPInstanceUID == original.SOPInstanceUID
    assert (ds.PhotometricInterpretation, ds.PlanarConfiguration) == ("RGB", 0)
    assert np.array_equal(ds.pixel_array, original.pixel_array)
    assert ds.get("LossyImageCompression", "00") == "00"


def test_lossless_to_jpeg_baseline_marks_lossy(client: TestClient) -> None:
    """8-bit RGB asked for as JPEG Baseline is encoded (by Pillow) as YBR_FULL and marked
    lossy with its ratio and method (PS3.3 C.7.6.1.1.5, PS3.5 §8.2.1)."""
    original = pydicom_file("SC_rgb_rle_2frame.dcm")
    [ds] = retrieve(client, stored(client, original), (JPEGBaseline8Bit, 1.0))
    assert ds.file_meta.TransferSyntaxUID == JPEGBaseline8Bit
    assert ds.PhotometricInterpretation == "YBR_FULL"
    assert (ds.LossyImageCompression, ds.LossyImageCompressionMethod) == ("01", "ISO_10918_1")
    assert float(ds.LossyImageCompressionRatio) > 1
    error = np.abs(ds.pixel_array.astype(int) - original.pixel_array.astype(int))
    assert error.max() <= JPEG_TOLERANCE[0] and error.mean() <= JPEG_TOLERANCE[1]


def test_q_values_choose_highest_producible(client: TestClient) -> None:
    """The highest-q syntax that can be produced wins (RFC 9110 §12.4.2, PS3.18 §8.7.3.5);
    at equal q the stored syntax is preferred, and sent byte for byte."""
    original = ct_datasets(1, seed=3)[0]
    url = stored(client, original)
    [ds] = retrieve(client, url, (JPEGLSLossless, 0.9), (ExplicitVRLittleEndian, 0.5))
    assert ds.file_meta.TransferSyntaxUID == JPEGLSLossless
    [ds] = retrieve(client, url, (MPEG2MPML, 1.0), (RLELossless, 0.8), ("*", 0.1))
    assert ds.file_meta.TransferSyntaxUID == RLELossless
    [ds] = retrieve(client, url, (ExplicitVRLittleEndian, 0.5), (JPEG2000Lossless, 0.6))
    assert ds.file_meta.TransferSyntaxUID == JPEG2000Lossless
    response = client.get(url, headers=accept((RLELossless, 1.0), (ExplicitVRLittleEndian, 1.0)))
    assert [data for _, data in parts(response)] == [to_bytes(original)]


@pytest.mark.parametrize(
    ("name", "syntax", "reason"),
    [
        (None, MPEG2MPML, "does not produce"),  # a video syntax: no encoder
        (None, JPEGBaseline8Bit, "8-bit"),  # 16-bit CT cannot be JPEG Baseline
        ("MR_small_bigendian.dcm", ExplicitVRLittleEndian, "retired"),
        ("SC_rgb_rle_32bit.dcm", JPEGLSLossless, "cannot be transcoded"),  # 32-bit: no JPEG-LS
        ("SC_rgb_rle_32bit.dcm", JPEGLosslessSV1, "2 to 16 bits"),  # Process 14: <= 16 bits
        ("liver_1frame.dcm", JPEGLossless, "2 to 16 bits"),  # 1-bit
    ],
)
def test_unproducible_syntax_406_with_reason(
    client: TestClient, name: str | None, syntax: str, reason: str
) -> None:
    """A syntax that cannot be produced is a 406 (never a 500) naming what was asked for,
    what is stored and why (PS3.18 §8.7.3.5)."""
    original = pydicom_file(name) if name else ct_datasets(1, seed=5)[0]
    response = client.get(stored(client, original), headers=accept((syntax, 1.0)))
    assert response.status_code == 406, response.text
    detail = response.json()["detail"]
    assert syntax in detail and str(original.file_meta.TransferSyntaxUID) in detail
    assert reason in detail


def test_refusal_private_source_syntax() -> None:
    """An object in a private or unknown transfer syntax is served only as stored: its
    encoding cannot be read, so it is never transcoded (PS3.5 §10)."""
    assert refusal("1.2.3.4.5", "1.2.3.4.5") is None
    reason = refusal("1.2.3.4.5", ExplicitVRLittleEndian)
    assert reason is not None and "only as stored" in reason
    assert refusal(ExplicitVRLittleEndian, DeflatedExplicitVRLittleEndian) is None


def test_native_frames_from_jpeg_multiframe(client: TestClient) -> None:
    """Frames of a JPEG-stored multi-frame object asked for as application/octet-stream
    (Explicit VR Little Endian, PS3.18 §8.7.3.3.2) are decoded: native RGB frames equal to
    pydicom's decoding. A compressed media type other than the stored one stays a 406."""
    original = pydicom_file("examples_ybr_color.dcm")
    url = stored(client, original)
    octet = 'multipart/related; type="application/octet-stream"'
    response = client.get(f"{url}/frames/30,1", headers={"Accept": octet})
    assert response.status_code == 200, response.text
    found = parts(response)
    assert [data for _, data in found] == [
        original.pixel_array[29].tobytes(),
        original.pixel_array[0].tobytes(),
    ]
    assert found[0][0]["content-type"] == (
        f"application/octet-stream; transfer-syntax={ExplicitVRLittleEndian}"
    )
    response = client.get(
        f"{url}/frames/1", headers={"Accept": 'multipart/related; type="image/jls"'}
    )
    assert response.status_code == 406
    assert "transcoding" in response.json()["detail"]
