"""End to end with the OHIF viewer (issue 3): OHIF's prebuilt release, served from loopback,
drives our DICOMweb API from Debian's headless Chromium, and what it draws is checked pixel by
pixel against the synthetic phantom.

OHIF reads the study list with QIDO-RS (PS3.18 §10.6), the series metadata with WADO-RS
(PS3.18 §10.4.1.1.2), and the pixels as uncompressed frames (PS3.18 §10.4.1.1.3, ``Accept:
multipart/related; type=application/octet-stream; transfer-syntax=*``), all cross-origin: the
viewer and the API listen on different ports, so CORS is exercised too.
"""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import httpx
import numpy as np
import numpy.typing as npt
from pacs_api.settings import Settings
from pacs_common.synthetic import iter_ct_series, to_bytes
from PIL import Image
from playwright.sync_api import Locator, Page, Request, Response
from pydicom import Dataset

from tests.support.dicom import referenced, stow
from tests.support.ohif import OHIF_VERSION, OhifSite, app_config, chromium, ohif_dist
from tests.support.server import running_api

SLICES = 40
SIZE = 512
PATIENT_NAME = "Ohif^Phantom"
STUDY_DESCRIPTION = "OHIF end-to-end phantom"
TIMEOUT_MS = 60_000
"""Generous: a shared 2-core machine, and WebGL in software (SwiftShader)."""

# Grey levels of the phantom under the series' VOI window (W 400 / L 40, PS3.3 C.11.2.1.2):
# air (-1000 HU) is black, water (0 HU) 102, bone (+1000 HU) and the +400 HU sphere white.
DARK_MAX = 50
WATER_RANGE = (70, 140)
BRIGHT_MIN = 200
MIN_AGREEMENT = 0.97
"""Share of the image's screen pixels whose class (dark, water, bright) is the phantom's: the
rest are the edges, which OHIF interpolates."""

GreyImage = npt.NDArray[np.uint8]


def test_ohif_lists_study_and_renders_ct_slice(tmp_path: Path) -> None:
    """OHIF lists the stored study and draws its CT slice as the phantom: air, water and the bone
    ring in the right places and proportions under the series' default window.

    One deployment (SQLite and the filesystem store): what the viewer sees of the API does not
    depend on it, and the API tests cover both.
    """
    series = list(
        iter_ct_series(
            SLICES,
            SIZE,
            SIZE,
            noise_hu=0,
            patient_name=PATIENT_NAME,
            study_description=STUDY_DESCRIPTION,
            seed=3,
        )
    )
    study_uid = series[0].StudyInstanceUID
    # Kept beside the dashboard's (tests/ui) for CI to keep as artefacts.
    artefacts = Path(__file__).resolve().parents[2] / "test-artifacts" / "ohif"
    artefacts.mkdir(parents=True, exist_ok=True)
    print(f"OHIF {OHIF_VERSION} screenshots: {artefacts}")

    with OhifSite(ohif_dist()) as site:
        settings = Settings(
            database_url=f"sqlite:///{tmp_path / 'index.sqlite3'}",
            store_url=f"file://{tmp_path / 'objects'}",
            cors_allow_origins=[site.origin],
        )
        with running_api(settings) as dicomweb_root:
            api_root = dicomweb_root.removesuffix("/dicom-web")
            with httpx.Client(base_url=api_root, timeout=60) as client:
                stored = stow(client, (to_bytes(ds) for ds in series))
            assert stored.status_code == 200, stored.text
            assert len(referenced(stored)) == SLICES
            site.config = app_config(api_root=api_root)

            requests: list[Request] = []
            failures: list[str] = []
            with chromium() as browser:
                # A returning user: OHIF's first-visit tour would cover part of the viewport.
                browser.add_init_script(
                    "localStorage.setItem('shownTours', JSON.stringify(['basicViewerTour']))"
                )
                browser.on("request", lambda r: requests.append(r))
                browser.on("requestfailed", lambda r: failures.append(f"{r.url}: {r.failure}"))
                browser.on("response", lambda r: _record_api_error(r, api_root, failures))
                page = browser.new_page()

                _check_study_list(page, site.origin, artefacts)
                shown, viewport = _open_viewer(page, site.origin, study_uid, artefacts)

    off_machine = sorted({r.url for r in requests if not _on_loopback(r.url)})
    assert not off_machine, f"OHIF made requests off this machine: {off_machine}"
    assert not failures, f"failed requests: {failures}"
    api_requests = [r for r in requests if r.url.startswith(api_root)]
    assert any("/frames/" in r.url for r in api_requests), "no WADO-RS frames were requested"

    instance = next(ds for ds in series if ds.InstanceNumber == shown)
    _check_pixels(viewport, _windowed(instance), artefacts)


def _check_study_list(page: Page, origin: str, artefacts: Path) -> None:
    """The study list (QIDO-RS) shows the study: patient name and study description."""
    page.goto(f"{origin}/", timeout=TIMEOUT_MS)
    row = page.get_by_text(STUDY_DESCRIPTION, exact=True)
    row.wait_for(timeout=TIMEOUT_MS)
    page.screenshot(path=artefacts / "study-list.png")
    # OHIF shows the Person Name (PS3.5 §6.2) as "Family, Given".
    assert page.get_by_text("Ohif, Phantom", exact=True).count() == 1
    assert row.count() == 1


def _open_viewer(page: Page, origin: str, study_uid: str, artefacts: Path) -> tuple[int, GreyImage]:
    """Open the study in the viewer; wait until the viewport shows a settled CT image. Returns
    the Instance Number OHIF shows and the viewport's screenshot in grey levels."""
    page.goto(f"{origin}/viewer?StudyInstanceUIDs={study_uid}", timeout=TIMEOUT_MS)
    canvas = page.locator(".cornerstone-viewport-element canvas.cornerstone-canvas")
    canvas.wait_for(timeout=TIMEOUT_MS)
    # The overlay names the slice shown ("I:40 (1/40)") and the VOI window applied.
    overlay = page.locator(".cornerstone-viewport-element").locator("..")
    image_number = re.compile(rf"^I:\s*(\d+)\s*\(\d+/{SLICES}\)$")
    image_label = overlay.get_by_text(image_number)
    image_label.wait_for(timeout=TIMEOUT_MS)
    label = image_label.inner_text()
    found = image_number.match(label)
    assert found, f"unexpected image label {label!r}"
    shown = int(found.group(1))
    viewport = _settled_screenshot(canvas, artefacts)
    page.screenshot(path=artefacts / "viewer.png")
    Image.fromarray(viewport).save(artefacts / "viewport.png")
    voi = re.search(r"W:\s*(-?\d+)\s*L:\s*(-?\d+)", overlay.inner_text())
    assert voi, "the viewport overlay shows no VOI window"
    assert voi.groups() == ("400", "40"), f"OHIF applied W/L {voi.groups()}, not the series' own"
    return shown, viewport


def _settled_screenshot(canvas: Locator, artefacts: Path) -> GreyImage:
    """The canvas once it shows water (the image is drawn) and two screenshots in a row agree
    (loading and progressive rendering are over)."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    previous: GreyImage | None = None
    while True:
        shot = np.asarray(Image.open(io.BytesIO(canvas.screenshot())).convert("L"))
        drawn = np.count_nonzero(_classes(shot) == 1) > shot.size // 20
        if drawn and previous is not None and np.array_equal(shot, previous):
            return shot
        if time.monotonic() > deadline:
            Image.fromarray(shot).save(artefacts / "viewport-timeout.png")
            canvas.page.screenshot(path=artefacts / "viewer-timeout.png")
            raise AssertionError(f"the viewport showed no settled CT image in time ({artefacts})")
        previous = shot if drawn else None
        canvas.page.wait_for_timeout(250)  # a polling interval, not a synchronisation


def _windowed(ds: Dataset) -> GreyImage:
    """The slice as a display shows it: modality LUT to HU, then the linear VOI window of
    PS3.3 C.11.2.1.2.1 with the series' WindowCenter/WindowWidth, to 8 bits."""
    hu = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    center, width = float(ds.WindowCenter), float(ds.WindowWidth)
    scaled = np.clip((hu - (center - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)
    return np.rint(scaled * 255).astype(np.uint8)


def _classes(grey: GreyImage) -> npt.NDArray[np.int8]:
    """0 dark (air), 1 water, 2 bright (bone, sphere), -1 anything else (edges, text)."""
    classes = np.full(grey.shape, -1, dtype=np.int8)
    classes[grey <= DARK_MAX] = 0
    classes[(grey >= WATER_RANGE[0]) & (grey <= WATER_RANGE[1])] = 1
    classes[grey >= BRIGHT_MIN] = 2
    return classes


def _check_pixels(viewport: GreyImage, expected: GreyImage, artefacts: Path) -> None:
    """The viewport shows *expected* fitted to it (aspect kept, centred), class by class."""
    height, width = viewport.shape
    rows, columns = expected.shape
    scale = min(width / columns, height / rows)
    # The image pixel under each screen pixel of the image's area (nearest neighbour).
    top, left = (height - rows * scale) / 2, (width - columns * scale) / 2
    ys = np.arange(int(np.ceil(top)), int(top + rows * scale))
    xs = np.arange(int(np.ceil(left)), int(left + columns * scale))
    iy = np.clip(((ys + 0.5 - top) / scale).astype(int), 0, rows - 1)
    ix = np.clip(((xs + 0.5 - left) / scale).astype(int), 0, columns - 1)
    want = _classes(expected)[np.ix_(iy, ix)]
    got = _classes(viewport)[np.ix_(ys, xs)]
    Image.fromarray(expected[np.ix_(iy, ix)]).save(artefacts / "expected.png")

    assert viewport.std() > 30, "the viewport is (nearly) uniform: no image drawn"
    agreement = np.count_nonzero(got == want) / want.size
    print(f"viewport {width}x{height}: {agreement:.2%} of the image's pixels agree")
    assert agreement >= MIN_AGREEMENT, (
        f"only {agreement:.1%} of the image's pixels show the phantom's class "
        f"(see {artefacts}/viewport.png and expected.png)"
    )
    for label, name in ((0, "air"), (1, "water"), (2, "bone and sphere")):
        got_share = np.count_nonzero(got == label) / got.size
        want_share = np.count_nonzero(want == label) / want.size
        assert abs(got_share - want_share) < 0.02, (name, got_share, want_share)
    # Water at its exact grey level: the window is applied to Hounsfield units, not raw values.
    water = viewport[np.ix_(ys, xs)][want == 1]
    assert abs(float(np.median(water)) - 102) <= 2
    # Along the centre row, left to right: air, body, bone ring, water, sphere, water, bone
    # ring, body, air (the sphere lies on the patient's left, drawn on the right).
    middle = want.shape[0] // 2
    assert _runs(got[middle]) == _runs(want[middle]) == [0, 1, 2, 1, 2, 1, 2, 1, 0]


def _runs(classes: npt.NDArray[np.int8], min_length: int = 8) -> list[int]:
    """The sequence of classes along a line, ignoring runs shorter than *min_length*."""
    labels: list[int] = []
    start = 0
    for end in range(1, len(classes) + 1):
        if end == len(classes) or classes[end] != classes[start]:
            if (
                end - start >= min_length
                and classes[start] >= 0
                and (not labels or labels[-1] != classes[start])
            ):
                labels.append(int(classes[start]))
            start = end
    return labels


def _on_loopback(url: str) -> bool:
    return url.startswith(("http://127.0.0.1:", "data:", "blob:"))


def _record_api_error(response: Response, api_root: str, failures: list[str]) -> None:
    if response.url.startswith(api_root) and response.status >= 400:
        failures.append(f"{response.request.method} {response.url}: {response.status}")
