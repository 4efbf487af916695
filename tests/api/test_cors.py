"""CORS for browser viewers (Fetch standard §3.2), on both deployments."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pacs_api.main import create_app
from pacs_api.settings import Settings
from pydantic import ValidationError

VIEWER = "http://viewer.example.org:3000"
PREFLIGHT = {
    "Origin": VIEWER,
    "Access-Control-Request-Method": "GET",
    "Access-Control-Request-Headers": "accept, range",
}


@pytest.fixture
def cors_client(settings: Settings) -> Iterator[TestClient]:
    configured = settings.model_copy(update={"cors_allow_origins": [VIEWER]})
    with TestClient(create_app(configured), base_url="http://testserver") as test_client:
        yield test_client


def test_cors_preflight_allowed_origin_200(cors_client: TestClient) -> None:
    """A preflight from an allowed origin is answered with the origin, methods and headers
    that DICOMweb clients use."""
    response = cors_client.options("/dicom-web/studies", headers=PREFLIGHT)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == VIEWER
    assert "GET" in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "accept" in allowed and "range" in allowed


def test_cors_allowed_origin_sees_exposed_headers(cors_client: TestClient) -> None:
    """An actual request from an allowed origin gets Access-Control-Allow-Origin and the
    exposed headers OHIF and dicomweb-client read (also on a problem+json error)."""
    response = cors_client.get("/dicom-web/studies/1.2.3/metadata", headers={"Origin": VIEWER})
    assert response.status_code == 404
    assert response.headers["access-control-allow-origin"] == VIEWER
    exposed = {
        h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")
    }
    assert {"content-type", "content-location", "warning", "location", "etag"} <= exposed


def test_cors_disallowed_origin_no_allow_origin(cors_client: TestClient) -> None:
    """An origin not listed gets no Access-Control-Allow-Origin, preflight or not."""
    other = {**PREFLIGHT, "Origin": "https://evil.example.com"}
    preflight = cors_client.options("/dicom-web/studies", headers=other)
    assert "access-control-allow-origin" not in preflight.headers
    response = cors_client.get("/dicom-web/studies", headers={"Origin": other["Origin"]})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


def test_cors_off_by_default_no_headers(client: TestClient) -> None:
    response = client.get("/dicom-web/studies", headers={"Origin": VIEWER})
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize(
    "update",
    [
        {"cors_allow_origins": ["https://viewer.example.org/"]},
        {"cors_allow_origins": ["viewer.example.org"]},
        {"cors_allow_origins": ["*"], "cors_allow_credentials": True},
    ],
)
def test_cors_settings_invalid_rejected(update: dict[str, object]) -> None:
    """Origins are scheme://host[:port]; credentials are never granted to every origin."""
    with pytest.raises(ValidationError):
        Settings(**update)  # type: ignore[arg-type]
