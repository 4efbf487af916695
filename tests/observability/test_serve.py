"""``pacs-api serve`` as operators run it: two worker processes whose ``/metrics`` both answer
for both (prometheus_client's multiprocess mode, set up by ``serve``), and logs on stderr as
one JSON object per line, the access records carrying the request ids."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.observability.scrape import scrape, value
from tests.support.server import free_port

API = Path(sys.executable).with_name("pacs-api")
REQUESTS = 12


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``pacs-api serve --workers 2`` on a free port, stderr to a pipe (not a terminal)."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PACS_API_")},
        "PACS_API_DATABASE_URL": f"sqlite:///{tmp_path / 'index.sqlite3'}",
        "PACS_API_STORE_URL": f"file://{tmp_path / 'objects'}",
    }
    # the operator's directory, with a previous run's file that serve must remove
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"left by a previous run")
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    proc = subprocess.Popen(
        [str(API), "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120  # a bound against hanging, not a timing assertion
    try:
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"pacs-api serve did not start: {proc.stderr.read() if proc.stderr else ''}"
                )
            time.sleep(0.1)
        # both workers up: each made its metrics files (bounded wait, not a timing assertion)
        while len(worker_pids(metrics_dir)) < 2:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the second worker did not start: {worker_pids(metrics_dir)}")
            time.sleep(0.1)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def worker_pids(metrics_dir: Path) -> set[str]:
    """The processes with metrics files (``counter_<pid>.db``, ``histogram_<pid>.db``)."""
    return {path.stem.rsplit("_", 1)[-1] for path in metrics_dir.glob("*.db")}


def test_serve_two_workers_metrics_summed_and_json_logs(
    served: tuple[str, subprocess.Popen[str]], tmp_path: Path
) -> None:
    metrics_dir = tmp_path / "metrics"
    url, proc = served
    # a new connection per request: either worker may answer each, and each scrape
    query = {"method": "GET", "route": "/dicom-web/studies"}
    for n in range(REQUESTS):
        sent = {"X-Request-ID": f"query-{n}"}
        assert httpx.get(f"{url}/dicom-web/studies", headers=sent, timeout=10).status_code == 200
    for _ in range(4):  # every worker's /metrics counts every worker's requests
        samples = scrape(f"{url}/metrics")
        assert value(samples, "pacs_http_requests_total", status="200", **query) == REQUESTS
        assert value(samples, "pacs_http_request_duration_seconds_count", **query) == REQUESTS

    pids = worker_pids(metrics_dir)
    assert len(pids) == 2 and "1" not in pids, pids  # one file set per worker, stale one gone

    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    lines = [line for line in stderr.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message", "request_id"} <= r.keys() for r in records)
    access = [
        r
        for r in records
        if r["logger"] == "pacs_api.access" and r["route"] == "/dicom-web/studies"
    ]
    assert sorted(r["request_id"] for r in access) == sorted(f"query-{n}" for n in range(REQUESTS))
    assert {(r["method"], r["status"]) for r in access} == {("GET", 200)}
    assert not [r for r in records if r["logger"] == "uvicorn.access"]
