"""Study and series /metadata (PS3.18 §10.4.1.1.2) assembled once and kept, never stale.

Two applications on the same index and store stand for two worker processes or replicas:
each has its own cache (:mod:`pacs_api.dicomweb.metadata_cache`), and what one stores or
deletes the other serves at once, because the cache is keyed by the metadata version the
writer changes in its transaction (:mod:`pacs_api.index.versions`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pacs_api.dicomweb.metadata_cache import cache_for
from pacs_api.main import create_app
from pacs_api.settings import Settings
from pacs_common.dicomjson import first_value
from pacs_common.media import encode_multipart_related
from pacs_common.synthetic import iter_ct_series, synthetic_uid, to_bytes
from sqlalchemy import event

ROOT = "/dicom-web"


@pytest.fixture
def apps(settings: Settings) -> Iterator[tuple[TestClient, TestClient]]:
    with (
        TestClient(create_app(settings)) as first,
        TestClient(create_app(settings)) as second,
    ):
        yield first, second


def _series(count: int, patient_id: str) -> list[bytes]:
    return [to_bytes(ds) for ds in iter_ct_series(count, 16, 16, patient_id=patient_id, seed=4)]


def _stow(client: TestClient, objects: list[bytes]) -> None:
    for i in range(0, len(objects), 100):
        body, content_type = encode_multipart_related(objects[i : i + 100])
        response = client.post(
            f"{ROOT}/studies", content=b"".join(body), headers={"Content-Type": content_type}
        )
        assert response.status_code == 200, response.text


def _uids(client: TestClient, path: str) -> list[str]:
    response = client.get(f"{ROOT}{path}/metadata")
    if response.status_code == 404:
        return []
    assert response.status_code == 200, response.text
    return [str(first_value(ds, "SOPInstanceUID")) for ds in response.json()]


def test_metadata_after_stow_and_delete_in_other_app_current(
    apps: tuple[TestClient, TestClient],
) -> None:
    writer, reader = apps
    objects = _series(5, "CACHE-1")
    study = synthetic_uid(4, "CACHE-1", "study")
    series = synthetic_uid(4, study, "series", 1)
    sops = [synthetic_uid(series, "instance", n) for n in range(1, 6)]
    series_path, study_path = f"/studies/{study}/series/{series}", f"/studies/{study}"

    _stow(writer, objects[:3])
    assert _uids(reader, series_path) == sops[:3]
    assert _uids(reader, study_path) == sops[:3]
    assert _uids(reader, series_path) == sops[:3]  # from the reader's cache

    _stow(writer, objects[3:])  # stored by the other application
    assert _uids(reader, series_path) == sops
    assert _uids(reader, study_path) == sops

    deleted = writer.delete(f"{ROOT}{series_path}/instances/{sops[1]}")
    assert deleted.status_code == 204
    assert _uids(reader, series_path) == [sops[0], *sops[2:]]
    assert _uids(reader, study_path) == [sops[0], *sops[2:]]

    assert writer.delete(f"{ROOT}{series_path}").status_code == 204
    assert reader.get(f"{ROOT}{series_path}/metadata").status_code == 404
    assert reader.get(f"{ROOT}{study_path}/metadata").status_code == 404

    _stow(writer, objects[:2])  # the same UIDs again: a new version, never the old answer
    assert _uids(reader, series_path) == sops[:2]


def test_large_series_metadata_assembled_once(apps: tuple[TestClient, TestClient]) -> None:
    """A 1,000-instance series: the instances' metadata are read from the index once; later
    answers (same bytes) come from the cache after one version lookup."""
    client, _ = apps
    _stow(client, _series(1000, "CACHE-1K"))
    study = synthetic_uid(4, "CACHE-1K", "study")
    series = synthetic_uid(4, study, "series", 1)
    index = client.app.state.index  # type: ignore[attr-defined]
    reads: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "metadata_json" in statement:
            reads.append(statement)

    event.listen(index.engine, "before_cursor_execute", count)
    try:
        answers = [client.get(f"{ROOT}/studies/{study}/series/{series}/metadata") for _ in range(3)]
    finally:
        event.remove(index.engine, "before_cursor_execute", count)
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert len(answers[0].json()) == 1000
    assert answers[0].content == answers[1].content == answers[2].content
    assert len(reads) == 1
    assert cache_for(index).assembled == 1
