"""The services' errors as their OpenAPI documents state them: ``application/problem+json``.

Every error answer of the services is an RFC 9457 problem (:mod:`pacs_common.problems`), but
FastAPI documents what it would answer by itself: a 422 ``HTTPValidationError`` for every
route with parameters (the services answer a request they cannot validate with their own
problem, 400 in the API) and error responses without a body. :func:`document_problems` makes
the document say what the handlers do, so that clients (and the schemathesis tests under
``tests/fuzz``) can rely on it:

- FastAPI's 422 becomes the service's validation status(es), as a problem;
- every documented 4xx/5xx response without a body of its own is a problem;
- :func:`problem_response` is the entry a route adds to its ``responses=`` for each status it
  answers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

from pacs_common.problems import PROBLEM_JSON

__all__ = ["ProblemDetails", "document_problems", "problem_response"]

_REF = "#/components/schemas/ProblemDetails"
_VALIDATION_REF = "#/components/schemas/HTTPValidationError"


class ProblemDetails(BaseModel):
    """Problem Details for HTTP APIs (RFC 9457 §3.1): the members the services send."""

    type: str = Field("about:blank", description="RFC 9457 §3.1.1; always about:blank here.")
    title: str = Field(description="The HTTP status phrase (RFC 9457 §3.1.3).")
    status: int = Field(ge=400, le=599, description="The HTTP status code (RFC 9457 §3.1.2).")
    detail: str = Field(description="What was wrong with this request (RFC 9457 §3.1.4).")


def problem_response(description: str) -> dict[str, Any]:
    """One ``responses=`` entry: *description*, answered as ``application/problem+json``."""
    return {"description": description, "content": {PROBLEM_JSON: {"schema": {"$ref": _REF}}}}


def document_problems(
    app: FastAPI,
    *,
    validation_status: int,
    malformed_body_status: int | None = None,
) -> None:
    """Rewrite *app*'s OpenAPI document (once, when it is first built) so that its error
    responses are the problems its handlers answer: FastAPI's 422 becomes
    *validation_status* (and *malformed_body_status* for an operation with a request body, whose
    body may not parse at all); every other error response without a body is a problem."""
    build: Callable[[], dict[str, Any]] = app.openapi
    done: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        schema = build()
        if not done:
            _rewrite(schema, validation_status, malformed_body_status)
            done.append(schema)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _rewrite(schema: dict[str, Any], validation: int, malformed: int | None) -> None:
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            responses: dict[str, Any] = operation.get("responses", {})
            fastapi_422 = responses.get("422", {})
            refs = [
                m.get("schema", {}).get("$ref") for m in fastapi_422.get("content", {}).values()
            ]
            invalid = problem_response("The request is not valid (the reasons in the detail).")
            if _VALIDATION_REF in refs:
                del responses["422"]
                responses.setdefault(str(validation), invalid)
            if malformed is not None and "requestBody" in operation:
                responses.setdefault(
                    str(malformed), problem_response("The request body cannot be parsed.")
                )
            for status, response in responses.items():
                if status[0] in "45" and not _has_body(response):
                    response["content"] = {PROBLEM_JSON: {"schema": {"$ref": _REF}}}
            operation["responses"] = dict(sorted(responses.items()))
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas["ProblemDetails"] = ProblemDetails.model_json_schema()
    if _VALIDATION_REF not in repr(schema["paths"]):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)


def _has_body(response: dict[str, Any]) -> bool:
    """Whether *response* documents a body of its own (FastAPI's placeholder is ``{}``)."""
    return any(
        media.get("schema") not in (None, {}) for media in response.get("content", {}).values()
    )
