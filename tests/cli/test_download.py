"""``pacs download`` (WADO-RS) from the real API: files named by SOP Instance UID and
byte-identical to what ``pacs upload`` sent, for a study, a series and an instance; exit 1
for a study the API does not hold, 2 for bad UIDs, 5 when the API cannot be reached."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pacs_common.synthetic import iter_ct_series, to_bytes

from tests.cli.conftest import pacs, unreachable_url
from tests.cli.test_upload import pydicom_file


def uploaded(api: str, directory: Path) -> dict[str, bytes]:
    """Two CT series of one study and pydicom's big-endian MR, uploaded with ``pacs upload``;
    the files' bytes by SOP Instance UID."""
    directory.mkdir()
    for number in (1, 2):
        for ds in iter_ct_series(3, 16, 16, seed=51, series_number=number):
            name = f"{number}-{ds.InstanceNumber}.dcm"
            (directory / name).write_bytes(to_bytes(ds))
    pydicom_file("MR_small_bigendian.dcm", directory)
    result = pacs("upload", str(directory), "--url", api)
    assert result.exit_code == 0, result.output
    return {
        str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID): path.read_bytes()
        for path in directory.iterdir()
    }


def test_download_study_series_instance_byte_identical(api: str, tmp_path: Path) -> None:
    """A study, one of its series and one instance come back as the very bytes uploaded."""
    sent = uploaded(api, tmp_path / "in")
    ct = list(iter_ct_series(3, 16, 16, seed=51, series_number=2))
    study, series = str(ct[0].StudyInstanceUID), str(ct[0].SeriesInstanceUID)

    result = pacs("download", study, "--out", str(tmp_path / "study"), "--url", api)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1].startswith("downloaded 6 instances (")
    got = {path.stem: path.read_bytes() for path in (tmp_path / "study").iterdir()}
    assert got == {uid: content for uid, content in sent.items() if uid in got}
    assert len(got) == 6

    result = pacs(
        "download", study, "--series", series, "-o", str(tmp_path / "series"), "--url", api
    )
    assert result.exit_code == 0, result.output
    assert "3/3 " in result.output
    got = {path.stem: path.read_bytes() for path in (tmp_path / "series").iterdir()}
    assert got == {str(ds.SOPInstanceUID): sent[str(ds.SOPInstanceUID)] for ds in ct}

    sop = str(ct[1].SOPInstanceUID)
    where = ["--series", series, "--instance", sop]
    result = pacs("download", study, *where, "-o", str(tmp_path / "one"), "--url", api)
    assert result.exit_code == 0, result.output
    assert [p.name for p in (tmp_path / "one").iterdir()] == [f"{sop}.dcm"]
    assert (tmp_path / "one" / f"{sop}.dcm").read_bytes() == sent[sop]


def test_download_big_endian_as_stored_byte_identical(api: str, tmp_path: Path) -> None:
    """An instance in a retired transfer syntax (Explicit VR Big Endian) comes back as stored."""
    sent = uploaded(api, tmp_path / "in")
    mr = pydicom.dcmread(tmp_path / "in" / "MR_small_bigendian.dcm", stop_before_pixels=True)
    result = pacs("download", str(mr.StudyInstanceUID), "-o", str(tmp_path / "mr"), "--url", api)
    assert result.exit_code == 0, result.output
    path = tmp_path / "mr" / f"{mr.SOPInstanceUID}.dcm"
    assert path.read_bytes() == sent[str(mr.SOPInstanceUID)]


def test_download_unknown_study_1(api: str, tmp_path: Path) -> None:
    result = pacs("download", "1.2.3.4", "--out", str(tmp_path / "out"), "--url", api)
    assert result.exit_code == 1, result.output
    assert "the API holds no study 1.2.3.4" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["1.2.x"], "is not a valid UID"),
        (["1.2.3", "--instance", "1.2.3.4"], "--instance needs --series"),
        (["1.2.3", "--transfer-syntax", "explicit"], "is not a valid UID"),
    ],
)
def test_download_bad_arguments_2(args: list[str], message: str, tmp_path: Path) -> None:
    url = unreachable_url("/dicom-web")
    result = pacs("download", *args, "--out", str(tmp_path / "out"), "--url", url)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_download_api_unreachable_5(tmp_path: Path) -> None:
    url = unreachable_url("/dicom-web")
    result = pacs("download", "1.2.3", "--out", str(tmp_path / "out"), "--url", url)
    assert result.exit_code == 5, result.output
    assert f"the API at {url} cannot be reached" in result.output
