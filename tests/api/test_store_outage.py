"""An object store outage is a 503 with Retry-After that stores nothing, and the API recovers by
itself when the store returns (no restart)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pacs_api.main import create_app
from pacs_api.settings import Settings

from tests.support.dicom import ct_instances, stow
from tests.support.seaweedfs import SeaweedFS


@pytest.fixture
def own_seaweedfs(tmp_path: Path) -> Iterator[SeaweedFS]:
    """A SeaweedFS of this test's own, as the test stops it."""
    with SeaweedFS(tmp_path / "seaweedfs") as server:
        yield server


def test_stow_while_store_down_503_then_recovers(own_seaweedfs: SeaweedFS, tmp_path: Path) -> None:
    """With the S3 server stopped, STOW answers 503 with Retry-After and a reason, /readyz says
    the store is unavailable, and nothing is indexed; once the server is back, the same
    request succeeds on the same app."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'index.sqlite3'}",
        store_url=own_seaweedfs.store_url("outage"),
        s3_access_key=own_seaweedfs.access_key,
        s3_secret_key=own_seaweedfs.secret_key,
    )
    instances = ct_instances(3, seed=21)
    with TestClient(create_app(settings)) as client:
        own_seaweedfs.stop(timeout=5)
        response = stow(client, instances)
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"]
        assert "object store is unavailable" in response.json()["detail"]
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["store"] == "unavailable"
        assert client.get("/dicom-web/studies").json() == []

        own_seaweedfs.start()
        again = stow(client, instances)
        assert again.status_code == 200, again.text
        assert client.get("/readyz").status_code == 200
