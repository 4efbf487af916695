"""Every route of the API needs its scope (or is one of the few public ones): a route added
without one fails here, and each route answers 403 to every other scope."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from pacs_common.auth import Scope
from pacs_common.auth.http import route_scopes

from tests.auth.conftest import bearer

#: The routes anyone may call: probes, metrics, the dashboard's files, the API description.
PUBLIC = re.compile(r"^/(healthz|readyz|metrics|openapi\.json|docs.*|redoc|ui(/.*)?)$")

#: The scope each route needs, by method and path pattern (the issue's table).
EXPECTED: list[tuple[str, str, Scope]] = [
    ("POST", r"/dicom-web/studies(/\{study\})?", Scope.WRITE),  # STOW-RS
    ("DELETE", r"/dicom-web/studies/.*", Scope.DELETE),
    ("POST", r"/studies/\{study\}/deidentify", Scope.WRITE),  # reads one study, writes another
    ("GET", r"/dicom-web/.*", Scope.READ),  # QIDO, WADO, metadata, frames, bulkdata, rendered
    ("GET", r"/wado", Scope.READ),  # WADO-URI
    ("GET", r"/(changefeed|usage)", Scope.READ),
    ("OPTIONS", r"/dicom-web(/.*)?", Scope.READ),  # capabilities
    ("GET", r"/audit", Scope.ADMIN),  # reading the audit trail
    ("POST", r"/audit", Scope.AUDIT),  # the bridge appends its DIMSE records
    ("GET|POST|DELETE", r"/quarantine(/.*)?", Scope.ADMIN),  # incomplete images held back
]


def expected_scope(method: str, path: str) -> Scope:
    for want_method, pattern, scope in EXPECTED:
        if re.fullmatch(want_method, method) and re.fullmatch(pattern, path):
            return scope
    raise AssertionError(f"{method} {path} is in no row of EXPECTED: add it there")


def scoped_routes(api: TestClient) -> list[tuple[str, str, list[object]]]:
    routes = []
    for route in iter_route_contexts(api.app.routes):  # type: ignore[attr-defined]
        for method in sorted((route.methods or set()) - {"HEAD"}):
            routes.append((method, str(route.path), route_scopes(route)))
    return routes


def test_every_route_is_public_or_scoped(api: TestClient) -> None:
    """A route that forgot its scope would serve anyone holding any credential."""
    forgot = [
        f"{method} {path}"
        for method, path, scopes in scoped_routes(api)
        if not scopes and not PUBLIC.match(path)
    ]
    assert forgot == []


def test_every_route_needs_the_scope_of_the_table(api: TestClient) -> None:
    wrong = [
        f"{method} {path}: {scopes} (expected {expected_scope(method, path)})"
        for method, path, scopes in scoped_routes(api)
        if not PUBLIC.match(path) and scopes != [expected_scope(method, path)]
    ]
    assert wrong == []


def _concrete(path: str) -> str:
    """A request path for a route: UIDs for UID parameters, a frame number, a tag."""
    values = {"frames": "1", "tag": "7FE00010"}
    return re.sub(r"\{(\w+)(:[^}]*)?\}", lambda m: values.get(m.group(1), "1.2.3"), path)


def test_each_route_403_with_other_scopes_allowed_with_its_own(
    api: TestClient, api_keys: dict[Scope, str]
) -> None:
    """Table-driven over every scoped route: a key holding any other single scope gets 403; a
    key holding the route's scope gets past authorization (whatever the route then says)."""
    checked = 0
    for method, path, _scopes in scoped_routes(api):
        if PUBLIC.match(path):
            continue
        scope = expected_scope(method, path)
        url = _concrete(path) + ("?requestType=WADO" if path == "/wado" else "")
        for held, key in api_keys.items():
            response = api.request(method, url, headers=bearer(key))
            if held is scope:
                assert response.status_code not in (401, 403), (method, url, response.text)
            else:
                assert response.status_code == 403, (method, url, held, response.text)
                assert f"'{scope.value}'" in response.json()["detail"]
        checked += 1
    assert checked >= 36  # the walk saw the routes (36 when this was written)


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE", "OPTIONS"])
def test_scoped_route_without_token_401(api: TestClient, method: str) -> None:
    path = {"GET": "/dicom-web/studies", "POST": "/dicom-web/studies"}.get(
        method, "/dicom-web/studies/1.2.3"
    )
    response = api.request(method, path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer ")
