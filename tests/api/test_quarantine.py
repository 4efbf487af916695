"""The quarantine on both deployments: an image with incomplete Pixel Data is not stored or
acknowledged, its exact bytes are kept for administrators to release or delete."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from pacs_api.deps import get_principal
from pacs_api.settings import Settings
from pacs_common import statuses
from pacs_common.auth import Principal, Scope
from pacs_common.synthetic import to_bytes

from tests.support import incomplete
from tests.support.dicom import failed, failure_reasons, referenced, stow, values
from tests.support.stores import stored_objects

INCOMPLETE: dict[str, tuple[Callable[[], bytes], int, str]] = {
    "truncated": (incomplete.truncated, statuses.CANNOT_UNDERSTAND, "truncated"),
    "short": (incomplete.short_native, statuses.DATA_SET_DOES_NOT_MATCH_SOP_CLASS, "short"),
    "missing": (incomplete.header_only, statuses.DATA_SET_DOES_NOT_MATCH_SOP_CLASS, "missing"),
    "undelimited": (
        lambda: incomplete.encapsulated(delimited=False),
        statuses.CANNOT_UNDERSTAND,
        "undelimited",
    ),
}


def _archived(settings: Settings) -> dict[str, bytes]:
    return {k: v for k, v in stored_objects(settings).items() if k.startswith("studies/")}


def _quarantined(client: TestClient, data: bytes) -> str:
    """STOW *data*, check it was refused as quarantined, and return the entry id."""
    response = stow(client, [data])
    assert response.status_code == 409, response.text
    comment = values(failed(response)[0], "00000902")[0]
    entry_id = hashlib.sha256(data).hexdigest()[:16]
    assert comment.startswith(f"quarantined as {entry_id}: ")
    return entry_id


@pytest.mark.parametrize("case", sorted(INCOMPLETE))
def test_stow_incomplete_pixel_data_quarantined_exact_bytes(
    client: TestClient, settings: Settings, case: str
) -> None:
    """Each kind of incomplete Pixel Data: FailedSOPSequence with its C-STORE status and an
    ErrorComment naming the entry; the bytes kept are the bytes sent (SHA-256); nothing in the
    archive or in QIDO-RS."""
    make, status, kind = INCOMPLETE[case]
    data = make()
    response = stow(client, [data])
    assert response.status_code == 409
    assert not referenced(response)
    assert failure_reasons(response) == [status]
    entry_id = _quarantined(client, data)
    entry = client.get(f"/quarantine/{entry_id}").json()
    assert entry["kind"] == kind
    assert entry["failure"] == status
    assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert entry["size"] == len(data)
    assert entry["patient_id"] == incomplete.ct().PatientID
    assert entry["sop_instance_uid"] == incomplete.ct().SOPInstanceUID
    assert entry["source_subject"] == "anonymous"
    assert entry["source_address"] == "testclient"
    kept = client.get(f"/quarantine/{entry_id}/object")
    assert kept.status_code == 200
    assert kept.headers["content-type"] == "application/dicom"
    assert kept.content == data
    assert _archived(settings) == {}
    assert client.get("/dicom-web/studies").json() == []


def test_stow_complete_image_not_quarantined(client: TestClient, settings: Settings) -> None:
    """Complete images, native and encapsulated, are stored and nothing is quarantined."""
    native, encapsulated = to_bytes(incomplete.ct(1)), incomplete.encapsulated(2)
    response = stow(client, [native, encapsulated])
    assert response.status_code == 200, response.text
    assert sorted(_archived(settings).values()) == sorted([native, encapsulated])
    assert client.get("/quarantine").json()["total"] == 0


def test_stow_same_incomplete_bytes_twice_one_entry(client: TestClient, settings: Settings) -> None:
    """Identical re-sends land on one entry, counted; a different object gets its own."""
    data = incomplete.truncated()
    first, second = _quarantined(client, data), _quarantined(client, data)
    assert first == second
    other = _quarantined(client, incomplete.truncated(seed=5))
    page = client.get("/quarantine").json()
    assert page["total"] == 2
    assert [e["id"] for e in page["entries"]] == [other, first]  # last received first
    assert client.get(f"/quarantine/{first}").json()["times_received"] == 2
    kept = [k for k in stored_objects(settings) if k.startswith("quarantine/")]
    assert len(kept) == 2


def test_quarantine_list_pages_newest_first(client: TestClient) -> None:
    ids = [_quarantined(client, incomplete.short_native(seed)) for seed in range(3)]
    page = client.get("/quarantine", params={"limit": 2, "offset": 1}).json()
    assert page["total"] == 3
    assert [e["id"] for e in page["entries"]] == [ids[1], ids[0]]


def test_quarantine_release_stores_exact_bytes(client: TestClient, settings: Settings) -> None:
    """Release stores the kept bytes in the archive (Pixel Data check waived) and removes the
    entry; the instance is then found by QIDO-RS and retrieved byte for byte."""
    data = incomplete.truncated()
    ds = incomplete.ct()
    entry_id = _quarantined(client, data)
    response = client.post(f"/quarantine/{entry_id}/release")
    assert response.status_code == 200, response.text
    assert response.json()["sop_instance_uid"] == ds.SOPInstanceUID
    assert list(_archived(settings).values()) == [data]
    assert [k for k in stored_objects(settings) if k.startswith("quarantine/")] == []
    assert client.get(f"/quarantine/{entry_id}").status_code == 404
    studies = client.get("/dicom-web/studies", params={"PatientID": ds.PatientID}).json()
    assert values(studies[0], "0020000D") == [ds.StudyInstanceUID]


def test_quarantine_release_refused_by_archive_409_entry_kept(
    client: TestClient, settings: Settings
) -> None:
    """Another object already holds the SOP Instance UID: 409 with the archive's reason (0x0111
    under the 'reject' overwrite policy); the entry and its bytes stay."""
    assert stow(client, [to_bytes(incomplete.ct())]).status_code == 200
    entry_id = _quarantined(client, incomplete.short_native())
    response = client.post(f"/quarantine/{entry_id}/release")
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert "0x0111" in response.json()["detail"]
    assert client.get(f"/quarantine/{entry_id}").status_code == 200
    assert client.get(f"/quarantine/{entry_id}/object").content == incomplete.short_native()


def test_quarantine_delete_removes_bytes_and_entry(client: TestClient, settings: Settings) -> None:
    entry_id = _quarantined(client, incomplete.header_only())
    assert client.delete(f"/quarantine/{entry_id}").status_code == 204
    assert client.get(f"/quarantine/{entry_id}").status_code == 404
    assert stored_objects(settings) == {}
    assert client.get("/quarantine").json()["total"] == 0


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("GET", ""), ("GET", "/object"), ("POST", "/release"), ("DELETE", "")],
)
def test_quarantine_unknown_entry_404(client: TestClient, method: str, suffix: str) -> None:
    response = client.request(method, f"/quarantine/0123456789abcdef{suffix}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "0123456789abcdef" in response.json()["detail"]


def test_quarantine_malformed_entry_id_400(client: TestClient) -> None:
    """An id that is not 16 hex digits never reaches the store (no key built from it)."""
    response = client.get("/quarantine/..studies")
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert "entry_id" in response.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/quarantine"),
        ("GET", "/quarantine/0123456789abcdef"),
        ("GET", "/quarantine/0123456789abcdef/object"),
        ("POST", "/quarantine/0123456789abcdef/release"),
        ("DELETE", "/quarantine/0123456789abcdef"),
    ],
)
def test_quarantine_without_admin_scope_403(client: TestClient, method: str, path: str) -> None:
    """A caller without the admin scope is refused (the principal is what the authentication
    middleware would set; it is being built in parallel, so the dependency is overridden)."""
    reader = Principal("radiologist", frozenset({Scope.READ, Scope.WRITE}), "test")
    client.app.dependency_overrides[get_principal] = lambda: reader  # type: ignore[attr-defined]
    try:
        response = client.request(method, path)
    finally:
        client.app.dependency_overrides.clear()  # type: ignore[attr-defined]
    assert response.status_code == 403
    assert "admin" in response.json()["detail"]


def test_stow_quarantine_names_authenticated_subject(client: TestClient) -> None:
    """The entry records who sent it: the principal's subject."""
    modality = Principal("ct-scanner-1", frozenset({Scope.WRITE, Scope.ADMIN}), "api-key")
    client.app.dependency_overrides[get_principal] = lambda: modality  # type: ignore[attr-defined]
    try:
        entry_id = _quarantined(client, incomplete.header_only())
        assert client.get(f"/quarantine/{entry_id}").json()["source_subject"] == "ct-scanner-1"
    finally:
        client.app.dependency_overrides.clear()  # type: ignore[attr-defined]
