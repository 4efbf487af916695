"""The mesh exporter against its own OpenAPI document (openapi/exporter.json), with schemathesis.

The real exporter application (its workers running) is served by a real uvicorn on a free
loopback port, in front of a real API holding a small CT phantom, and one export job of it has
run to the end, so that generated job ids can name a real job and its file. Every operation is
called with seeded, derandomized examples and checked as in
:mod:`tests.fuzz.test_schemathesis_api`: no 5xx, documented status codes, Content-Types and
bodies.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis.strategies as st
import pytest
import schemathesis
from pacs_exporter.main import create_app

from tests.bridge.running import api_settings
from tests.exporter.service import exporter_settings, phantom, request, store
from tests.fuzz.schemathesis_run import CHECKS, fuzz_config
from tests.support.server import running_api, serving

DOCUMENT = Path(__file__).resolve().parents[2] / "openapi" / "exporter.json"
#: Upper bound of waiting for the export job: a limit against hanging, not a timing assertion.
WAIT_SECONDS = 120.0

#: Real values for generated parameters, set by the ``exporter`` fixture.
KNOWN: dict[str, Any] = {}

schema = schemathesis.openapi.from_path(DOCUMENT, config=fuzz_config())


@schema.hook
def flatmap_path_parameters(
    context: schemathesis.HookContext, path_parameters: dict[str, Any] | None
) -> st.SearchStrategy[dict[str, Any] | None]:
    """Half of the job ids name the finished job (except for DELETE, which would remove it:
    there, a job queued for the purpose)."""
    operation = context.operation
    if not path_parameters or "job_id" not in path_parameters or operation is None:
        return st.just(path_parameters)
    doomed = operation.method.upper() == "DELETE"
    job = KNOWN["doomed" if doomed else "job"]
    return st.one_of(st.just(path_parameters), st.just({**path_parameters, "job_id": job}))


@schema.hook
def flatmap_body(context: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
    """Most export requests name the stored series: with generated options, or plainly (so
    that jobs are really queued, 202)."""
    if not isinstance(body, dict):
        return st.just(body)
    study, series = KNOWN["series"]
    return st.one_of(
        st.just(body),
        st.just({**body, "study": study, "series": series}),
        st.just(request(study, series, preset=None)),
    )


def _wait(http: httpx.Client, job_id: str) -> None:
    """Poll until the job has finished."""
    deadline = time.monotonic() + WAIT_SECONDS
    while http.get(f"/exports/{job_id}").json()["state"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, f"export job {job_id} did not finish"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def exporter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The exporter's base URL, with one finished export job of a stored CT series."""
    directory = tmp_path_factory.mktemp("exporter")
    with running_api(api_settings(directory)) as dicomweb:
        KNOWN["series"] = store(dicomweb, phantom(slices=8))
        app = create_app(exporter_settings(directory, dicomweb))
        with serving(app) as port, httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            job = http.post("/exports", json=request(*KNOWN["series"], preset=None))
            assert job.status_code == 202, job.text
            KNOWN["job"] = job.json()["id"]
            _wait(http, KNOWN["job"])
            KNOWN["doomed"] = http.post(
                "/exports", json=request(*KNOWN["series"], preset=None)
            ).json()["id"]
            yield f"http://127.0.0.1:{port}"


@schema.parametrize()
def test_exporter_conforms_to_its_openapi_document(exporter: str, case: schemathesis.Case) -> None:
    case.call_and_validate(base_url=exporter, checks=CHECKS)
