"""The API's ``/metrics`` and request ids, on a real uvicorn: counters move with the route
template (never the UIDs of the path) and the status; STOW-RS counts instances and bytes;
``X-Request-ID`` is echoed when valid and replaced when not."""

from __future__ import annotations

import logging

import httpx
import pytest
from pacs_common.client import DicomWebClient
from pacs_common.synthetic import iter_ct_series, to_bytes

from tests.observability.scrape import label_values, scrape, value
from tests.support import incomplete

SERIES_ROUTE = "/dicom-web/studies/{study}/series"


def root(api_url: str) -> str:
    return api_url.removesuffix("/dicom-web")


def test_metrics_count_requests_by_route_template_and_status(api_url: str) -> None:
    instances = [to_bytes(ds) for ds in iter_ct_series(3, 32, 32, seed=71)]
    with httpx.Client(timeout=30) as http:
        result = DicomWebClient(http, api_url).store(instances).raise_for_failures()
        study = str(result.retrieve_url).rsplit("/", 1)[-1]
        assert http.get(f"{api_url}/studies/{study}/series").status_code == 200
        assert http.get(f"{api_url}/studies/1.2.3.999/series").status_code == 200  # none
        assert http.get(f"{api_url}/studies/1.2.3.999/metadata").status_code == 404
        assert http.get(f"{root(api_url)}/no/such/path").status_code == 404

    samples = scrape(f"{root(api_url)}/metrics")
    requests = "pacs_http_requests_total"
    assert value(samples, requests, method="GET", route=SERIES_ROUTE, status="200") == 2
    metadata = "/dicom-web/studies/{study}/metadata"
    assert value(samples, requests, method="GET", route=metadata, status="404") == 1
    assert value(samples, requests, method="POST", route="/dicom-web/studies", status="200") == 1
    assert value(samples, requests, method="GET", route="unmatched", status="404") == 1
    duration = "pacs_http_request_duration_seconds_count"
    assert value(samples, duration, method="GET", route=SERIES_ROUTE) == 2
    routes = label_values(samples, requests, "route")
    assert not any(study in route or "1.2.3.999" in route for route in routes), routes

    assert value(samples, "pacs_stow_instances_total", outcome="stored") == 3
    assert value(samples, "pacs_stow_instances_total", outcome="failed") == 0
    assert value(samples, "pacs_stow_bytes_total") == sum(len(b) for b in instances)


def test_metrics_stow_failed_instance_counted(api_url: str) -> None:
    first, second = iter_ct_series(2, 32, 32, seed=72)
    clash = second.copy()
    clash.SOPInstanceUID = first.SOPInstanceUID
    clash.file_meta.MediaStorageSOPInstanceUID = first.SOPInstanceUID
    with httpx.Client(timeout=30) as http:
        dicomweb = DicomWebClient(http, api_url)
        dicomweb.store([to_bytes(first)]).raise_for_failures()
        assert not dicomweb.store([to_bytes(clash)]).ok
    samples = scrape(f"{root(api_url)}/metrics")
    assert value(samples, "pacs_stow_instances_total", outcome="stored") == 1
    assert value(samples, "pacs_stow_instances_total", outcome="failed") == 1
    assert value(samples, "pacs_stow_bytes_total") == len(to_bytes(first))


def test_metrics_quarantine_entries_and_audit_waiting(api_url: str) -> None:
    """The quarantine gauge counts the index's entries at scrape time (an incomplete image
    sent twice is one entry); the audit gauge is a count of records not yet in the table."""
    assert value(scrape(f"{root(api_url)}/metrics"), "pacs_quarantine_entries") == 0
    with httpx.Client(timeout=30) as http:
        dicomweb = DicomWebClient(http, api_url)
        for body in (incomplete.truncated(seed=73), incomplete.truncated(seed=73)):
            assert not dicomweb.store([body]).ok
        assert not dicomweb.store([incomplete.header_only(seed=74)]).ok
    samples = scrape(f"{root(api_url)}/metrics")
    assert value(samples, "pacs_quarantine_entries") == 2
    assert value(samples, "pacs_audit_records_waiting") >= 0


def test_request_id_echoed_and_in_access_record(
    api_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="pacs_api.access"):
        response = httpx.get(
            f"{api_url}/studies", headers={"X-Request-ID": "op-42:a.b_c"}, timeout=10
        )
        assert httpx.get(f"{root(api_url)}/healthz", timeout=10).status_code == 200  # DEBUG
    assert response.headers["X-Request-ID"] == "op-42:a.b_c"
    records = [vars(r) for r in caplog.records if r.name == "pacs_api.access"]
    assert [(r["request_id"], r["route"], r["status"]) for r in records] == [
        ("op-42:a.b_c", "/dicom-web/studies", response.status_code)
    ]


@pytest.mark.parametrize(
    "given",
    ["x" * 129, "has space", "tab\there", 'quote"d', "", "a/b", "<script>", "caf\u00e9"],
)
def test_invalid_request_id_replaced(api_url: str, given: str) -> None:
    """Too long, or characters unsafe in a log line or a header: a new id is made."""
    sent = {b"X-Request-ID": given.encode("latin-1")}
    response = httpx.get(f"{root(api_url)}/healthz", headers=sent, timeout=10)
    echoed = response.headers["X-Request-ID"]
    assert echoed != given
    assert len(echoed) == 32 and all(c in "0123456789abcdef" for c in echoed)


def test_request_id_generated_when_absent(api_url: str) -> None:
    first = httpx.get(f"{root(api_url)}/healthz", timeout=10).headers["X-Request-ID"]
    second = httpx.get(f"{root(api_url)}/healthz", timeout=10).headers["X-Request-ID"]
    assert first != second and len(first) == 32
