"""``pacs quarantine``: list, show (and save), release and delete against a real API."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx

from tests.cli.conftest import pacs, unreachable_url
from tests.support import incomplete
from tests.support.dicom import stow


def _send(api: str, *parts: bytes) -> list[str]:
    with httpx.Client(base_url=api.removesuffix("/dicom-web"), timeout=30) as http:
        assert stow(http, list(parts)).status_code == 409
    return [hashlib.sha256(p).hexdigest()[:16] for p in parts]


def test_pacs_quarantine_list_show_release_delete(api: str, tmp_path: Path) -> None:
    """``list`` shows both entries as tab-separated lines; ``show -o`` saves the bytes as
    received; ``release`` puts one in the archive (QIDO-RS finds it); ``delete`` removes the
    other; afterwards the list is empty and the ids are unknown (exit 5, 404)."""
    truncated = incomplete.truncated(seed=70, patient_id="CLI-Q-1")
    header_only = incomplete.header_only(seed=71, patient_id="CLI-Q-2")
    kept, gone = _send(api, truncated, header_only)

    listed = pacs("quarantine", "list", "--url", api)
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0].split("\t") == [
        "id", "last received", "kind", "patient id", "patient", "source", "bytes", "reason",
    ]  # fmt: skip
    rows = {line.split("\t")[0]: line.split("\t") for line in lines[1:]}
    assert rows[kept][2:4] == ["truncated", "CLI-Q-1"]
    assert rows[gone][2:4] == ["missing", "CLI-Q-2"]
    assert rows[kept][6] == str(len(truncated))

    saved = tmp_path / "kept.dcm"
    shown = pacs("quarantine", "show", kept, "--url", api, "--output", str(saved))
    assert shown.exit_code == 0, shown.output
    assert f"sha256: {hashlib.sha256(truncated).hexdigest()}" in shown.output
    assert saved.read_bytes() == truncated

    released = pacs("quarantine", "release", kept, "--url", api)
    assert released.exit_code == 0, released.output
    assert f"released {kept}: study " in released.output
    found = pacs("query", "studies", "--url", api, "-k", "PatientID=CLI-Q-1")
    assert found.exit_code == 0 and "CLI-Q-1" in found.output, found.output

    deleted = pacs("quarantine", "delete", gone, "--url", api)
    assert deleted.exit_code == 0 and f"deleted {gone}" in deleted.output
    assert pacs("quarantine", "list", "--url", api).output.splitlines()[1:] == []
    for verb in ("show", "release", "delete"):
        unknown = pacs("quarantine", verb, kept, "--url", api)
        assert unknown.exit_code == 5, unknown.output
        assert "404" in unknown.output


def test_pacs_quarantine_unreachable_exit_5() -> None:
    result = pacs("quarantine", "list", "--url", unreachable_url("/dicom-web"))
    assert result.exit_code == 5
    assert "cannot reach" in result.output
