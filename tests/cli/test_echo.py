"""``pacs echo`` (C-ECHO SCU, PS3.7 §9.1.5) against the running bridge: exit 0 with the round
trip, 3 with the reason when the association is rejected or the peer unreachable, 2 for a bad
address."""

from __future__ import annotations

import time

from pacs_cli.peer import CONNECT_TIMEOUT

from tests.bridge.running import SCU, RunningBridge
from tests.cli.conftest import pacs
from tests.support.server import free_port


def _address(bridge: RunningBridge) -> str:
    return f"{bridge.ae_title}@{bridge.host}:{bridge.port}"


def test_echo_bridge_success_0(bridge: RunningBridge) -> None:
    result = pacs("echo", _address(bridge), "--calling-ae", SCU)
    assert result.exit_code == 0, result.output
    assert "Success (0x0000), round trip" in result.output


def test_echo_unknown_calling_ae_rejected_3_with_reason(bridge: RunningBridge) -> None:
    result = pacs("echo", _address(bridge), "--calling-ae", "STRANGER")
    assert result.exit_code == 3, result.output
    assert "rejected the association: Calling AE title not recognised" in result.output


def test_echo_wrong_called_ae_rejected_3(bridge: RunningBridge) -> None:
    result = pacs("echo", f"NOTTHEPACS@{bridge.host}:{bridge.port}", "--calling-ae", SCU)
    assert result.exit_code == 3, result.output
    assert "Called AE title not recognised" in result.output


def test_echo_unreachable_port_3_without_waiting_for_timeout() -> None:
    """Nothing listens: connection refused is reported at once, not after the timeout."""
    start = time.monotonic()
    result = pacs("echo", f"NOBODY@127.0.0.1:{free_port()}")
    assert result.exit_code == 3, result.output
    assert "cannot be reached" in result.output
    assert time.monotonic() - start < CONNECT_TIMEOUT


def test_echo_bad_address_usage_error_2() -> None:
    for address in ("PACS", "PACS@host", "@127.0.0.1:104", "PACS@127.0.0.1:0", "A" * 17 + "@h:1"):
        result = pacs("echo", address)
        assert result.exit_code == 2, (address, result.output)
