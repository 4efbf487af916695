"""The dashboard's files and configuration at /ui (the browser tests are in tests/ui)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pacs_api.main import create_app
from pacs_api.settings import Settings
from pacs_api.ui.routes import STATIC
from pydantic import ValidationError


@pytest.fixture
def ui_client(tmp_path: object) -> TestClient:
    settings = Settings(
        database_url="sqlite://",
        store_url=f"file://{tmp_path}/objects",
        ui_exporter_url="http://127.0.0.1:8081/",
        ui_bridge_status_url="http://127.0.0.1:8082",
    )
    return TestClient(create_app(settings))


def test_ui_page_served_with_local_only_policy(ui_client: TestClient) -> None:
    """The page, and a policy that keeps every script, style and image on this origin and lets
    the page call the configured exporter and bridge only."""
    response = ui_client.get("/ui", follow_redirects=True)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/ui/static/app.js">' in response.text
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert "connect-src 'self' http://127.0.0.1:8081 http://127.0.0.1:8082" in policy


def test_ui_config_names_the_configured_services(ui_client: TestClient) -> None:
    assert ui_client.get("/ui/config.json").json() == {
        "dicomweb_root": "/dicom-web",
        "exporter_url": "http://127.0.0.1:8081",
        "bridge_status_url": "http://127.0.0.1:8082",
        "ohif_url": None,
    }


def test_ui_every_static_file_served_no_remote_reference(ui_client: TestClient) -> None:
    """Each asset is served with its type, and none loads anything from another host."""
    files = [p for p in STATIC.rglob("*") if p.is_file()]
    assert files
    for path in files:
        name = path.relative_to(STATIC).as_posix()
        response = ui_client.get(f"/ui/static/{name}")
        assert response.status_code == 200, name
        assert "//cdn" not in response.text and "https://" not in response.text, name


@pytest.mark.parametrize("name", ["../main.py", "..%2F__init__.py", "missing.js", "app.py"])
def test_ui_static_outside_or_unknown_404(ui_client: TestClient, name: str) -> None:
    assert ui_client.get(f"/ui/static/{name}").status_code in (400, 404, 422)


def test_ui_settings_not_http_url_rejected() -> None:
    with pytest.raises(ValidationError):
        Settings(ui_exporter_url="127.0.0.1:8081")
