"""The metadata computed at ingest (PS3.18 Annex F) is what pydicom's own DICOM JSON encoder
gives for every attribute, whether the element was converted or taken from the conversion cache."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pacs_api.ingest import parse
from pacs_common.synthetic import iter_ct_series, to_bytes
from pydicom.data import get_testdata_file


def _readable_files() -> list[Path]:
    root = Path(str(get_testdata_file("CT_small.dcm"))).parent
    files = []
    for path in sorted(root.rglob("*")):
        try:
            if path.is_file():
                pydicom.dcmread(path)
                files.append(path)
        except Exception:  # noqa: BLE001 - not a file pydicom reads
            continue
    return files


def _expected(data: bytes, bulk: set[str]) -> tuple[dict[str, Any], set[str]]:
    """pydicom's DICOM JSON of the whole data set, read independently, bulk data left out; and
    the keys of values pydicom cannot encode (kept by ingest as UN InlineBinary)."""
    ds = pydicom.dcmread(io.BytesIO(data), force=True)
    expected: dict[str, Any] = {}
    unencodable: set[str] = set()
    for elem in ds:
        key = f"{elem.tag:08X}"
        if key in bulk:
            continue
        try:
            expected[key] = elem.to_json_dict(None, 2**62)
        except ValueError:
            unencodable.add(key)
    return expected, unencodable


def _ours(data: bytes) -> tuple[dict[str, Any], set[str]]:
    parsed = parse.read_instance(io.BytesIO(data), len(data))
    bulk = {k for k, v in parsed.metadata.items() if "BulkDataURI" in v}
    return {k: v for k, v in parsed.metadata.items() if k not in bulk}, bulk


@pytest.fixture(autouse=True)
def _lenient_pydicom() -> None:
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE


@pytest.mark.parametrize("warm", [False, True], ids=["cold-cache", "warm-cache"])
def test_metadata_equals_pydicom_json(warm: bool) -> None:
    """For every pydicom test file we accept and a synthetic CT series, each attribute's DICOM
    JSON equals pydicom's encoding of it (PS3.18 F.2), with a cold and with a warm cache."""
    samples = [p.read_bytes() for p in _readable_files()]
    samples += [to_bytes(ds) for ds in iter_ct_series(4, 16, 16, seed=5)]
    checked = 0
    for data in samples:
        if not warm:
            parse._CONVERTED.clear()
        try:
            ours, bulk = _ours(data)
        except parse.InvalidInstance:
            continue
        if warm:  # second read: every cacheable element comes from the cache
            ours, bulk = _ours(data)
        expected, unencodable = _expected(data, bulk)
        for key in unencodable:
            assert ours.pop(key)["vr"] == "UN"
        assert ours == expected
        checked += 1
    assert checked > 60


@pytest.mark.parametrize("text", [b"NaN", b"inf", b"-inf"])
def test_metadata_non_finite_number_kept_as_inline_binary_valid_json(text: bytes) -> None:
    """A DS that Python reads as NaN or infinity cannot be a JSON number (RFC 8259 §6): it is
    kept as its bytes (UN, InlineBinary, PS3.18 F.2.7) and the metadata stays valid JSON
    (found by tests/fuzz: the metadata held NaN tokens)."""
    data = to_bytes(next(iter_ct_series(1, 8, 8)))
    at = data.index(b"\x28\x00\x52\x10DS")  # Rescale Intercept (0028,1052), explicit VR
    length = int.from_bytes(data[at + 6 : at + 8], "little")
    data = data[: at + 8] + text.ljust(length, b" ") + data[at + 8 + length :]
    parsed = parse.read_instance(io.BytesIO(data), len(data))
    assert parsed.metadata["00281052"] == {
        "vr": "UN",
        "InlineBinary": base64.b64encode(text.ljust(length, b" ")).decode(),
    }
    json.loads(parsed.metadata_text(), parse_constant=_refuse)


def _refuse(token: str) -> None:
    raise AssertionError(f"{token} is not JSON")
