"""Store-and-forward routing: instances the archive stores go on to DICOM nodes by C-STORE
(PS3.4 Annex B), following the API's change feed, durably and at least once.

Destinations are real peers: DCMTK ``storescp`` and a recording pynetdicom SCP
(:class:`tests.bridge.peers.StoreSCP`) whose answers a test can script. Retries are set short
(0.1 s polls, backoff from 0.2 s to 1 s) so that a test waits seconds, not minutes; waits are
bounds on a condition, never timing assertions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from pacs_bridge.settings import Node
from pacs_common import statuses
from pacs_common.client import DicomWebClient
from pacs_common.synthetic import iter_ct_series, to_bytes
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, RLELossless

from tests.bridge.peers import dcmtk, peer_args, store_scp, storescp
from tests.bridge.running import SCU, RunningBridge, api_settings, running_bridge
from tests.bridge.test_store import data_set_bytes
from tests.support.server import free_port, running_api

PLANNING = "PLANNING"
BACKUP = "BACKUP"
FAST_RETRIES: dict[str, Any] = {
    "routing_poll_interval": 0.1,
    "routing_retry_initial": 0.2,
    "routing_retry_max": 1.0,
}


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    """Poll *condition* until it holds; fail naming *what* after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.05)


def routing(bridge: RunningBridge) -> dict[str, Any]:
    response = httpx.get(f"{bridge.bridge.admin_url}/routing", timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def destination(bridge: RunningBridge, title: str) -> dict[str, Any]:
    for row in routing(bridge)["destinations"]:
        if row["ae_title"] == title:
            found: dict[str, Any] = row
            return found
    return {"pending": 0, "delivered": 0, "failed": 0, "cancelled": 0}


def deliveries(bridge: RunningBridge, title: str, state: str | None = None) -> list[Any]:
    params = {"state": state} if state else {}
    response = httpx.get(
        f"{bridge.bridge.admin_url}/routing/destinations/{title}/deliveries",
        params=params,
        timeout=10,
    )
    assert response.status_code == 200, response.text
    body: list[Any] = response.json()
    return body


def series(n: int, *, seed: int, sender: str = "", modality: str = "CT") -> list[Dataset]:
    """*n* slices of a small CT series; *sender* as Sending AE Title (PS3.10 table 7.1-1)."""
    datasets = list(iter_ct_series(n, 32, 32, seed=seed))
    for ds in datasets:
        ds.Modality = modality
        if sender:
            ds.file_meta.SendingApplicationEntityTitle = sender
    return datasets


def stow(api_url: str, datasets: list[Dataset]) -> None:
    with httpx.Client(timeout=60) as http:
        DicomWebClient(http, api_url).store([to_bytes(ds) for ds in datasets]).raise_for_failures()


def stored_data_set(api_url: str, ds: Dataset) -> bytes:
    with httpx.Client(timeout=60) as http:
        (part,) = DicomWebClient(http, api_url).retrieve_instance(
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, transfer_syntax="*"
        )
    return data_set_bytes(part)


@pytest.fixture
def api_url(tmp_path: Path) -> Iterator[str]:
    with running_api(api_settings(tmp_path / "api")) as url:
        yield url


def test_routing_storescu_to_storescp_down_then_back_delivers_all(
    api_url: str, tmp_path: Path
) -> None:
    """A CT series sent by storescu from the routed calling AE reaches DCMTK storescp, which
    is down at first: the deliveries wait (pending, the destination in backoff with the reason
    shown), and all arrive once storescp listens on its port."""
    port = free_port()
    route = {"name": "ct-from-scu", "calling_ae": [SCU], "modality": ["CT"], "to": [PLANNING]}
    nodes = {PLANNING: Node(host="127.0.0.1", port=port)}
    files = []
    for ds in series(6, seed=61):
        path = tmp_path / f"{ds.SOPInstanceUID}.dcm"
        path.write_bytes(to_bytes(ds))
        files.append(path)
    with running_bridge(api_url, routes=[route], nodes=nodes, **FAST_RETRIES) as bridge:
        proc = dcmtk("storescu", *peer_args(bridge, SCU), *files)
        assert proc.returncode == 0, proc.stderr
        wait_until(
            lambda: destination(bridge, PLANNING).get("consecutive_failures", 0) >= 2,
            "the destination has failed twice",
        )
        down = destination(bridge, PLANNING)
        assert down["pending"] == 6 and down["delivered"] == 0
        assert "cannot be reached" in down["last_error"]
        assert down["next_attempt_at"] is not None
        received = tmp_path / "received"
        with storescp(PLANNING, received, port=port):
            wait_until(lambda: destination(bridge, PLANNING)["delivered"] == 6, "delivered")
        back = destination(bridge, PLANNING)
        assert back["pending"] == 0 and back["consecutive_failures"] == 0
        assert back["last_success_at"] is not None
    got = {str(pydicom.dcmread(path).SOPInstanceUID) for path in received.iterdir()}
    assert got == {path.stem for path in files}


def test_routing_sends_stored_bytes_in_series_order(api_url: str) -> None:
    """Each instance reaches the destination with the data set bytes the archive holds, in the
    transfer syntax it was stored in, in the order the series was stored."""
    datasets = series(12, seed=62)
    route = {"name": "all", "match_all": True, "to": [PLANNING]}
    with store_scp(PLANNING) as scp:
        nodes = {PLANNING: Node(host="127.0.0.1", port=scp.port)}
        with running_bridge(api_url, routes=[route], nodes=nodes, **FAST_RETRIES) as bridge:
            stow(api_url, datasets)
            wait_until(lambda: len(scp.received) == 12, "12 instances received")
            assert destination(bridge, PLANNING)["delivered"] == 12
    assert scp.uids == [ds.SOPInstanceUID for ds in datasets]
    for ds, (_, received, syntax) in zip(datasets, scp.received, strict=True):
        assert received == stored_data_set(api_url, ds)
        assert syntax == ds.file_meta.TransferSyntaxUID


def test_routing_rules_match_sender_and_modality_never_back_to_sender(api_url: str) -> None:
    """A route on the calling AE takes only what that AE sent; a route on modality only that
    modality; nothing goes back to the node it came from."""
    routes = [
        {"name": "from-scanner", "calling_ae": ["CT_SCANNER"], "to": [PLANNING]},
        {"name": "mr-to-backup", "modality": ["MR"], "to": [BACKUP]},
    ]
    scanner_ct = series(2, seed=63, sender="CT_SCANNER")
    other_ct = series(2, seed=64, sender="OTHER")
    mr_from_backup = series(1, seed=65, sender=BACKUP, modality="MR")
    mr = series(2, seed=66, modality="MR")
    with store_scp(PLANNING) as planning, store_scp(BACKUP) as backup:
        nodes = {
            PLANNING: Node(host="127.0.0.1", port=planning.port),
            BACKUP: Node(host="127.0.0.1", port=backup.port),
        }
        with running_bridge(api_url, routes=routes, nodes=nodes, **FAST_RETRIES) as bridge:
            for batch in (scanner_ct, other_ct, mr_from_backup, mr):
                stow(api_url, batch)
            wait_until(
                lambda: len(planning.received) == 2 and len(backup.received) == 2,
                "both destinations received their instances",
            )
            wait_until(lambda: routing(bridge)["cursor"] >= 7, "the whole feed was read")
            assert destination(bridge, PLANNING)["delivered"] == 2
            assert destination(bridge, BACKUP)["delivered"] == 2
            assert [d["route"] for d in deliveries(bridge, BACKUP)] == ["mr-to-backup"] * 2
    assert planning.uids == [ds.SOPInstanceUID for ds in scanner_ct]
    assert backup.uids == [ds.SOPInstanceUID for ds in mr]


def test_routing_refused_instance_failed_visible_then_retried(api_url: str) -> None:
    """A destination refusing one instance (0xA900, PS3.4 B.2.3) leaves it ``failed`` with
    the status and reason listed, while the others are delivered; ``POST .../retry`` puts it
    back and it is delivered once the destination accepts it."""
    datasets = series(3, seed=67)
    refused = str(datasets[1].SOPInstanceUID)
    answers = {refused: [statuses.DATA_SET_DOES_NOT_MATCH_SOP_CLASS]}
    route = {"name": "all", "match_all": True, "to": [PLANNING]}
    with store_scp(PLANNING, answers=answers) as scp:
        nodes = {PLANNING: Node(host="127.0.0.1", port=scp.port)}
        with running_bridge(api_url, routes=[route], nodes=nodes, **FAST_RETRIES) as bridge:
            stow(api_url, datasets)
            wait_until(lambda: destination(bridge, PLANNING)["failed"] == 1, "one failed")
            assert destination(bridge, PLANNING)["delivered"] == 2
            (failed,) = deliveries(bridge, PLANNING, "failed")
            assert failed["instance"] == refused
            assert failed["last_status"] == statuses.DATA_SET_DOES_NOT_MATCH_SOP_CLASS
            assert "refused (0xA900" in failed["last_error"]
            response = httpx.post(
                f"{bridge.bridge.admin_url}/routing/destinations/{PLANNING}/retry", timeout=10
            )
            assert response.json() == {"requeued": 1}
            wait_until(lambda: destination(bridge, PLANNING)["delivered"] == 3, "all delivered")
    assert sorted(scp.uids) == sorted(ds.SOPInstanceUID for ds in datasets)


def test_routing_out_of_resources_retried_until_delivered(api_url: str) -> None:
    """ "Refused: Out of Resources" (0xA7xx) is not final: the instance stays pending and is
    sent again after the backoff until the destination takes it; order is kept (the next
    instance is not sent before it)."""
    datasets = series(2, seed=68)
    first = str(datasets[0].SOPInstanceUID)
    answers = {first: [statuses.OUT_OF_RESOURCES, statuses.OUT_OF_RESOURCES]}
    route = {"name": "all", "match_all": True, "to": [PLANNING]}
    with store_scp(PLANNING, answers=answers) as scp:
        nodes = {PLANNING: Node(host="127.0.0.1", port=scp.port)}
        with running_bridge(api_url, routes=[route], nodes=nodes, **FAST_RETRIES) as bridge:
            stow(api_url, datasets)
            wait_until(lambda: destination(bridge, PLANNING)["delivered"] == 2, "delivered")
            attempts = {d["instance"]: d["attempts"] for d in deliveries(bridge, PLANNING)}
    assert scp.attempts == [first, first, first, str(datasets[1].SOPInstanceUID)]
    assert attempts[first] == 3
    assert scp.uids == [ds.SOPInstanceUID for ds in datasets]


def test_routing_survives_bridge_restart(api_url: str, index_url: str) -> None:
    """Deliveries queued before the bridge stops, and instances stored while it is down, are
    delivered by the next bridge on the same database (SQLite and PostgreSQL), each once."""
    database_url = index_url
    port = free_port()
    route = {"name": "all", "match_all": True, "to": [PLANNING]}
    nodes = {PLANNING: Node(host="127.0.0.1", port=port)}
    before, during = series(4, seed=69), series(3, seed=70)
    options: dict[str, Any] = {
        "routes": [route],
        "nodes": nodes,
        "database_url": database_url,
        **FAST_RETRIES,
    }
    with running_bridge(api_url, **options) as bridge:
        stow(api_url, before)
        wait_until(lambda: destination(bridge, PLANNING)["pending"] == 4, "4 queued")
    stow(api_url, during)
    with running_bridge(api_url, **options) as bridge, store_scp(PLANNING, port=port) as scp:
        wait_until(lambda: destination(bridge, PLANNING)["delivered"] == 7, "7 delivered")
    assert scp.uids == [ds.SOPInstanceUID for ds in before + during]


def test_routing_instance_deleted_before_delivery_cancelled(api_url: str) -> None:
    """An instance deleted from the archive while its delivery waits is cancelled with the
    reason, not retried forever; the others are still delivered."""
    port = free_port()
    datasets = series(3, seed=71)
    gone = datasets[0]
    route = {"name": "all", "match_all": True, "to": [PLANNING]}
    nodes = {PLANNING: Node(host="127.0.0.1", port=port)}
    with running_bridge(api_url, routes=[route], nodes=nodes, **FAST_RETRIES) as bridge:
        stow(api_url, datasets)
        wait_until(lambda: destination(bridge, PLANNING)["pending"] == 3, "3 queued")
        with httpx.Client(timeout=30) as http:
            DicomWebClient(http, api_url).delete_instance(
                gone.StudyInstanceUID, gone.SeriesInstanceUID, gone.SOPInstanceUID
            )
        wait_until(lambda: destination(bridge, PLANNING)["cancelled"] == 1, "1 cancelled")
        (cancelled,) = deliveries(bridge, PLANNING, "cancelled")
        assert cancelled["instance"] == gone.SOPInstanceUID
        assert "deleted from the archive" in cancelled["last_error"]
        with store_scp(PLANNING, port=port) as scp:
            wait_until(lambda: destination(bridge, PLANNING)["delivered"] == 2, "2 delivered")
    assert scp.uids == [ds.SOPInstanceUID for ds in datasets[1:]]


def test_routing_transcodes_when_destination_refuses_stored_syntax(api_url: str) -> None:
    """A destination that accepts only Explicit VR Little Endian gets an RLE-stored instance
    transcoded by the API (PS3.5 §10.1: the uncompressed syntax every SCP must accept is
    Implicit VR LE; we propose both) with the same pixel values."""
    path = get_testdata_file("MR_small_RLE.dcm")
    assert isinstance(path, str)
    original = pydicom.dcmread(path)
    assert original.file_meta.TransferSyntaxUID == RLELossless
    route = {"name": "all", "match_all": True, "to": [PLANNING]}
    with store_scp(PLANNING, transfer_syntaxes=[str(ExplicitVRLittleEndian)]) as scp:
        nodes = {PLANNING: Node(host="127.0.0.1", port=scp.port)}
        with running_bridge(api_url, routes=[route], nodes=nodes, **FAST_RETRIES) as bridge:
            with httpx.Client(timeout=60) as http:
                DicomWebClient(http, api_url).store([Path(path).read_bytes()]).raise_for_failures()
            wait_until(lambda: destination(bridge, PLANNING)["delivered"] == 1, "delivered")
    ((uid, data, syntax),) = scp.received
    assert uid == original.SOPInstanceUID and syntax == ExplicitVRLittleEndian
    received = pydicom.dcmread(pydicom.filebase.DicomBytesIO(data), force=True)
    received.file_meta = pydicom.dataset.FileMetaDataset()
    received.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    assert (received.pixel_array == original.pixel_array).all()


def test_routing_status_unknown_destination_404(api_url: str) -> None:
    """The status API names what it does not know (404), and lists the configured routes."""
    route = {"name": "all", "match_all": True, "to": [PLANNING]}
    nodes = {PLANNING: Node(host="127.0.0.1", port=free_port())}
    with running_bridge(api_url, routes=[route], nodes=nodes) as bridge:
        url = f"{bridge.bridge.admin_url}/routing/destinations/NOBODY/deliveries"
        assert httpx.get(url, timeout=10).status_code == 404
        assert routing(bridge)["routes"] == [{"name": "all", "to": [PLANNING]}]
        assert httpx.get(f"{bridge.bridge.admin_url}/readyz", timeout=10).status_code == 200


def test_routing_first_start_at_feed_head_then_reload_adds_route(
    api_url: str, tmp_path: Path
) -> None:
    """Routing that starts on a new database begins at the feed's head: what the archive held
    before is not sent. A route added by a configuration reload (SIGHUP's
    :meth:`Bridge.reload`) applies to what is stored next."""
    old = series(2, seed=72)
    stow(api_url, old)
    new = series(2, seed=73)
    with store_scp(PLANNING) as scp:
        config = tmp_path / "bridge.yaml"
        config.write_text(
            "allow: [{ae_title: TESTSCU, host: 127.0.0.1}]\n"
            f"nodes: {{{PLANNING}: {{host: 127.0.0.1, port: {scp.port}}}}}\n"
            "routes: [{name: all, match_all: true, to: [PLANNING]}]\n"
        )
        with running_bridge(api_url, config_file=config, **FAST_RETRIES) as bridge:
            wait_until(lambda: routing(bridge)["leading"], "the router leads")
            stow(api_url, new)
            wait_until(lambda: len(scp.received) == 2, "the new instances received")
            assert scp.uids == [ds.SOPInstanceUID for ds in new]
