"""The audit trail (PS3.15 A.5, IHE ATNA) on the real app, on both deployments: every access
recorded with who, from where, what and how it ended, in the table and once in the JSON-lines
stream; the table refuses UPDATE and DELETE; admins search it; the bridge appends to it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from fastapi.testclient import TestClient
from pacs_api.main import create_app
from pacs_api.settings import Settings
from pacs_common.auth import Scope
from pacs_common.auth.api_keys import key_digest, new_api_key
from pacs_common.auth.settings import ApiKeyEntry
from pacs_common.database import make_engine
from pydantic import SecretStr
from pydicom.sr.codedict import codes

from tests.support.dicom import ct_datasets, stow
from tests.support.dicom import ct_instances as instances

QUERY = str(codes.DCM.Query.value)
TRANSFERRED = str(codes.DCM.DICOMInstancesTransferred.value)
ACCESSED = str(codes.DCM.DICOMInstancesAccessed.value)
DELETED = str(codes.DCM.DICOMStudyDeleted.value)
EXPORT = str(codes.DCM.Export.value)
IMPORT = str(codes.DCM.Import.value)
ALERT = str(codes.DCM.SecurityAlert.value)
LOG_USED = str(codes.DCM.AuditLogUsed.value)


@pytest.fixture
def audit_path(tmp_path: Path) -> Path:
    return tmp_path / "audit" / "audit.jsonl"


@pytest.fixture
def api(settings: Settings, audit_path: Path) -> Iterator[TestClient]:
    configured = settings.model_copy(
        update={"audit_log_path": audit_path, "deidentify_secret": SecretStr("x" * 24)}
    )
    with TestClient(create_app(configured), base_url="http://testserver") as client:
        yield client


#: API keys of a reader and an administrator, for the authenticated app.
ALICE, ROOT = new_api_key(), new_api_key()


@pytest.fixture
def authenticated(settings: Settings, audit_path: Path) -> Iterator[TestClient]:
    """The API with authentication on: alice reads, root administers."""
    keys = [
        ApiKeyEntry(name="alice", sha256=key_digest(ALICE), scopes=frozenset({Scope.READ})),
        ApiKeyEntry(name="root", sha256=key_digest(ROOT), scopes=frozenset({Scope.ADMIN})),
    ]
    configured = settings.model_copy(update={"audit_log_path": audit_path, "auth_api_keys": keys})
    with TestClient(create_app(configured), base_url="http://testserver") as client:
        yield client


def _events(api: TestClient, **params: Any) -> list[dict[str, Any]]:
    answer = api.get("/audit", params={"limit": 1000, **params})
    assert answer.status_code == 200, answer.text
    events: list[dict[str, Any]] = answer.json()["events"]
    return events


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_stow_query_retrieve_recorded_once_in_table_and_stream(
    api: TestClient, audit_path: Path
) -> None:
    datasets = ct_datasets(3, patient_id="AUD-1")
    study = str(datasets[0].StudyInstanceUID)
    series = str(datasets[0].SeriesInstanceUID)
    sops = [str(ds.SOPInstanceUID) for ds in datasets]
    assert stow(api, instances(3, patient_id="AUD-1")).status_code == 200
    assert api.get("/dicom-web/studies", params={"PatientID": "AUD-1"}).status_code == 200
    assert api.get(f"/dicom-web/studies/{study}/series/{series}/metadata").status_code == 200
    retrieved = api.get(
        f"/dicom-web/studies/{study}/series/{series}/instances/{sops[0]}",
        headers={"Accept": 'multipart/related; type="application/dicom"'},
    )
    assert retrieved.status_code == 200

    events = _events(api)
    # newest first; reading the log (the call above) is not yet in its own answer
    assert [e["event_id"] for e in events] == [TRANSFERRED, ACCESSED, QUERY, TRANSFERRED]
    retrieve, metadata, query, stored = events
    assert stored["action"] == "C" and stored["outcome"] == 0
    assert stored["study_uid"] == study and stored["series_uids"] == [series]
    assert sorted(stored["sop_instance_uids"]) == sorted(sops) and stored["instance_count"] == 3
    assert stored["http_method"] == "POST" and stored["route"] == "/dicom-web/studies"
    assert stored["http_status"] == 200 and stored["source"] == "api"
    assert stored["user_id"] == "anonymous" and stored["user_method"] == "none"
    assert stored["network_address"] == "testclient" and stored["request_id"]
    assert query["query"] == "PatientID=AUD-1" and query["action"] == "E"
    assert metadata["route"] == "/dicom-web/studies/{study}/series/{series}/metadata"
    assert metadata["study_uid"] == study and metadata["series_uids"] == [series]
    assert retrieve["action"] == "R" and retrieve["sop_instance_uids"] == [sops[0]]
    for event in events:
        assert datetime.fromisoformat(event["time"]).tzinfo is not None

    # The stream: the same events, each once, as DICOM audit messages; plus the log read.
    lines = _lines(audit_path)
    assert [m["EventIdentification"]["EventID"]["csd-code"] for m in lines] == [
        TRANSFERRED,
        QUERY,
        ACCESSED,
        TRANSFERRED,
        LOG_USED,
    ]
    assert [m["pacs"]["request_id"] for m in lines[:4]] == [e["request_id"] for e in events[::-1]]
    message = lines[0]
    assert message["EventIdentification"]["EventID"] == {
        "csd-code": TRANSFERRED,
        "codeSystemName": "DCM",
        "originalText": "DICOM Instances Transferred",
    }
    assert message["ActiveParticipant"][0]["UserID"] == "anonymous"
    assert message["AuditSourceIdentification"]["AuditSourceID"] == "pacs-cloud api"
    study_object = message["ParticipantObjectIdentification"][1]
    assert study_object["ParticipantObjectID"] == study
    assert study_object["ParticipantObjectIDTypeCode"]["csd-code"] == "110180"
    assert study_object["ParticipantObjectDescription"]["NumberOfInstances"] == 3
    assert message["ParticipantObjectIdentification"][0]["ParticipantObjectID"] == "AUD-1"

    log_used = _events(api, event=LOG_USED)
    assert len(log_used) == 1 and log_used[0]["query"] == "limit=1000"
    assert log_used[0]["action"] == "R"


def test_stow_partly_refused_records_stored_and_refused(api: TestClient) -> None:
    study = str(ct_datasets(1, seed=1)[0].StudyInstanceUID)
    other_study = instances(1, seed=2)  # a different study: refused in /studies/{study}
    answer = stow(api, [*instances(2, seed=1), *other_study], study=study)
    assert answer.status_code == 202
    stored, refused = sorted(_events(api, event=TRANSFERRED), key=lambda e: e["outcome"])
    assert stored["outcome"] == 0 and stored["instance_count"] == 2
    assert refused["outcome"] == 4 and refused["instance_count"] == 1
    assert "refused:" in refused["outcome_description"]
    assert refused["sop_instance_uids"] == [str(ct_datasets(1, seed=2)[0].SOPInstanceUID)]


def test_delete_and_deidentify_recorded_with_their_studies(api: TestClient) -> None:
    datasets = ct_datasets(2, seed=3)
    study = str(datasets[0].StudyInstanceUID)
    assert stow(api, instances(2, seed=3)).status_code == 200
    made = api.post(f"/studies/{study}/deidentify")
    assert made.status_code == 200, made.text
    new_study = made.json()["study_uid"]
    assert api.delete(f"/dicom-web/studies/{study}").status_code == 204
    assert api.delete(f"/dicom-web/studies/{study}").status_code == 404

    export = _events(api, event=EXPORT)
    assert len(export) == 1 and export[0]["study_uid"] == study
    assert export[0]["instance_count"] == 2
    imported = _events(api, event=IMPORT)
    assert len(imported) == 1 and imported[0]["study_uid"] == new_study
    assert imported[0]["action"] == "C"
    missing, deleted = _events(api, event=DELETED)
    assert deleted["outcome"] == 0 and deleted["action"] == "D"
    assert sorted(deleted["sop_instance_uids"]) == sorted(str(d.SOPInstanceUID) for d in datasets)
    assert missing["outcome"] == 4 and missing["http_status"] == 404
    assert missing["study_uid"] == study
    assert [e["study_uid"] for e in _events(api, study=study)] == [study] * 4


def test_audit_without_admin_403_recorded_as_security_alert(authenticated: TestClient) -> None:
    api = authenticated
    alice = {"Authorization": f"Bearer {ALICE}"}
    answer = api.get("/audit", headers=alice)
    assert answer.status_code == 403
    assert answer.headers["content-type"] == "application/problem+json"
    # appending needs the audit scope
    assert api.post("/audit", json=[], headers=alice).status_code == 403
    api.headers["Authorization"] = f"Bearer {ROOT}"
    alerts = _events(api, user="alice")
    assert [(e["event_id"], e["outcome"], e["http_status"]) for e in alerts] == [
        (ALERT, 4, 403),
        (ALERT, 4, 403),
    ]
    assert [(e["http_method"], e["route"]) for e in alerts] == [
        ("POST", "/audit"),
        ("GET", "/audit"),
    ]
    assert alerts[0]["user_method"] == "api-key" and alerts[0]["network_address"] == "testclient"


def test_audit_bad_credential_401_recorded_as_failed_authentication(
    authenticated: TestClient,
) -> None:
    """A request with a credential nobody issued is answered 401 and recorded as a failed
    User Authentication (DCM 110114), from the address it came from."""
    api = authenticated
    assert (
        api.get("/dicom-web/studies", headers={"Authorization": "Bearer nope"}).status_code == 401
    )
    api.headers["Authorization"] = f"Bearer {ROOT}"
    failed = _events(api, event=str(codes.DCM.UserAuthentication.value))
    assert [(e["outcome"], e["http_status"], e["network_address"]) for e in failed] == [
        (4, 401, "testclient")
    ]


def test_audit_filters_and_pages_newest_first(api: TestClient) -> None:
    for seed in (10, 11, 12):
        stow(api, instances(1, seed=seed))
    api.get("/dicom-web/studies", params={"PatientID": "nobody"})
    page = api.get("/audit", params={"event": TRANSFERRED, "limit": 2}).json()
    assert page["total"] == 3 and len(page["events"]) == 2
    rest = api.get("/audit", params={"event": TRANSFERRED, "limit": 2, "offset": 2}).json()
    assert len(rest["events"]) == 1
    ordered = [*page["events"], *rest["events"]]
    assert [e["time"] for e in ordered] == sorted((e["time"] for e in ordered), reverse=True)
    assert [e["study_uid"] for e in ordered][::-1] == [
        str(ct_datasets(1, seed=s)[0].StudyInstanceUID) for s in (10, 11, 12)
    ]
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert api.get("/audit", params={"since": later.isoformat()}).json()["total"] == 0
    everything = api.get("/audit", params={"until": later.isoformat()}).json()["total"]
    assert everything >= 4
    assert _events(api, source="dimse-bridge") == []
    assert len(_events(api, outcome=0, event=QUERY)) == 1
    assert _events(api, user="nobody") == []
    bad = api.get("/audit", params={"event": "999999"})
    assert bad.status_code == 400 and "not an audit event" in bad.json()["detail"]
    naive = api.get("/audit", params={"since": "2025-01-01T00:00:00"})
    assert naive.status_code == 400 and "UTC offset" in naive.json()["detail"]


def _bridge_record(**changes: Any) -> dict[str, Any]:
    record = {
        "time": "2025-03-04T05:06:07.123456Z",
        "event_id": TRANSFERRED,
        "action": "C",
        "outcome": 0,
        "user_id": "CT_SCANNER",
        "user_method": "ae",
        "network_address": "10.1.2.3",
        "calling_ae": "CT_SCANNER",
        "called_ae": "PACS",
        "source": "dimse-bridge",
        "study_uid": "1.2.840.99.1",
        "sop_instance_uids": ["1.2.840.99.1.1"],
        "instance_count": 1,
        "dimse_command": "C-STORE",
        "dimse_status": 0,
    }
    return record | changes


def test_post_audit_appends_valid_records_refuses_bad_400(
    api: TestClient, audit_path: Path
) -> None:
    for bad, reason in (
        ([_bridge_record(study_uid="1.2.abc")], "not a valid UID"),
        ([_bridge_record(event_id="123")], "not an audit event"),
        ([_bridge_record(source="api")], "only the API"),
        ([_bridge_record(instance_count=0)], "instance_count"),
        ([_bridge_record(time="2025-03-04T05:06:07")], "UTC offset"),
        ([_bridge_record(), _bridge_record(surprise=1)], "surprise"),
    ):
        answer = api.post("/audit", json=bad)
        assert answer.status_code == 400, answer.text
        assert reason in answer.json()["detail"]
    assert _events(api, source="dimse-bridge") == []

    before = datetime.now(UTC)
    answer = api.post("/audit", json=[_bridge_record(), _bridge_record(event_id=QUERY)])
    assert answer.status_code == 201 and answer.json() == {"appended": 2}
    stored = _events(api, source="dimse-bridge")
    assert [e["event_id"] for e in stored] == [QUERY, TRANSFERRED]
    record = stored[1]
    assert record["time"] == "2025-03-04T05:06:07.123456Z"
    assert datetime.fromisoformat(record["received_at"]) >= before - timedelta(seconds=1)
    assert record["calling_ae"] == "CT_SCANNER" and record["sop_instance_uids"] == [
        "1.2.840.99.1.1"
    ]
    messages = [m for m in _lines(audit_path) if "dimse-bridge" in str(m)]
    assert len(messages) == 2
    assert messages[0]["ActiveParticipant"][0]["AlternativeUserID"] == "AETITLE=CT_SCANNER"
    assert messages[0]["ActiveParticipant"][1]["UserID"] == "PACS"


def test_audit_rows_refuse_update_and_delete(api: TestClient, settings: Settings) -> None:
    api.get("/dicom-web/studies")
    assert api.app.state.audit.flush(30)  # type: ignore[attr-defined]  # the group commit
    engine = make_engine(settings.database_url)
    try:
        for statement in (
            "UPDATE audit_event SET user_id = 'someone-else'",
            "DELETE FROM audit_event",
        ):
            with pytest.raises(sqlalchemy.exc.DatabaseError, match="append-only"):
                with engine.begin() as connection:
                    connection.execute(sqlalchemy.text(statement))
        if engine.dialect.name == "postgresql":
            with pytest.raises(sqlalchemy.exc.DatabaseError, match="append-only"):
                with engine.begin() as connection:
                    connection.execute(sqlalchemy.text("TRUNCATE audit_event"))
        with engine.connect() as connection:
            users = connection.execute(sqlalchemy.text("SELECT user_id FROM audit_event"))
            assert users.scalars().all() == ["anonymous"]
    finally:
        engine.dispose()
    paths = api.get("/openapi.json").json()["paths"]
    assert [path for path in paths if "audit" in path] == ["/audit"]
    assert set(paths["/audit"]) == {"get", "post"}
    assert api.delete("/audit").status_code == 405
    assert api.put("/audit", json=[]).status_code == 405


def test_audit_post_empty_list_appends_nothing(api: TestClient) -> None:
    """An empty batch is a valid request that appends nothing (found by schemathesis: it was
    a 500, an empty INSERT)."""
    before = api.get("/audit", params={"source": "dimse-bridge"}).json()["total"]
    answer = api.post("/audit", json=[])
    assert answer.status_code == 201, answer.text
    assert api.get("/audit", params={"source": "dimse-bridge"}).json()["total"] == before


def test_probes_metrics_ui_not_audited(api: TestClient) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/ui/", "/usage"):
        assert api.get(path).status_code == 200, path
    assert api.get("/changefeed").status_code == 200  # an idle poll
    assert _events(api) == []


def test_database_down_record_kept_in_stream_error_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The index database unreachable (a PostgreSQL port nobody listens on): the record goes
    to the stream at once; the table is retried until the stop, then an error names the
    record's request id as not in the table (tests/api/test_audit_writer.py: the database
    coming back)."""
    from pacs_api.audit.log import AuditLog
    from pacs_common.audit import AuditRecord

    from tests.support.server import free_port

    engine = make_engine(f"postgresql://pacs@127.0.0.1:{free_port()}/nothing?connect_timeout=2")
    log = AuditLog(engine, tmp_path / "audit.jsonl")
    log.writer.close_wait = 0.5
    record = AuditRecord.model_validate(_bridge_record(request_id="rid-1"))
    with caplog.at_level("INFO"):
        log.append([record])
        [line] = _lines(tmp_path / "audit.jsonl")  # in the stream before append returned
        assert not log.flush(timeout=0.3)
        log.close()
    engine.dispose()
    assert line["pacs"]["request_id"] == "rid-1"
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert "cannot take audit records now" in errors[0].getMessage()
    assert "1 audit record(s) not stored in the audit_event table" in errors[-1].getMessage()
    assert errors[-1].request_ids == ["rid-1"]  # type: ignore[attr-defined]
    streamed = [r for r in caplog.records if r.name == "pacs.audit"]
    assert len(streamed) == 1 and streamed[0].audit == line  # type: ignore[attr-defined]
