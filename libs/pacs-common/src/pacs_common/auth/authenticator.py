"""The :class:`Authenticator`: an ``Authorization`` header in, a :class:`Principal` out.

Bearer credentials (RFC 6750 §2.1) are an API key (``pacs_...``, :mod:`.api_keys`) or a JWT
(:mod:`.tokens`). A request without them is answered 401 with a bare challenge, one with
credentials that cannot be accepted 401 with ``error="invalid_token"`` (RFC 6750 §3, §3.1);
both as problem+json. An issuer that cannot be reached is 503 with ``Retry-After``.
"""

from __future__ import annotations

import re

from pacs_common.auth import Principal, Scope
from pacs_common.auth.api_keys import ApiKeys, looks_like_api_key
from pacs_common.auth.settings import AuthSettings
from pacs_common.auth.tokens import InvalidToken, IssuerKeys, IssuerUnavailable, JwtVerifier
from pacs_common.problems import Forbidden, ServiceUnavailable, Unauthorized

REALM = "pacs-cloud"
#: RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")
#: RFC 6750 §3: error_description is %x20-21 / %x23-5B / %x5D-7E (no quote, no backslash).
_NOT_DESCRIPTION = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")


def challenge(error: str | None = None, description: str | None = None, **extra: str) -> str:
    """A ``WWW-Authenticate: Bearer`` challenge (RFC 6750 §3)."""
    params = {"realm": REALM}
    if error:
        params["error"] = error
    if error and description:  # RFC 6750 §3.1: no error information without credentials
        params["error_description"] = _NOT_DESCRIPTION.sub("", description)
    params.update(extra)
    return "Bearer " + ", ".join(f'{name}="{value}"' for name, value in params.items())


def unauthorized(detail: str, *, error: str | None = "invalid_token") -> Unauthorized:
    return Unauthorized(detail, headers={"WWW-Authenticate": challenge(error, detail)})


def forbidden(scope: Scope, principal: Principal) -> Forbidden:
    """403 for a caller without *scope* (RFC 6750 §3.1 ``insufficient_scope``)."""
    detail = f"this needs the {scope.value!r} scope, which {principal.subject!r} lacks"
    header = challenge("insufficient_scope", detail, scope=scope.value)
    return Forbidden(detail, headers={"WWW-Authenticate": header})


class Authenticator:
    """API keys and JWTs as configured; built once per application (:meth:`from_settings`)."""

    def __init__(self, api_keys: ApiKeys, jwts: JwtVerifier | None = None) -> None:
        self.api_keys = api_keys
        self.jwts = jwts

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> Authenticator | None:
        """The authenticator *settings* describe, or None when they configure none (the
        service then answers every caller as ``ANONYMOUS``, on loopback only)."""
        if not settings.auth_configured:
            return None
        jwts = None
        if settings.auth_audience and (settings.auth_oidc_issuer or settings.auth_jwt_secret):
            secret = settings.auth_jwt_secret
            jwts = JwtVerifier(
                audience=settings.auth_audience,
                scope_prefix=settings.auth_scope_prefix,
                secret=secret.get_secret_value().encode() if secret else None,
                secret_issuer=settings.auth_jwt_issuer,
                issuer=IssuerKeys(settings.auth_oidc_issuer) if settings.auth_oidc_issuer else None,
            )
        return cls(ApiKeys(settings.auth_api_keys), jwts)

    def may_block(self, authorization: str | None) -> bool:
        """True when :meth:`authenticate` may wait on the network (an issuer's keys): callers
        on an event loop run it in a thread then."""
        return self.jwts is not None and self.jwts.fetches and "." in (authorization or "")

    def authenticate(self, authorization: str | None) -> Principal:
        """The caller presenting *authorization* (the header's value), else
        :class:`Unauthorized` or, when the issuer cannot be reached, :class:`ServiceUnavailable`.
        """
        token = bearer_token(authorization)
        if looks_like_api_key(token):
            principal = self.api_keys.principal(token)
            if principal is None:
                raise unauthorized("the API key is not (or no longer) configured")
            return principal
        if self.jwts is None:
            raise unauthorized(
                "the bearer token is not an API key (pacs_...), the only kind "
                "this service is configured to accept"
            )
        try:
            return self.jwts.principal(token)
        except InvalidToken as exc:
            raise unauthorized(str(exc)) from None
        except IssuerUnavailable as exc:
            raise ServiceUnavailable(f"tokens cannot be checked now: {exc}") from None


def bearer_token(authorization: str | None) -> str:
    """The token of a ``Bearer`` ``Authorization`` value (RFC 6750 §2.1; the scheme is
    case-insensitive, RFC 9110 §11.1)."""
    if not authorization or not authorization.strip():
        raise unauthorized(
            "this needs a bearer token: Authorization: Bearer <key or JWT>", error=None
        )
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise unauthorized(
            f"the {scheme[:20]!r} authorization scheme is not accepted: send Authorization: Bearer "
            "<key or JWT>",
            error=None,
        )
    token = token.strip()
    if not _B64TOKEN.match(token):
        raise unauthorized("the Authorization header's bearer token is malformed")
    return token
