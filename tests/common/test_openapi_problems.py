"""The OpenAPI documents say what the error handlers answer (pacs_common.openapi_problems)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Query
from pacs_common.openapi_problems import document_problems, problem_response
from pacs_common.problems import PROBLEM_JSON
from pydantic import BaseModel

PROBLEM = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}}


class Thing(BaseModel):
    name: str


def _app(**kwargs: Any) -> FastAPI:
    app = FastAPI()

    @app.get("/things", responses={404: {"description": "No such thing."}})
    def things(limit: int = Query(1)) -> list[str]:
        return []

    @app.post("/things", responses={409: problem_response("Taken.")})
    def add(thing: Thing) -> Thing:
        return thing

    @app.get("/plain")
    def plain() -> dict[str, str]:
        return {}

    document_problems(app, **kwargs)
    return app


def test_document_problems_fastapi_422_becomes_validation_status_as_problem() -> None:
    """FastAPI's 422 HTTPValidationError is replaced by the service's validation status, and
    every error response is application/problem+json; its schema is in the components."""
    schema = _app(validation_status=400).openapi()
    get = schema["paths"]["/things"]["get"]["responses"]
    assert sorted(get) == ["200", "400", "404"]
    assert get["400"]["content"] == PROBLEM and get["404"]["content"] == PROBLEM
    assert get["404"]["description"] == "No such thing."
    assert "422" not in schema["paths"]["/things"]["post"]["responses"]
    assert sorted(schema["paths"]["/plain"]["get"]["responses"]) == ["200"]
    components = schema["components"]["schemas"]
    assert "HTTPValidationError" not in components and "ValidationError" not in components
    assert components["ProblemDetails"]["required"] == ["title", "status", "detail"]


def test_document_problems_malformed_body_status_only_where_a_body_is_read() -> None:
    """An operation with a request body also answers *malformed_body_status* (JSON that does
    not parse); one without does not; the document is rewritten once, however often asked."""
    app = _app(validation_status=422, malformed_body_status=400)
    schema = app.openapi()
    assert sorted(schema["paths"]["/things"]["post"]["responses"]) == ["200", "400", "409", "422"]
    assert sorted(schema["paths"]["/things"]["get"]["responses"]) == ["200", "404", "422"]
    assert app.openapi() is schema
