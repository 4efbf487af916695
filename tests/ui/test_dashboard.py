"""The dashboard at /ui in Debian's headless Chromium against the real API, exporter and bridge:
each page's main path, with assertions on what is shown and a screenshot per page in
``test-artifacts/ui/``."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import httpx
from pacs_api.settings import Settings
from playwright.sync_api import BrowserContext, Locator, Page, expect

from tests.support.server import free_port, running_api
from tests.ui.conftest import DESTINATION, SLICES, Stack, shot

#: Upper bound of waiting for a mesh (a limit against hanging, not a timing assertion).
EXPORT_TIMEOUT_MS = 90_000


def _rows(page: Page) -> list[str]:
    return page.locator("main table tbody tr").all_inner_texts()


def test_study_list_shows_studies_and_search_filters(page: Page, stack: Stack) -> None:
    page.goto(f"{stack.origin}/ui")
    expect(page.locator("main table tbody tr")).to_have_count(2)
    rows = _rows(page)
    assert any("Dashboard Alice" in row and "UI-0001" in row and "ACC-UI-1" in row for row in rows)
    assert any("Other Bob" in row and "2023-06-01" in row for row in rows)
    shot(page, "study-list")

    page.get_by_label("Patient name").fill("dash")  # PN matching is case-insensitive (fuzzy)
    page.get_by_role("button", name="Search").click()
    expect(page.locator("main table tbody tr")).to_have_count(1)
    assert "Dashboard Alice" in _rows(page)[0]
    assert "name=dash" in page.url  # the search is in the address: back and reload keep it
    shot(page, "study-list-search")

    page.get_by_role("button", name="Clear").click()
    expect(page.locator("main table tbody tr")).to_have_count(2)
    page.get_by_label("Study date from").fill("2024-01-01")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("main table tbody tr")).to_have_count(1)
    assert "Dashboard Alice" in _rows(page)[0]

    page.get_by_label("Accession number").fill("ACC-UI-2")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("status")).to_have_text("No studies match this search.")
    shot(page, "study-list-no-results")


def test_study_list_pages_with_limit_and_offset(page: Page, stack: Stack) -> None:
    """Two studies, 25 a page: no "Next"; the offset in the address skips the first."""
    page.goto(f"{stack.origin}/ui/#/studies?offset=1")
    expect(page.locator("main table tbody tr")).to_have_count(1)
    expect(page.get_by_text("Studies 2–2")).to_be_visible()
    expect(page.get_by_role("link", name="‹ Previous")).to_be_visible()
    expect(page.get_by_role("link", name="Next ›")).to_be_hidden()


def test_study_page_series_thumbnails_and_viewer(page: Page, stack: Stack) -> None:
    page.goto(f"{stack.origin}/ui")
    page.get_by_role("link", name="Dashboard Alice").click()
    expect(page.get_by_role("heading", name="Series (1)")).to_be_visible()
    card = page.locator(".series-card")
    expect(card).to_contain_text("Thin CT")
    expect(card).to_contain_text(f"CT · {SLICES} instances")
    thumbnail = card.locator("img")
    expect(thumbnail).to_have_js_property("complete", True)
    assert thumbnail.evaluate("img => img.naturalWidth") > 0
    ohif = page.get_by_role("link", name="Open in OHIF")
    assert ohif.get_attribute("href") == (
        f"http://127.0.0.1:3000/viewer?StudyInstanceUIDs={stack.ct_study}"
    )

    image = page.locator(".viewport img")
    _loaded(image)
    expect(page.locator(".viewer output")).to_contain_text(f"Slice {SLICES // 2 + 1} of {SLICES}")
    first_src, first_pixels = image.get_attribute("src"), _pixels(page)
    shot(page, "study-viewer")

    # Scroll with the keyboard and the wheel; the slider follows.
    page.locator(".viewport").focus()
    page.keyboard.press("ArrowDown")
    expect(page.locator(".viewer output")).to_contain_text(f"Slice {SLICES // 2 + 2} of")
    assert image.get_attribute("src") != first_src
    page.locator(".viewport").hover()
    page.mouse.wheel(0, -120)
    page.mouse.wheel(0, -120)
    expect(page.locator(".viewer output")).to_contain_text(f"Slice {SLICES // 2} of")
    assert page.get_by_role("slider", name="Slice").input_value() == str(SLICES // 2)

    # A window preset asks the API for other pixels: bone window makes soft tissue dark.
    page.get_by_role("button", name="Bone").click()
    expect(page.get_by_role("button", name="Bone")).to_have_attribute("aria-pressed", "true")
    _loaded(image)
    assert "window=400,1800,linear" in (image.get_attribute("src") or "")
    assert _pixels(page) != first_pixels
    lung = _pixels(page)
    page.get_by_role("button", name="Lung").click()
    _loaded(image)
    assert _pixels(page) != lung

    page.get_by_role("button", name="Zoom in").click()
    expect(image).to_have_attribute("style", re.compile(r"scale\(1\.5\)"))
    shot(page, "study-viewer-bone-zoom")


def test_export_mesh_runs_to_succeeded_and_shows_report(page: Page, stack: Stack) -> None:
    page.goto(f"{stack.origin}/ui/#/study/{stack.ct_study}")
    panel = page.get_by_role("region", name="Export a mesh")
    expect(panel.get_by_label("Preset")).to_contain_text("bone (226 HU)")
    panel.get_by_label("Preset").select_option("bone")
    panel.get_by_label("Format").select_option("stl")
    panel.get_by_role("button", name="Export").click()
    expect(panel.locator("[data-state]")).to_have_attribute(
        "data-state", "succeeded", timeout=EXPORT_TIMEOUT_MS
    )
    expect(panel.locator("progress")).to_have_attribute("value", "100")
    report = panel.get_by_role("region", name="Mesh report")
    expect(report.locator("dt").first).to_be_visible()
    expect(report).to_contain_text("triangles")
    expect(report.locator("dt", has_text="watertight").locator("+ dd")).to_have_text("true")
    download = panel.get_by_role("link", name="Download STL")
    href = download.get_attribute("href") or ""
    assert href.startswith(f"{stack.exporter_url}/exports/") and href.endswith("/file")
    mesh = httpx.get(href, timeout=30)
    assert mesh.status_code == 200 and len(mesh.content) > 84  # a binary STL with triangles
    shot(page, "export-succeeded")


def test_nodes_page_lists_node_route_destination_and_retries(page: Page, stack: Stack) -> None:
    page.goto(f"{stack.origin}/ui/#/nodes")
    expect(page.get_by_role("table", name="Nodes")).to_contain_text(DESTINATION)
    expect(page.get_by_role("table", name="Routes")).to_contain_text("ct-to-archive2")
    destination = page.locator(f"tr[data-destination='{DESTINATION}']")
    expect(destination).to_be_visible(timeout=30_000)  # once the router queued the study
    shot(page, "nodes")
    page.get_by_role("button", name=f"Retry failed deliveries to {DESTINATION}").click()
    expect(page.get_by_text(re.compile(r"Requeued \d+"))).to_be_visible()


def test_usage_page_counts_what_is_stored(page: Page, stack: Stack) -> None:
    page.goto(f"{stack.origin}/ui/#/usage")
    expect(page.locator("[data-stat='studies'] .value")).to_have_text("2")
    expect(page.locator("[data-stat='patients'] .value")).to_have_text("2")
    expect(page.locator("[data-stat='instances'] .value")).to_have_text(str(SLICES + 2))
    expect(page.get_by_role("table", name="By modality")).to_contain_text("CT")
    expect(page.get_by_text("Index: ok")).to_be_visible()
    shot(page, "usage")


def test_unknown_study_and_page_say_so(page: Page, stack: Stack) -> None:
    page.goto(f"{stack.origin}/ui/#/study/1.2.3.4")
    expect(page.get_by_role("alert")).to_contain_text("No study 1.2.3.4")
    page.goto(f"{stack.origin}/ui/#/nowhere")
    expect(page.get_by_role("alert")).to_contain_text('There is no page "nowhere"')


def test_services_not_configured_or_unreachable_explained(
    browser: BrowserContext, tmp_path: Path
) -> None:
    """Without exporter and bridge URLs the pages say what to set; with a bridge that does not
    answer, the nodes page says it cannot be reached (the browser logs that refused connection,
    so this page is not checked for console errors)."""
    closed = f"http://127.0.0.1:{free_port()}"
    plain = Settings(
        database_url=f"sqlite:///{tmp_path / 'a.sqlite3'}", store_url=f"file://{tmp_path / 'a'}"
    )
    down = plain.model_copy(update={"ui_bridge_status_url": closed})
    page = browser.new_page()
    try:
        with running_api(plain) as dicomweb_url:
            origin = dicomweb_url.removesuffix("/dicom-web")
            page.goto(f"{origin}/ui/#/nodes")
            expect(page.locator(".notice")).to_contain_text("PACS_API_UI_BRIDGE_STATUS_URL")
            page.goto(f"{origin}/ui/#/studies")
            expect(page.get_by_role("status")).to_have_text("No studies match this search.")
        with running_api(down) as dicomweb_url:
            page.goto(f"{dicomweb_url.removesuffix('/dicom-web')}/ui/#/nodes")
            expect(page.get_by_role("alert")).to_contain_text(f"cannot be reached at {closed}")
            expect(page.get_by_role("button", name="Try again")).to_be_visible()
            shot(page, "nodes-unreachable")
    finally:
        page.close()


def _loaded(image: Locator) -> None:
    image.page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=image.element_handle()
    )


def _pixels(page: Page) -> str:
    """A digest of the pixels the viewer's image decodes to (drawn on a canvas)."""
    digest: str = page.locator(".viewport img").evaluate(
        """img => {
            const canvas = document.createElement("canvas");
            canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
            const context = canvas.getContext("2d");
            context.drawImage(img, 0, 0);
            return Array.from(context.getImageData(0, 0, canvas.width, canvas.height).data
                .filter((_, i) => i % 4 === 0)).join(",");
        }"""
    )
    return hashlib.sha256(digest.encode()).hexdigest()
