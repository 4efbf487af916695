"""Authentication as FastAPI dependencies, the same in every HTTP service.

Each application factory puts its :class:`~pacs_common.auth.authenticator.Authenticator` (or
None, when no authentication is configured) on ``app.state.authenticator``; routes then state
the scope they need, never how it is checked::

    app.include_router(qido.router, dependencies=[requires(Scope.READ)],
                       responses=auth_responses("'read'"))

:func:`get_principal` authenticates the request once (FastAPI caches a dependency per
request), and leaves the principal on ``request.state.principal`` for whoever records who did
what (the audit trail).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from pacs_common.auth import ANONYMOUS, Principal, Scope
from pacs_common.auth.authenticator import Authenticator, forbidden

#: Documents the bearer scheme in OpenAPI; the header itself is read by get_principal.
bearer_scheme = HTTPBearer(
    scheme_name="bearer",
    description="An API key (pacs_...) or a JWT of the configured OpenID Connect issuer or "
    "shared secret (RFC 6750). Not needed when the service has no authentication configured "
    "(loopback only).",
    auto_error=False,
)

_PROBLEM = {"application/problem+json": {"schema": {"type": "object"}}}


def auth_responses(scope: str) -> dict[int | str, dict[str, Any]]:
    """The 401 and 403 answers of a route that needs *scope* (a scope's name, or words saying
    which), for OpenAPI."""
    return {
        401: {
            "description": "No bearer token, or one that cannot be accepted (RFC 6750 §3: see "
            "WWW-Authenticate).",
            "content": _PROBLEM,
        },
        403: {"description": f"The caller lacks the {scope} scope.", "content": _PROBLEM},
    }


async def get_principal(
    request: Request,
    _documented: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    """The caller: authenticated by the application's authenticator, or ``ANONYMOUS`` (every
    scope) when none is configured."""
    authenticator: Authenticator | None = getattr(request.app.state, "authenticator", None)
    if authenticator is None:
        principal = ANONYMOUS
    else:
        header = request.headers.get("authorization")
        if authenticator.may_block(header):
            principal = await run_in_threadpool(authenticator.authenticate, header)
        else:
            principal = authenticator.authenticate(header)
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def requires(scope: Scope) -> Any:
    """A dependency that answers 403 unless the caller holds *scope*:
    ``dependencies=[requires(Scope.ADMIN)]`` or ``principal: Annotated[Principal, requires(...)]``.
    """

    async def _check(principal: PrincipalDep) -> Principal:
        if not principal.allows(scope):
            raise forbidden(scope, principal)
        return principal

    _check.required_scope = scope  # type: ignore[attr-defined]  # read by route audits
    return Depends(_check)


def requires_by_method(scopes: Mapping[str, Scope]) -> Any:
    """:func:`requires` with the scope picked by the request's method (``{"GET": READ,
    "POST": WRITE}``), for a router whose reads and writes share paths; a method not listed
    needs :attr:`Scope.ADMIN`."""

    async def _check(request: Request, principal: PrincipalDep) -> Principal:
        method = "GET" if request.method == "HEAD" else request.method
        scope = scopes.get(method, Scope.ADMIN)
        if not principal.allows(scope):
            raise forbidden(scope, principal)
        return principal

    _check.required_scope = dict(scopes)  # type: ignore[attr-defined]
    return Depends(_check)


def route_scopes(route: Any) -> list[Scope | dict[str, Scope]]:
    """The scope requirements among the dependencies of *route* (an item of
    ``fastapi.routing.iter_route_contexts(app.routes)``, which sees the dependencies an
    ``include_router`` added): what a test walks to find a route that forgot one."""
    found: list[Scope | dict[str, Scope]] = []
    dependant = getattr(route, "dependant", None)
    pending = list(dependant.dependencies) if dependant is not None else []
    while pending:
        dependant = pending.pop()
        required = getattr(dependant.call, "required_scope", None)
        if required is not None:
            found.append(required)
        pending.extend(dependant.dependencies)
    return found
