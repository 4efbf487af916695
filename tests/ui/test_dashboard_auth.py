"""The dashboard against an API that requires a token: it asks for one, keeps it for the tab,
sends it on every call (thumbnails included), and forgets it on sign-out."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pacs_api.settings import Settings
from pacs_common.auth.api_keys import key_digest, new_api_key
from pacs_common.client import DicomWebClient
from pacs_common.synthetic import iter_ct_series, to_bytes
from playwright.sync_api import BrowserContext, ConsoleMessage, expect

from tests.support.server import running_api
from tests.ui.conftest import shot

KEY = new_api_key()


@pytest.fixture(scope="module")
def api() -> Iterator[str]:
    """The API requiring a token, holding one CT study; its origin."""
    with tempfile.TemporaryDirectory(prefix="pacs-ui-auth-") as tmp:
        writer = new_api_key()
        settings = Settings(
            database_url=f"sqlite:///{Path(tmp) / 'index.sqlite3'}",
            store_url=f"file://{Path(tmp) / 'objects'}",
            auth_api_keys=[
                {"name": "radiologist", "sha256": key_digest(KEY), "scopes": ["read"]},
                {"name": "loader", "sha256": key_digest(writer), "scopes": ["write"]},
            ],
        )
        with running_api(settings) as dicomweb_url:
            ct = list(iter_ct_series(3, 32, 32, patient_name="Signed^In", patient_id="AUTH-1"))
            with httpx.Client(timeout=60) as http:
                DicomWebClient(http, dicomweb_url, token=writer).store(
                    [to_bytes(ds) for ds in ct]
                ).raise_for_failures()
            yield dicomweb_url.removesuffix("/dicom-web")


def test_dashboard_asks_for_a_token_then_lists_studies(browser: BrowserContext, api: str) -> None:
    page = browser.new_page()
    problems: list[str] = []

    def console(message: ConsoleMessage) -> None:
        # Chromium logs every 401 answer as a console error: those are what this test causes
        if message.type == "error" and "status of 401" not in message.text:
            problems.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda error: problems.append(str(error)))

    page.goto(f"{api}/ui/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_text("This server requires a token.")).to_be_visible()
    expect(page.get_by_role("link", name="Sign out")).to_be_hidden()
    shot(page, "sign-in")

    page.get_by_label("Token").fill("pacs_not-a-configured-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("The token was refused")).to_be_visible()

    page.get_by_label("Token").fill(KEY)
    page.get_by_role("button", name="Sign in").click()
    rows = page.locator("main table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("Signed In")
    expect(page.get_by_role("link", name="Sign out")).to_be_visible()

    page.get_by_role("link", name="Signed In").click()  # thumbnails are fetched with the token
    thumbnail = page.locator(".series-card img[src^='blob:']")
    expect(thumbnail).to_have_js_property("complete", True)
    assert thumbnail.evaluate("img => img.naturalWidth") > 0
    shot(page, "signed-in-study")

    page.reload()  # the token stays for the tab
    expect(page.locator(".series-card")).to_have_count(1)

    page.get_by_role("link", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('pacs.token')") is None
    page.close()
    assert not problems, "\n".join(problems)
