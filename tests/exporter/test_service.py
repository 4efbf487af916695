"""The exporter service end to end: a CT phantom stored in the real API, the real exporter app
with a real worker thread, jobs asked for, watched and downloaded over its REST API."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from pacs_exporter.jobs.queue import Job
from pacs_exporter.settings import Settings
from stl import mesh as stl_mesh

from tests.bridge.running import api_settings
from tests.exporter.service import (
    RADIUS_MM,
    exporter_settings,
    phantom,
    request,
    running_exporter,
    store,
    submit,
    wait_for,
)
from tests.support.server import free_port, running_api


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real API for the module; every test stores its own study."""
    with running_api(api_settings(tmp_path_factory.mktemp("api"))) as url:
        yield url


@pytest.fixture
def ct(api: str) -> tuple[str, str]:
    return store(api, phantom())


def test_export_ct_series_succeeds_with_report_and_watertight_stl(
    api: str, ct: tuple[str, str], tmp_path: Path
) -> None:
    """A CT series becomes a succeeded job whose progress rose to 100, with its report, and a
    binary STL that numpy-stl reads as a closed sphere of the phantom's volume."""
    seen: list[float] = []
    lock = threading.Lock()

    def observe(_job: Job, percent: float) -> None:
        with lock:
            seen.append(percent)

    with running_exporter(exporter_settings(tmp_path, api), observe) as client:
        job = submit(client, request(*ct, preset=None))
        assert job["state"] == "queued" and job["progress"] == 0
        job = wait_for(client, job["id"])
        assert job["state"] == "succeeded", job["error"]
        assert job["progress"] == 100 and job["attempts"] == 1 and job["error"] == ""
        assert seen == sorted(seen) and seen[-1] >= 99
        report = job["report"]
        assert report["watertight"] and report["connected_components"] == 1
        assert report["series_instance_uid"] == ct[1] and report["study_instance_uid"] == ct[0]
        assert report["coordinate_system"] == "LPS mm" and report["level_hu"] == 500

        response = client.get(job["file"])
        assert response.status_code == 200
        assert response.headers["content-type"] == "model/stl"
        assert response.headers["content-disposition"] == f'attachment; filename="{ct[1]}.stl"'
        parsed = stl_mesh.Mesh.from_file("export.stl", fh=BytesIO(response.content))
        assert parsed.is_closed() and len(parsed.vectors) == report["triangles"]
        volume, _, _ = parsed.get_mass_properties()
        assert volume == pytest.approx(4 / 3 * np.pi * RADIUS_MM**3, rel=0.02)
        assert volume == pytest.approx(report["volume_mm3"], rel=1e-4)

        listed = client.get("/exports").json()["jobs"]
        assert [j["id"] for j in listed] == [job["id"]]


@pytest.mark.parametrize(
    ("fmt", "media_type", "extension", "start"),
    [
        ("stl-ascii", "model/stl", "stl", b"solid "),
        ("ply", "application/octet-stream", "ply", b"ply\nformat binary_little_endian 1.0\n"),
        ("obj", "model/obj", "obj", b"# pacs-cloud mesh, RAS mm"),
    ],
)
def test_export_formats_download_with_media_type_and_filename(
    api: str,
    ct: tuple[str, str],
    tmp_path: Path,
    fmt: str,
    media_type: str,
    extension: str,
    start: bytes,
) -> None:
    """Each format is written by its writer and served with its media type and extension."""
    with running_exporter(exporter_settings(tmp_path, api)) as client:
        body = request(*ct, format=fmt, coordinates="RAS" if fmt == "obj" else "LPS")
        job = wait_for(client, submit(client, body)["id"])
        assert job["state"] == "succeeded", job["error"]
        response = client.get(f"/exports/{job['id']}/file")
        assert response.headers["content-type"] == media_type
        assert response.headers["content-disposition"].endswith(f'.{extension}"')
        assert response.content.startswith(start)
        assert int(response.headers["content-length"]) == job["report"]["file_bytes"]


def test_export_mr_series_fails_not_ct(api: str, tmp_path: Path) -> None:
    """An MR series fails with the reason that it is not CT."""
    study, series = store(api, phantom(modality="MR"))
    with running_exporter(exporter_settings(tmp_path, api)) as client:
        job = wait_for(client, submit(client, request(study, series))["id"])
    assert job["state"] == "failed" and "not CT (Modality MR)" in job["error"]
    assert job["attempts"] == 1 and job["file"] is None


def test_export_two_slices_fails_too_few(api: str, tmp_path: Path) -> None:
    """A series of two slices fails: a volume needs at least three."""
    study, series = store(api, phantom(slices=2))
    with running_exporter(exporter_settings(tmp_path, api)) as client:
        job = wait_for(client, submit(client, request(study, series))["id"])
    assert job["state"] == "failed" and "at least 3 slices, the series has 2" in job["error"]


def test_export_unknown_series_fails_unknown(api: str, ct: tuple[str, str], tmp_path: Path) -> None:
    """A series the API does not hold fails at once (a 404 is final) naming the series."""
    with running_exporter(exporter_settings(tmp_path, api)) as client:
        job = wait_for(client, submit(client, request(ct[0], "1.2.3.999"))["id"])
    assert job["state"] == "failed" and job["attempts"] == 1
    assert job["error"] == f"unknown series: the API has no series 1.2.3.999 in study {ct[0]}"


def test_export_with_api_down_retries_then_fails_unreachable(tmp_path: Path) -> None:
    """With nothing listening at the API's address the job goes back to the queue and, after
    max_attempts, fails with the reason."""
    down = f"http://127.0.0.1:{free_port()}/dicom-web"
    settings = exporter_settings(tmp_path, down, max_attempts=3)
    with running_exporter(settings) as client:
        job = wait_for(client, submit(client, request("1.2.3", "1.2.3.4"))["id"])
    assert job["state"] == "failed" and job["attempts"] == 3
    assert "the API cannot be reached: ConnectError" in job["error"]
    assert job["error"].endswith("(tried 3 time(s))")


def test_export_over_memory_budget_fails_before_fetching(
    api: str, ct: tuple[str, str], tmp_path: Path
) -> None:
    """A job whose estimate exceeds the budget fails with the estimate, before the series is
    read (its progress never passed the metadata step)."""
    seen: list[float] = []
    settings = exporter_settings(tmp_path, api, memory_budget_bytes=1_000_000)
    with running_exporter(settings, lambda _job, percent: seen.append(percent)) as client:
        job = wait_for(client, submit(client, request(*ct))["id"])
    assert job["state"] == "failed" and seen == []
    assert "20x64x64 series needs about" in job["error"]
    assert "over the memory budget of 1 MB" in job["error"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"preset": "bone"}, "give exactly one of preset and level"),
        ({"level": None}, "give exactly one of preset and level"),
        ({"level": None, "preset": "cartilage"}, "unknown preset 'cartilage'"),
        ({"format": "fbx"}, "format: Input should be 'stl', 'stl-ascii', 'ply' or 'obj'"),
        ({"study": "1.2.x"}, "study: Study Instance UID '1.2.x' is not a valid UID"),
        ({"crop": {"min": [0, 0, 0], "max": [10, -1, 10]}}, "crop.min's coordinates"),
        ({"decimate_to": 2}, "decimate_to: Input should be greater than or equal to 4"),
        ({"colour": "red"}, "colour: Extra inputs are not permitted"),
    ],
)
def test_export_invalid_request_422_with_reason(
    tmp_path: Path, body: dict[str, object], reason: str
) -> None:
    """A request that names no valid export is refused (422 problem+json) with the reason."""
    with running_exporter(exporter_settings(tmp_path, "http://127.0.0.1:1/dicom-web")) as client:
        response = client.post("/exports", json={**request("1.2.3", "1.2.3.4"), **body})
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert reason in response.json()["detail"]
        assert client.get("/exports").json()["jobs"] == []


def test_export_malformed_json_400(tmp_path: Path) -> None:
    """A body that is not JSON is a 400 problem."""
    with running_exporter(exporter_settings(tmp_path, "http://127.0.0.1:1/dicom-web")) as client:
        response = client.post(
            "/exports", content=b"{not json", headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 400 and response.json()["title"] == "Bad Request"


def test_export_unknown_job_404_and_unfinished_file_409(tmp_path: Path) -> None:
    """An unknown job is a 404; the file of a job that has not succeeded is a 409."""
    settings = exporter_settings(tmp_path, "http://127.0.0.1:1/dicom-web", workers=0)
    with running_exporter(settings) as client:
        assert client.get(f"/exports/{'0' * 32}").status_code == 404
        assert client.delete(f"/exports/{'0' * 32}").status_code == 404
        job = submit(client, request("1.2.3", "1.2.3.4"))
        response = client.get(f"/exports/{job['id']}/file")
    assert response.status_code == 409
    assert response.json()["detail"] == f"export job {job['id']} is queued: it has no file"


def test_delete_finished_job_removes_row_and_objects_204(
    api: str, ct: tuple[str, str], tmp_path: Path
) -> None:
    """Deleting a succeeded job removes its row, its mesh and its report."""
    with running_exporter(exporter_settings(tmp_path, api)) as client:
        job = wait_for(client, submit(client, request(*ct))["id"])
        assert job["state"] == "succeeded"
        objects = sorted(p.name for p in (tmp_path / "exports" / "exports" / job["id"]).iterdir())
        assert objects == [f"{ct[1]}.json", f"{ct[1]}.stl"]
        response = client.delete(f"/exports/{job['id']}")
        assert response.status_code == 204 and response.content == b""
        assert client.get(f"/exports/{job['id']}").status_code == 404
        assert list((tmp_path / "exports" / "exports" / job["id"]).glob("*")) == []


def test_probes_ok(tmp_path: Path) -> None:
    """healthz answers; readyz checks the jobs' database and the object store."""
    settings = exporter_settings(tmp_path, "http://127.0.0.1:1/dicom-web", workers=0)
    with running_exporter(settings) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"database": "ok", "store": "ok"}}


def test_settings_non_loopback_host_without_auth_refused() -> None:
    """Binding a non-loopback address is refused unless explicitly allowed (secure by
    default); the defaults are the embedded setup beside `make run`'s API."""
    with pytest.raises(ValueError, match="not a loopback address"):
        Settings(host="0.0.0.0")
    assert Settings(host="0.0.0.0", allow_unauthenticated_network=True).host == "0.0.0.0"
    defaults = Settings()
    assert (defaults.host, defaults.port) == ("127.0.0.1", 8081)
    assert defaults.dicomweb_url == "http://127.0.0.1:8080/dicom-web"
    assert defaults.database_url == "sqlite:///./var/exporter.sqlite3"
    assert defaults.store_url == "file://./var/exports"
