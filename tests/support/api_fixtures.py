"""API fixtures (a pytest plugin): the app on both deployments the project supports.

``settings`` is parametrized over ``sqlite-filesystem`` (the embedded default) and
``postgresql-s3`` (the scale-out one: a real PostgreSQL and a real SeaweedFS), so every API
test runs on both.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from fastapi.testclient import TestClient
from pacs_api.main import create_app
from pacs_api.settings import Settings

from tests.support import postgres

if TYPE_CHECKING:
    from pacs_common.client import DicomWebClient


@pytest.fixture(params=["sqlite-filesystem", "postgresql-s3"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    if request.param == "sqlite-filesystem":
        yield Settings(
            database_url=f"sqlite:///{tmp_path / 'index.sqlite3'}",
            store_url=f"file://{tmp_path / 'objects'}",
            spool_memory_bytes=64 * 1024,
        )
        return
    server = request.getfixturevalue("postgres_server")
    seaweed = request.getfixturevalue("seaweedfs")
    bucket_url = request.getfixturevalue("s3_bucket_url")
    with postgres.temporary_database(server) as url:
        yield Settings(
            database_url=url,
            store_url=bucket_url,
            s3_access_key=seaweed.access_key,
            s3_secret_key=seaweed.secret_key,
            spool_memory_bytes=64 * 1024,
        )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url="http://testserver") as test_client:
        yield test_client


@pytest.fixture
def dicomweb(client: TestClient) -> DicomWebClient:
    """The shared DICOMweb client, talking to the app in-process."""
    from pacs_common.client import DicomWebClient

    http: httpx.Client = client
    return DicomWebClient(http, "http://testserver/dicom-web")
