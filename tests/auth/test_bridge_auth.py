"""The DIMSE bridge with authentication: it presents its token (dicomweb_token) to an API that
requires one, for C-STORE and for the change feed its routing follows, and its status API
asks its own callers for read (progress) or admin (retry)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pacs_api.settings import Settings as ApiSettings
from pacs_common import statuses
from pacs_common.auth import Scope
from pacs_common.auth.api_keys import key_digest, new_api_key
from pacs_common.client import DicomWebClient
from pacs_common.synthetic import iter_ct_series, to_bytes
from pydicom.uid import CTImageStorage

from tests.auth.conftest import bearer
from tests.bridge.peers import dcmtk, peer_args, scu_association
from tests.bridge.running import SCU, running_bridge
from tests.support.server import free_port, running_api

BRIDGE_KEY = new_api_key()
ADMIN_KEY = new_api_key()
#: Routing to a node nobody listens on: enough to make the bridge follow the change feed.
ROUTING: dict[str, Any] = {
    "nodes": {"NOWHERE": {"host": "127.0.0.1", "port": 9}},
    "routes": [{"name": "all", "to": ["NOWHERE"], "match_all": True}],
    "routing_poll_interval": 0.05,
}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[str]:
    """A real API (uvicorn) that requires a token; the bridge's key reads, writes and appends
    audit records; an operator's key administers."""
    settings = ApiSettings(
        database_url=f"sqlite:///{tmp_path / 'index.sqlite3'}",
        store_url=f"file://{tmp_path / 'objects'}",
        auth_api_keys=[
            {
                "name": "bridge",
                "sha256": key_digest(BRIDGE_KEY),
                "scopes": ["read", "write", "audit"],
            },
            {"name": "operator", "sha256": key_digest(ADMIN_KEY), "scopes": ["admin"]},
        ],
    )
    with running_api(settings) as url:
        yield url


def routing_status(admin_url: str, headers: dict[str, str], until: Any) -> dict[str, Any]:
    """GET /routing until *until* holds for it (bounded: a guard against hanging)."""
    deadline = time.monotonic() + 30
    while True:
        body: dict[str, Any] = httpx.get(f"{admin_url}/routing", headers=headers).json()
        if until(body) or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def audit_events(api: str, **params: str) -> list[dict[str, Any]]:
    """The bridge's records in the API's audit trail (read with the admin key), once they
    arrived (the bridge posts them in the background; bounded wait, not a timing assertion)."""
    root = api.rpartition("/")[0]
    deadline = time.monotonic() + 30
    while True:
        answer = httpx.get(
            f"{root}/audit",
            params={"source": "dimse-bridge", **params},
            headers=bearer(ADMIN_KEY),
        )
        assert answer.status_code == 200, answer.text
        events: list[dict[str, Any]] = answer.json()["events"]
        if events or time.monotonic() > deadline:
            return events
        time.sleep(0.1)


def test_bridge_with_token_storescu_stored_and_feed_followed(api: str, tmp_path: Path) -> None:
    ds = next(iter_ct_series(1, 32, 32, seed=61))
    path = tmp_path / "ct.dcm"
    path.write_bytes(to_bytes(ds))
    with running_bridge(api, dicomweb_token=BRIDGE_KEY, **ROUTING) as bridge:
        proc = dcmtk("storescu", *peer_args(bridge, SCU), path)
        assert proc.returncode == 0, proc.stderr
        with httpx.Client(timeout=30) as http:
            found = DicomWebClient(http, api, token=BRIDGE_KEY).search_instances(
                SOPInstanceUID=str(ds.SOPInstanceUID)
            )
        assert len(found) == 1
        body = routing_status(bridge.bridge.admin_url, {}, lambda b: b["cursor"] > 0)
        assert body["cursor"] > 0 and body["feed_error"] == ""
        # its DIMSE audit records reach the API's audit trail with the same token
        stored = audit_events(api, event="110104", study=str(ds.StudyInstanceUID))
        assert [e["source"] for e in stored] == ["dimse-bridge"]


def test_bridge_with_wrong_token_cstore_out_of_resources_naming_token(
    api: str, tmp_path: Path
) -> None:
    """The API refusing the bridge's token is the bridge's configuration at fault, not the
    instance: Out of Resources (A7xx, PS3.4 B.2.3) so the modality keeps it and sends again,
    with an Error Comment naming the token."""
    ds = next(iter_ct_series(1, 32, 32, seed=62))
    path = tmp_path / "ct.dcm"
    path.write_bytes(to_bytes(ds))
    with running_bridge(api, dicomweb_token=new_api_key(), **ROUTING) as bridge:
        proc = dcmtk("storescu", "-v", *peer_args(bridge, SCU), path)
        assert "Refused: OutOfResources" in proc.stderr, proc.stderr
        with scu_association(bridge, SCU, [CTImageStorage]) as assoc:
            status = assoc.send_c_store(ds)
        assert status.Status & 0xFF00 == statuses.OUT_OF_RESOURCES
        assert "dicomweb_token (401)" in status.ErrorComment
        body = routing_status(bridge.bridge.admin_url, {}, lambda b: b["feed_error"])
        assert "401" in body["feed_error"]


def test_bridge_status_api_read_and_admin_scopes(api: str) -> None:
    keys = {Scope.READ: new_api_key(), Scope.ADMIN: new_api_key()}
    entries = [
        {"name": f"{scope.value}-user", "sha256": key_digest(key), "scopes": [scope.value]}
        for scope, key in keys.items()
    ]
    with running_bridge(api, dicomweb_token=BRIDGE_KEY, auth_api_keys=entries) as bridge:
        admin = bridge.bridge.admin_url
        refused = httpx.get(f"{admin}/routing")
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["www-authenticate"].startswith('Bearer realm="pacs-cloud"')
        wrong = httpx.get(f"{admin}/routing", headers=bearer(new_api_key()))
        assert wrong.status_code == 401
        assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
        assert httpx.get(f"{admin}/routing", headers=bearer(keys[Scope.READ])).status_code == 200
        deliveries = f"{admin}/routing/destinations/NOBODY/deliveries"
        assert httpx.get(deliveries, headers=bearer(keys[Scope.ADMIN])).status_code == 403
        assert httpx.get(deliveries, headers=bearer(keys[Scope.READ])).status_code == 404
        retry = f"{admin}/routing/destinations/NOBODY/retry"
        forbidden = httpx.post(retry, headers=bearer(keys[Scope.READ]))
        assert forbidden.status_code == 403 and "'admin'" in forbidden.json()["detail"]
        assert httpx.post(retry, headers=bearer(keys[Scope.ADMIN])).status_code == 404
        for public in ("/healthz", "/readyz", "/metrics"):
            assert httpx.get(f"{admin}{public}").status_code == 200, public


def test_bridge_status_api_non_loopback_with_auth_starts(api: str) -> None:
    """With authentication configured the status API may listen beyond loopback without the
    allow-unauthenticated flag (0.0.0.0 here, reached on 127.0.0.1)."""
    key = new_api_key()
    entries = [{"name": "ops", "sha256": key_digest(key), "scopes": ["read"]}]
    port = free_port()
    with running_bridge(
        api, auth_api_keys=entries, admin_host="0.0.0.0", admin_port=port
    ) as bridge:
        url = f"http://127.0.0.1:{port}/routing"
        assert bridge.bridge.settings.admin_host == "0.0.0.0"
        assert httpx.get(url).status_code == 401
        assert httpx.get(url, headers=bearer(key)).status_code == 200
