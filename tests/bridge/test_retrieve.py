"""C-GET (PS3.4 C.4.3) and C-MOVE (PS3.4 C.4.2) SCP: DCMTK getscu and movescu (to a DCMTK
storescp) receive the stored data sets unchanged; unknown or unreachable destinations,
C-CANCEL and missing permissions get their statuses."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pydicom
import pytest
from pacs_bridge.network import set_tcp_nodelay
from pacs_bridge.settings import Node
from pacs_bridge.sop_classes import STUDY_ROOT_GET, STUDY_ROOT_MOVE
from pacs_common import statuses
from pacs_common.client import DicomWebClient
from pacs_common.synthetic import iter_ct_series, to_bytes
from pydicom import dcmread
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, build_role, evt
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import split_dataset

from tests.bridge.peers import dcmtk, peer_args, scu_association, storescp
from tests.bridge.running import ECHO_ONLY, SCU, RunningBridge, api_settings, running_bridge
from tests.support.server import free_port, running_api

PATIENT_ID = "RETR-0001"
DESTINATION = "STORESCP"
DOWN = "DOWNNODE"


@dataclass
class Archive:
    bridge: RunningBridge
    series: list[list[Dataset]]
    received: Path

    @property
    def study(self) -> str:
        return str(self.series[0][0].StudyInstanceUID)

    def stored(self) -> dict[str, Dataset]:
        return {str(ds.SOPInstanceUID): ds for series in self.series for ds in series}


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    """One study of two CT series (5 and 3 slices) in the API; a bridge knowing a running
    storescp and a node nobody listens on."""
    received = tmp_path_factory.mktemp("storescp")
    series = [
        list(iter_ct_series(5, 32, 32, patient_id=PATIENT_ID, series_number=1, seed=31)),
        list(iter_ct_series(3, 32, 32, patient_id=PATIENT_ID, series_number=2, seed=31)),
    ]
    assert series[0][0].StudyInstanceUID == series[1][0].StudyInstanceUID
    with (
        storescp(DESTINATION, received) as port,
        running_api(api_settings(tmp_path_factory.mktemp("retrieve-api"))) as api_url,
        running_bridge(
            api_url,
            find_page_size=3,
            nodes={
                DESTINATION: Node(host="127.0.0.1", port=port),
                DOWN: Node(host="127.0.0.1", port=free_port()),
            },
        ) as bridge,
    ):
        with httpx.Client(timeout=60) as http:
            client = DicomWebClient(http, api_url)
            for instances in series:
                client.store([to_bytes(ds) for ds in instances]).raise_for_failures()
        yield Archive(bridge, series, received)


def assert_identical(files: list[Path], expected: list[Dataset]) -> None:
    """The files hold exactly the expected data sets, element for element."""
    received = {str(ds.SOPInstanceUID): ds for ds in map(pydicom.dcmread, files)}
    assert sorted(received) == sorted(str(ds.SOPInstanceUID) for ds in expected)
    for ds in expected:
        assert received[str(ds.SOPInstanceUID)] == ds


def getscu(archive: Archive, root: str, keys: list[str], out: Path) -> list[Path]:
    out.mkdir()
    key_args = [arg for key in keys for arg in ("-k", key)]
    proc = dcmtk("getscu", root, "-od", out, *key_args, *peer_args(archive.bridge, SCU))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return sorted(out.iterdir())


@pytest.mark.parametrize(
    ("root", "level", "select"),
    [
        ("-S", "STUDY", "study"),
        ("-S", "SERIES", "series"),
        ("-S", "IMAGE", "instances"),
        ("-P", "PATIENT", "patient"),
        ("-P", "STUDY", "study"),
        ("-P", "IMAGE", "instances"),
    ],
)
def test_getscu_level_receives_stored_data_sets(
    archive: Archive, tmp_path: Path, root: str, level: str, select: str
) -> None:
    """getscu at each level of both roots (PS3.4 C.4.3.1.3, C.6.1.1, C.6.2.1) receives every
    instance the unique keys name, on its own association, with the stored data sets."""
    first, second = archive.series
    keys = [f"QueryRetrieveLevel={level}"]
    expected = [*first, *second]
    if select == "patient":
        keys.append(f"PatientID={PATIENT_ID}")
    elif select == "study":
        keys.append(f"StudyInstanceUID={archive.study}")
    elif select == "series":
        keys += [
            f"StudyInstanceUID={archive.study}",
            f"SeriesInstanceUID={second[0].SeriesInstanceUID}",
        ]
        expected = second
    else:
        uids = "\\".join(str(ds.SOPInstanceUID) for ds in first[1:3])
        keys += [
            f"StudyInstanceUID={archive.study}",
            f"SeriesInstanceUID={first[0].SeriesInstanceUID}",
            f"SOPInstanceUID={uids}",
        ]
        if root == "-P":
            keys.append(f"PatientID={PATIENT_ID}")
        expected = first[1:3]
    assert_identical(getscu(archive, root, keys, tmp_path / "got"), expected)


def test_movescu_study_to_storescp_receives_stored_data_sets(
    archive: Archive, tmp_path: Path
) -> None:
    """movescu of a study to a known node (PS3.4 C.4.2): storescp receives every instance on
    the bridge's new association, with the stored data sets."""
    for old in archive.received.iterdir():
        old.unlink()
    keys = ["QueryRetrieveLevel=STUDY", f"StudyInstanceUID={archive.study}"]
    key_args = [arg for key in keys for arg in ("-k", key)]
    proc = dcmtk("movescu", "-S", "-aem", DESTINATION, *key_args, *peer_args(archive.bridge, SCU))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert_identical(sorted(archive.received.iterdir()), [*archive.series[0], *archive.series[1]])


def move(archive: Archive, calling: str, destination: str) -> list[Dataset]:
    query = Dataset()
    query.QueryRetrieveLevel = "SERIES"
    query.StudyInstanceUID = archive.study
    query.SeriesInstanceUID = archive.series[1][0].SeriesInstanceUID
    with scu_association(archive.bridge, calling, [STUDY_ROOT_MOVE]) as assoc:
        assert assoc.is_established
        return [status for status, _ in assoc.send_c_move(query, destination, STUDY_ROOT_MOVE)]


def test_cmove_unknown_destination_a801(archive: Archive) -> None:
    """A Move Destination the bridge does not know is answered 0xA801 (PS3.4 C.4.2.1.5)."""
    responses = move(archive, SCU, "NOSUCHNODE")
    assert [int(rsp.Status) for rsp in responses] == [statuses.MOVE_DESTINATION_UNKNOWN]


# pynetdicom 3.0 leaks the socket of a refused connection (AssociationSocket.connect calls
# shutdown() before close() on an unconnected socket, which raises and skips the close): the
# ResourceWarning is pynetdicom's, collected here so that it is reported in this test only.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_cmove_destination_down_fails_without_hanging(archive: Archive) -> None:
    """A known destination nobody listens on: the association to it fails at once and the
    C-MOVE ends with a failure (pynetdicom answers 0xA801, PS3.4 C.4.2.1.5) instead of
    waiting; the bridge's connection timeout bounds the wait for an unanswering host."""
    responses = move(archive, SCU, DOWN)
    gc.collect()
    assert [int(rsp.Status) for rsp in responses] == [statuses.MOVE_DESTINATION_UNKNOWN]


def test_echo_only_peer_get_and_move_refused_not_authorized(archive: Archive) -> None:
    """A peer without get/move permission gets "Refused: Not Authorized" (PS3.7 C.5.x, 0x0124)
    and no sub-operation is performed."""
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = archive.study
    with scu_association(archive.bridge, ECHO_ONLY, [STUDY_ROOT_GET]) as assoc:
        got = [status for status, _ in assoc.send_c_get(query, STUDY_ROOT_GET)]
    assert [int(rsp.Status) for rsp in got] == [statuses.NOT_AUTHORIZED]
    assert got[-1].NumberOfCompletedSuboperations == 0
    moved = move(archive, ECHO_ONLY, DESTINATION)
    assert [int(rsp.Status) for rsp in moved] == [statuses.NOT_AUTHORIZED]
    assert moved[-1].NumberOfCompletedSuboperations == 0


def test_cget_invalid_identifier_a900(archive: Archive) -> None:
    """A SERIES level C-GET without Series Instance UID is answered 0xA900 (PS3.4 C.4.3.1.4)."""
    query = Dataset()
    query.QueryRetrieveLevel = "SERIES"
    query.StudyInstanceUID = archive.study
    with scu_association(archive.bridge, SCU, [STUDY_ROOT_GET]) as assoc:
        got = [int(status.Status) for status, _ in assoc.send_c_get(query, STUDY_ROOT_GET)]
    assert got == [statuses.RETRIEVE_IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS]


def test_cget_cancel_after_first_suboperation_cancel_with_counts(archive: Archive) -> None:
    """A C-CANCEL after the first pending response (PS3.7 §9.3.3.3) ends the C-GET with Cancel
    (0xFE00) and the counts of the sub-operations done and remaining (PS3.4 C.4.3.3.1)."""
    stored: list[str] = []

    def on_store(event: evt.Event) -> int:
        stored.append(str(event.request.AffectedSOPInstanceUID))
        return statuses.SUCCESS

    ae = AE(ae_title=SCU)
    ae.add_requested_context(STUDY_ROOT_GET)
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate(
        archive.bridge.host,
        archive.bridge.port,
        ae_title=archive.bridge.ae_title,
        ext_neg=[build_role(CTImageStorage, scp_role=True)],
        evt_handlers=[(evt.EVT_CONN_OPEN, set_tcp_nodelay), (evt.EVT_C_STORE, on_store)],
    )
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = archive.study
    responses: list[Dataset] = []
    try:
        assert assoc.is_established
        context_id = next(
            cx.context_id for cx in assoc.accepted_contexts if cx.abstract_syntax == STUDY_ROOT_GET
        )
        assert context_id is not None
        for status, _ in assoc.send_c_get(query, STUDY_ROOT_GET, msg_id=9):
            responses.append(status)
            if len(responses) == 1:
                assoc.send_c_cancel(9, context_id)
    finally:
        assoc.release()
        ae.shutdown()
    total = sum(len(series) for series in archive.series)
    final = responses[-1]
    assert int(responses[0].Status) == statuses.RETRIEVE_PENDING
    assert int(final.Status) == statuses.CANCEL
    completed = int(final.NumberOfCompletedSuboperations)
    assert completed == len(stored) >= 1
    assert int(final.NumberOfFailedSuboperations) == 0
    assert completed + int(final.NumberOfRemainingSuboperations) == total
    assert completed < total


def test_cget_all_suboperations_failing_a702(archive: Archive) -> None:
    """Instances whose SOP class the requestor did not propose cannot be sent: every
    sub-operation fails and the C-GET ends with 0xA702 and the failed count (PS3.4
    C.4.3.1.4)."""
    query = Dataset()
    query.QueryRetrieveLevel = "SERIES"
    query.StudyInstanceUID = archive.study
    query.SeriesInstanceUID = archive.series[1][0].SeriesInstanceUID
    with scu_association(archive.bridge, SCU, [STUDY_ROOT_GET]) as assoc:
        responses = [status for status, _ in assoc.send_c_get(query, STUDY_ROOT_GET)]
    final = responses[-1]
    assert int(final.Status) == statuses.RETRIEVE_UNABLE_TO_PERFORM_SUB_OPERATIONS
    assert int(final.NumberOfFailedSuboperations) == len(archive.series[1])
    assert int(final.NumberOfCompletedSuboperations) == 0


def cget_received(
    archive: Archive, study_uid: str, transfer_syntax: str
) -> tuple[list[Dataset], list[C_STORE]]:
    """C-GET of a study by a pynetdicom SCU proposing CT Image Storage in *transfer_syntax*
    only; the C-GET responses and the C-STORE requests it received."""
    received: list[C_STORE] = []

    def on_store(event: evt.Event) -> int:
        received.append(event.request)
        return statuses.SUCCESS

    ae = AE(ae_title=SCU)
    ae.add_requested_context(STUDY_ROOT_GET)
    ae.add_requested_context(CTImageStorage, transfer_syntax)
    assoc = ae.associate(
        archive.bridge.host,
        archive.bridge.port,
        ae_title=archive.bridge.ae_title,
        ext_neg=[build_role(CTImageStorage, scp_role=True)],
        evt_handlers=[(evt.EVT_CONN_OPEN, set_tcp_nodelay), (evt.EVT_C_STORE, on_store)],
    )
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = study_uid
    try:
        assert assoc.is_established
        responses = [status for status, _ in assoc.send_c_get(query, STUDY_ROOT_GET)]
    finally:
        assoc.release()
        ae.shutdown()
    return responses, received


def store_one(archive: Archive, ds: Dataset) -> bytes:
    stored = to_bytes(ds)
    with httpx.Client(timeout=60) as http:
        DicomWebClient(http, archive.bridge.dicomweb_url).store([stored]).raise_for_failures()
    return stored


def test_cget_sends_data_set_bytes_as_stored(archive: Archive, tmp_path: Path) -> None:
    """The C-STORE sub-operation carries the data set bytes exactly as stored (the bridge does
    not decode and encode them again): here with an element stored with VR UN, which a decoder
    gives its dictionary VR (PS3.5 §6.2.2)."""
    ds = next(iter_ct_series(1, 16, 16, patient_id="RETR-BYTES", seed=77))
    ds.add(DataElement(0x00181030, "UN", b"AS STORED "))  # Protocol Name, LO in the dictionary
    stored = store_one(archive, ds)
    (tmp_path / "stored.dcm").write_bytes(stored)
    _, offset = split_dataset(tmp_path / "stored.dcm")
    responses, received = cget_received(archive, ds.StudyInstanceUID, ExplicitVRLittleEndian)
    assert int(responses[-1].Status) == statuses.SUCCESS
    assert [request.DataSet.getvalue() for request in received] == [stored[offset:]]


def test_cget_implicit_only_requestor_receives_converted_data_set(archive: Archive) -> None:
    """A requestor accepting CT only in Implicit VR Little Endian still receives an instance
    stored in Explicit VR Little Endian: the bridge then decodes it and pynetdicom encodes it
    in the accepted syntax (both uncompressed, PS3.5 §A.1, §A.2), with the same elements."""
    ds = next(iter_ct_series(1, 16, 16, patient_id="RETR-IMPLICIT", seed=78))
    store_one(archive, ds)
    responses, received = cget_received(archive, ds.StudyInstanceUID, ImplicitVRLittleEndian)
    assert int(responses[-1].Status) == statuses.SUCCESS
    assert len(received) == 1
    got = dcmread(received[0].DataSet, force=True)
    got.file_meta = ds.file_meta  # the data set alone, decoded as Implicit VR Little Endian
    assert got == ds
