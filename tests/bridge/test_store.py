"""C-STORE SCP (PS3.4 Annex B): instances sent by DCMTK ``storescu`` and pynetdicom reach the
API by STOW-RS exactly as they were sent, and success is answered only once the API stored
them."""

from __future__ import annotations

import struct
from pathlib import Path

import httpx
import pydicom
import pytest
from pacs_bridge.sop_classes import VERIFICATION
from pacs_common import statuses
from pacs_common.client import DicomWebClient
from pacs_common.synthetic import iter_ct_series, to_bytes
from pydicom.data import get_testdata_file
from pydicom.uid import CTImageStorage

from tests.bridge.peers import dcmtk, peer_args, scu_association
from tests.bridge.running import SCU, RunningBridge, api_settings, running_bridge
from tests.support.server import running_api

#: pydicom test files in the encodings modalities send, with the storescu option proposing
#: that transfer syntax (storescu proposes uncompressed syntaxes only by default): JPEG
#: baseline, RLE, JPEG 2000 lossless, deflate and uncompressed.
ENCODED_FILES = [
    ("SC_rgb_jpeg_dcmtk.dcm", "--propose-jpeg8"),
    ("MR_small_RLE.dcm", "--propose-rle"),
    ("MR_small_jp2klossless.dcm", "--propose-j2k-lossless"),
    ("image_dfl.dcm", "--propose-deflated"),
    ("CT_small.dcm", "--propose-little"),
]


def data_set_bytes(part10: bytes) -> bytes:
    """The data set of a Part 10 object, after its File Meta Information (PS3.10 §7.1)."""
    assert part10[128:132] == b"DICM"
    # (0002,0000) UL, explicit VR little endian: tag, VR, 2-byte length, 4-byte value.
    assert part10[132:138] == b"\x02\x00\x00\x00UL"
    (group_length,) = struct.unpack("<I", part10[140:144])
    return part10[144 + group_length :]


def stored_bytes(api_url: str, study: str, series: str, sop: str) -> bytes:
    with httpx.Client(timeout=30) as http:
        parts = list(DicomWebClient(http, api_url).retrieve_instance(study, series, sop))
    assert len(parts) == 1
    return parts[0]


def test_storescu_ct_series_all_stored_byte_identical(
    bridge: RunningBridge, tmp_path: Path
) -> None:
    """storescu of a synthetic CT series: every instance is in the API (QIDO-RS) with the data
    set bytes storescu sent (PS3.4 B.2.2, PS3.18 §10.5), behind File Meta Information naming
    the calling AE as sender and the bridge as source and receiver (PS3.10 table 7.1-1)."""
    files = []
    for ds in iter_ct_series(12, 64, 64, seed=4):
        path = tmp_path / f"{ds.SOPInstanceUID}.dcm"
        path.write_bytes(to_bytes(ds))
        files.append((ds, path))
    proc = dcmtk("storescu", *peer_args(bridge, SCU), *(path for _, path in files))
    assert proc.returncode == 0, proc.stderr

    study = str(files[0][0].StudyInstanceUID)
    series = str(files[0][0].SeriesInstanceUID)
    with httpx.Client(timeout=30) as http:
        found = DicomWebClient(http, bridge.dicomweb_url).search_instances(study, series)
    assert len(found) == len(files)
    for ds, path in files[:3]:
        received = stored_bytes(bridge.dicomweb_url, study, series, str(ds.SOPInstanceUID))
        assert data_set_bytes(received) == data_set_bytes(path.read_bytes())
        meta = pydicom.dcmread(pydicom.filebase.DicomBytesIO(received)).file_meta
        assert meta.SendingApplicationEntityTitle == SCU
        assert meta.SourceApplicationEntityTitle == meta.ReceivingApplicationEntityTitle
        assert meta.ReceivingApplicationEntityTitle == bridge.ae_title


@pytest.mark.parametrize(("name", "propose"), ENCODED_FILES)
def test_storescu_encoded_file_stored_in_its_transfer_syntax(
    bridge: RunningBridge, name: str, propose: str
) -> None:
    """storescu of a pydicom test file: stored in the transfer syntax it was sent in, with the
    same pixel data bytes (the bridge never decodes or transcodes, PS3.4 B.4.1). storescu
    re-encodes the rest of the data set (group lengths, padding), so the rest is compared by
    value."""
    path = Path(get_testdata_file(name) or "")
    original = pydicom.dcmread(path)
    proc = dcmtk("storescu", propose, *peer_args(bridge, SCU), path)
    assert proc.returncode == 0, proc.stderr

    received = stored_bytes(
        bridge.dicomweb_url,
        str(original.StudyInstanceUID),
        str(original.SeriesInstanceUID),
        str(original.SOPInstanceUID),
    )
    stored = pydicom.dcmread(pydicom.filebase.DicomBytesIO(received))
    assert stored.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
    assert stored.PixelData == original.PixelData
    for keyword in ("SOPClassUID", "PatientName", "Rows", "Columns", "BitsAllocated"):
        assert stored.get(keyword) == original.get(keyword)


def test_cstore_api_stopped_out_of_resources_nothing_acknowledged(tmp_path: Path) -> None:
    """With the API stopped, C-STORE answers Out of Resources (A7xx, PS3.4 B.2.3) so the
    modality keeps the instance and retries; once the API is back the same instance is
    stored."""
    ds = next(iter_ct_series(1, 32, 32, seed=9))
    with running_api(api_settings(tmp_path)) as api_url:
        pass  # started and stopped: the bridge now points at a closed port
    with running_bridge(api_url) as bridge:
        with scu_association(bridge, SCU, [VERIFICATION, CTImageStorage]) as assoc:
            status = assoc.send_c_store(ds)
    assert status.Status & 0xFF00 == statuses.OUT_OF_RESOURCES
    assert "ErrorComment" in status

    with running_api(api_settings(tmp_path)) as api_url, running_bridge(api_url) as bridge:
        with httpx.Client(timeout=30) as http:
            assert DicomWebClient(http, api_url).search_instances() == []
        with scu_association(bridge, SCU, [CTImageStorage]) as assoc:
            assert assoc.send_c_store(ds).Status == statuses.SUCCESS
        with httpx.Client(timeout=30) as http:
            found = DicomWebClient(http, api_url).search_instances(
                SOPInstanceUID=str(ds.SOPInstanceUID)
            )
        assert len(found) == 1


def test_cstore_refused_instance_answers_api_failure_reason(bridge: RunningBridge) -> None:
    """An instance the API refuses (STOW-RS 409 with a FailureReason, PS3.18 §10.5.3) gets
    that failure status, not success: here the same SOP Instance UID with other content."""
    first, second = iter_ct_series(2, 32, 32, seed=11)
    clash = second.copy()
    clash.SOPInstanceUID = first.SOPInstanceUID
    clash.file_meta.MediaStorageSOPInstanceUID = first.SOPInstanceUID
    with scu_association(bridge, SCU, [CTImageStorage]) as assoc:
        assert assoc.send_c_store(first).Status == statuses.SUCCESS
        status = assoc.send_c_store(clash).Status
    assert status not in (statuses.SUCCESS, statuses.OUT_OF_RESOURCES)
    assert status & 0xF000 in (0xA000, 0xC000) or status == statuses.DUPLICATE_SOP_INSTANCE
