"""The exporter on its scale-out deployment: jobs in PostgreSQL, meshes in S3 (SeaweedFS)."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pytest
from pacs_common.storage import open_store
from stl import mesh as stl_mesh

from tests.bridge.running import api_settings
from tests.exporter.service import (
    exporter_settings,
    phantom,
    request,
    running_exporter,
    store,
    submit,
    wait_for,
)
from tests.support import postgres
from tests.support.seaweedfs import SeaweedFS
from tests.support.server import running_api


@pytest.mark.s3
@pytest.mark.postgres
def test_export_on_postgresql_and_s3_downloads_from_the_bucket(
    tmp_path: Path, postgres_server: str, seaweedfs: SeaweedFS, s3_bucket_url: str
) -> None:
    """A job on PostgreSQL writes its mesh and report to the S3 bucket; the file streams
    from there; deleting the job empties its prefix."""
    with running_api(api_settings(tmp_path / "api")) as url:
        study, series = store(url, phantom())
        with postgres.temporary_database(postgres_server) as database_url:
            settings = exporter_settings(
                tmp_path,
                url,
                database_url=database_url,
                store_url=s3_bucket_url,
                s3_access_key=seaweedfs.access_key,
                s3_secret_key=seaweedfs.secret_key,
            )
            with running_exporter(settings) as client:
                job = wait_for(client, submit(client, request(study, series))["id"])
                assert job["state"] == "succeeded", job["error"]
                bucket = open_store(settings)
                keys = [info.key for info in bucket.list(f"exports/{job['id']}/")]
                assert keys == [
                    f"exports/{job['id']}/{series}.json",
                    f"exports/{job['id']}/{series}.stl",
                ]
                response = client.get(job["file"])
                assert response.status_code == 200
                parsed = stl_mesh.Mesh.from_file("s3.stl", fh=BytesIO(response.content))
                assert parsed.is_closed()
                assert client.delete(f"/exports/{job['id']}").status_code == 204
                assert list(bucket.list(f"exports/{job['id']}/")) == []
                bucket.close()
