"""Configuration reload (``Bridge.reload``, SIGHUP to ``pacs-bridge serve``): an edited
allow-list and node list take effect without a restart and without dropping open
associations; an invalid file, or a change to a setting bound at start, is refused and the
configuration in use is kept."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from pacs_bridge.main import create_bridge
from pacs_bridge.settings import Settings as BridgeSettings
from pacs_bridge.sop_classes import STUDY_ROOT_MOVE, VERIFICATION
from pacs_common import statuses
from pydicom.dataset import Dataset

from tests.bridge.peers import dcmtk, peer_args, scu_association, storescp
from tests.bridge.running import BRIDGE_AE, RunningBridge
from tests.support.server import free_port

KEPT = "KEPTSCU"
REMOVED = "OLDSCU"
ADDED = "NEWSCU"
NODE = "LATENODE"
#: No API behind it: the reload tests associate and echo only, unless they start one.
NO_API = "http://127.0.0.1:9/dicom-web"


def config(port: int, *titles: str, **values: Any) -> str:
    """A bridge configuration file (JSON) admitting *titles* from loopback, all permissions."""
    allow = [{"ae_title": title, "host": "127.0.0.1"} for title in titles]
    return json.dumps({"ae_title": BRIDGE_AE, "port": port, "allow": allow, **values})


@contextmanager
def bridge_from_file(path: Path, dicomweb_url: str = NO_API) -> Iterator[RunningBridge]:
    """A bridge whose settings (and reloads) come from the configuration file *path*."""
    load = partial(BridgeSettings, config_file=path, dicomweb_url=dicomweb_url)
    with create_bridge(load=load) as bridge:
        yield RunningBridge(bridge, dicomweb_url)


def echo(bridge: RunningBridge, calling: str) -> subprocess.CompletedProcess[str]:
    return dcmtk("echoscu", *peer_args(bridge, calling), timeout=60)


def test_reload_edited_allow_list_admits_added_refuses_removed(tmp_path: Path) -> None:
    """After the file is edited and the bridge reloaded, a newly listed calling AE title
    associates and a removed one gets A-ASSOCIATE-RJ (PS3.8 §7.1.1.9)."""
    path = tmp_path / "bridge.json"
    path.write_text(config(free_port(), KEPT, REMOVED))
    with bridge_from_file(path) as bridge:
        assert echo(bridge, REMOVED).returncode == 0
        assert echo(bridge, ADDED).returncode != 0
        path.write_text(config(bridge.port, KEPT, ADDED))
        result = bridge.bridge.reload()
        assert result.applied, result.message
        assert result.message == "configuration reloaded: allow changed"
        added = echo(bridge, ADDED)
        removed = echo(bridge, REMOVED)
    assert added.returncode == 0, added.stderr
    assert removed.returncode != 0
    assert "Calling AE Title Not Recognized" in removed.stderr + removed.stdout


def test_reload_open_associations_kept_removed_peer_not_authorized(tmp_path: Path) -> None:
    """A reload drops no association: a kept peer's open association goes on answering
    C-ECHO, and a removed peer's stays open but its next request is refused "Not Authorized"
    (PS3.7 Annex C)."""
    path = tmp_path / "bridge.json"
    path.write_text(config(free_port(), KEPT, REMOVED))
    with (
        bridge_from_file(path) as bridge,
        scu_association(bridge, KEPT, [VERIFICATION]) as kept,
        scu_association(bridge, REMOVED, [VERIFICATION]) as removed,
    ):
        assert kept.is_established and removed.is_established
        path.write_text(config(bridge.port, KEPT))
        assert bridge.bridge.reload().applied
        assert kept.is_established and removed.is_established
        assert kept.send_c_echo().Status == statuses.SUCCESS
        assert removed.send_c_echo().Status == statuses.NOT_AUTHORIZED
        assert removed.is_established


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param("allow: [unclosed\n", "is not valid YAML", id="malformed-yaml"),
        pytest.param(
            f"allow:\n  - ae_title: {ADDED}\n    host: not-an-address\n",
            "PACS_BRIDGE_ALLOW[0].host: Value error, 'not-an-address' is not an IP address",
            id="bad-host",
        ),
        pytest.param("allow: []\n", "no calling AE title is allowed", id="empty-allow-list"),
        pytest.param(None, "cannot read the configuration file", id="file-removed"),
        pytest.param(
            f"allow: [{{ae_title: {ADDED}}}]\n"
            f"nodes: {{{NODE}: {{host: 127.0.0.1, port: 104, tls: true, "
            "tls_ca_certificates: absent-ca.pem}}\n",
            f"nodes.{NODE}.tls_ca_certificates absent-ca.pem cannot be read",
            id="node-ca-unreadable",
        ),
    ],
)
def test_reload_invalid_file_refused_old_config_kept(
    tmp_path: Path, content: str | None, message: str
) -> None:
    """A reload of an invalid file is refused with the fault named as at start, and the
    configuration in use goes on admitting its peers."""
    path = tmp_path / "bridge.yaml"
    port = free_port()
    path.write_text(f"ae_title: {BRIDGE_AE}\nport: {port}\nallow: [{{ae_title: {KEPT}}}]\n")
    with bridge_from_file(path) as bridge:
        if content is None:
            path.unlink()
        else:
            path.write_text(f"ae_title: {BRIDGE_AE}\nport: {port}\n{content}")
        result = bridge.bridge.reload()
        assert not result.applied
        assert result.message.startswith("reload refused, the configuration in use is kept: ")
        assert message in result.message
        assert echo(bridge, KEPT).returncode == 0
        assert echo(bridge, ADDED).returncode != 0


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        pytest.param({"port": "new"}, "port", id="port"),
        pytest.param(
            {"ae_title": "OTHERAE", "max_pdu": 16384, "tls_minimum_version": "1.3"},
            "ae_title, max_pdu, tls_minimum_version",
            id="several",
        ),
    ],
)
def test_reload_changed_startup_setting_refused_names_it(
    tmp_path: Path, changes: dict[str, Any], named: str
) -> None:
    """Settings bound at start (address, AE title, PDU size, TLS ...) cannot change live: the
    reload is refused naming them, and nothing of the new file is applied, not even its
    allow-list."""
    path = tmp_path / "bridge.json"
    path.write_text(config(free_port(), KEPT))
    with bridge_from_file(path) as bridge:
        values = {k: free_port() if v == "new" else v for k, v in changes.items()}
        new = {**json.loads(config(bridge.port, KEPT, ADDED)), **values}
        path.write_text(json.dumps(new))
        result = bridge.bridge.reload()
        assert not result.applied
        assert f"{named} cannot change while the bridge runs" in result.message
        assert echo(bridge, ADDED).returncode != 0
        assert echo(bridge, KEPT).returncode == 0


def test_reload_added_node_becomes_move_destination(api_url: str, tmp_path: Path) -> None:
    """A node added to ``nodes`` is a known Move Destination after the reload: before it the
    C-MOVE is answered 0xA801 (PS3.4 C.4.2.1.5), after it Success (no instance matches)."""
    path = tmp_path / "bridge.json"
    path.write_text(config(free_port(), KEPT))
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = "1.2.3.4.5.6.7.8.9"
    with (
        storescp(NODE, tmp_path / "received") as node_port,
        bridge_from_file(path, api_url) as bridge,
        scu_association(bridge, KEPT, [STUDY_ROOT_MOVE]) as assoc,
    ):
        before = [s.Status for s, _ in assoc.send_c_move(query, NODE, STUDY_ROOT_MOVE)]
        nodes = {NODE: {"host": "127.0.0.1", "port": node_port}}
        path.write_text(config(bridge.port, KEPT, nodes=nodes))
        result = bridge.bridge.reload()
        assert result.message == "configuration reloaded: nodes changed"
        after = [s.Status for s, _ in assoc.send_c_move(query, NODE, STUDY_ROOT_MOVE)]
    assert before == [statuses.MOVE_DESTINATION_UNKNOWN]
    assert after == [statuses.SUCCESS]


# -- pacs-bridge serve and SIGHUP ---------------------------------------------------------------


class StderrLines:
    """The lines a process writes to stderr, read in a thread so waits can time out."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        self._stream = proc.stderr
        self._lines: queue.Queue[str] = queue.Queue()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._stream:
            self._lines.put(line)

    def wait_for(self, text: str, timeout: float = 60) -> str:
        """The first next line holding *text*; fails when none comes within *timeout*."""
        seen: list[str] = []
        while True:
            try:
                line = self._lines.get(timeout=timeout)
            except queue.Empty:
                pytest.fail(f"no line with {text!r} on stderr; got: {''.join(seen)}")
            if text in line:
                return line
            seen.append(line)

    def close(self) -> None:
        """Once the process has ended: wait for the reader to reach the end, close the pipe."""
        self._thread.join(timeout=30)
        self._stream.close()


def test_sighup_serve_reloads_file_refuses_port_change(tmp_path: Path) -> None:
    """SIGHUP to ``pacs-bridge serve`` reloads the file: a newly listed AE title associates;
    a later edit of the port is refused with a log line naming it, and the bridge goes on."""
    port = free_port()
    path = tmp_path / "bridge.json"
    path.write_text(config(port, KEPT))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PACS_BRIDGE_")}
    bridge_command = Path(sys.executable).with_name("pacs-bridge")
    proc = subprocess.Popen(
        [str(bridge_command), "serve", "--config", str(path), "--log-level", "INFO"],
        env={
            **env,
            "PACS_BRIDGE_DICOMWEB_URL": NO_API,
            "PACS_BRIDGE_DATABASE_URL": f"sqlite:///{tmp_path / 'bridge.sqlite3'}",
            "PACS_BRIDGE_ADMIN_PORT": "0",
        },
        stderr=subprocess.PIPE,
        text=True,
    )
    stderr = StderrLines(proc)
    try:
        stderr.wait_for("DIMSE bridge:")
        args = ["-aec", BRIDGE_AE, "127.0.0.1", str(port)]
        assert dcmtk("echoscu", "-aet", ADDED, *args).returncode != 0
        path.write_text(config(port, KEPT, ADDED))
        proc.send_signal(signal.SIGHUP)
        assert "configuration reloaded: allow changed" in stderr.wait_for("reload")
        added = dcmtk("echoscu", "-aet", ADDED, *args)
        assert added.returncode == 0, added.stderr
        path.write_text(config(free_port(), KEPT))
        proc.send_signal(signal.SIGHUP)
        refused = stderr.wait_for("reload")
        assert "WARNING" in refused
        assert "reload refused, the configuration in use is kept: port cannot change" in refused
        assert dcmtk("echoscu", "-aet", ADDED, *args).returncode == 0
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        stderr.close()
    assert proc.returncode == 0
