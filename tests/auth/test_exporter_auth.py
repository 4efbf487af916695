"""The mesh exporter with authentication on both sides: its callers present keys with the
read or write scope, and it presents its own token (dicomweb_token) to an API that requires
one."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pacs_api.settings import Settings as ApiSettings
from pacs_common.auth import Scope
from pacs_common.auth.api_keys import key_digest, new_api_key
from pacs_common.client import DicomWebClient
from pacs_common.synthetic import to_bytes

from tests.auth.conftest import bearer
from tests.exporter.service import (
    WAIT_SECONDS,
    exporter_settings,
    phantom,
    request,
    running_exporter,
)
from tests.support.server import running_api

#: The exporter's own key at the API: it reads series and may store meshes back.
EXPORTER_KEY = new_api_key()
OPERATOR_KEY = new_api_key()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[str]:
    """A real API (uvicorn) that requires a token: the exporter's key and an operator's."""
    settings = ApiSettings(
        database_url=f"sqlite:///{tmp_path / 'index.sqlite3'}",
        store_url=f"file://{tmp_path / 'objects'}",
        auth_api_keys=[
            {
                "name": "exporter",
                "sha256": key_digest(EXPORTER_KEY),
                "scopes": ["read", "write", "audit"],
            },
            {"name": "operator", "sha256": key_digest(OPERATOR_KEY), "scopes": ["write"]},
        ],
    )
    with running_api(settings) as url:
        yield url


@pytest.fixture
def ct(api: str) -> tuple[str, str]:
    datasets = phantom()
    with httpx.Client(timeout=60) as http:
        DicomWebClient(http, api, token=OPERATOR_KEY).store(
            [to_bytes(ds) for ds in datasets], study_uid=datasets[0].StudyInstanceUID
        ).raise_for_failures()
    return str(datasets[0].StudyInstanceUID), str(datasets[0].SeriesInstanceUID)


def exporter_keys() -> tuple[dict[Scope, str], list[dict[str, object]]]:
    keys = {Scope.READ: new_api_key(), Scope.WRITE: new_api_key()}
    entries: list[dict[str, object]] = [
        {"name": f"{scope.value}-user", "sha256": key_digest(key), "scopes": [scope.value]}
        for scope, key in keys.items()
    ]
    return keys, entries


def wait_until_finished(client: TestClient, job_id: str, key: str) -> dict[str, object]:
    """Poll the job with *key* until it is finished (bounded: a guard against hanging)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        job: dict[str, object] = client.get(f"/exports/{job_id}", headers=bearer(key)).json()
        if job["state"] in ("succeeded", "failed", "cancelled") or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


def test_exporter_scopes_and_token_to_the_api_succeeds(
    api: str, ct: tuple[str, str], tmp_path: Path
) -> None:
    keys, entries = exporter_keys()
    settings = exporter_settings(tmp_path, api, auth_api_keys=entries, dicomweb_token=EXPORTER_KEY)
    with running_exporter(settings) as client:
        body = request(*ct)
        assert client.post("/exports", json=body).status_code == 401
        refused = client.post("/exports", json=body, headers=bearer(keys[Scope.READ]))
        assert refused.status_code == 403
        assert "'write'" in refused.json()["detail"]
        created = client.post("/exports", json=body, headers=bearer(keys[Scope.WRITE]))
        assert created.status_code == 202, created.text
        job_id = created.json()["id"]
        assert (
            client.get(f"/exports/{job_id}", headers=bearer(keys[Scope.WRITE])).status_code == 403
        )
        assert client.get("/presets", headers=bearer(keys[Scope.READ])).status_code == 200
        job = wait_until_finished(client, job_id, keys[Scope.READ])
        assert job["state"] == "succeeded", job
        download = client.get(f"/exports/{job_id}/file", headers=bearer(keys[Scope.READ]))
        assert download.status_code == 200 and download.content
        for public in ("/healthz", "/readyz", "/metrics"):
            assert client.get(public).status_code == 200, public


def test_exporter_with_a_wrong_token_at_the_api_fails_naming_401(
    api: str, ct: tuple[str, str], tmp_path: Path
) -> None:
    settings = exporter_settings(tmp_path, api, dicomweb_token=new_api_key())
    with running_exporter(settings) as client:  # no auth of its own: loopback, anonymous
        created = client.post("/exports", json=request(*ct))
        assert created.status_code == 202, created.text
        job = wait_until_finished(client, created.json()["id"], "")
        assert job["state"] == "failed"
        assert "401" in str(job), job
