"""``pacs query`` (QIDO-RS) against the real API: tab-separated lines for scripts, matching
keys by keyword, --include, --limit, --json, and the exit codes of bad keys (2) and an
unreachable API (5)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pacs_common.client import DicomWebClient
from pacs_common.synthetic import iter_ct_series, to_bytes
from pydicom.dataset import Dataset

from tests.bridge.running import api_settings
from tests.cli.conftest import pacs, unreachable_url
from tests.support.server import running_api


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[Dataset]]]:
    """One API holding two patients' CT series (3 and 2 instances); its URL and the first's."""
    with running_api(api_settings(tmp_path_factory.mktemp("api"))) as url:
        first = list(iter_ct_series(3, 16, 16, seed=41, patient_id="QUERY-1"))
        second = list(iter_ct_series(2, 16, 16, seed=42, patient_id="QUERY-2"))
        with httpx.Client(timeout=30) as http:
            client = DicomWebClient(http, url)
            for series in (first, second):
                client.store([to_bytes(ds) for ds in series]).raise_for_failures()
        yield url, first


def rows(output: str) -> list[dict[str, str]]:
    header, *lines = output.splitlines()
    return [dict(zip(header.split("\t"), line.split("\t"), strict=True)) for line in lines]


def test_query_studies_tab_separated_with_counts(stored: tuple[str, list[Dataset]]) -> None:
    """Without a terminal: a header line and one tab-separated line per study."""
    url, first = stored
    result = pacs("query", "--url", url)
    assert result.exit_code == 0, result.output
    found = {row["PatientID"]: row for row in rows(result.output)}
    assert set(found) == {"QUERY-1", "QUERY-2"}
    study = found["QUERY-1"]
    assert study["StudyInstanceUID"] == first[0].StudyInstanceUID
    assert study["ModalitiesInStudy"] == "CT"
    assert study["NumberOfStudyRelatedInstances"] == "3"


def test_query_matching_key_and_include_add_columns(stored: tuple[str, list[Dataset]]) -> None:
    """-k PatientID=... matches one study; --include adds its column."""
    url, first = stored
    result = pacs(
        "query", "studies", "-k", "PatientID=QUERY-1", "--include", "PatientSex", "--url", url
    )
    assert result.exit_code == 0, result.output
    (study,) = rows(result.output)
    assert study["StudyInstanceUID"] == first[0].StudyInstanceUID
    assert study["PatientSex"] == str(first[0].PatientSex)


def test_query_instances_of_series_with_limit(stored: tuple[str, list[Dataset]]) -> None:
    """instances --study --series lists the series' instances; --limit caps them."""
    url, first = stored
    where = ["--study", str(first[0].StudyInstanceUID), "--series", str(first[0].SeriesInstanceUID)]
    result = pacs("query", "instances", *where, "--url", url)
    assert result.exit_code == 0, result.output
    assert {row["SOPInstanceUID"] for row in rows(result.output)} == {
        str(ds.SOPInstanceUID) for ds in first
    }
    limited = pacs("query", "instances", *where, "--limit", "2", "--url", url)
    assert len(rows(limited.output)) == 2


def test_query_series_json_is_dicom_json(stored: tuple[str, list[Dataset]]) -> None:
    """--json prints the API's DICOM JSON array (PS3.18 Annex F)."""
    url, first = stored
    result = pacs(
        "query", "series", "--study", str(first[0].StudyInstanceUID), "--json", "--url", url
    )
    assert result.exit_code == 0, result.output
    (series,) = json.loads(result.output)
    assert series["0020000E"] == {"vr": "UI", "Value": [str(first[0].SeriesInstanceUID)]}
    assert series["00080060"]["Value"] == ["CT"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-k", "PatientNam=DOE"], "'PatientNam' is neither a keyword nor a tag"),
        (["-k", "PatientID"], "is not KEY=VALUE"),
        (["--include", "NoSuchThing"], "'NoSuchThing' is neither a keyword nor a tag"),
        (["series", "--series", "1.2.3"], "--series needs --study"),
        (["series", "--study", "1.2.x"], "is not a valid UID"),
    ],
)
def test_query_bad_arguments_2(args: list[str], message: str) -> None:
    """Unknown keywords, malformed keys and UIDs are refused before anything is sent."""
    result = pacs("query", *args, "--url", unreachable_url("/dicom-web"))
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_query_api_unreachable_5() -> None:
    url = unreachable_url("/dicom-web")
    result = pacs("query", "--url", url)
    assert result.exit_code == 5, result.output
    assert f"the API at {url} cannot be reached" in result.output


def test_query_api_error_5(stored: tuple[str, list[Dataset]], tmp_path: Path) -> None:
    """A query the API refuses (a malformed date range) exits 5 with its answer."""
    url, _ = stored
    result = pacs("query", "-k", "StudyDate=2024-99", "--url", url)
    assert result.exit_code == 5, result.output
    assert "answered an error" in result.output and "400" in result.output
