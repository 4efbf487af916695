"""Pytest fixtures for a real S3 server: one SeaweedFS per test run, a fresh bucket per test.

Registered for every test by ``tests/conftest.py`` (``pytest_plugins``). The server starts on
first use only, so runs that need no S3 do not pay for it.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator

import pytest

from tests.support.seaweedfs import SeaweedFS

_RUN = uuid.uuid4().hex[:8]
_buckets = itertools.count()


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """A running SeaweedFS S3 server on loopback, stopped at the end of the run."""
    server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    try:
        yield server
    finally:
        server.stop(timeout=5)  # the data need not survive the run: do not wait for a clean exit


@pytest.fixture
def s3_bucket_url(seaweedfs: SeaweedFS) -> str:
    """The ``store_url`` of a bucket no other test uses (``S3Store`` creates it)."""
    return seaweedfs.store_url(f"pacs-test-{_RUN}-{next(_buckets)}")
