"""CORS on the exporter: the API's dashboard (another origin) submits and polls jobs."""

from __future__ import annotations

from pathlib import Path

import pytest
from pacs_exporter.presets import PRESETS
from pydantic import ValidationError

from tests.exporter.service import exporter_settings, running_exporter

DASHBOARD = "http://127.0.0.1:8080"
PREFLIGHT = {
    "Origin": DASHBOARD,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type",
}


def test_cors_dashboard_origin_preflight_and_get_allowed(tmp_path: Path) -> None:
    settings = exporter_settings(
        tmp_path, "http://127.0.0.1:9/dicom-web", workers=0, cors_allow_origins=[DASHBOARD]
    )
    with running_exporter(settings) as client:
        preflight = client.options("/exports", headers=PREFLIGHT)
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == DASHBOARD
        assert "POST" in preflight.headers["access-control-allow-methods"]
        listed = client.get("/exports", headers={"Origin": DASHBOARD})
        assert listed.headers["access-control-allow-origin"] == DASHBOARD
        assert "location" in listed.headers["access-control-expose-headers"].lower()
        other = client.get("/exports", headers={"Origin": "https://evil.example.com"})
        assert "access-control-allow-origin" not in other.headers


def test_cors_off_by_default_no_headers(tmp_path: Path) -> None:
    settings = exporter_settings(tmp_path, "http://127.0.0.1:9/dicom-web", workers=0)
    with running_exporter(settings) as client:
        response = client.get("/exports", headers={"Origin": DASHBOARD})
        assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize("origin", ["http://127.0.0.1:8080/", "127.0.0.1:8080"])
def test_cors_not_an_origin_rejected(tmp_path: Path, origin: str) -> None:
    with pytest.raises(ValidationError):
        exporter_settings(tmp_path, "http://127.0.0.1:9/dicom-web", cors_allow_origins=[origin])


def test_presets_listed_with_levels(tmp_path: Path) -> None:
    """GET /presets names every preset an export accepts, with its level."""
    settings = exporter_settings(tmp_path, "http://127.0.0.1:9/dicom-web", workers=0)
    with running_exporter(settings) as client:
        listed = {p["name"]: p["level_hu"] for p in client.get("/presets").json()}
    assert listed["bone"] == 226.0
    assert set(listed) == set(PRESETS)
