"""Retrieve Capabilities (PS3.18 §8.9, Annex H): OPTIONS answers Allow and a WADL document."""

from __future__ import annotations

from collections.abc import Iterator
from xml.etree import ElementTree as ET

import pytest
from fastapi.testclient import TestClient
from pacs_api.main import create_app
from pacs_api.settings import Settings

WADL = "{http://wadl.dev.java.net/2009/02}"
INSTANCE = "/dicom-web/studies/1.2.3/series/1.2.4/instances/1.2.5"


def methods(body: bytes) -> dict[str, set[str]]:
    """The methods of each resource path of a WADL document."""
    root = ET.fromstring(body)
    return {
        resource.attrib["path"]: {m.attrib["name"] for m in resource.iter(f"{WADL}method")}
        for resource in root.iter(f"{WADL}resource")
    }


def test_capabilities_service_root_wadl_from_routes(client: TestClient) -> None:
    """``OPTIONS /dicom-web`` describes every DICOMweb resource of the app in WADL, generated
    from the app's own routes (PS3.18 §8.9.1, Annex H)."""
    response = client.options("/dicom-web")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.sun.wadl+xml"
    assert "OPTIONS" in response.headers["allow"]
    described = methods(response.content)
    assert {"GET", "POST", "DELETE", "OPTIONS"} <= described["studies/{study}"]
    assert described["studies/{study}/series/{series}/instances/{instance}/frames/{frames}"] == {
        "GET"
    }
    routes = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    expected = {
        path.removeprefix("/dicom-web/"): {verb.upper() for verb in item}
        for path, item in routes.items()
        if path.startswith("/dicom-web/")
    }
    assert {path: described[path] for path in expected} == expected
    base = ET.fromstring(response.content).find(f"{WADL}resources")
    assert base is not None and base.attrib["base"] == "http://testserver/dicom-web/"


@pytest.mark.parametrize(
    ("path", "allow"),
    [
        ("/dicom-web/studies/1.2.3", "DELETE, GET, OPTIONS, POST"),
        ("/dicom-web/studies/1.2.3/series/1.2.4", "DELETE, GET, OPTIONS"),
        (INSTANCE, "DELETE, GET, OPTIONS"),
    ],
)
def test_capabilities_resource_allow_and_subtree(client: TestClient, path: str, allow: str) -> None:
    """OPTIONS on a study, series or instance answers its Allow header and describes the
    resource and the resources below it only (PS3.18 §8.9.1)."""
    response = client.options(path)
    assert response.status_code == 200
    assert response.headers["allow"] == allow
    described = methods(response.content)
    own = path.removeprefix("/dicom-web/")
    assert all(p.count("/") >= own.count("/") for p in described)
    assert "series" not in described


def test_capabilities_malformed_uid_400(client: TestClient) -> None:
    assert client.options("/dicom-web/studies/1.2.abc").status_code == 400


def test_capabilities_json_only_accept_406(client: TestClient) -> None:
    """Only WADL, the format Annex H defines, is served."""
    response = client.options("/dicom-web", headers={"Accept": "application/json"})
    assert response.status_code == 406


@pytest.fixture
def cors_client(settings: Settings) -> Iterator[TestClient]:
    configured = settings.model_copy(update={"cors_allow_origins": ["http://viewer.test"]})
    with TestClient(create_app(configured), base_url="http://testserver") as test_client:
        yield test_client


def test_capabilities_and_cors_preflight_coexist(cors_client: TestClient) -> None:
    """A CORS preflight (Origin and Access-Control-Request-Method) is answered by CORS; a plain
    OPTIONS from the same origin gets the capabilities, readable by the page."""
    preflight = cors_client.options(
        INSTANCE,
        headers={"Origin": "http://viewer.test", "Access-Control-Request-Method": "DELETE"},
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "http://viewer.test"
    assert "DELETE" in preflight.headers["access-control-allow-methods"]
    plain = cors_client.options(INSTANCE, headers={"Origin": "http://viewer.test"})
    assert plain.status_code == 200
    assert plain.headers["content-type"] == "application/vnd.sun.wadl+xml"
    assert plain.headers["access-control-allow-origin"] == "http://viewer.test"
    assert "allow" in plain.headers["access-control-expose-headers"].lower()
