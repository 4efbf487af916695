"""DICOM TLS (PS3.15 Annex B): DCMTK peers with ``+tls`` talk to a bridge listening over TLS,
plain TCP peers cannot, mutual TLS refuses peers without a certificate its CA signed, C-MOVE
reaches a DCMTK ``storescp +tls`` node, and TLS files that cannot be used stop the start."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from pacs_bridge.main import create_bridge
from pacs_bridge.settings import ConfigError, Node
from pacs_bridge.settings import Settings as BridgeSettings
from pacs_bridge.sop_classes import STUDY_ROOT_MOVE
from pacs_common import statuses
from pacs_common.client import DicomWebClient
from pacs_common.synthetic import iter_ct_series, to_bytes
from pydantic import ValidationError
from pydicom.dataset import Dataset

from tests.bridge.certificates import Identity, Pki, make_pki
from tests.bridge.peers import DCMTK_ENV, dcmtk, peer_args, scu_association, storescp
from tests.bridge.running import BRIDGE_AE, SCU, TEST_PEERS, RunningBridge, running_bridge
from tests.support.server import free_port

NODE = "TLSNODE"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_settings(pki: Pki, *, mutual: bool = False) -> dict[str, Any]:
    """The bridge's TLS settings: its certificate, and the test CA for mutual TLS."""
    values: dict[str, Any] = {
        "tls_certificate": pki.bridge.certificate,
        "tls_private_key": pki.bridge.key,
    }
    if mutual:
        values["tls_ca_certificates"] = pki.ca
    return values


def tls_args(identity: Identity | None, ca: Path) -> list[str | Path]:
    """DCMTK TLS options: present *identity* (none: anonymous TLS), verify the peer by *ca*."""
    if identity is None:
        return ["+tla", "+cf", ca]
    return ["+tls", identity.key, identity.certificate, "+cf", ca]


@pytest.fixture
def tls_bridge(api_url: str, pki: Pki) -> Iterator[RunningBridge]:
    """A bridge listening over TLS, without asking peers for certificates."""
    with running_bridge(api_url, **tls_settings(pki)) as running:
        yield running


@pytest.fixture
def mutual_bridge(api_url: str, pki: Pki) -> Iterator[RunningBridge]:
    """A bridge listening over TLS that requires a certificate signed by the test CA."""
    with running_bridge(api_url, **tls_settings(pki, mutual=True)) as running:
        yield running


def echoscu(bridge: RunningBridge, *options: str | Path) -> subprocess.CompletedProcess[str]:
    return dcmtk("echoscu", *options, *peer_args(bridge, SCU), timeout=60)


def test_echoscu_tls_success(tls_bridge: RunningBridge, pki: Pki) -> None:
    """``echoscu +tls`` (PS3.15 B.1: the DICOM Upper Layer over TLS) verifies the bridge's
    certificate against the test CA and its C-ECHO succeeds."""
    proc = echoscu(tls_bridge, *tls_args(pki.peer, pki.ca))
    assert proc.returncode == 0, proc.stderr + proc.stdout


def test_storescu_tls_instance_stored(tls_bridge: RunningBridge, pki: Pki, tmp_path: Path) -> None:
    """``storescu +tls`` of a CT slice: the instance reaches the API (PS3.4 Annex B over
    PS3.15 B.1)."""
    (ds,) = iter_ct_series(1, 32, 32, seed=7)
    path = tmp_path / "ct.dcm"
    path.write_bytes(to_bytes(ds))
    proc = dcmtk("storescu", *tls_args(pki.peer, pki.ca), *peer_args(tls_bridge, SCU), path)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    with httpx.Client(timeout=30) as http:
        found = DicomWebClient(http, tls_bridge.dicomweb_url).search_instances(
            str(ds.StudyInstanceUID)
        )
    assert [item["00080018"]["Value"] for item in found] == [[str(ds.SOPInstanceUID)]]


def test_plain_tcp_echoscu_tls_port_fails(tls_bridge: RunningBridge) -> None:
    """A peer without TLS cannot associate on the TLS port: its A-ASSOCIATE-RQ is not a TLS
    handshake and the bridge closes the connection."""
    proc = echoscu(tls_bridge)
    assert proc.returncode != 0
    assert "Association Request Failed" in proc.stderr + proc.stdout


def test_silent_connection_other_peers_served(tls_bridge: RunningBridge, pki: Pki) -> None:
    """A peer that connects and never starts its handshake does not stop the bridge from
    accepting others: handshakes happen in each association's thread."""
    with socket.create_connection((tls_bridge.host, tls_bridge.port)) as silent:
        proc = echoscu(tls_bridge, *tls_args(pki.peer, pki.ca))
        assert silent.fileno() != -1  # still connected, in its handshake
        assert proc.returncode == 0, proc.stderr + proc.stdout


def test_mutual_tls_client_certificate_success(mutual_bridge: RunningBridge, pki: Pki) -> None:
    """With ``tls_ca_certificates`` set, a peer presenting a certificate the CA signed
    associates (PS3.15 B.1: both entities authenticated)."""
    proc = echoscu(mutual_bridge, *tls_args(pki.peer, pki.ca))
    assert proc.returncode == 0, proc.stderr + proc.stdout


def test_mutual_tls_client_without_certificate_refused(
    mutual_bridge: RunningBridge, pki: Pki
) -> None:
    """Mutual TLS: a peer without a certificate (``+tla``) fails the handshake, no
    association."""
    proc = echoscu(mutual_bridge, *tls_args(None, pki.ca))
    assert proc.returncode != 0
    assert "Association Request Failed" in proc.stderr + proc.stdout


def test_mutual_tls_foreign_certificate_refused(mutual_bridge: RunningBridge, pki: Pki) -> None:
    """Mutual TLS: a certificate signed by another CA is refused."""
    proc = echoscu(mutual_bridge, *tls_args(pki.foreign, pki.ca))
    assert proc.returncode != 0


@pytest.fixture
def stored_study(api_url: str) -> list[Dataset]:
    """Three CT slices of one series, stored in the API."""
    series = list(iter_ct_series(3, 32, 32, patient_id="TLS-0001", seed=11))
    with httpx.Client(timeout=60) as http:
        DicomWebClient(http, api_url).store([to_bytes(ds) for ds in series]).raise_for_failures()
    return series


def move_study(
    bridge: RunningBridge, study: str, destination: str, tls: ssl.SSLContext | None = None
) -> list[int]:
    """The statuses of a Study Root C-MOVE of *study* to *destination*, from a pynetdicom SCU
    (DCMTK 3.6.7's movescu has no TLS options)."""
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = study
    with scu_association(bridge, SCU, [STUDY_ROOT_MOVE], tls=tls) as assoc:
        assert assoc.is_established
        responses = assoc.send_c_move(query, destination, STUDY_ROOT_MOVE)
        return [int(status.Status) for status, _ in responses]


def peer_context(pki: Pki) -> ssl.SSLContext:
    """A pynetdicom peer's client context: trusts the test CA, presents the peer certificate."""
    context = ssl.create_default_context(cafile=pki.ca)
    context.load_cert_chain(pki.peer.certificate, pki.peer.key)
    return context


def test_cmove_to_tls_storescp_receives(
    api_url: str, pki: Pki, stored_study: list[Dataset], tmp_path: Path
) -> None:
    """C-MOVE to a ``tls: true`` node: the bridge connects to ``storescp +tls`` over TLS,
    verifies its certificate (host name included) against the CA, presents its own (storescp
    requires one), and the node receives every instance unchanged (PS3.4 C.4.2 over PS3.15
    B.1)."""
    received = tmp_path / "received"
    with storescp(NODE, received, *tls_args(pki.node, pki.ca)) as port:
        node = Node(host="127.0.0.1", port=port, tls=True, tls_ca_certificates=pki.ca)
        with running_bridge(api_url, **tls_settings(pki), nodes={NODE: node}) as bridge:
            study = str(stored_study[0].StudyInstanceUID)
            responses = move_study(bridge, study, NODE, peer_context(pki))
    assert responses[-1] == statuses.SUCCESS
    got = {str(ds.SOPInstanceUID): ds for ds in map(pydicom.dcmread, received.iterdir())}
    assert sorted(got) == sorted(str(ds.SOPInstanceUID) for ds in stored_study)
    for ds in stored_study:
        assert got[str(ds.SOPInstanceUID)] == ds


def test_cmove_tls_node_foreign_certificate_a801(
    api_url: str, pki: Pki, stored_study: list[Dataset], tmp_path: Path
) -> None:
    """A TLS node whose certificate the configured CA did not sign is not connected to: the
    C-MOVE is answered 0xA801 (PS3.4 C.4.2.1.5) and the node receives nothing. (The node
    trusts the bridge's certificate: only the bridge's check can fail.)"""
    received = tmp_path / "received"
    with storescp(NODE, received, *tls_args(pki.foreign, pki.ca)) as port:
        node = Node(host="127.0.0.1", port=port, tls=True, tls_ca_certificates=pki.ca)
        with running_bridge(api_url, **tls_settings(pki), nodes={NODE: node}) as bridge:
            study = str(stored_study[0].StudyInstanceUID)
            responses = move_study(bridge, study, NODE, peer_context(pki))
    assert responses == [statuses.MOVE_DESTINATION_UNKNOWN]
    assert list(received.iterdir()) == []


# -- start-time checks ------------------------------------------------------------------------


def bridge_settings(**values: Any) -> BridgeSettings:
    return BridgeSettings(ae_title=BRIDGE_AE, port=free_port(), allow=TEST_PEERS, **values)


def encrypted_key(pki: Pki, directory: Path) -> Path:
    path = directory / "encrypted.key"
    subprocess.run(
        ["openssl", "pkey", "-in", str(pki.bridge.key), "-aes256", "-passout", "pass:secret",
         "-out", str(path)],
        check=True, capture_output=True,
    )  # fmt: skip
    return path


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing-certificate", "tls_certificate {missing} cannot be read: No such file"),
        ("missing-key", "tls_private_key {missing} cannot be read: No such file"),
        ("key-of-another-certificate", "tls_private_key {peer_key} is not the key of "
         "tls_certificate {bridge_cert}"),
        ("certificate-is-a-key", "tls_certificate {bridge_key} holds no PEM certificate"),
        ("key-is-a-certificate", "tls_private_key {bridge_cert} holds no PEM private key"),
        ("encrypted-key", "tls_private_key {encrypted} is encrypted"),
        ("missing-ca", "tls_ca_certificates {missing} cannot be read: No such file"),
        ("missing-node-ca", "nodes.TLSNODE.tls_ca_certificates {missing} cannot be read"),
    ],
)  # fmt: skip
def test_create_bridge_unusable_tls_file_config_error_names_it(
    pki: Pki, tmp_path: Path, case: str, message: str
) -> None:
    """Every TLS file is read and checked when the bridge is built; a fault names the
    setting and the file."""
    missing = tmp_path / "absent.pem"
    tls: dict[str, Any] = tls_settings(pki)
    if case == "missing-certificate":
        tls["tls_certificate"] = missing
    elif case == "missing-key":
        tls["tls_private_key"] = missing
    elif case == "key-of-another-certificate":
        tls["tls_private_key"] = pki.peer.key
    elif case == "certificate-is-a-key":
        tls["tls_certificate"] = pki.bridge.key
    elif case == "key-is-a-certificate":
        tls["tls_private_key"] = pki.bridge.certificate
    elif case == "encrypted-key":
        tls["tls_private_key"] = encrypted_key(pki, tmp_path)
    elif case == "missing-ca":
        tls["tls_ca_certificates"] = missing
    elif case == "missing-node-ca":
        tls["nodes"] = {NODE: Node(host="h", port=104, tls=True, tls_ca_certificates=missing)}
    with pytest.raises(ConfigError) as raised:
        create_bridge(bridge_settings(**tls))
    expected = message.format(
        missing=missing,
        peer_key=pki.peer.key,
        bridge_cert=pki.bridge.certificate,
        bridge_key=pki.bridge.key,
        encrypted=tmp_path / "encrypted.key",
    )
    assert expected in str(raised.value)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"tls_certificate": "bridge.pem"}, "tls_certificate is set without tls_private_key"),
        ({"tls_private_key": "bridge.key"}, "tls_private_key is set without tls_certificate"),
        ({"tls_ca_certificates": "ca.pem"}, "tls_ca_certificates asks peers for certificates"),
        ({"tls_minimum_version": "1.1"}, "Input should be '1.2' or '1.3'"),
        (
            {"nodes": {NODE: {"host": "h", "port": 104, "tls_ca_certificates": "ca.pem"}}},
            "tls_ca_certificates is set but tls is not",
        ),
    ],
)
def test_settings_incomplete_tls_validation_error(values: dict[str, Any], message: str) -> None:
    """TLS settings that cannot go together are refused when the settings are validated."""
    with pytest.raises(ValidationError, match=message):
        bridge_settings(**values)


def test_serve_mismatched_key_exit_2_names_files(pki: Pki, tmp_path: Path) -> None:
    """``pacs-bridge serve`` with a key that is not the certificate's stops at start with exit
    status 2 and names both files."""
    config = tmp_path / "bridge.yaml"
    config.write_text(
        f"allow: [{{ae_title: {SCU}}}]\n"
        f"tls_certificate: {pki.bridge.certificate}\ntls_private_key: {pki.peer.key}\n"
    )
    env = {k: v for k, v in DCMTK_ENV.items() if not k.startswith("PACS_BRIDGE_")}
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("pacs-bridge")), "serve", "--config", str(config),
         "--port", str(free_port())],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert (
        f"configuration: tls_private_key {pki.peer.key} is not the key of tls_certificate "
        f"{pki.bridge.certificate}"
    ) in proc.stderr
