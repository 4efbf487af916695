"""Who is calling and what they may do: scopes and the authenticated principal.

Every HTTP service (the API, the exporter, the bridge's status API) answers a request on behalf
of a :class:`Principal`; a route states the :class:`Scope` it needs and nothing else. How a
principal is established (bearer JWT from an OIDC issuer or a shared secret, hashed API keys)
lives in this package too, so the three services authenticate the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Scope(StrEnum):
    """What a caller may do. A route needs exactly one of these."""

    READ = "read"  # QIDO-RS, WADO-RS, metadata, rendered, change feed, usage
    WRITE = "write"  # STOW-RS, de-identification (makes a new study), mesh exports
    DELETE = "delete"  # DELETE of studies, series, instances
    ADMIN = "admin"  # the audit log, the quarantine, operational state
    AUDIT = "audit"  # append audit records on behalf of another service (the DIMSE bridge)


ALL_SCOPES: frozenset[Scope] = frozenset(Scope)


@dataclass(frozen=True)
class Principal:
    """The caller of one request.

    ``subject`` is who (a JWT ``sub``, an API key's name, ``anonymous``); ``method`` how it was
    established (``jwt``, ``api-key``, ``none``).
    """

    subject: str
    scopes: frozenset[Scope] = field(default_factory=frozenset)
    method: str = "none"

    def allows(self, scope: Scope) -> bool:
        return scope in self.scopes


#: The caller when no authentication is configured (a loopback-only development setup).
ANONYMOUS = Principal(subject="anonymous", scopes=ALL_SCOPES, method="none")
