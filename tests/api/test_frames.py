"""WADO-RS Retrieve Frames (PS3.18 §10.4.1.1.3), native and encapsulated, on both deployments.

Every frame served is compared with what pydicom itself extracts: slices of ``ds.PixelData``
for native data (PS3.5 §8.2), ``pydicom.encaps.get_frame`` for encapsulated data (PS3.5 §A.4).
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import numpy as np
import pydicom
import pytest
from fastapi.testclient import TestClient
from pacs_common.media import iter_multipart_related, parse_content_type
from pacs_common.synthetic import synthetic_uid, to_bytes
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import get_frame
from pydicom.uid import ExplicitVRLittleEndian

from tests.support.dicom import stow

OCTET_ANY = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
OCTET = 'multipart/related; type="application/octet-stream"'
MULTIFRAME_WORD_SC = "1.2.840.10008.5.1.4.1.1.7.3"
MULTIFRAME_BIT_SC = "1.2.840.10008.5.1.4.1.1.7.1"


def multiframe(frames: int, rows: int, columns: int, bits: int, sop_class: str) -> Dataset:
    """A small multi-frame Secondary Capture object, Explicit VR Little Endian."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = synthetic_uid("mf", bits)
    ds.StudyInstanceUID = synthetic_uid("mf-study", bits)
    ds.SeriesInstanceUID = synthetic_uid("mf-series", bits)
    ds.PatientName, ds.PatientID, ds.Modality = "Frames^Test", "FRAMES", "OT"
    ds.NumberOfFrames = frames
    ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, columns, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
    rng = np.random.default_rng(bits)
    if bits == 1:
        pixels = rng.integers(0, 2, frames * rows * columns, dtype=np.uint8)
        ds.PixelData = np.packbits(pixels, bitorder="little").tobytes()
    else:
        ds.PixelData = rng.integers(0, 4096, frames * rows * columns, dtype="<u2").tobytes()
    ds["PixelData"].VR = "OB" if bits == 1 else "OW"
    return ds


def pydicom_file(name: str) -> Dataset:
    path = get_testdata_file(name)
    assert isinstance(path, str | Path)
    return pydicom.dcmread(path)


def stored(client: TestClient, ds: Dataset) -> str:
    response = stow(client, [to_bytes(ds)])
    assert response.status_code == 200, response.text
    return (
        f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )


def frames(response: object) -> tuple[str, list[tuple[dict[str, str], bytes]]]:
    """The part type of a multipart/related answer and its parts."""
    assert hasattr(response, "headers") and hasattr(response, "content")
    media, params = parse_content_type(response.headers["content-type"])
    assert media == "multipart/related"
    parts = iter_multipart_related([response.content], params["boundary"])
    return params["type"], [(p.headers, p.content) for p in parts]


def test_native_multiframe_frames_byte_ranges(client: TestClient) -> None:
    """Native frames are the frame-size slices of Pixel Data, in the order asked, each part
    octet-stream in Explicit VR Little Endian with its Content-Location (PS3.18 §10.4.1.1.3,
    §8.7.3.3.2; PS3.5 §8.2)."""
    ds = multiframe(3, 4, 5, 16, MULTIFRAME_WORD_SC)
    url = stored(client, ds)
    response = client.get(f"{url}/frames/3,1", headers={"Accept": OCTET})
    assert response.status_code == 200, response.text
    part_type, parts = frames(response)
    assert part_type == "application/octet-stream"
    size = 4 * 5 * 2
    assert [data for _, data in parts] == [ds.PixelData[2 * size :], ds.PixelData[:size]]
    headers = parts[0][0]
    assert headers["content-type"] == (
        "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1"
    )
    assert headers["content-location"] == f"http://testserver{url}/frames/3"


def test_native_single_bit_frames_unpacked_from_bit_offsets(client: TestClient) -> None:
    """One-bit frames are packed without padding (PS3.5 §8.1.1): a 3x5 frame is 15 bits, so
    frame 2 starts inside a byte and is served shifted to a byte boundary, low bits first."""
    ds = multiframe(3, 3, 5, 1, MULTIFRAME_BIT_SC)
    url = stored(client, ds)
    response = client.get(f"{url}/frames/1,2,3", headers={"Accept": OCTET})
    assert response.status_code == 200, response.text
    bits = np.unpackbits(np.frombuffer(ds.PixelData, np.uint8), bitorder="little")
    for number, (_, data) in enumerate(frames(response)[1], start=1):
        expected = np.packbits(bits[(number - 1) * 15 : number * 15], bitorder="little")
        assert data == expected.tobytes()


def test_native_implicit_vr_multiframe_rtdose(client: TestClient) -> None:
    """An Implicit VR Little Endian RT Dose of 15 frames: any frame, labelled Explicit VR Little
    Endian (same native bytes, PS3.18 §8.7.3.3.2)."""
    ds = pydicom_file("rtdose.dcm")
    url = stored(client, ds)
    size = ds.Rows * ds.Columns * ds.BitsAllocated // 8
    response = client.get(f"{url}/frames/15,7", headers={"Accept": OCTET_ANY})
    assert response.status_code == 200, response.text
    assert [d for _, d in frames(response)[1]] == [
        ds.PixelData[14 * size : 15 * size],
        ds.PixelData[6 * size : 7 * size],
    ]


@pytest.mark.parametrize(
    ("name", "media_type"),
    [
        ("SC_rgb_rle_2frame.dcm", "image/dicom-rle"),
        ("rtdose_rle.dcm", "image/dicom-rle"),
        ("examples_ybr_color.dcm", "image/jpeg"),
        ("SC_rgb_jpeg_dcmtk.dcm", "image/jpeg"),
        ("JPEG2000.dcm", "image/jp2"),
        ("MR_small_jpeg_ls_lossless.dcm", "image/jls"),
    ],
)
def test_encapsulated_frames_as_stored(client: TestClient, name: str, media_type: str) -> None:
    """Encapsulated frames come back as stored, equal to pydicom's own extraction, as
    octet-stream with ``transfer-syntax=*`` and in their compressed media type when asked for
    it (PS3.18 §8.7.3.3.2, PS3.5 §A.4)."""
    ds = pydicom_file(name)
    url = stored(client, ds)
    count = int(ds.get("NumberOfFrames", 1) or 1)
    syntax = ds.file_meta.TransferSyntaxUID
    expected = [get_frame(ds.PixelData, i, number_of_frames=count) for i in range(count)]
    listed = ",".join(str(n) for n in range(1, count + 1))

    response = client.get(f"{url}/frames/{listed}", headers={"Accept": OCTET_ANY})
    assert response.status_code == 200, response.text
    part_type, parts = frames(response)
    assert part_type == "application/octet-stream"
    assert [data for _, data in parts] == expected
    assert parts[0][0]["content-type"] == f"application/octet-stream; transfer-syntax={syntax}"

    typed = client.get(
        f"{url}/frames/{count}", headers={"Accept": f'multipart/related; type="{media_type}"'}
    )
    assert typed.status_code == 200, typed.text
    part_type, parts = frames(typed)
    assert part_type == media_type
    assert parts == [
        (
            {
                "content-type": f"{media_type}; transfer-syntax={syntax}",
                "content-length": str(len(expected[-1])),
                "content-location": f"http://testserver{url}/frames/{count}",
            },
            expected[-1],
        )
    ]


def test_encapsulated_frames_other_compressed_type_406(client: TestClient) -> None:
    """JPEG-stored frames asked for as JPEG-LS would need re-encoding, so 406 with the reason
    (octet-stream without ``transfer-syntax=*`` decodes them: tests/api/test_transcoding.py)."""
    url = stored(client, pydicom_file("SC_rgb_jpeg_dcmtk.dcm"))
    response = client.get(
        f"{url}/frames/1", headers={"Accept": 'multipart/related; type="image/jls"'}
    )
    assert response.status_code == 406
    assert "transcoding" in response.json()["detail"]


def test_big_endian_frames_only_as_stored(client: TestClient) -> None:
    """Big-endian native frames are served only when the client takes them as stored."""
    ds = pydicom_file("MR_small_bigendian.dcm")
    url = stored(client, ds)
    assert client.get(f"{url}/frames/1", headers={"Accept": OCTET}).status_code == 406
    assert client.get(f"{url}/frames/1").status_code == 406
    response = client.get(f"{url}/frames/1", headers={"Accept": OCTET_ANY})
    assert response.status_code == 200
    [(headers, data)] = frames(response)[1]
    assert data == ds.PixelData
    assert headers["content-type"].endswith("transfer-syntax=1.2.840.10008.1.2.2")


def test_frames_default_accept_native_200(client: TestClient) -> None:
    """No Accept header takes the frames as stored."""
    ds = multiframe(3, 4, 5, 16, MULTIFRAME_WORD_SC)
    response = client.get(f"{stored(client, ds)}/frames/2")
    assert response.status_code == 200
    assert frames(response)[1][0][1] == ds.PixelData[40:80]


@pytest.mark.parametrize("listed", ["0", "1,,2", "a", "-1", "1;2", "１"])
def test_frames_malformed_list_400(client: TestClient, listed: str) -> None:
    """A frame list that is not comma-separated numbers from 1 is a 400 (§10.4.1.1.3)."""
    url = stored(client, multiframe(3, 4, 5, 16, MULTIFRAME_WORD_SC))
    response = client.get(f"{url}/frames/{listed}")
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


def test_frame_beyond_number_of_frames_404(client: TestClient) -> None:
    """A frame number past NumberOfFrames (1 when absent) is a 404."""
    url = stored(client, multiframe(3, 4, 5, 16, MULTIFRAME_WORD_SC))
    assert client.get(f"{url}/frames/1,4").status_code == 404
    single = stored(client, pydicom_file("SC_rgb_jpeg_dcmtk.dcm"))
    response = client.get(f"{single}/frames/2", headers={"Accept": OCTET_ANY})
    assert response.status_code == 404
    assert "beyond the 1 frame" in response.json()["detail"]


def test_frames_unknown_instance_404(client: TestClient) -> None:
    response = client.get("/dicom-web/studies/1.2.3/series/1.2.4/instances/1.2.5/frames/1")
    assert response.status_code == 404


def test_frames_deflated_instance_406(client: TestClient) -> None:
    """A deflated data set has no Pixel Data byte extent: frames need inflating (a later
    transcoding step), so 406 rather than reading the whole object."""
    ds = pydicom_file("image_dfl.dcm")
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    response = stow(client, [buffer.getvalue()])
    assert response.status_code == 200, response.text
    url = (
        f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )
    response = client.get(f"{url}/frames/1", headers={"Accept": OCTET_ANY})
    assert response.status_code == 406
    assert "deflated" in response.json()["detail"]
