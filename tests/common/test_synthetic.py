"""The synthetic CT generator: IOD validity, geometry, Hounsfield units, determinism."""

from __future__ import annotations

import shutil
import subprocess
from io import BytesIO
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pacs_common.synthetic import (
    AIR_HU,
    BONE_HU,
    SPHERE_HU,
    WATER_HU,
    Phantom,
    ct_series,
    iter_ct_series,
    study,
    to_bytes,
)
from pydicom.pixels import apply_rescale
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian


def hu(ds: pydicom.Dataset) -> np.ndarray:
    return np.asarray(apply_rescale(ds.pixel_array, ds))


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools is not installed")
@pytest.mark.parametrize("signed", [False, True])
def test_dciodvfy_reports_no_errors_or_warnings(tmp_path: Path, signed: bool) -> None:
    path = tmp_path / "ct.dcm"
    path.write_bytes(to_bytes(ct_series(3, 64, 64, signed=signed)[1]))
    result = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Error" not in output and "Warning" not in output, output


def test_part10_encoding_explicit_vr_little_endian() -> None:
    ds = ct_series(1, 16, 16)[0]
    data = to_bytes(ds)
    assert data[128:132] == b"DICM"
    read = pydicom.dcmread(BytesIO(data))
    assert read.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert read.file_meta.MediaStorageSOPClassUID == CTImageStorage
    assert read.file_meta.MediaStorageSOPInstanceUID == read.SOPInstanceUID
    assert read.SOPClassUID == CTImageStorage


def test_geometry_steps_along_z() -> None:
    series = ct_series(5, 40, 50, spacing=(0.5, 0.8), slice_thickness=2.0)
    assert [int(ds.InstanceNumber) for ds in series] == [1, 2, 3, 4, 5]
    positions = np.array([[float(v) for v in ds.ImagePositionPatient] for ds in series])
    assert np.allclose(positions[:, 2], [-4.0, -2.0, 0.0, 2.0, 4.0])
    assert np.allclose(positions[:, 0], -(50 - 1) / 2 * 0.8)
    assert np.allclose(positions[:, 1], -(40 - 1) / 2 * 0.5)
    for ds in series:
        assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
        assert [float(v) for v in ds.PixelSpacing] == [0.5, 0.8]
        assert float(ds.SliceLocation) == float(ds.ImagePositionPatient[2])
        assert (ds.Rows, ds.Columns) == (40, 50)
    assert len({ds.FrameOfReferenceUID for ds in series}) == 1
    assert len({ds.SOPInstanceUID for ds in series}) == 5


def test_hounsfield_units_match_the_phantom_without_noise() -> None:
    rows = columns = 128
    spacing = 2.0
    phantom = Phantom.fitting(columns * spacing, rows * spacing)
    series = ct_series(9, rows, columns, spacing=(spacing, spacing), noise_hu=0)
    middle = series[4]
    assert float(middle.ImagePositionPatient[2]) == 0.0
    image = hu(middle)
    x0, y0 = (float(v) for v in middle.ImagePositionPatient[:2])
    x = x0 + np.arange(columns) * spacing
    y = y0 + np.arange(rows) * spacing
    expected = phantom.hu(x[None, :], y[:, None], 0.0)
    assert np.array_equal(image, expected)
    assert image[0, 0] == AIR_HU
    assert set(np.unique(image)) == {AIR_HU, WATER_HU, BONE_HU, SPHERE_HU}


def test_unsigned_and_signed_encode_the_same_hounsfield_units() -> None:
    unsigned = ct_series(2, 32, 32, noise_hu=0)[1]
    signed = ct_series(2, 32, 32, noise_hu=0, signed=True)[1]
    assert (unsigned.PixelRepresentation, unsigned.BitsStored) == (0, 12)
    assert (signed.PixelRepresentation, signed.BitsStored) == (1, 16)
    assert np.array_equal(hu(unsigned), hu(signed))


def test_same_seed_same_bytes_other_seed_other_uids() -> None:
    first = [to_bytes(ds) for ds in ct_series(3, 32, 32, seed=7)]
    again = [to_bytes(ds) for ds in iter_ct_series(3, 32, 32, seed=7)]
    other = ct_series(3, 32, 32, seed=8)
    assert first == again
    assert pydicom.dcmread(BytesIO(first[0])).StudyInstanceUID != other[0].StudyInstanceUID


def test_study_has_two_series_sharing_study_and_frame_of_reference() -> None:
    instances = study(8, 32, 32)
    by_series: dict[str, list[pydicom.Dataset]] = {}
    for ds in instances:
        by_series.setdefault(ds.SeriesInstanceUID, []).append(ds)
    thin, thick = by_series.values()
    assert (len(thin), len(thick)) == (8, 2)
    assert float(thick[0].SliceThickness) == 5.0
    assert len({ds.StudyInstanceUID for ds in instances}) == 1
    assert len({ds.FrameOfReferenceUID for ds in instances}) == 1
    assert {int(ds.SeriesNumber) for ds in instances} == {1, 2}


def test_ct_series_instances_independent() -> None:
    """Setting a value on one generated instance leaves the others as they were (no shared
    DataElements between the instances of a series)."""
    first, second = iter_ct_series(2, 8, 8)
    first.RescaleSlope = 2
    first.PatientName = "Other^Name"
    assert second.RescaleSlope == 1 and second.PatientName != first.PatientName
