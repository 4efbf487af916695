"""Fixtures of the authentication tests: a real OpenID Connect issuer on 127.0.0.1, API keys
minted as an operator would (one per scope), and the API configured with all three ways to
authenticate (on the embedded deployment: authentication does not depend on the storage)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pacs_api.main import create_app
from pacs_api.settings import Settings
from pacs_common.auth import Scope
from pacs_common.auth.api_keys import key_digest, new_api_key

from tests.auth.issuer import Issuer

AUDIENCE = "pacs-cloud-api"
SECRET = "a-shared-secret-of-at-least-32-bytes-for-hs256"


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    running = Issuer()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def api_keys() -> dict[Scope, str]:
    """A key per scope (holding that scope only)."""
    return {scope: new_api_key() for scope in Scope}


def key_entries(keys: dict[Scope, str]) -> list[dict[str, Any]]:
    """The ``auth_api_keys`` entries of *keys*, as `pacs-api api-key new` prints them."""
    return [
        {"name": f"{scope.value}-bot", "sha256": key_digest(key), "scopes": [scope.value]}
        for scope, key in keys.items()
    ]


@pytest.fixture
def auth_settings(tmp_path: Path, issuer: Issuer, api_keys: dict[Scope, str]) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'index.sqlite3'}",
        store_url=f"file://{tmp_path / 'objects'}",
        auth_api_keys=key_entries(api_keys),
        auth_oidc_issuer=issuer.url,
        auth_jwt_secret=SECRET,
        auth_audience=AUDIENCE,
    )


@pytest.fixture
def api(auth_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(auth_settings), base_url="http://testserver") as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
