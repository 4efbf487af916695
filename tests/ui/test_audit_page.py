"""The dashboard's audit log page (admin) in Debian's headless Chromium against the real API:
accesses made over DICOMweb show up newest first with their event, outcome, user, address,
request and study; the filters narrow them; a caller without the admin scope gets a plain
message. Screenshots in ``test-artifacts/ui/``."""

from __future__ import annotations

import httpx
from playwright.sync_api import BrowserContext, Page, expect

from tests.ui.conftest import Stack, shot

MISSING_STUDY = "1.2.826.0.1.3680043.10.999.1"


def _rows(page: Page) -> list[str]:
    return page.locator("main table tbody tr").all_inner_texts()


def test_audit_page_shows_accesses_and_filters(page: Page, stack: Stack) -> None:
    with httpx.Client(timeout=30) as http:
        for _ in range(55):  # more than a page of records
            http.get(f"{stack.dicomweb_url}/studies", params={"PatientID": "UI-PAGING"})
        found = http.get(f"{stack.dicomweb_url}/studies", params={"PatientID": "UI-0001"})
        assert found.status_code == 200
        metadata = http.get(f"{stack.dicomweb_url}/studies/{stack.ct_study}/metadata")
        assert metadata.status_code == 200
        missing = http.get(f"{stack.dicomweb_url}/studies/{MISSING_STUDY}/metadata")
        assert missing.status_code == 404

    page.goto(f"{stack.origin}/ui/#/audit")
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    expect(page.locator("nav a[data-page='audit']")).to_have_attribute("aria-current", "page")
    table = page.get_by_role("table", name="Audit records")
    expect(table).to_be_visible()
    # The bridge's routing fetches the CT instances to retry its delivery (audited too).
    expect(page.locator("main table tbody tr")).to_have_count(50)
    expect(page.get_by_text("Records 1–50 of")).to_be_visible()
    assert all("anonymous" in row and "api" in row for row in _rows(page))
    shot(page, "audit-log")
    page.get_by_role("link", name="Older ›").click()
    expect(page.get_by_text("Records 51–")).to_be_visible()
    expect(page.get_by_role("link", name="‹ Newer")).to_be_visible()

    page.get_by_label("Event").select_option("110103")  # DICOM Instances Accessed
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("main table tbody tr")).to_have_count(2)
    failed, read = _rows(page)  # newest first
    assert MISSING_STUDY in failed and "Minor failure" in failed and "→ 404" in failed
    assert stack.ct_study in read and "Success" in read and "/metadata" in read
    assert "anonymous" in read and "127.0.0.1" in read and "Read" in read
    expect(page.locator("tr[data-outcome='4'] .outcome")).to_have_text(["Minor failure"])
    shot(page, "audit-log-accessed")

    page.get_by_label("Event").select_option("110112")  # Query
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("main table tbody tr")).to_have_count(50)
    newest = _rows(page)[0]
    assert "Query" in newest and "PatientID=UI-0001" in newest and "Execute" in newest
    assert "PatientID=UI-PAGING" in _rows(page)[1]

    page.get_by_role("button", name="Clear").click()
    page.get_by_label("Study Instance UID").fill(stack.ct_study)
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("main table tbody tr").first).to_contain_text(stack.ct_study)
    for row in _rows(page):
        assert stack.ct_study in row
    assert f"study={stack.ct_study}" in page.url

    page.get_by_label("Event").select_option("110112")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("status")).to_have_text("No record matches these filters.")

    page.get_by_role("button", name="Clear").click()
    page.get_by_label("Outcome").select_option("4")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("main table tbody tr")).to_have_count(1)
    assert MISSING_STUDY in _rows(page)[0]
    shot(page, "audit-log-failures")

    page.goto(f"{stack.origin}/ui/#/audit?from=2000-01-01&to=2000-01-31")
    expect(page.get_by_role("status")).to_have_text("No record matches these filters.")


def test_audit_page_without_admin_scope_plain_message(
    browser: BrowserContext, stack: Stack
) -> None:
    """The API answers 403 (what ``requires(Scope.ADMIN)`` gives a caller without the scope,
    tested in tests/api/test_audit.py); the page says so plainly, without an error box."""
    page = browser.new_page()
    try:
        page.route(
            "**/audit?**",
            lambda route: route.fulfill(
                status=403,
                content_type="application/problem+json",
                body='{"type":"about:blank","title":"Forbidden","status":403,'
                "\"detail\":\"this needs the 'admin' scope, which 'alice' lacks\"}",
            ),
        )
        page.goto(f"{stack.origin}/ui/#/audit")
        expect(page.get_by_role("status")).to_contain_text("administrators only")
        expect(page.get_by_role("alert")).to_have_count(0)
        expect(page.locator("main table")).to_have_count(0)
        shot(page, "audit-log-forbidden")
    finally:
        page.close()
