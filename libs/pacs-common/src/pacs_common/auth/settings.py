"""The authentication settings every HTTP service shares (the API, the exporter, the bridge's
status API): one mixin, so each service's ``Settings`` gains the same ``auth_*`` fields under
its own environment prefix (``PACS_API_AUTH_API_KEYS``, ``PACS_EXPORTER_AUTH_AUDIENCE``...).

Three ways to authenticate, any of them together:

* ``auth_api_keys``: keys for scripts and services, stored as their SHA-256 digest only
  (``pacs-api api-key new`` mints one and prints its entry);
* ``auth_oidc_issuer`` + ``auth_audience``: JWTs signed by an OpenID Connect issuer, its keys
  found by discovery (OpenID Connect Discovery 1.0 §4) and its JWKS (RFC 7517);
* ``auth_jwt_secret`` + ``auth_audience``: JWTs signed with a shared HS256 secret (RFC 7518
  §3.2), for deployments without an identity provider.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from pacs_common.auth import Scope
from pacs_common.network import is_loopback

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
#: RFC 7518 §3.2: an HS256 key must be at least as long as the hash output (256 bits).
MIN_SECRET_BYTES = 32


class ApiKeyEntry(BaseModel):
    """One configured API key: who it is, the SHA-256 of the key (never the key), its scopes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="Who holds the key; the subject of its requests.")
    sha256: str = Field(description="Hex SHA-256 digest of the key (pacs-api api-key new).")
    scopes: frozenset[Scope] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                f"{value!r} is not a key name: 1 to 64 letters, digits, '.', '_', '@' or '-'"
            )
        return value

    @field_validator("sha256")
    @classmethod
    def _digest(cls, value: str) -> str:
        digest = value.strip().lower()
        if not _SHA256_HEX.match(digest):
            raise ValueError(
                "sha256 must be the 64 hex digits of the key's SHA-256 digest (as `pacs-api "
                "api-key new` prints it), never the key itself"
            )
        return digest


class AuthSettings(BaseModel):
    """The ``auth_*`` fields; a service's ``Settings`` inherits them (before ``BaseSettings``)."""

    auth_api_keys: tuple[ApiKeyEntry, ...] = Field(
        (),
        description="API keys as JSON: [{name, sha256, scopes}], sha256 the hex digest of the "
        "key; mint one with `pacs-api api-key new --name NAME --scope read`.",
    )
    auth_oidc_issuer: str | None = Field(
        None,
        description="OpenID Connect issuer whose JWTs are accepted (its "
        "/.well-known/openid-configuration and JWKS are fetched when first needed); needs "
        "auth_audience. https://, or http:// on a loopback address.",
    )
    auth_jwt_secret: SecretStr | None = Field(
        None,
        description="Shared secret (at least 32 bytes) of HS256-signed JWTs; needs auth_audience.",
    )
    auth_jwt_issuer: str | None = Field(
        None, description="The iss that HS256 tokens must carry (unset: not checked)."
    )
    auth_audience: str | None = Field(
        None, description="The aud that every JWT must carry (this service's identifier)."
    )
    auth_scope_prefix: str = Field(
        "",
        description="Prefix of this service's scopes in a JWT's scope/scp claim (e.g. 'pacs.' "
        "for 'pacs.read'); other scopes in the claim are ignored.",
    )

    @property
    def auth_configured(self) -> bool:
        """True when any way to authenticate is configured."""
        return bool(self.auth_api_keys or self.auth_oidc_issuer or self.auth_jwt_secret)

    @field_validator("auth_jwt_secret")
    @classmethod
    def _secret_length(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < MIN_SECRET_BYTES:
            raise ValueError(
                f"auth_jwt_secret must be at least {MIN_SECRET_BYTES} bytes (RFC 7518 §3.2); "
                'make one with: python -c "import secrets; print(secrets.token_urlsafe(48))"'
            )
        return value

    @field_validator("auth_oidc_issuer")
    @classmethod
    def _issuer_url(cls, value: str | None) -> str | None:
        """The issuer is the trust anchor: fetched over TLS unless it is on this machine."""
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme == "https" and parts.hostname:
            return value.rstrip("/")
        if parts.scheme == "http" and parts.hostname and is_loopback(parts.hostname):
            return value.rstrip("/")
        raise ValueError(
            f"auth_oidc_issuer {value!r} must be an https:// URL (http:// only on a loopback "
            "address)"
        )

    @model_validator(mode="after")
    def _jwt_needs_audience(self) -> AuthSettings:
        """A JWT for another service of the same issuer must not open this one (RFC 7519
        §4.1.3): JWTs are accepted only with the audience configured."""
        if (self.auth_oidc_issuer or self.auth_jwt_secret) and not self.auth_audience:
            raise ValueError(
                "JWTs (auth_oidc_issuer, auth_jwt_secret) are accepted only with "
                "auth_audience set: the aud claim this service's tokens carry"
            )
        names = [entry.name for entry in self.auth_api_keys]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"API key names must be unique: {', '.join(twice)}")
        return self


def refusal(service: str, host: str, env_prefix: str, flag: str) -> str:
    """Why *service* will not listen on the non-loopback *host* without authentication, and how
    to configure it (ARCHITECTURE.md, secure by default); *flag* is its opt-out variable."""
    return (
        f"{service} would listen on {host!r}, which is not a loopback address, with no "
        "authentication configured. Configure one of: "
        f"{env_prefix}AUTH_API_KEYS (mint a key with `pacs-api api-key new --name NAME "
        "--scope read`); "
        f"{env_prefix}AUTH_OIDC_ISSUER with {env_prefix}AUTH_AUDIENCE (JWTs of an OpenID "
        "Connect issuer); "
        f"{env_prefix}AUTH_JWT_SECRET with {env_prefix}AUTH_AUDIENCE (HS256 JWTs). "
        f"Or bind 127.0.0.1; or, only behind a proxy that authenticates every request, set "
        f"{env_prefix}{flag}=true"
    )


def require_authentication(
    settings: AuthSettings,
    *,
    service: str,
    host: str,
    env_prefix: str,
    flag: str,
    waived: bool,
) -> None:
    """Raise ``ValueError`` (with :func:`refusal`'s how-to) when *service* would listen on the
    non-loopback *host* with no authentication in *settings*, unless its opt-out *flag* is set
    (*waived*): secure by default (ARCHITECTURE.md)."""
    if not is_loopback(host) and not settings.auth_configured and not waived:
        raise ValueError(refusal(service, host, env_prefix, flag))
