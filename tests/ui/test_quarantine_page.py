"""The dashboard's Quarantine page in Debian's headless Chromium against the real API and
bridge: the quarantined images with Release and Delete, and the deliveries the bridge holds
back, with a screenshot in ``test-artifacts/ui/``."""

from __future__ import annotations

import hashlib

import httpx
from playwright.sync_api import Page, expect

from tests.bridge.test_routing import wait_until
from tests.support import incomplete
from tests.support.dicom import stow
from tests.ui.conftest import DESTINATION, Stack, shot


def _entry_id(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def test_quarantine_page_release_and_delete_then_bridge_holds_back(
    page: Page, stack: Stack
) -> None:
    """Two incomplete images sent by STOW-RS are listed with patient, problem, source and
    size. Delete removes one; Release moves the other into the archive, whose study opens.
    The bridge's CT route then holds the released instance back (its Pixel Data is still
    truncated), listed on the page; Drop settles it."""
    carol = {"patient_name": "Quarantine^Carol", "patient_id": "UI-Q-1"}
    truncated = incomplete.truncated(seed=90, study_uid="1.2.826.0.1.90", **carol)
    sop = str(incomplete.ct(seed=90, study_uid="1.2.826.0.1.90", **carol).SOPInstanceUID)
    header_only = incomplete.header_only(
        seed=91, patient_name="Quarantine^Dan", patient_id="UI-Q-2", study_uid="1.2.826.0.1.91"
    )
    origin = stack.origin
    with httpx.Client(base_url=origin, timeout=30) as http:
        assert stow(http, [truncated, header_only]).status_code == 409
    kept, gone = _entry_id(truncated), _entry_id(header_only)

    page.goto(f"{origin}/ui/#/quarantine")
    table = page.get_by_role("table", name="Quarantined images")
    expect(table.locator("tbody tr")).to_have_count(2)
    row = table.locator(f"tr[data-entry='{kept}']")
    expect(row).to_contain_text("Quarantine Carol")
    expect(row).to_contain_text("UI-Q-1")
    expect(row).to_contain_text("File truncated")
    expect(row).to_contain_text("Pixel Data declares 2048 bytes")
    expect(row).to_contain_text("127.0.0.1")  # the client's address
    expect(row).to_contain_text(f"{(len(truncated) / 1000):.1f} KB")
    expect(table.locator(f"tr[data-entry='{gone}']")).to_contain_text("Pixel Data missing")
    expect(page.get_by_role("link", name="Quarantine")).to_have_attribute("aria-current", "page")
    shot(page, "quarantine")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Delete {gone}").click()
    expect(page.get_by_role("status")).to_have_text(f"Deleted {gone}.")
    expect(table.locator("tbody tr")).to_have_count(1)

    page.get_by_role("button", name=f"Release {kept}").click()
    expect(page.get_by_role("status")).to_contain_text(f"Released {kept} into the archive")
    expect(page.get_by_text("Nothing is in the quarantine.")).to_be_visible()
    with httpx.Client(base_url=origin, timeout=30) as http:
        assert http.get("/quarantine").json()["total"] == 0

    expect(page.get_by_role("link", name="open the study")).to_have_attribute(
        "href", "#/study/1.2.826.0.1.90"
    )
    # The study list shows it (its study page would try to render pixels that are not there).
    page.goto(f"{origin}/ui/#/studies?id=UI-Q-1")
    expect(page.locator("main table tbody tr")).to_have_count(1)
    expect(page.locator("main table tbody tr")).to_contain_text("Quarantine Carol")

    def held_back() -> bool:
        rows = httpx.get(f"{stack.bridge_url}/routing/quarantine", timeout=10).json()
        return any(r["instance"] == sop for r in rows)

    wait_until(held_back, "the bridge holds the released instance back")
    page.goto(f"{origin}/ui/#/quarantine")
    bridge_table = page.get_by_role("table", name="Held back by the bridge")
    bridge_row = bridge_table.locator("tbody tr")
    expect(bridge_row).to_have_count(1)
    expect(bridge_row).to_contain_text(DESTINATION)
    expect(bridge_row).to_contain_text(sop)
    expect(bridge_row).to_contain_text("not sent: the object is truncated")
    shot(page, "quarantine-bridge")
    delivery = bridge_row.get_attribute("data-delivery")
    page.get_by_role("button", name=f"Drop delivery {delivery}").click()
    expect(page.get_by_text("The bridge holds nothing back.")).to_be_visible()
