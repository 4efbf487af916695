"""The pure pixel pipeline (no HTTP): PS3.3 C.11 windowing, photometric interpretations,
viewport and encoding, and every pydicom test file against pydicom's own pixels."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pydicom
import pytest
from pacs_api.imaging.encode import Region, Viewport, crop, encode, fit
from pacs_api.imaging.render import NoSuchFrame, Unrenderable, render_frame, to_display
from pacs_api.imaging.windowing import Window, apply_window
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut, convert_color_space

from tests.support.dicom import ct_datasets

#: The test files shipped in pydicom's wheel (``get_testdata_files`` also searches optional
#: external data sources, which is slow and not needed here).
TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def pixel_test_files() -> list[str]:
    """Every pydicom test file (sub-folders included) that pydicom reads and that holds
    Pixel Data."""
    found = []
    for path in sorted(str(p) for p in TEST_FILES.rglob("*") if p.is_file()):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path, stop_before_pixels=False)
        except (pydicom.errors.InvalidDicomError, ValueError, OSError):
            continue
        if "PixelData" in ds:
            found.append(path)
    return found


def _scale(values: npt.NDArray[np.float64], low: float, high: float) -> npt.NDArray[np.float64]:
    if not high > low:
        return np.zeros_like(values)
    return np.clip((values - low) * (255 / (high - low)), 0, 255)


def expected_display(ds: Dataset) -> npt.NDArray[np.uint8] | None:
    """Frame 1 as pydicom decodes it, through ``apply_modality_lut`` and ``apply_voi_lut`` (or
    a min-max window), scaled to 8 bits, MONOCHROME1 inverted; colour as decoded (palette
    through its LUTs) scaled by bit depth. ``None`` when pydicom cannot decode the frame here."""
    try:
        pixels = ds.pixel_array
    except Exception:  # noqa: BLE001 - any decoding failure means "pydicom cannot decode it"
        return None
    if int(ds.get("NumberOfFrames") or 1) > 1:
        pixels = pixels[0]
    photometric = ds.PhotometricInterpretation
    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(pixels, ds)
        return np.rint(_scale(rgb.astype(np.float64), 0, np.iinfo(rgb.dtype).max)).astype(np.uint8)
    if pixels.ndim == 3:
        top = 2 ** int(ds.BitsStored) - 1
        return np.rint(_scale(pixels.astype(np.float64), 0, top)).astype(np.uint8)
    values = apply_modality_lut(pixels, ds).astype(np.float64)
    if "VOILUTSequence" in ds:
        top = 2 ** int(ds.VOILUTSequence[0].LUTDescriptor[2]) - 1
        shown = _scale(apply_voi_lut(values, ds).astype(np.float64), 0, top)
    elif "WindowCenter" in ds:
        # The output range of the window (PS3.3 C.11.2.1.2): where -inf and +inf land.
        low, high = apply_voi_lut(np.array([-np.inf, np.inf]), ds)
        shown = _scale(apply_voi_lut(values, ds), float(low), float(high))
    else:
        shown = _scale(values, float(values.min()), float(values.max()))
    if photometric == "MONOCHROME1":
        shown = 255 - shown
    return np.rint(shown).astype(np.uint8)


def test_linear_window_ps3_3_c_11_2_1_2_1_values() -> None:
    """LINEAR (PS3.3 C.11.2.1.2.1): below c - 0.5 - (w-1)/2 black, above c - 0.5 + (w-1)/2
    white, between ((x - (c - 0.5)) / (w - 1) + 0.5) of the range."""
    window = Window(40, 400)
    x = np.array([-1000.0, -160.0, 40.0, 239.0, 240.0, 1000.0])
    y = apply_window(x, window)
    assert y[0] == 0 and y[1] == 0 and y[-1] == 255 and y[-2] == 255
    assert y[2] == pytest.approx(((40 - 39.5) / 399 + 0.5) * 255)
    assert y[3] == pytest.approx(((239 - 39.5) / 399 + 0.5) * 255)


def test_linear_exact_window_ps3_3_c_11_2_1_3_2_values() -> None:
    """LINEAR_EXACT (PS3.3 C.11.2.1.3.2): ((x - c) / w + 0.5), clipped at c -/+ w/2."""
    y = apply_window(np.array([-200.0, 0.0, 50.0, 200.0]), Window(0, 200, "linear-exact"))
    assert list(y) == [0.0, 127.5, pytest.approx(0.75 * 255), 255.0]


def test_sigmoid_window_ps3_3_c_11_2_1_3_1_values_without_overflow() -> None:
    """SIGMOID (PS3.3 C.11.2.1.3.1): 1 / (1 + exp(-4 (x - c) / w)); extreme values saturate
    without a floating-point overflow (filterwarnings=error would raise it)."""
    x = np.array([-1e308, -100.0, 40.0, 200.0, 1e308])
    y = apply_window(x, Window(40, 400, "sigmoid"))
    assert y[0] == 0.0 and y[-1] == 255.0 and y[2] == 127.5
    assert y[1] == pytest.approx(255 / (1 + np.exp(-4 * (-140) / 400)))
    assert y[3] == pytest.approx(255 / (1 + np.exp(-4 * 160 / 400)))


@pytest.mark.parametrize(
    ("center", "width", "function"),
    [(0, 0.5, "linear"), (0, 0, "sigmoid"), (0, -1, "linear-exact"), (float("nan"), 10, "linear")],
)
def test_window_out_of_domain_rejected(center: float, width: float, function: str) -> None:
    """A linear width under 1 (C.11.2.1.2.1), a non-positive width (C.11.2.1.3) or a
    non-finite value is not a window."""
    with pytest.raises(ValueError):
        Window(center, width, function)  # type: ignore[arg-type]


def test_monochrome1_rendered_inverted() -> None:
    """MONOCHROME1 (PS3.3 C.7.6.3.1.2): the minimum is white, so the display is inverted."""
    ds = ct_datasets(1, seed=3)[0]
    normal = render_frame(ds, 1, Window(40, 400))
    ds.PhotometricInterpretation = "MONOCHROME1"
    assert np.array_equal(render_frame(ds, 1, Window(40, 400)), 255 - normal)


def test_requested_window_overrides_object_window() -> None:
    """The ``window`` parameter replaces the object's Window Center/Width (PS3.18 §8.3.5.1.4)."""
    ds = ct_datasets(1, seed=4)[0]
    ds.WindowCenter, ds.WindowWidth = 40, 400
    own = render_frame(ds, 1)
    assert np.array_equal(own, render_frame(ds, 1, Window(40, 400)))
    assert not np.array_equal(own, render_frame(ds, 1, Window(1000, 100)))


def test_no_window_min_max_spans_full_range() -> None:
    """Without any VOI the frame's own minimum and maximum become black and white."""
    ds = ct_datasets(1, seed=5)[0]
    for name in ("WindowCenter", "WindowWidth"):
        if name in ds:
            delattr(ds, name)
    image = render_frame(ds, 1)
    assert image.dtype == np.uint8 and image.min() == 0 and image.max() == 255


def test_ybr_full_array_converted_to_rgb() -> None:
    """A YBR_FULL frame reaching the display step is converted to RGB (PS3.3 C.7.6.3.1.2)."""
    ds = Dataset()
    ds.BitsStored = 8
    ybr = np.random.default_rng(1).integers(0, 256, (4, 5, 3), dtype=np.uint8)
    shown = to_display(ds, ybr, "YBR_FULL", None)
    assert np.array_equal(shown, convert_color_space(ybr, "YBR_FULL", "RGB"))


def test_no_pixel_data_unrenderable() -> None:
    ds = ct_datasets(1)[0]
    del ds.PixelData
    with pytest.raises(Unrenderable, match="no Pixel Data"):
        render_frame(ds, 1)


def test_frame_beyond_count_no_such_frame() -> None:
    with pytest.raises(NoSuchFrame):
        render_frame(ct_datasets(1)[0], 2)


def test_viewport_fits_preserving_aspect_ratio() -> None:
    """PS3.18 §8.3.5.1.3: scaled to fit the viewport, the aspect ratio kept."""
    image = np.zeros((50, 100), dtype=np.uint8)
    assert fit(image, Viewport(64, 64)).shape == (32, 64)
    assert fit(image, Viewport(400, 20)).shape == (20, 40)
    assert fit(image, Viewport(128, 128, enlarge=False)).shape == (50, 100)


def test_viewport_region_crops_and_negative_size_flips() -> None:
    image = np.arange(20, dtype=np.uint8).reshape(4, 5)
    assert np.array_equal(crop(image, Region(1, 1, 2, 2)), image[1:3, 1:3])
    assert np.array_equal(crop(image, Region(3, 0, -2, 4)), image[:, 1:3][:, ::-1])
    with pytest.raises(ValueError):
        crop(image, Region(10, 10, 2, 2))


@pytest.mark.parametrize(("media_type", "fmt"), [("image/jpeg", "JPEG"), ("image/png", "PNG")])
def test_encode_media_types(media_type: str, fmt: str) -> None:
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    assert Image.open(io.BytesIO(encode(image, media_type, 90))).format == fmt


def test_every_pydicom_test_file_renders_as_pydicom_decodes() -> None:
    """Each pydicom test file with Pixel Data renders exactly as pydicom's own
    ``apply_voi_lut(apply_modality_lut(pixel_array))`` scaled to 8 bits; each one pydicom
    cannot decode here is refused as :class:`Unrenderable` with the reason."""
    undecodable = []
    files = pixel_test_files()
    assert len(files) > 50  # pydicom's wheel ships them
    for path in files:
        ds = pydicom.dcmread(path)
        expected = expected_display(ds)
        if expected is None:
            with pytest.raises(Unrenderable):
                render_frame(ds, 1)
            undecodable.append(Path(path).name)
            continue
        assert np.array_equal(render_frame(ds, 1), expected), path
    assert len(undecodable) < len(files) // 4, undecodable
