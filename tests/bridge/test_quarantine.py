"""The quarantine through the DIMSE bridge: a modality's incomplete image is refused with an
Error Comment naming the API's quarantine entry (nothing acknowledged, nothing lost), and
store-and-forward routing never forwards an incomplete instance until an administrator
releases it."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient
from pacs_bridge.admin import create_admin_app
from pacs_bridge.settings import Node
from pacs_common import statuses
from pacs_common.auth import Scope
from pacs_common.auth.api_keys import key_digest, new_api_key
from pacs_common.auth.authenticator import Authenticator
from pacs_common.auth.settings import ApiKeyEntry
from pacs_common.observability.metrics import Metrics
from pacs_common.synthetic import to_bytes

from tests.bridge.peers import dcmtk, peer_args, store_scp
from tests.bridge.running import SCU, RunningBridge, running_bridge
from tests.bridge.test_routing import (
    FAST_RETRIES,
    PLANNING,
    destination,
    stored_data_set,
    wait_until,
)
from tests.bridge.test_store import data_set_bytes
from tests.support import incomplete
from tests.support.dicom import stow


def _api_root(dicomweb_url: str) -> str:
    return dicomweb_url.removesuffix("/dicom-web")


def _entries(dicomweb_url: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{_api_root(dicomweb_url)}/quarantine", timeout=10)
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


def test_storescu_short_and_header_only_ct_refused_quarantined_with_calling_ae(
    bridge: RunningBridge, tmp_path: Path
) -> None:
    """storescu sends a complete CT, a CT whose Pixel Data was cut short (storescu refuses to
    send a file that ends inside an element, so over DIMSE a truncated image arrives with its
    element length matching what is left) and a header-only CT. The complete one is stored;
    the other two are answered 0xA900 with an Error Comment naming their quarantine entries,
    which keep the objects the API received: the data set storescu sent, the calling AE title
    as Sending Application Entity Title (PS3.10 table 7.1-1)."""
    complete = to_bytes(incomplete.ct(seed=30))
    short, header_only = incomplete.short_native(seed=31), incomplete.header_only(seed=32)
    paths = []
    for name, data in (("complete", complete), ("short", short), ("header", header_only)):
        path = tmp_path / f"{name}.dcm"
        path.write_bytes(data)
        paths.append(path)
    proc = dcmtk("storescu", "-d", "--no-halt", *peer_args(bridge, SCU), *paths)
    output = proc.stdout + proc.stderr
    assert output.count("DIMSE Status                  : 0x0000: Success") == 1, output
    assert output.count("DIMSE Status                  : 0xa900: Error") == 2, output

    entries = {e["sop_instance_uid"]: e for e in _entries(bridge.dicomweb_url)}
    assert set(entries) == {
        incomplete.ct(seed=31).SOPInstanceUID,
        incomplete.ct(seed=32).SOPInstanceUID,
    }
    for sent, kind in ((short, "short"), (header_only, "missing")):
        sop = str(incomplete.ct(seed=31 if kind == "short" else 32).SOPInstanceUID)
        entry = entries[sop]
        assert entry["kind"] == kind
        assert entry["failure"] == statuses.DATA_SET_DOES_NOT_MATCH_SOP_CLASS
        assert entry["source_ae"] == SCU
        assert f"quarantined as {entry['id']}" in output  # the C-STORE Error Comment
        kept = httpx.get(
            f"{_api_root(bridge.dicomweb_url)}/quarantine/{entry['id']}/object", timeout=10
        ).content
        assert hashlib.sha256(kept).hexdigest() == entry["sha256"]
        assert data_set_bytes(kept) == data_set_bytes(sent)


def test_routing_released_incomplete_instance_quarantined_not_forwarded_then_released(
    api_url: str,
) -> None:
    """Two truncated CTs are quarantined by the API and released into the archive by an
    administrator; the route to a pynetdicom SCP delivers the complete CT beside them but holds
    both back as ``quarantined`` with the reason: the destination receives nothing of them.
    Releasing one on the bridge sends it (the stored bytes), dropping the other keeps it
    listed as ``dropped``, never sent."""
    root = _api_root(api_url)
    complete = incomplete.ct(seed=40)
    first, second = incomplete.truncated(seed=41), incomplete.truncated(seed=42)
    route = {"name": "all", "match_all": True, "to": [PLANNING]}
    with store_scp(PLANNING) as scp:
        nodes = {PLANNING: Node(host="127.0.0.1", port=scp.port)}
        with running_bridge(api_url, routes=[route], nodes=nodes, **FAST_RETRIES) as bridge:
            admin = bridge.bridge.admin_url
            with httpx.Client(base_url=root, timeout=30) as http:
                assert stow(http, [first, second]).status_code == 409
                for entry in _entries(api_url):
                    assert http.post(f"/quarantine/{entry['id']}/release").status_code == 200
                assert stow(http, [to_bytes(complete)]).status_code == 200
            wait_until(lambda: destination(bridge, PLANNING)["delivered"] == 1, "delivered")
            wait_until(lambda: destination(bridge, PLANNING)["quarantined"] == 2, "held back")
            assert scp.uids == [complete.SOPInstanceUID]

            held = httpx.get(f"{admin}/routing/quarantine", timeout=10).json()
            by_uid = {d["instance"]: d for d in held}
            assert set(by_uid) == {
                incomplete.ct(seed=41).SOPInstanceUID,
                incomplete.ct(seed=42).SOPInstanceUID,
            }
            for delivery in held:
                assert delivery["state"] == "quarantined"
                assert delivery["destination"] == PLANNING
                assert "truncated" in delivery["last_error"]
                assert delivery["attempts"] == 0

            released = by_uid[incomplete.ct(seed=41).SOPInstanceUID]["id"]
            dropped = by_uid[incomplete.ct(seed=42).SOPInstanceUID]["id"]
            response = httpx.post(f"{admin}/routing/deliveries/{released}/release", timeout=10)
            assert response.json() == {"released": released}
            assert (
                httpx.delete(f"{admin}/routing/deliveries/{dropped}", timeout=10).status_code == 204
            )
            wait_until(lambda: destination(bridge, PLANNING)["delivered"] == 2, "released sent")
            assert destination(bridge, PLANNING)["quarantined"] == 0
            states = {
                d["id"]: (d["state"], d["waived"])
                for d in httpx.get(
                    f"{admin}/routing/destinations/{PLANNING}/deliveries", timeout=10
                ).json()
            }
            assert states[released] == ("delivered", True)
            assert states[dropped] == ("dropped", False)
            # Settled deliveries are no longer in the quarantine: 404 for both.
            assert (
                httpx.delete(f"{admin}/routing/deliveries/{released}", timeout=10).status_code
                == 404
            )
            assert (
                httpx.post(f"{admin}/routing/deliveries/{dropped}/release", timeout=10).status_code
                == 404
            )
    sent = incomplete.ct(seed=41)
    assert scp.uids == [complete.SOPInstanceUID, sent.SOPInstanceUID]
    assert scp.received[1][1] == stored_data_set(api_url, sent)


def test_bridge_quarantine_release_drop_need_admin_scope_403(bridge: RunningBridge) -> None:
    """The mutating quarantine routes answer 403 to a caller without the ``admin`` scope (API
    keys with read and with admin, authenticated by the status app's real authenticator on
    the bridge's real queue); with it, an unknown delivery is 404; the dashboard's origin may
    preflight DELETE."""
    running = bridge.bridge
    dashboard = "http://127.0.0.1:8080"
    keys = {Scope.READ: new_api_key(), Scope.ADMIN: new_api_key()}
    settings = running.settings.model_copy(
        update={
            "admin_cors_allow_origins": [dashboard],
            "auth_api_keys": [
                ApiKeyEntry(name=scope.value, sha256=key_digest(key), scopes=frozenset({scope}))
                for scope, key in keys.items()
            ],
        }
    )
    app = create_admin_app(
        lambda: settings,
        running.queue,
        running.router,
        Metrics(),
        authenticator=Authenticator.from_settings(settings),
    )

    def app_as(scope: Scope) -> TestClient:
        return TestClient(app, headers={"Authorization": f"Bearer {keys[scope]}"})

    viewer = app_as(Scope.READ)
    mutating = (("POST", "/routing/deliveries/1/release"), ("DELETE", "/routing/deliveries/1"))
    for method, path in mutating:
        response = viewer.request(method, path)
        assert response.status_code == 403, response.text
        assert "'admin' scope" in response.json()["detail"]
    assert viewer.get("/routing/quarantine").status_code == 200
    admin = app_as(Scope.ADMIN)
    assert admin.post("/routing/deliveries/1/release").status_code == 404
    assert admin.delete("/routing/deliveries/1").status_code == 404
    preflight = admin.options(
        "/routing/deliveries/1",
        headers={"Origin": dashboard, "Access-Control-Request-Method": "DELETE"},
    )
    assert preflight.status_code == 200
    assert "DELETE" in preflight.headers["access-control-allow-methods"]
