"""``pacs send`` (C-STORE SCU, PS3.4 Annex B) to the running bridge and to DCMTK storescp:
instances arrive as sent (QIDO-RS, received data sets), unreadable files are skipped, refused
ones reported with their status, and association failures exit 3."""

from __future__ import annotations

from pathlib import Path

import httpx
import pydicom
from pacs_common.client import DicomWebClient
from pacs_common.synthetic import iter_ct_series, to_bytes
from pydicom.dataset import Dataset

from tests.bridge.peers import storescp
from tests.bridge.running import SCU, RunningBridge
from tests.cli.conftest import pacs
from tests.support.server import free_port


def _write_series(directory: Path, n: int, seed: int) -> list[Dataset]:
    directory.mkdir(parents=True, exist_ok=True)
    series = list(iter_ct_series(n, 64, 64, seed=seed))
    for ds in series:
        (directory / f"{ds.SOPInstanceUID}.dcm").write_bytes(to_bytes(ds))
    return series


def test_send_ct_series_stored_bad_files_reported_1(bridge: RunningBridge, tmp_path: Path) -> None:
    """A CT series reaches the API; a text file is skipped and a CT without Pixel Data (which
    the API refuses) fails with the bridge's status, so the exit code is 1."""
    series = _write_series(tmp_path / "in", 8, seed=21)
    (tmp_path / "in" / "notes.txt").write_text("not DICOM\n")
    header_only = next(iter_ct_series(1, 32, 32, seed=22))
    del header_only.PixelData
    (tmp_path / "in" / "nested").mkdir()
    refused = tmp_path / "in" / "nested" / "header-only.dcm"
    refused.write_bytes(to_bytes(header_only))

    address = f"{bridge.ae_title}@{bridge.host}:{bridge.port}"
    result = pacs("send", str(tmp_path / "in"), "--to", address, "--calling-ae", SCU, "-r")

    assert result.exit_code == 1, result.output
    assert "sent 8, failed 1, skipped 1" in result.output
    assert f"skipped {tmp_path / 'in' / 'notes.txt'}: not readable as DICOM" in result.output
    assert "failed 0x" in result.output and f"{refused}:" in result.output
    with httpx.Client(timeout=30) as http:
        api = DicomWebClient(http, bridge.dicomweb_url)
        found = api.search_instances(str(series[0].StudyInstanceUID))
        refused_found = api.search_instances(str(header_only.StudyInstanceUID))
    uids = {item["00080018"]["Value"][0] for item in found}
    assert uids == {str(ds.SOPInstanceUID) for ds in series}
    assert refused_found == []


def test_send_to_storescp_received_data_sets_identical(tmp_path: Path) -> None:
    """DCMTK storescp receives every instance with the data set sent (files as stored)."""
    series = _write_series(tmp_path / "in", 6, seed=23)
    with storescp("STORESCP", tmp_path / "out") as port:
        result = pacs("send", str(tmp_path / "in"), "--to", f"STORESCP@127.0.0.1:{port}")
    assert result.exit_code == 0, result.output
    assert "sent 6, failed 0, skipped 0" in result.output
    received = {
        str(ds.SOPInstanceUID): ds for ds in map(pydicom.dcmread, (tmp_path / "out").iterdir())
    }
    assert set(received) == {str(ds.SOPInstanceUID) for ds in series}
    for path in (tmp_path / "in").iterdir():
        original = pydicom.dcmread(path)
        assert received[str(original.SOPInstanceUID)] == original


def test_send_rejected_calling_ae_3_with_reason(bridge: RunningBridge, tmp_path: Path) -> None:
    _write_series(tmp_path / "in", 2, seed=24)
    address = f"{bridge.ae_title}@{bridge.host}:{bridge.port}"
    result = pacs("send", str(tmp_path / "in"), "--to", address, "--calling-ae", "STRANGER")
    assert result.exit_code == 3, result.output
    assert "Calling AE title not recognised" in result.output
    assert "sent 0, failed 2, skipped 0" in result.output


def test_send_unreachable_port_3(tmp_path: Path) -> None:
    _write_series(tmp_path / "in", 1, seed=25)
    result = pacs("send", str(tmp_path / "in"), "--to", f"NOBODY@127.0.0.1:{free_port()}")
    assert result.exit_code == 3, result.output
    assert "cannot be reached" in result.output
