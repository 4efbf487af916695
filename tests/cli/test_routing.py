"""``pacs routing``: status, deliveries and retry against a real bridge's status API, with a
real destination (a scripted pynetdicom SCP)."""

from __future__ import annotations

from pathlib import Path

from pacs_bridge.settings import Node
from pacs_common import statuses

from tests.bridge.peers import store_scp
from tests.bridge.running import api_settings, running_bridge
from tests.bridge.test_routing import FAST_RETRIES, destination, series, stow, wait_until
from tests.cli.conftest import pacs
from tests.support.server import free_port, running_api

PLANNING = "PLANNING"


def test_pacs_routing_status_deliveries_retry(tmp_path: Path) -> None:
    """``status`` lists the destination and exits 1 while it has a failed delivery;
    ``deliveries --state failed`` shows it with the destination's status; ``retry`` requeues
    it and, once delivered, ``status`` exits 0."""
    datasets = series(2, seed=91)
    refused = str(datasets[0].SOPInstanceUID)
    route = {"name": "all", "match_all": True, "to": [PLANNING]}
    answers = {refused: [statuses.SOP_CLASS_NOT_SUPPORTED]}
    with (
        running_api(api_settings(tmp_path / "api")) as api_url,
        store_scp(PLANNING, answers=answers) as scp,
        running_bridge(
            api_url,
            routes=[route],
            nodes={PLANNING: Node(host="127.0.0.1", port=scp.port)},
            **FAST_RETRIES,
        ) as bridge,
    ):
        url = bridge.bridge.admin_url
        stow(api_url, datasets)
        wait_until(lambda: destination(bridge, PLANNING)["failed"] == 1, "one failed")
        status = pacs("routing", "status", "--bridge", url)
        assert status.exit_code == 1, status.output
        assert "route all -> PLANNING" in status.output
        assert PLANNING in status.output

        listed = pacs("routing", "deliveries", PLANNING, "--state", "failed", "--bridge", url)
        assert listed.exit_code == 0, listed.output
        assert refused in listed.output
        assert f"0x{statuses.SOP_CLASS_NOT_SUPPORTED:04X}" in listed.output
        header = listed.output.splitlines()[0]
        assert header.split("\t") == [
            "feed",
            "state",
            "attempts",
            "status",
            "SOP instance",
            "route",
            "reason",
        ]

        retried = pacs("routing", "retry", PLANNING, "--bridge", url)
        assert retried.exit_code == 0, retried.output
        assert "1 deliveries to PLANNING back in the queue" in retried.output
        wait_until(lambda: destination(bridge, PLANNING)["delivered"] == 2, "both delivered")
        assert pacs("routing", "status", "--bridge", url).exit_code == 0
        unknown = pacs("routing", "deliveries", "NOBODY", "--bridge", url)
        assert unknown.exit_code == 5 and "404" in unknown.output
    assert sorted(scp.uids) == sorted(ds.SOPInstanceUID for ds in datasets)


def test_pacs_routing_status_unreachable_exit_5() -> None:
    result = pacs("routing", "status", "--bridge", f"http://127.0.0.1:{free_port()}")
    assert result.exit_code == 5
    assert "cannot be reached" in result.output
