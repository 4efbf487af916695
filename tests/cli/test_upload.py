"""``pacs upload`` (STOW-RS) to the real API: a CT series and pydicom's test files stored as
they are, an unreadable file skipped and a refused one reported with the API's reason, a
re-run after Ctrl-C sending only the rest, and exit 5 when the API cannot be reached."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import httpx
import pydicom
from pacs_common.client import DicomWebClient
from pacs_common.synthetic import iter_ct_series, to_bytes
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from tests.cli.conftest import pacs, unreachable_url
from tests.cli.services import finish, pacs_process, read_until


def write_series(directory: Path, n: int, seed: int) -> list[Dataset]:
    """A small CT series (pacs_common.synthetic), one file per instance."""
    directory.mkdir(parents=True, exist_ok=True)
    series = list(iter_ct_series(n, 32, 32, seed=seed))
    for ds in series:
        (directory / f"{ds.InstanceNumber:03d}.dcm").write_bytes(to_bytes(ds))
    return series


def pydicom_file(name: str, directory: Path) -> Path:
    """A copy of one of pydicom's test files in *directory*."""
    source = get_testdata_file(name)
    assert isinstance(source, str)
    directory.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(source, directory / name))


def stored_uids(url: str, study: str | None = None) -> set[str]:
    with httpx.Client(timeout=30) as http:
        found = DicomWebClient(http, url).search_instances(study)
    return {item["00080018"]["Value"][0] for item in found}


def test_upload_series_and_test_files_failure_and_skip_reasons_1(api: str, tmp_path: Path) -> None:
    """A CT series and pydicom's CT and MR files are stored; UN_sequence.dcm (no SOP Class
    UID) is refused with the API's FailureReason and ErrorComment; no_meta.dcm (no File Meta
    Information) and a text file are skipped, not sent; so the exit code is 1."""
    series = write_series(tmp_path / "in" / "ct", 6, seed=31)
    others = tmp_path / "in" / "other"
    good = [pydicom_file("CT_small.dcm", others), pydicom_file("MR_small.dcm", others)]
    refused = pydicom_file("UN_sequence.dcm", others)
    unreadable = pydicom_file("no_meta.dcm", others)
    (others / "notes.txt").write_text("not DICOM\n")

    result = pacs("upload", str(tmp_path / "in"), "-r", "--batch", "4", "--url", api)

    assert result.exit_code == 1, result.output
    assert "stored 8, already stored 0, failed 1, skipped 2" in result.output
    assert (
        f"failed 0xA900 {refused}: Data Set Does Not Match SOP Class: "
        "SOPClassUID is missing or empty" in result.output
    )
    assert f"skipped {unreadable}: not readable as DICOM" in result.output
    assert f"skipped {others / 'notes.txt'}: not readable as DICOM" in result.output
    expected = {str(ds.SOPInstanceUID) for ds in series} | {_sop_uid(path) for path in good}
    assert stored_uids(api) == expected


def _sop_uid(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def test_upload_batches_print_a_line_each_then_rerun_sends_nothing_0(
    api: str, tmp_path: Path
) -> None:
    """Without a terminal each batch prints a line; a second run asks the API and sends
    nothing, every file counted as already stored."""
    series = write_series(tmp_path / "in", 5, seed=32)

    first = pacs("upload", str(tmp_path / "in"), "--batch", "2", "--url", api)
    assert first.exit_code == 0, first.output
    lines = first.output.splitlines()
    assert lines[:3] == ["2/5 files: stored 2", "4/5 files: stored 2", "5/5 files: stored 1"]
    assert lines[3].startswith("stored 5, already stored 0, failed 0, skipped 0 in ")

    again = pacs("upload", str(tmp_path / "in"), "--batch", "2", "--url", api)
    assert again.exit_code == 0, again.output
    assert "stored 0, already stored 5, failed 0, skipped 0" in again.output
    assert stored_uids(api) == {str(ds.SOPInstanceUID) for ds in series}


def test_upload_no_resume_resends_identical_instances_idempotently_0(
    api: str, tmp_path: Path
) -> None:
    """--no-resume sends every file again: the API answers identical instances with success."""
    write_series(tmp_path / "in", 3, seed=33)
    assert pacs("upload", str(tmp_path / "in"), "--url", api).exit_code == 0
    again = pacs("upload", str(tmp_path / "in"), "--no-resume", "--url", api)
    assert again.exit_code == 0, again.output
    assert "stored 3, already stored 0, failed 0, skipped 0" in again.output


def test_upload_interrupted_by_ctrl_c_rerun_sends_only_the_rest_130(
    api: str, tmp_path: Path
) -> None:
    """SIGINT after the first batch stops the upload with 130 and a summary; the re-run
    counts what the API holds as already stored and sends only the rest."""
    series = write_series(tmp_path / "in", 30, seed=34)
    with pacs_process("upload", str(tmp_path / "in"), "--batch", "1", "--url", api) as process:
        read_until(process, "1/30 files: stored 1")
        process.send_signal(signal.SIGINT)
        code, rest = finish(process)
    assert code == 130, rest
    assert "interrupted: a re-run sends only what is not stored" in rest
    held = stored_uids(api, str(series[0].StudyInstanceUID))
    assert 1 <= len(held) < 30

    result = pacs("upload", str(tmp_path / "in"), "--batch", "1", "--url", api)

    assert result.exit_code == 0, result.output
    summary = f"stored {30 - len(held)}, already stored {len(held)}, failed 0, skipped 0"
    assert summary in result.output
    assert stored_uids(api, str(series[0].StudyInstanceUID)) == {
        str(ds.SOPInstanceUID) for ds in series
    }


def test_upload_api_unreachable_5(tmp_path: Path) -> None:
    """Nothing listening at --url: exit 5 with the reason, after the summary."""
    write_series(tmp_path / "in", 2, seed=35)
    url = unreachable_url("/dicom-web")
    result = pacs("upload", str(tmp_path / "in"), "--url", url)
    assert result.exit_code == 5, result.output
    assert f"the API at {url} cannot be reached" in result.output
    assert "stored 0, already stored 0, failed 0, skipped 0" in result.output
