"""Who may talk to the bridge: C-ECHO, the allow-list, the called AE title, permissions and
the socket options of accepted connections."""

from __future__ import annotations

from pacs_bridge.access import RejectReason, RejectResult, RejectSource
from pacs_bridge.network import has_tcp_nodelay
from pacs_bridge.settings import AllowedPeer
from pacs_bridge.sop_classes import STUDY_ROOT_FIND, VERIFICATION
from pacs_common import statuses
from pydicom.dataset import Dataset

from tests.bridge.peers import dcmtk, peer_args, scu_association
from tests.bridge.running import ECHO_ONLY, SCU, RunningBridge, running_bridge


def test_echoscu_allowed_ae_success(bridge: RunningBridge) -> None:
    """C-ECHO from an allowed calling AE title succeeds (PS3.7 §9.1.5, PS3.4 Annex A)."""
    proc = dcmtk("echoscu", *peer_args(bridge, SCU))
    assert proc.returncode == 0, proc.stderr


def test_echoscu_unknown_calling_ae_rejected(bridge: RunningBridge) -> None:
    """An unknown calling AE title gets A-ASSOCIATE-RJ (PS3.8 §7.1.1.9): echoscu fails."""
    proc = dcmtk("echoscu", *peer_args(bridge, "INTRUDER"))
    assert proc.returncode != 0
    assert "Calling AE Title Not Recognized" in proc.stderr + proc.stdout


def test_unknown_calling_ae_rejected_permanent_service_user(bridge: RunningBridge) -> None:
    """The rejection is rejected-permanent, source service-user, reason "calling AE title not
    recognized" (PS3.8 §9.3.4, table 9-21)."""
    with scu_association(bridge, "INTRUDER", [VERIFICATION]) as assoc:
        assert assoc.is_rejected
        rejection = assoc.acceptor.primitive
        assert rejection is not None
        assert (rejection.result, rejection.result_source, rejection.diagnostic) == (
            RejectResult.PERMANENT,
            RejectSource.SERVICE_USER,
            RejectReason.CALLING_AE_TITLE_NOT_RECOGNIZED,
        )
        assert rejection.reason_str == "Calling AE title not recognised"


def test_wrong_called_ae_rejected_called_ae_not_recognized(bridge: RunningBridge) -> None:
    """A called AE title other than the bridge's is rejected with reason 7 (PS3.8 §9.3.4)."""
    with scu_association(bridge, SCU, [VERIFICATION], called="SOMEONEELSE") as assoc:
        assert assoc.is_rejected
        rejection = assoc.acceptor.primitive
        assert rejection is not None
        assert rejection.diagnostic == RejectReason.CALLED_AE_TITLE_NOT_RECOGNIZED
        assert rejection.reason_str == "Called AE title not recognised"


def test_allowed_ae_from_other_network_rejected(api_url: str) -> None:
    """An allow-list entry bound to a network admits its AE title from that network only."""
    remote = AllowedPeer.model_validate({"ae_title": "REMOTE", "host": "192.0.2.0/24"})
    with running_bridge(api_url, allow=(remote,)) as bridge:
        proc = dcmtk("echoscu", *peer_args(bridge, "REMOTE"))
    assert proc.returncode != 0


def test_echo_only_peer_find_refused_not_authorized(bridge: RunningBridge) -> None:
    """A peer allowed to echo but not to find gets "Refused: Not Authorized" (PS3.7 C)."""
    with scu_association(bridge, ECHO_ONLY, [VERIFICATION, STUDY_ROOT_FIND]) as assoc:
        assert assoc.is_established
        assert assoc.send_c_echo().Status == statuses.SUCCESS
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = ""
        responses = list(assoc.send_c_find(query, STUDY_ROOT_FIND))
    assert [status.Status for status, _ in responses] == [statuses.NOT_AUTHORIZED]


def test_accepted_connection_has_tcp_nodelay(bridge: RunningBridge) -> None:
    """The bridge disables Nagle's algorithm on the sockets it accepts (TESTING.md)."""
    with scu_association(bridge, SCU, [VERIFICATION]) as assoc:
        assert assoc.is_established
        accepted = [a for a in bridge.bridge.ae.active_associations if a.is_acceptor]
        assert accepted
        for association in accepted:
            sock = association.dul.socket.socket if association.dul.socket else None
            assert sock is not None and has_tcp_nodelay(sock)
