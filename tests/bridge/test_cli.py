"""``pacs-bridge serve``: a bad configuration stops the start with a precise message; a good
one serves until interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.bridge.peers import dcmtk
from tests.bridge.running import BRIDGE_AE, SCU
from tests.support.server import free_port

BRIDGE = Path(sys.executable).with_name("pacs-bridge")


def _env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PACS_BRIDGE_")}
    return {**env, **values}


def _serve(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BRIDGE), "serve", *args], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("config", "env", "message"),
    [
        pytest.param(None, {}, "no calling AE title is allowed", id="empty-allow-list"),
        pytest.param(
            None,
            {"PACS_BRIDGE_AE_TITLE": "A_TITLE_LONGER_THAN_16", "PACS_BRIDGE_ALLOW": "[]"},
            "PACS_BRIDGE_AE_TITLE: Value error, AE title 'A_TITLE_LONGER_THAN_16' is longer",
            id="long-ae-title",
        ),
        pytest.param(
            "allow:\n  - ae_title: CT\n    host: not-an-address\n",
            {},
            "PACS_BRIDGE_ALLOW[0].host: Value error, 'not-an-address' is not an IP address",
            id="bad-host-in-file",
        ),
        pytest.param(
            "allow:\n  - ae_title: CT\n    permissions: [echo, route]\n",
            {},
            "PACS_BRIDGE_ALLOW[0].permissions",
            id="unknown-permission",
        ),
        pytest.param(
            "allow:\n  - ae_title: CT\nnodes:\n  PLANNING: {host: 10.0.0.9, port: 70000}\n",
            {},
            "PACS_BRIDGE_NODES.PLANNING.port: Input should be less than or equal to 65535",
            id="node-port-out-of-range",
        ),
        pytest.param(
            "allow:\n  - ae_title: CT\nnodes:\n  A_TITLE_LONGER_THAN_16: {host: h, port: 104}\n",
            {},
            "PACS_BRIDGE_NODES: Value error, AE title 'A_TITLE_LONGER_THAN_16' is longer",
            id="node-ae-title-too-long",
        ),
        pytest.param(
            "allow:\n  - ae_title: CT\nnodes:\n  PLANNING: {port: 104}\n",
            {},
            "PACS_BRIDGE_NODES.PLANNING.host: Field required",
            id="node-without-host",
        ),
        pytest.param("allow: [unclosed\n", {}, "is not valid YAML", id="malformed-yaml"),
        pytest.param(
            None,
            {"PACS_BRIDGE_ALLOW_ANY_CALLING_AE": "true", "PACS_BRIDGE_HOST": "0.0.0.0"},
            "refused on the non-loopback address '0.0.0.0'",
            id="allow-any-on-network",
        ),
    ],
)
def test_serve_bad_configuration_exit_2_names_the_fault(
    tmp_path: Path, config: str | None, env: dict[str, str], message: str
) -> None:
    """Configuration is validated at start; a fault stops it (exit 2) and is named."""
    args: list[str] = []
    if config is not None:
        path = tmp_path / "bridge.yaml"
        path.write_text(config)
        args = ["--config", str(path)]
    proc = _serve(*args, env=_env(**env))
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr


def test_serve_config_file_echo_then_sigint_stops(tmp_path: Path) -> None:
    """``pacs-bridge serve --config bridge.json`` answers C-ECHO from the listed AE title and
    stops on Ctrl-C (SIGINT)."""
    port = free_port()
    config = tmp_path / "bridge.json"
    config.write_text(
        f'{{"ae_title": "{BRIDGE_AE}", "port": {port}, "admin_port": 0, '
        f'"database_url": "sqlite:///{tmp_path / "bridge.sqlite3"}", '
        f'"allow": [{{"ae_title": "{SCU}", "host": "127.0.0.1", "permissions": ["echo"]}}]}}'
    )
    proc = subprocess.Popen(
        [str(BRIDGE), "serve", "--config", str(config)],
        env=_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        banner = proc.stderr.readline()
        while "DIMSE bridge:" not in banner and proc.poll() is None:
            banner = proc.stderr.readline()
        assert f"AE title {BRIDGE_AE} on 127.0.0.1:{port}" in banner
        echo = dcmtk("echoscu", "-aet", SCU, "-aec", BRIDGE_AE, "127.0.0.1", str(port))
        assert echo.returncode == 0, echo.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
    assert proc.returncode == 0
