"""The exporter's ``/metrics`` and request ids: an export job run by the real exporter (its
workers in threads) against the real API shows in the job gauge and duration histogram, and
its calls to the API carry the job's id as request id."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pacs_common.observability.logs import RequestIdFilter

from tests.exporter.service import (
    exporter_settings,
    phantom,
    request,
    running_exporter,
    store,
    submit,
    wait_for,
)
from tests.observability.scrape import parse, value


def test_export_job_in_metrics_and_its_id_in_api_access_records(
    api_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    study, series = store(api_url, phantom())
    caplog.handler.addFilter(RequestIdFilter())  # as the services' own handler does
    with (
        caplog.at_level(logging.INFO),
        running_exporter(exporter_settings(tmp_path, api_url)) as exporter,
    ):
        response = exporter.post(
            "/exports", json=request(study, series), headers={"X-Request-ID": "lab-order-7"}
        )
        assert response.status_code == 202, response.text
        assert response.headers["X-Request-ID"] == "lab-order-7"
        job_id = response.json()["id"]
        assert wait_for(exporter, job_id)["state"] == "succeeded"
        second = submit(exporter, request(study, "1.2.3.4.5.6"))  # no such series: fails
        assert wait_for(exporter, second["id"])["state"] == "failed"
        metrics = exporter.get("/metrics")
    assert metrics.status_code == 200
    samples = parse(metrics.text)

    assert value(samples, "pacs_export_jobs", state="succeeded") == 1
    assert value(samples, "pacs_export_jobs", state="failed") == 1
    assert value(samples, "pacs_export_jobs", state="queued") == 0
    assert value(samples, "pacs_export_jobs", state="running") == 0
    duration = "pacs_export_job_duration_seconds_count"
    assert value(samples, duration, outcome="succeeded") == 1
    assert value(samples, duration, outcome="failed") == 1
    requests = "pacs_http_requests_total"
    assert value(samples, requests, method="POST", route="/exports", status="202") == 2
    assert value(samples, requests, method="GET", route="/exports/{job_id}", status="200") >= 2

    records = [vars(r) for r in caplog.records]
    queued = [r for r in records if r["name"] == "pacs_exporter.exports" and r.get("job_id")]
    assert (queued[0]["job_id"], queued[0]["request_id"]) == (job_id, "lab-order-7")
    api_calls = [
        (r["method"], r["route"], r["status"])
        for r in records
        if r["name"] == "pacs_api.access" and r["request_id"] == job_id
    ]
    assert ("GET", "/dicom-web/studies/{study}/series/{series}/metadata", 200) in api_calls
    assert ("GET", "/dicom-web/studies/{study}/series/{series}", 200) in api_calls  # WADO-RS
