"""The bridge's audit trail (PS3.15 A.5): DCMTK echoscu, storescu, findscu, getscu and movescu
against the real bridge; each association and operation arrives in the real API's audit log
(``GET /audit``) with the calling and called AE titles, the peer address and the UIDs, once
in the bridge's JSON-lines stream, and still arrives when the API was down meanwhile (the
outbox in the bridge's database)."""

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
from pacs_bridge.settings import Node
from pacs_common.synthetic import iter_ct_series, to_bytes
from pydicom.sr.codedict import codes

from tests.bridge.peers import dcmtk, findscu, peer_args, storescp
from tests.bridge.running import BRIDGE_AE, SCU, RunningBridge, api_settings, running_bridge
from tests.support.server import free_port, running_api

DESTINATION = "STORESCP"
STRANGER = "STRANGER"
AUTHENTICATION = str(codes.DCM.UserAuthentication.value)
ALERT = str(codes.DCM.SecurityAlert.value)
ACTIVITY = str(codes.DCM.ApplicationActivity.value)
TRANSFERRED = str(codes.DCM.DICOMInstancesTransferred.value)
QUERY = str(codes.DCM.Query.value)


@dataclass
class Site:
    bridge: RunningBridge
    api_root: str
    stream: Path

    def audit(self, **params: Any) -> list[dict[str, Any]]:
        answer = httpx.get(
            f"{self.api_root}/audit",
            params={"source": "dimse-bridge", "limit": 1000, **params},
            timeout=30,
        )
        answer.raise_for_status()
        events: list[dict[str, Any]] = answer.json()["events"]
        return events[::-1]  # oldest first


def wait_for(check: Callable[[], bool], what: str, seconds: float = 60) -> None:
    """Poll until *check* holds (the bridge posts in the background); fail naming *what*."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"never happened: {what}")
        time.sleep(0.1)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    received = tmp_path / "received"
    received.mkdir()
    stream = tmp_path / "bridge-audit.jsonl"
    with (
        storescp(DESTINATION, received) as scp_port,
        running_api(api_settings(tmp_path)) as api_url,
        running_bridge(
            api_url,
            nodes={DESTINATION: Node(host="127.0.0.1", port=scp_port)},
            audit_log_path=stream,
            audit_interval=0.1,
            audit_retry_initial=0.1,
            audit_retry_max=0.5,
        ) as bridge,
    ):
        yield Site(bridge, api_url.removesuffix("/dicom-web"), stream)


def _ct_files(directory: Path, n: int, seed: int) -> tuple[list[Path], list[Any]]:
    directory.mkdir()
    datasets = list(iter_ct_series(n, 32, 32, patient_id=f"AUDIT-{seed}", seed=seed))
    paths = []
    for number, ds in enumerate(datasets):
        path = directory / f"{number}.dcm"
        path.write_bytes(to_bytes(ds))
        paths.append(path)
    return paths, datasets


def test_dcmtk_operations_arrive_in_the_api_audit_log(site: Site, tmp_path: Path) -> None:
    bridge = site.bridge
    assert dcmtk("echoscu", *peer_args(bridge, SCU)).returncode == 0
    rejected = dcmtk("echoscu", *peer_args(bridge, STRANGER))
    assert rejected.returncode != 0
    paths, datasets = _ct_files(tmp_path / "ct", 3, seed=41)
    study = str(datasets[0].StudyInstanceUID)
    sops = [str(ds.SOPInstanceUID) for ds in datasets]
    stored = dcmtk("storescu", *peer_args(bridge, SCU), *paths)
    assert stored.returncode == 0, stored.stderr
    proc, answers = findscu(
        bridge,
        SCU,
        "study",
        ["QueryRetrieveLevel=STUDY", "PatientID=AUDIT-41", "StudyInstanceUID"],
        tmp_path / "find",
    )
    assert proc.returncode == 0 and len(answers) == 1
    (tmp_path / "get").mkdir()
    got = dcmtk(
        "getscu",
        "-S",
        "-od",
        tmp_path / "get",
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        f"StudyInstanceUID={study}",
        *peer_args(bridge, SCU),
    )
    assert got.returncode == 0, got.stderr
    moved = dcmtk(
        "movescu",
        "-S",
        "-aem",
        DESTINATION,
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        f"StudyInstanceUID={study}",
        *peer_args(bridge, SCU),
    )
    assert moved.returncode == 0, moved.stderr

    operations = ("C-ECHO", "C-STORE", "C-FIND", "C-GET", "C-MOVE")
    expected = {"C-ECHO": 1, "C-STORE": 3, "C-FIND": 1, "C-GET": 1, "C-MOVE": 1}

    def arrived() -> bool:
        events = site.audit()
        counts = {op: sum(e["dimse_command"] == op for e in events) for op in operations}
        return counts == expected

    wait_for(arrived, "every DIMSE operation in the API's audit log")
    events = site.audit()
    for event in events:
        assert event["source"] == "dimse-bridge"
        assert event["network_address"] == "127.0.0.1"
        assert event["called_ae"] == BRIDGE_AE, event
        assert event["request_id"]
    by_command: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_command.setdefault(event["dimse_command"], []).append(event)

    # associations: one accepted per tool run (the C-MOVE's association to the destination
    # is the bridge's own, not a peer's), one rejected
    accepted = [e for e in by_command["A-ASSOCIATE"] if e["event_id"] == AUTHENTICATION]
    [refused] = [e for e in by_command["A-ASSOCIATE"] if e["event_id"] == ALERT]
    assert {e["calling_ae"] for e in accepted} == {SCU} and len(accepted) == 5
    assert refused["calling_ae"] == STRANGER and refused["outcome"] == 4
    assert "rejected" in refused["outcome_description"]

    [echo] = by_command["C-ECHO"]
    assert echo["event_id"] == ACTIVITY and echo["outcome"] == 0 and echo["dimse_status"] == 0

    stores = by_command["C-STORE"]
    assert [e["sop_instance_uids"] for e in stores] == [[sop] for sop in sops]
    for event in stores:
        assert event["event_id"] == TRANSFERRED and event["action"] == "C"
        assert event["study_uid"] == study and event["patient_id"] == "AUDIT-41"
        assert event["user_id"] == SCU and event["calling_ae"] == SCU and event["outcome"] == 0

    [find] = by_command["C-FIND"]
    assert find["event_id"] == QUERY and find["patient_id"] == "AUDIT-41"
    assert "QueryRetrieveLevel=STUDY" in find["query"] and "PatientID=AUDIT-41" in find["query"]

    [get] = by_command["C-GET"]
    assert get["event_id"] == TRANSFERRED and get["action"] == "R" and get["outcome"] == 0
    assert get["study_uid"] == study and sorted(get["sop_instance_uids"]) == sorted(sops)
    assert get["instance_count"] == 3

    [move] = by_command["C-MOVE"]
    assert move["destination_ae"] == DESTINATION and move["study_uid"] == study
    assert move["instance_count"] == 3 and "3 completed" in move["outcome_description"]

    # the study filter finds the bridge's records of it
    assert len(site.audit(study=study)) == 3 + 1 + 1  # stores, get, move (find keys no UID)

    # the bridge's stream: each record once, as a DICOM audit message
    lines = [json.loads(line) for line in site.stream.read_text().splitlines()]
    assert sorted(m["pacs"]["request_id"] for m in lines) == sorted(e["request_id"] for e in events)
    move_message = next(m for m in lines if (m["pacs"]["dimse"] or {}).get("command") == "C-MOVE")
    assert move_message["ActiveParticipant"][0]["AlternativeUserID"] == f"AETITLE={SCU}"
    assert move_message["ActiveParticipant"][-1]["UserID"] == DESTINATION
    assert move_message["AuditSourceIdentification"]["AuditSourceID"] == "pacs-cloud dimse-bridge"


def test_records_kept_while_the_api_is_down_then_delivered(tmp_path: Path) -> None:
    """The API stopped: the bridge keeps its records in the outbox of its database (C-ECHO
    succeeds, C-STORE fails for want of the archive, both recorded); the API started again on
    the same port and database: they all arrive, and the outbox empties."""
    settings = api_settings(tmp_path)
    port = free_port()
    with running_api(settings, port) as api_url:
        root = api_url.removesuffix("/dicom-web")
        with running_bridge(
            api_url, audit_interval=0.1, audit_retry_initial=0.1, audit_retry_max=0.3
        ) as running:
            bridge = running.bridge
            outbox = bridge.audit.outbox
            site = Site(running, root, tmp_path / "unused")
            assert dcmtk("echoscu", *peer_args(running, SCU)).returncode == 0
            wait_for(lambda: len(site.audit()) == 2, "the first echo's records")
            wait_for(lambda: outbox.count() == 0, "the outbox emptied")

    paths, datasets = _ct_files(tmp_path / "ct", 1, seed=42)
    # The API is down now (its server stopped); a new bridge keeps its records meanwhile.
    with running_bridge(
        api_url,
        database_url=f"sqlite:///{tmp_path / 'bridge-down.sqlite3'}",
        audit_interval=0.1,
        audit_retry_initial=0.1,
        audit_retry_max=0.3,
    ) as running:
        outbox = running.bridge.audit.outbox
        assert dcmtk("echoscu", *peer_args(running, SCU)).returncode == 0
        dcmtk("storescu", *peer_args(running, SCU), *paths)  # refused: no archive to store to
        wait_for(lambda: outbox.count() == 4, "two associations and two operations kept")
        wait_for(lambda: running.bridge.audit.failures > 0, "a delivery attempt failed")
        with running_api(settings, port):
            wait_for(lambda: outbox.count() == 0, "the outbox delivered once the API is back")
            events = Site(running, root, tmp_path / "unused").audit()
    commands = [e["dimse_command"] for e in events]
    assert commands == ["A-ASSOCIATE", "C-ECHO", "A-ASSOCIATE", "C-ECHO", "A-ASSOCIATE", "C-STORE"]
    store = events[-1]
    assert store["outcome"] == 4 and store["dimse_status"] != 0
    assert store["sop_instance_uids"] == [str(datasets[0].SOPInstanceUID)]
    for event in events[2:]:  # recorded while the API was down, received after
        assert datetime.fromisoformat(event["received_at"]) > datetime.fromisoformat(event["time"])
