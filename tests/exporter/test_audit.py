"""The exporter's accesses in the audit trail (issue 6; PS3.15 A.5): a real API that requires
keys, a real exporter with keys of its own and its own key at the API (read, write, audit).

Users ask for a mesh of a CT series, download it, list, view and delete jobs; the API's
``GET /audit`` (an admin's key) shows the exporter's records with the user who did it, the
study and series, the outcome; refused requests (401, 403) are recorded too. With the API down
the records wait in the exporter's outbox and arrive once it is back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pacs_api.settings import Settings as ApiSettings
from pacs_common.audit_outbox import OutboxAudit
from pacs_common.auth.api_keys import key_digest, new_api_key
from pacs_common.client import DicomWebClient
from pacs_common.synthetic import to_bytes
from pacs_exporter.settings import Settings
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from tests.auth.conftest import bearer
from tests.exporter.service import (
    WAIT_SECONDS,
    exporter_settings,
    phantom,
    request,
    running_exporter,
)
from tests.support.server import free_port, running_api

ACCESSED = str(codes.DCM.DICOMInstancesAccessed.value)
EXPORT = str(codes.DCM.Export.value)
QUERY = str(codes.DCM.Query.value)
ALERT = str(codes.DCM.SecurityAlert.value)
AUTHENTICATION = str(codes.DCM.UserAuthentication.value)
TRANSFERRED = str(codes.DCM.DICOMInstancesTransferred.value)

#: Keys at the API: the exporter's own (it reads series and delivers its audit records), an
#: operator who stores the phantom, an admin who reads the trail.
EXPORTER_KEY = new_api_key()
OPERATOR_KEY = new_api_key()
ADMIN_KEY = new_api_key()
#: Keys at the exporter: a radiographer who asks for meshes, a viewer who may only look.
RADIOGRAPHER_KEY = new_api_key()
VIEWER_KEY = new_api_key()


def api_settings(directory: Path) -> ApiSettings:
    return ApiSettings(
        database_url=f"sqlite:///{directory / 'index.sqlite3'}",
        store_url=f"file://{directory / 'objects'}",
        auth_api_keys=[
            {
                "name": "exporter",
                "sha256": key_digest(EXPORTER_KEY),
                "scopes": ["read", "write", "audit"],
            },
            {"name": "operator", "sha256": key_digest(OPERATOR_KEY), "scopes": ["write"]},
            {"name": "admin", "sha256": key_digest(ADMIN_KEY), "scopes": ["admin"]},
        ],
    )


def exporter(directory: Path, dicomweb_url: str, **overrides: Any) -> Settings:
    """The exporter's settings: its users' keys, its key at the API, a fast outbox."""
    return exporter_settings(
        directory,
        dicomweb_url,
        dicomweb_token=EXPORTER_KEY,
        auth_api_keys=[
            {
                "name": "radiographer",
                "sha256": key_digest(RADIOGRAPHER_KEY),
                "scopes": ["read", "write"],
            },
            {"name": "viewer", "sha256": key_digest(VIEWER_KEY), "scopes": ["read"]},
        ],
        audit_log_path=directory / "exporter-audit.jsonl",
        audit_interval=0.1,
        audit_retry_initial=0.1,
        audit_retry_max=0.3,
        **overrides,
    )


@dataclass
class Trail:
    api_root: str

    def events(self, **params: Any) -> list[dict[str, Any]]:
        """The audit trail read with the admin's key, oldest first."""
        answer = httpx.get(
            f"{self.api_root}/audit",
            params={"limit": 1000, **params},
            headers=bearer(ADMIN_KEY),
            timeout=30,
        )
        answer.raise_for_status()
        events: list[dict[str, Any]] = answer.json()["events"]
        return events[::-1]


def wait_for(check: Callable[[], bool], what: str, seconds: float = WAIT_SECONDS) -> None:
    """Poll until *check* holds (the outbox is posted in the background); fail naming *what*."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"never happened: {what}")
        time.sleep(0.1)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[str]:
    with running_api(api_settings(tmp_path)) as url:
        yield url


@pytest.fixture
def ct(api: str) -> tuple[str, str]:
    datasets = phantom()
    with httpx.Client(timeout=60) as http:
        DicomWebClient(http, api, token=OPERATOR_KEY).store(
            [to_bytes(ds) for ds in datasets], study_uid=datasets[0].StudyInstanceUID
        ).raise_for_failures()
    return str(datasets[0].StudyInstanceUID), str(datasets[0].SeriesInstanceUID)


def one(events: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    found = [e for e in events if all(e[key] == value for key, value in match.items())]
    assert len(found) == 1, (match, [(e["event_id"], e["route"], e["user_id"]) for e in events])
    return found[0]


def test_export_requested_downloaded_and_refused_recorded_with_the_user_succeeds(
    api: str, ct: tuple[str, str], tmp_path: Path
) -> None:
    study, series = ct
    trail = Trail(api.removesuffix("/dicom-web"))
    with running_exporter(exporter(tmp_path, api)) as client:
        user = bearer(RADIOGRAPHER_KEY)
        created = client.post("/exports", json=request(study, series), headers=user)
        assert created.status_code == 202, created.text
        job_id = created.json()["id"]
        deadline = time.monotonic() + WAIT_SECONDS
        while client.get(f"/exports/{job_id}", headers=user).json()["state"] != "succeeded":
            assert time.monotonic() < deadline, "the job did not succeed"
            time.sleep(0.1)
        download = client.get(f"/exports/{job_id}/file", headers=user)
        assert download.status_code == 200 and download.content
        listed = client.get("/exports", params={"series": series}, headers=user)
        assert listed.status_code == 200
        refused = client.post("/exports", json=request(study, series), headers=bearer(VIEWER_KEY))
        assert refused.status_code == 403
        assert client.get(f"/exports/{job_id}/file").status_code == 401
        assert client.delete(f"/exports/{job_id}", headers=user).status_code == 204
        audit: OutboxAudit = client.app.state.audit  # type: ignore[attr-defined]
        wait_for(lambda: audit.writer.flush(5) and audit.outbox.count() == 0, "outbox emptied")

    events = trail.events(source="exporter")
    assert {e["source"] for e in events} == {"exporter"}
    requested = one(events, event_id=ACCESSED, action="C")
    assert requested["user_id"] == "radiographer" and requested["user_method"] == "api-key"
    assert requested["outcome"] == 0 and requested["http_status"] == 202
    assert requested["study_uid"] == study and requested["series_uids"] == [series]
    assert f"export job {job_id}" in requested["outcome_description"]
    assert "format stl" in requested["outcome_description"]
    assert requested["network_address"] and requested["request_id"]

    exported = one(events, event_id=EXPORT)  # the mesh left the system, to the radiographer
    assert exported["user_id"] == "radiographer" and exported["outcome"] == 0
    assert exported["action"] == "R" and exported["route"] == "/exports/{job_id}/file"
    assert exported["study_uid"] == study and exported["series_uids"] == [series]

    viewed = [e for e in events if e["event_id"] == ACCESSED and e["action"] == "R"]
    assert viewed and all(e["series_uids"] == [series] for e in viewed)
    query = one(events, event_id=QUERY)
    assert query["query"] == f"series={series}" and query["user_id"] == "radiographer"
    deleted = one(events, event_id=ACCESSED, action="D")
    assert deleted["user_id"] == "radiographer" and deleted["http_status"] == 204
    assert deleted["study_uid"] == study

    alert = one(events, event_id=ALERT)  # the viewer lacks 'write'
    assert alert["user_id"] == "viewer" and alert["outcome"] == 4
    assert alert["http_status"] == 403 and alert["route"] == "/exports"
    anonymous = one(events, event_id=AUTHENTICATION)
    assert anonymous["outcome"] == 4 and anonymous["http_status"] == 401
    assert f"export job {job_id}" in anonymous["outcome_description"]

    # the worker's reads at the API: the exporter's own key, the job's id as request id
    reads = [e for e in trail.events(source="api", user="exporter") if e["request_id"] == job_id]
    assert reads and all(e["user_id"] == "exporter" for e in reads)
    assert any(e["event_id"] == TRANSFERRED and e["study_uid"] == study for e in reads)

    # the same records, as DICOM audit messages, in the exporter's JSON-lines stream
    lines = (tmp_path / "exporter-audit.jsonl").read_text().splitlines()
    messages = [json.loads(line) for line in lines]
    assert len(messages) == len(events)
    assert {m["AuditSourceIdentification"]["AuditSourceID"] for m in messages} == {
        "pacs-cloud exporter"
    }
    export = next(m for m in messages if m["EventIdentification"]["EventID"]["csd-code"] == EXPORT)
    assert export["ActiveParticipant"][0]["UserID"] == "radiographer"
    (target,) = export["ParticipantObjectIdentification"]
    assert target["ParticipantObjectID"] == study
    assert target["ParticipantObjectDescription"]["Series"] == [series]


def test_records_kept_while_the_api_is_down_then_delivered(tmp_path: Path) -> None:
    """The API is not running: the exporter answers its users and keeps their records in the
    outbox of its jobs' database; once the API runs, they all arrive and the outbox empties."""
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/dicom-web"
    study, series = generate_uid(), generate_uid()
    settings = exporter(tmp_path, api_url, workers=0)  # the job stays queued: no worker
    with running_exporter(settings) as client:
        audit: OutboxAudit = client.app.state.audit  # type: ignore[attr-defined]
        user = bearer(RADIOGRAPHER_KEY)
        created = client.post("/exports", json=request(study, series), headers=user)
        assert created.status_code == 202, created.text
        job_id = created.json()["id"]
        refused = client.delete(f"/exports/{job_id}", headers=bearer(VIEWER_KEY))
        assert refused.status_code == 403
        wait_for(lambda: audit.writer.flush(5) and audit.outbox.count() == 2, "two kept")
        wait_for(lambda: audit.sender.failures > 0, "a delivery attempt failed")
        with running_api(api_settings(tmp_path), port) as url:
            wait_for(lambda: audit.outbox.count() == 0, "the outbox delivered once the API ran")
            events = Trail(url.removesuffix("/dicom-web")).events(source="exporter")
    assert [(e["event_id"], e["user_id"], e["outcome"]) for e in events] == [
        (ACCESSED, "radiographer", 0),
        (ALERT, "viewer", 4),
    ]
    assert events[0]["series_uids"] == [series] and events[1]["route"] == "/exports/{job_id}"
    for event in events:  # recorded while the API was down, received after
        assert datetime.fromisoformat(event["received_at"]) > datetime.fromisoformat(event["time"])
