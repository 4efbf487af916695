"""Reading a CT series into a volume: sorting, rescale, resampling, and named refusals."""

from __future__ import annotations

import numpy as np
import pytest
from pacs_exporter.errors import InputError
from pacs_exporter.volume import volume_from_datasets
from pydicom.valuerep import format_number_as_ds

from tests.exporter import phantoms

GEOMETRY = phantoms.Geometry(shape=(6, 8, 10), spacing=(2.0, 0.5, 0.75), centre=(1.0, 2.0, 3.0))


def ramp_in_z(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    return np.broadcast_to(10.0 * z, np.broadcast(x, y, z).shape).copy()


def test_shuffled_slices_sorted_by_position_not_instance_number() -> None:
    datasets = phantoms.series(ramp_in_z, GEOMETRY)
    shuffled = [datasets[n] for n in (3, 0, 5, 1, 4, 2)]
    for n, ds in enumerate(shuffled):
        ds.InstanceNumber = n + 1  # misleading on purpose
    volume = volume_from_datasets(shuffled)
    assert volume.hu.dtype == np.int16 and volume.hu.shape == (6, 8, 10)
    z = volume.affine[2, 3] + 2.0 * np.arange(6)
    np.testing.assert_allclose(volume.hu[:, 0, 0], np.rint(10 * z), atol=0.5)
    assert volume.spacing == pytest.approx((2.0, 0.5, 0.75))
    origin = volume.affine @ [0, 0, 0, 1]
    assert origin[:3] == pytest.approx([1.0 - 4.5 * 0.75, 2.0 - 3.5 * 0.5, 3.0 - 5.0])


def test_per_slice_rescale_gives_hu() -> None:
    datasets = phantoms.series(ramp_in_z, GEOMETRY)
    for ds in datasets[::2]:  # same HU, stored with another slope and intercept
        stored = np.frombuffer(ds.PixelData, "<i2").astype(np.float64) - 1024.0
        ds.PixelData = np.rint((stored + 500.0) / 0.5).astype("<i2").tobytes()
        ds.RescaleSlope, ds.RescaleIntercept = "0.5", "-500"
    volume = volume_from_datasets(datasets)
    assert volume.hu.dtype == np.float32
    z = volume.affine[2, 3] + 2.0 * np.arange(6)
    np.testing.assert_allclose(volume.hu[:, 3, 3], np.rint(10 * z), atol=0.5)


def test_uneven_spacing_resampled_to_median() -> None:
    geometry = phantoms.Geometry(shape=(7, 8, 10), spacing=(2.0, 0.5, 0.75))
    datasets = phantoms.series(ramp_in_z, geometry)
    moved = datasets[3]  # 0.4 mm off: gaps of 2.4 and 1.6 mm
    position = [float(v) for v in moved.ImagePositionPatient]
    position[2] += 0.4
    moved.ImagePositionPatient = [format_number_as_ds(v) for v in position]
    moved.PixelData = (np.frombuffer(moved.PixelData, "<i2") + 4).astype("<i2").tobytes()
    volume = volume_from_datasets(datasets)
    assert volume.hu.shape[0] == 7 and volume.spacing[0] == pytest.approx(2.0)
    z = volume.affine[2, 3] + 2.0 * np.arange(7)
    np.testing.assert_allclose(volume.hu[:, 0, 0], 10 * z, atol=0.5)  # linear field: exact


def _position(ds, dz: float) -> None:  # type: ignore[no-untyped-def]
    position = [float(v) for v in ds.ImagePositionPatient]
    position[2] += dz
    ds.ImagePositionPatient = [format_number_as_ds(v) for v in position]


def test_uneven_spacing_beyond_tolerance_input_error() -> None:
    datasets = phantoms.series(ramp_in_z, GEOMETRY)
    del datasets[2]  # a missing slice: a gap of twice the spacing
    with pytest.raises(InputError, match="uneven slice spacing"):
        volume_from_datasets(datasets)


def test_fewer_than_three_slices_input_error() -> None:
    with pytest.raises(InputError, match="at least 3 slices"):
        volume_from_datasets(phantoms.series(ramp_in_z, GEOMETRY)[:2])


def test_mr_modality_input_error() -> None:
    with pytest.raises(InputError, match="not CT"):
        volume_from_datasets(phantoms.series(ramp_in_z, GEOMETRY, modality="MR"))


def test_no_pixel_data_input_error() -> None:
    datasets = phantoms.series(ramp_in_z, GEOMETRY)
    del datasets[1].PixelData
    with pytest.raises(InputError, match="no pixel data"):
        volume_from_datasets(datasets)


def test_mixed_orientation_input_error() -> None:
    datasets = phantoms.series(ramp_in_z, GEOMETRY)
    datasets[2].ImageOrientationPatient = ["0", "1", "0", "1", "0", "0"]
    with pytest.raises(InputError, match="inconsistent ImageOrientationPatient"):
        volume_from_datasets(datasets)


def test_inconsistent_pixel_spacing_input_error() -> None:
    datasets = phantoms.series(ramp_in_z, GEOMETRY)
    datasets[4].PixelSpacing = ["0.6", "0.75"]
    with pytest.raises(InputError, match="inconsistent PixelSpacing"):
        volume_from_datasets(datasets)


def test_other_frame_of_reference_input_error() -> None:
    datasets = phantoms.series(ramp_in_z, GEOMETRY)
    datasets[0].FrameOfReferenceUID = "2.25.1"
    with pytest.raises(InputError, match="inconsistent FrameOfReferenceUID"):
        volume_from_datasets(datasets)


def test_duplicate_positions_input_error() -> None:
    datasets = phantoms.series(ramp_in_z, GEOMETRY)
    datasets[3].ImagePositionPatient = datasets[2].ImagePositionPatient
    with pytest.raises(InputError, match="duplicates"):
        volume_from_datasets(datasets)
