"""GET /usage: counts and bytes from the index, on both deployments."""

from __future__ import annotations

from fastapi.testclient import TestClient
from pacs_common.synthetic import synthetic_uid

from tests.support.dicom import ct_instances, stow


def test_usage_empty_archive_zero(client: TestClient) -> None:
    response = client.get("/usage")
    assert response.status_code == 200
    assert response.json() == {
        "patients": 0,
        "studies": 0,
        "series": 0,
        "instances": 0,
        "bytes": 0,
        "modalities": [],
    }


def test_usage_counts_two_studies_and_their_bytes(client: TestClient) -> None:
    """Two CT studies of two patients (3 and 2 slices): the counts, and bytes equal to the sum
    of the objects as sent."""
    first = ct_instances(3, seed=1, patient_id="P1", study_uid=synthetic_uid("usage", 1))
    second = ct_instances(2, seed=2, patient_id="P2", study_uid=synthetic_uid("usage", 2))
    for parts in (first, second):
        assert stow(client, parts).status_code == 200
    usage = client.get("/usage").json()
    size = sum(len(part) for part in first + second)
    assert usage == {
        "patients": 2,
        "studies": 2,
        "series": 2,
        "instances": 5,
        "bytes": size,
        "modalities": [{"modality": "CT", "series": 2, "instances": 5, "bytes": size}],
    }


def test_usage_after_study_deleted_not_counted(client: TestClient) -> None:
    study = synthetic_uid("usage", 3)
    assert stow(client, ct_instances(2, study_uid=study)).status_code == 200
    assert client.delete(f"/dicom-web/studies/{study}").status_code in (200, 204)
    usage = client.get("/usage").json()
    assert (usage["patients"], usage["studies"], usage["instances"], usage["bytes"]) == (0, 0, 0, 0)
