"""QIDO-RS over HTTP (PS3.18 §10.6): routes, query parameters, headers and status codes.

Matching itself is pinned in test_qido_search.py; these tests check what the routes add:
parameter parsing (§8.3.4), Warning headers (RFC 7234 §5.5), content negotiation and 400/406.
The archive is inserted straight into the index, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pacs_api.main import create_app
from pacs_api.settings import Settings
from pacs_common.dicomjson import tag_key

from tests.support.qido_archive import STUDY_ORDER, Archive, build_archive, first

DICOM_JSON = "application/dicom+json"
ROOT = "http://testserver/dicom-web"


@pytest.fixture
def qido(index_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, Archive]]:
    """The app on the QIDO test archive, with a default limit of 5 and a maximum of 6."""
    settings = Settings(
        database_url=index_url,
        store_url=f"file://{tmp_path / 'objects'}",
        qido_default_limit=5,
        qido_max_limit=6,
    )
    app = create_app(settings)
    archive = build_archive(index_url, ROOT)
    with TestClient(app, base_url="http://testserver") as client:
        yield client, archive
    archive.engine.dispose()


def get(client: TestClient, path: str, **params: str | list[str]) -> httpx.Response:
    response: httpx.Response = client.get(f"/dicom-web{path}", params=params)
    return response


def warnings_of(response: httpx.Response) -> list[str]:
    return response.headers.get_list("warning")


def test_qido_studies_200_dicom_json_array(qido: tuple[TestClient, Archive]) -> None:
    """A search answers 200 with a DICOM JSON array (PS3.18 §10.6.3, Annex F)."""
    client, archive = qido
    response = get(client, "/studies", limit="6")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == DICOM_JSON
    names = archive.study_names_of(response.json())
    assert names == STUDY_ORDER[:6]
    assert first(response.json()[0], "RetrieveURL") == f"{ROOT}/studies/{archive.studies['brain']}"


def test_qido_no_match_200_empty_array(qido: tuple[TestClient, Archive]) -> None:
    """No match is 200 with ``[]`` (PS3.18 §10.6.3 allows 204 too; we answer 200)."""
    client, _ = qido
    response = get(client, "/studies", PatientID="nobody")
    assert (response.status_code, response.json(), warnings_of(response)) == (200, [], [])


def test_qido_key_by_tag_and_repeated_key_matches_any(qido: tuple[TestClient, Archive]) -> None:
    """Keys are named by keyword or tag (PS3.18 §8.3.4.1); a repeated key matches any of its
    values."""
    client, archive = qido
    response = get(client, "/studies", **{"00100020": ["PAT002", "PAT003"]})
    assert archive.study_names_of(response.json()) == ["knee", "spine"]


def test_qido_default_limit_truncates_with_warning(qido: tuple[TestClient, Archive]) -> None:
    """Without limit the configured default applies; a cut answer says so in a Warning
    header (PS3.18 §8.3.4.4, RFC 7234 §5.5)."""
    client, _ = qido
    response = get(client, "/studies")
    assert len(response.json()) == 5
    assert warnings_of(response) == [
        '299 testserver "The number of results exceeded the limit; use offset to page"'
    ]


def test_qido_limit_above_maximum_is_capped_with_warning(qido: tuple[TestClient, Archive]) -> None:
    """A limit above the server's maximum is lowered, with a warning (PS3.18 §8.3.4.4)."""
    client, _ = qido
    response = get(client, "/studies", limit="100", offset="1")
    assert len(response.json()) == 6
    assert "The limit 100 exceeds" in warnings_of(response)[0]


@pytest.mark.parametrize(
    ("name", "value"),
    [("limit", "-1"), ("limit", "ten"), ("offset", "1.5"), ("fuzzymatching", "yes")],
)
def test_qido_bad_control_parameter_400(
    qido: tuple[TestClient, Archive], name: str, value: str
) -> None:
    """An invalid value of a supported parameter is a 400 naming it (PS3.18 §8.3)."""
    client, _ = qido
    response = get(client, "/studies", **{name: value})
    assert response.status_code == 400
    assert response.json()["detail"].startswith(f"{name}={value!r}")


def test_qido_bad_date_400_names_key(qido: tuple[TestClient, Archive]) -> None:
    """A malformed key value is a 400 problem naming key and value (PS3.18 §8.3)."""
    client, _ = qido
    response = get(client, "/studies", StudyDate="2024-01-01")
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"].startswith("StudyDate='2024-01-01'")


def test_qido_unknown_key_and_sequence_path_ignored_with_warning(
    qido: tuple[TestClient, Archive],
) -> None:
    """Unknown parameters and sequence keys are ignored with a warning (PS3.18 §8.3)."""
    client, _ = qido
    response = get(
        client,
        "/studies",
        limit="6",
        NotAKeyword="x",
        **{"RequestAttributesSequence.ScheduledProcedureStepID": "1"},
    )
    assert len(response.json()) == 6
    warning, truncated = warnings_of(response)
    assert "NotAKeyword" in warning and "RequestAttributesSequence." in warning
    assert "use offset to page" in truncated


def test_qido_fuzzymatching_true_matches_names_fuzzily(qido: tuple[TestClient, Archive]) -> None:
    """fuzzymatching=true applies fuzzy person-name matching, with no Warning (PS3.18
    §8.3.4.2)."""
    client, archive = qido
    response = get(client, "/studies", PatientName="john doe", fuzzymatching="true")
    assert archive.study_names_of(response.json()) == ["brain", "chest"]
    assert not any("fuzzymatching" in w for w in warnings_of(response))


def test_qido_emptyvaluematching_true_ignored_with_warning(
    qido: tuple[TestClient, Archive],
) -> None:
    """emptyvaluematching is a known parameter (PS3.18 §8.3.4.5) we do not support: ignored,
    with a warning."""
    client, archive = qido
    response = get(client, "/studies", StudyDate="-20220101", emptyvaluematching="true")
    assert archive.study_names_of(response.json()) == ["head_a"]
    assert "emptyvaluematching parameter is not supported" in warnings_of(response)[0]


def test_qido_includefield_comma_separated_and_repeated(qido: tuple[TestClient, Archive]) -> None:
    """includefield takes comma-separated and repeated keywords and tags (PS3.18 §8.3.4.3)."""
    client, _ = qido
    response = get(
        client,
        "/studies",
        StudyID="chest",
        includefield=["PatientAge,00081030", "ProtocolName"],
    )
    (dataset,) = response.json()
    assert first(dataset, "PatientAge") == "045Y"
    assert first(dataset, "StudyDescription") == "CT CHEST"
    assert tag_key("ProtocolName") not in dataset  # a series attribute, with a warning
    assert "ProtocolName" in warnings_of(response)[0]


@pytest.mark.parametrize(
    ("accept", "answered"),
    [
        (DICOM_JSON, DICOM_JSON),
        ("application/json", "application/json"),
        ("*/*", DICOM_JSON),
        ('multipart/related; type="application/dicom+xml";q=0.5, application/*', DICOM_JSON),
    ],
)
def test_qido_accept_json_types_200(
    qido: tuple[TestClient, Archive], accept: str, answered: str
) -> None:
    """DICOM JSON, plain JSON and wildcards are acceptable (PS3.18 §10.6.3, §8.7.3)."""
    client, _ = qido
    response = client.get("/dicom-web/studies", headers={"Accept": accept})
    assert (response.status_code, response.headers["content-type"]) == (200, answered)


def test_qido_accept_xml_only_406(qido: tuple[TestClient, Archive]) -> None:
    """An Accept that admits neither JSON nor multipart DICOM XML is a 406 (PS3.18 §8.7.3)."""
    client, _ = qido
    response = client.get("/dicom-web/studies", headers={"Accept": "application/dicom+xml"})
    assert response.status_code == 406


def test_qido_path_uid_invalid_400(qido: tuple[TestClient, Archive]) -> None:
    """A path UID that is not a UID is a 400 with the reason (PS3.5 §9.1)."""
    client, _ = qido
    response = get(client, "/studies/1.2.abc/series")
    assert response.status_code == 400
    assert "not a valid UID" in response.json()["detail"]


def test_qido_every_level_and_scope_answers(qido: tuple[TestClient, Archive]) -> None:
    """The six search resources of PS3.18 table 10.6.1-1 answer with their level's matches."""
    client, archive = qido
    study, series = archive.studies["brain"], archive.series[("brain", 0)]
    counts = {
        path: len(get(client, path, limit="6").json())
        for path in (
            f"/studies/{study}/series",
            "/series",
            f"/studies/{study}/series/{series}/instances",
            f"/studies/{study}/instances",
            "/instances",
        )
    }
    assert list(counts.values()) == [2, 6, 2, 3, 6]
    instance = get(client, f"/studies/{study}/series/{series}/instances").json()[0]
    sop = archive.instances[("brain", 0)][0]
    assert first(instance, "RetrieveURL") == (
        f"{ROOT}/studies/{study}/series/{series}/instances/{sop}"
    )
