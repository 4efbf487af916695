"""The bridge's ``/metrics`` (on its status API) and request ids, with the real bridge in front
of the real API: DIMSE associations and operations are counted by outcome and status
category, a C-STORE moves the API's STOW counters, the request id of the bridge's C-STORE is
the one in the API's access record, and the routing backlog shows a pending destination."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pacs_bridge.settings import Node
from pacs_bridge.sop_classes import VERIFICATION
from pacs_common import statuses
from pacs_common.client import DicomWebClient
from pacs_common.synthetic import iter_ct_series, to_bytes
from pydicom.uid import CTImageStorage

from tests.bridge.peers import scu_association
from tests.bridge.running import SCU, RunningBridge, running_bridge
from tests.observability.scrape import scrape, value
from tests.support.server import free_port

ASSOCIATIONS = "pacs_dimse_associations_total"
OPERATIONS = "pacs_dimse_operations_total"


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    """Poll *condition* until it holds (a bound against hanging, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.05)


def bridge_metrics(bridge: RunningBridge) -> Any:
    return scrape(f"{bridge.bridge.admin_url}/metrics")


def api_metrics(api_url: str) -> Any:
    return scrape(f"{api_url.removesuffix('/dicom-web')}/metrics")


def test_cstore_counts_dimse_and_stow_metrics(bridge: RunningBridge, api_url: str) -> None:
    first, second = iter_ct_series(2, 32, 32, seed=81)
    clash = second.copy()
    clash.SOPInstanceUID = first.SOPInstanceUID
    clash.file_meta.MediaStorageSOPInstanceUID = first.SOPInstanceUID
    with scu_association(bridge, SCU, [CTImageStorage, VERIFICATION]) as assoc:
        assert assoc.send_c_echo().Status == statuses.SUCCESS
        assert assoc.send_c_store(first).Status == statuses.SUCCESS
        assert assoc.send_c_store(clash).Status != statuses.SUCCESS
    with scu_association(bridge, "STRANGER", [VERIFICATION]) as refused:
        assert refused.is_rejected

    samples = bridge_metrics(bridge)
    assert value(samples, ASSOCIATIONS, outcome="accepted") == 1
    assert value(samples, ASSOCIATIONS, outcome="rejected") == 1
    assert value(samples, OPERATIONS, command="C-ECHO", status="success") == 1
    assert value(samples, OPERATIONS, command="C-STORE", status="success") == 1
    assert value(samples, OPERATIONS, command="C-STORE", status="failure") == 1

    stow = api_metrics(api_url)
    assert value(stow, "pacs_stow_instances_total", outcome="stored") == 1
    assert value(stow, "pacs_stow_instances_total", outcome="failed") == 1
    assert value(stow, "pacs_stow_bytes_total") > 0


def test_cstore_request_id_in_bridge_and_api_logs(
    bridge: RunningBridge, caplog: pytest.LogCaptureFixture
) -> None:
    """One C-STORE, followed by its request id from the bridge's operation record into the
    API's access record of the STOW-RS it made."""
    (instance,) = iter_ct_series(1, 32, 32, seed=82)
    with caplog.at_level(logging.INFO):
        with scu_association(bridge, SCU, [CTImageStorage]) as assoc:
            assert assoc.send_c_store(instance).Status == statuses.SUCCESS
            assert assoc.send_c_store(instance).Status == statuses.SUCCESS  # the same again
    records = [vars(r) for r in caplog.records]
    operations = [
        r for r in records if r["name"] == "pacs_bridge.operations" and r["command"] == "C-STORE"
    ]
    stows = [
        r
        for r in records
        if r["name"] == "pacs_api.access"
        and (r["method"], r["route"]) == ("POST", "/dicom-web/studies")
    ]
    assert len(operations) == 2 and len(stows) == 2
    ids = [r["request_id"] for r in operations]
    assert ids[0] != ids[1], "each operation has its own id"
    assert [r["request_id"] for r in stows] == ids
    assert all(r["calling_ae"] == SCU and r["category"] == "success" for r in operations)


def test_routing_backlog_shows_pending_destination(api_url: str) -> None:
    """A destination that cannot be reached: what is routed to it waits, and the backlog
    gauge (read from the routing queue at scrape time) shows it pending."""
    down = "DOWNNODE"
    nodes = {down: Node(host="127.0.0.1", port=free_port())}
    route = {"name": "all", "match_all": True, "to": [down]}
    fast: dict[str, Any] = {
        "routing_poll_interval": 0.1,
        "routing_retry_initial": 0.2,
        "routing_retry_max": 1.0,
    }
    with running_bridge(api_url, routes=[route], nodes=nodes, **fast) as bridge:
        wait_until(lambda: bridge.bridge.queue.started_at() is not None, "routing started")
        datasets = list(iter_ct_series(2, 32, 32, seed=83))
        with httpx.Client(timeout=30) as http:
            DicomWebClient(http, api_url).store([to_bytes(ds) for ds in datasets])
        wait_until(
            lambda: (
                value(
                    bridge_metrics(bridge),
                    "pacs_routing_backlog",
                    destination=down,
                    state="pending",
                )
                == 2
            ),
            "two deliveries pending",
        )
        samples = bridge_metrics(bridge)
        assert value(samples, "pacs_routing_backlog", destination=down, state="failed") == 0
        assert (
            value(samples, "pacs_routing_deliveries_total", destination=down, outcome="delivered")
            == 0
        )
