"""The Pixel Data check (:mod:`pacs_common.pixel_check`) against every file in pydicom's test
data: nothing the archive accepted before is newly refused unless its Pixel Data is really
incomplete."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom.config
import pydicom.data
import pytest
from pacs_api.ingest.parse import IncompletePixelData, InvalidInstance, read_instance
from pacs_common.pixel_check import Kind, check_file

from tests.support import incomplete

TEST_FILES = Path(pydicom.data.__file__).parent / "test_files"
#: pydicom's CT images of its DICOMDIR tests are header-only (no Pixel Data): 50 files.
HEADER_ONLY = "dicomdirtests/TINY_ALPHA/"


def _outcome(data: bytes, *, check_pixels: bool) -> str:
    try:
        read_instance(io.BytesIO(data), len(data), check_pixels=check_pixels)
    except IncompletePixelData as exc:
        return f"quarantined:{exc.problem.kind}"
    except InvalidInstance:
        return "refused"
    return "stored"


def test_pydicom_test_files_quarantined_only_when_incomplete(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every file pydicom ships: each one the ingest accepts with the check waived is either
    accepted with it, or quarantined because its Pixel Data is missing (the header-only CTs)
    or truncated (MR_truncated.dcm)."""
    monkeypatch.setattr(pydicom.config.settings, "reading_validation_mode", pydicom.config.IGNORE)
    quarantined: dict[str, str] = {}
    stored = 0
    for path in sorted(p for p in TEST_FILES.rglob("*") if p.is_file()):
        data = path.read_bytes()
        checked = _outcome(data, check_pixels=True)
        if checked.startswith("quarantined"):
            quarantined[str(path.relative_to(TEST_FILES))] = checked
        stored += checked == "stored"
        if checked == "refused":  # refused for reasons other than its Pixel Data
            assert _outcome(data, check_pixels=False) == "refused", path
    header_only = {k for k in quarantined if k.startswith(HEADER_ONLY)}
    assert {quarantined[k] for k in header_only} == {f"quarantined:{Kind.MISSING}"}
    assert len(header_only) == 50
    others = {k: v for k, v in quarantined.items() if k not in header_only}
    assert others == {"MR_truncated.dcm": f"quarantined:{Kind.TRUNCATED}"}
    assert stored >= 90


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (incomplete.truncated(), Kind.TRUNCATED),
        (incomplete.short_native(), Kind.SHORT),
        (incomplete.header_only(), Kind.MISSING),
        (incomplete.encapsulated(delimited=False), Kind.UNDELIMITED),
        (incomplete.encapsulated()[:-40], Kind.TRUNCATED),
        (incomplete.encapsulated(), None),
    ],
    ids=["truncated", "short", "missing", "undelimited", "cut-in-fragment", "complete-rle"],
)
def test_check_file_kind(data: bytes, kind: Kind | None) -> None:
    problem = check_file(io.BytesIO(data), len(data))
    assert (problem.kind if problem else None) == kind
