"""The API against its own OpenAPI document (openapi/api.json), with schemathesis.

A real uvicorn serves the real application (every middleware: request ids, CORS, metrics,
problem+json errors) on a free loopback port, over a small stored CT study, so that generated
path parameters can name real studies, series and instances. Every operation of the document is
called with seeded, derandomized examples and checked for:

- no 5xx (``not_a_server_error``);
- a status code the document lists for the operation (``status_code_conformance``);
- a Content-Type the document lists for that status (``content_type_conformance``);
- a body matching the documented schema (``response_schema_conformance``).

An answer that legitimately differs from what FastAPI generates (problem+json errors,
multipart/related bodies, images) is documented on the route, never excused here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
import schemathesis
from pacs_api.settings import Settings
from pacs_common.media import encode_multipart_related
from pacs_common.synthetic import to_bytes

from tests.fuzz.archive import known_path_parameters, series, store_ct
from tests.fuzz.schemathesis_run import CHECKS, fuzz_config
from tests.support.server import running_api

DOCUMENT = Path(__file__).resolve().parents[2] / "openapi" / "api.json"
MULTIPART_DICOM = 'multipart/related; type="application/dicom"'
BOUNDARY = "fuzz-boundary"


#: The values of stored data, set by the ``api`` fixture before any case is generated.
KNOWN: dict[str, dict[str, list[str]]] = {}
#: Part 10 instances: of the stored study and of one never stored.
INSTANCES = [to_bytes(ds) for ds in (*series(1, 2), *series(3, 1))]

schema = schemathesis.openapi.from_path(DOCUMENT, config=fuzz_config())


@schema.hook
def flatmap_path_parameters(
    context: schemathesis.HookContext, path_parameters: dict[str, Any]
) -> st.SearchStrategy[dict[str, Any]]:
    """Let half of the generated path parameters name stored data: the read study, or for
    DELETE a study of its own, so that reads keep finding theirs."""
    operation = context.operation
    if not path_parameters:
        return st.just(path_parameters)
    deleting = operation is not None and operation.method.upper() == "DELETE"
    values = KNOWN["doomed" if deleting else "read"]
    real = {name: st.sampled_from(values[name]) for name in path_parameters if name in values}
    if not real:
        return st.just(path_parameters)
    return st.one_of(st.just(path_parameters), st.fixed_dictionaries(real))


@schema.hook
def flatmap_query(
    context: schemathesis.HookContext, query: dict[str, Any] | None
) -> st.SearchStrategy[dict[str, Any] | None]:
    """WADO-URI names the object in the query (PS3.18 §9.1.2.1): half of the queries ask for
    the stored instance, as stored or rendered."""
    operation = context.operation
    if operation is None or operation.path != "/wado":
        return st.just(query)
    read = KNOWN["read"]
    stored = st.fixed_dictionaries(
        {
            "requestType": st.just("WADO"),
            "studyUID": st.just(read["study"][0]),
            "seriesUID": st.just(read["series"][0]),
            "objectUID": st.sampled_from(read["instance"]),
            "contentType": st.sampled_from(["application/dicom", "image/jpeg", "image/png"]),
        }
    )
    return st.one_of(st.just(query), stored)


@schemathesis.serializer(MULTIPART_DICOM)
def multipart_serializer(_context: schemathesis.SerializationContext, value: Any) -> bytes:
    """A generated STOW-RS body becomes the one part of a multipart/related body (PS3.18
    §10.5.1.2) delimited by :data:`BOUNDARY`; the ingest fuzz breaks the framing itself."""
    payload = value if isinstance(value, bytes) else getattr(value, "data", str(value).encode())
    body, _ = encode_multipart_related([payload], boundary=BOUNDARY)
    return b"".join(body)


@schema.hook
def flatmap_body(context: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
    """Half of the STOW-RS bodies are real instances (the stored ones again, or new ones)."""
    operation = context.operation
    if operation is None or operation.method.upper() != "POST" or "deidentify" in operation.path:
        return st.just(body)
    return st.one_of(st.just(body), st.sampled_from(INSTANCES))


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API's base URL, serving a stored study to read and one to delete."""
    directory = tmp_path_factory.mktemp("api")
    settings = Settings(
        database_url=f"sqlite:///{directory / 'index.sqlite3'}",
        store_url=f"file://{directory / 'objects'}",
        deidentify_secret="fuzz-secret-of-16-characters",
    )
    with running_api(settings) as url:
        KNOWN["read"] = known_path_parameters(store_ct(url, seed=1))
        KNOWN["doomed"] = known_path_parameters(store_ct(url, seed=2))
        yield url.removesuffix("/dicom-web")


@schema.parametrize()
def test_api_conforms_to_its_openapi_document(api: str, case: schemathesis.Case) -> None:
    if case.media_type == MULTIPART_DICOM:
        case.headers = {
            **(case.headers or {}),
            "Content-Type": f"{MULTIPART_DICOM}; boundary={BOUNDARY}",
        }
    case.call_and_validate(base_url=api, checks=CHECKS)
