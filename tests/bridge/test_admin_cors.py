"""CORS on the bridge's status API: the API's dashboard reads routing and posts retries, and
the status lists the known nodes."""

from __future__ import annotations

import httpx
import pytest
from pacs_bridge.settings import Settings
from pydantic import ValidationError

from tests.bridge.running import running_bridge

DASHBOARD = "http://127.0.0.1:8080"


def test_admin_cors_dashboard_allowed_and_nodes_listed(api_url: str) -> None:
    nodes = {"ARCHIVE": {"host": "127.0.0.1", "port": 11999}}
    with running_bridge(api_url, admin_cors_allow_origins=[DASHBOARD], nodes=nodes) as bridge:
        url = f"{bridge.bridge.admin_url}/routing"
        response = httpx.get(url, headers={"Origin": DASHBOARD}, timeout=10)
        assert response.headers["access-control-allow-origin"] == DASHBOARD
        assert response.json()["nodes"] == [
            {"ae_title": "ARCHIVE", "host": "127.0.0.1", "port": 11999, "tls": False}
        ]
        preflight = httpx.options(
            f"{bridge.bridge.admin_url}/routing/destinations/ARCHIVE/retry",
            headers={"Origin": DASHBOARD, "Access-Control-Request-Method": "POST"},
            timeout=10,
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == DASHBOARD
        other = httpx.get(url, headers={"Origin": "https://evil.example.com"}, timeout=10)
        assert "access-control-allow-origin" not in other.headers


def test_admin_cors_off_by_default(api_url: str) -> None:
    with running_bridge(api_url) as running:
        response = httpx.get(
            f"{running.bridge.admin_url}/routing", headers={"Origin": DASHBOARD}, timeout=10
        )
        assert "access-control-allow-origin" not in response.headers


def test_admin_cors_not_an_origin_rejected() -> None:
    with pytest.raises(ValidationError):
        Settings(admin_cors_allow_origins=["http://127.0.0.1:8080/ui"])
