"""Bearer JWTs (RFC 7519): signed by an OpenID Connect issuer or with a shared secret.

What is checked, whichever signed the token: the signature with an algorithm pinned to the
source of the key (HS256 for the shared secret; RS256, ES256 or PS256 for the issuer's keys:
never ``none``, never an HMAC keyed with a public key, RFC 8725 §3.1-3.2), ``exp`` and ``aud``
always, ``iss`` for the issuer (and for the secret when ``auth_jwt_issuer`` is set), ``nbf``
when present, each time with :data:`LEEWAY_SECONDS` of clock skew (RFC 7519 §4.1), and a
``sub``. Scopes come from ``scope`` (space-separated, RFC 8693 §4.2) or ``scp`` (a list, or a
space-separated string).

The issuer's keys (:class:`IssuerKeys`) are found by discovery (OpenID Connect Discovery 1.0
§4) and read from its JWKS (RFC 7517 §5) with PyJWT's ``PyJWKClient``: fetched when first
needed, cached, refreshed once when a token names a key the set lacks (key rotation), at most
once per :data:`REFRESH_COOLDOWN_SECONDS` so that made-up ``kid`` values cannot make the
service hammer the issuer. An issuer that cannot be reached is :class:`IssuerUnavailable`
(the services answer 503 and retry later); keys already read keep being used meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt import PyJWK, PyJWKClient

from pacs_common.auth import Principal, Scope
from pacs_common.network import is_loopback

log = logging.getLogger(__name__)

SECRET_ALGORITHM = "HS256"
ISSUER_ALGORITHMS = ("RS256", "ES256", "PS256")
#: Clock skew tolerated on exp and nbf, seconds.
LEEWAY_SECONDS = 30
#: How long the issuer's key set is used before it is read again, seconds.
JWKS_CACHE_SECONDS = 300
#: Least time between two reads of the key set caused by an unknown kid, seconds.
REFRESH_COOLDOWN_SECONDS = 30
#: Least time between two attempts at discovery after one failed, seconds.
DISCOVERY_RETRY_SECONDS = 2
FETCH_TIMEOUT_SECONDS = 5.0


class InvalidToken(Exception):
    """The token cannot be accepted; the message says why (RFC 6750 ``invalid_token``)."""


class IssuerUnavailable(Exception):
    """The issuer's discovery document or key set cannot be read now."""


def scopes_from_claims(claims: Mapping[str, Any], prefix: str) -> frozenset[Scope]:
    """This service's scopes named in *claims*' ``scope`` or ``scp``, each after *prefix*;
    scopes of other services (or unknown names) are ignored."""
    names: list[str] = []
    for claim in ("scope", "scp"):
        value = claims.get(claim)
        if isinstance(value, str):
            names.extend(value.split())
        elif isinstance(value, list):
            names.extend(item for item in value if isinstance(item, str))
    known = {scope.value: scope for scope in Scope}
    return frozenset(
        known[name[len(prefix) :]]
        for name in names
        if name.startswith(prefix) and name[len(prefix) :] in known
    )


def _fits(key: Any, algorithm: str) -> bool:
    """True when *key* is of the kind *algorithm* uses (RFC 7518 §3.1)."""
    if algorithm in ("RS256", "PS256"):
        return isinstance(key, rsa.RSAPublicKey)
    if algorithm == "ES256":
        return isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)
    return False


def _http_url(url: object, what: str) -> str:
    if isinstance(url, str):
        parts = urlsplit(url)
        if parts.hostname and (
            parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname))
        ):
            return url
    raise IssuerUnavailable(f"the issuer's {what} {url!r} is not an https:// URL")


class IssuerKeys:
    """The signing keys of one OpenID Connect issuer, by ``kid``."""

    def __init__(self, issuer: str, *, timeout: float = FETCH_TIMEOUT_SECONDS) -> None:
        self.issuer = issuer
        self.timeout = timeout
        self._lock = threading.Lock()
        self._client: PyJWKClient | None = None
        self._discovery_failed_at = float("-inf")
        self._discovery_error = ""
        self._refreshed_at = float("-inf")
        self._keys: list[PyJWK] = []

    def key(self, kid: str, algorithm: str) -> Any:
        """The public key *kid* for *algorithm*: :class:`InvalidToken` when the issuer has no
        such key (or it is of another kind), :class:`IssuerUnavailable` when it cannot say."""
        with self._lock:
            client = self._discover()
            keys = self._read(client, refresh=False)
            found = self._match(keys, kid)
            now = time.monotonic()
            if found is None and now - self._refreshed_at >= REFRESH_COOLDOWN_SECONDS:
                self._refreshed_at = now
                log.info("unknown signing key %r: reading %s again", kid, client.uri)
                found = self._match(self._read(client, refresh=True), kid)
        if found is None:
            raise InvalidToken(f"the issuer has no signing key {kid!r}")
        if not _fits(found.key, algorithm):
            raise InvalidToken(f"the signing key {kid!r} is not a key for {algorithm}")
        return found.key

    @staticmethod
    def _match(keys: list[PyJWK], kid: str) -> PyJWK | None:
        return next((key for key in keys if key.key_id == kid), None)

    def _discover(self) -> PyJWKClient:
        """The JWKS client, after reading the discovery document once it answers."""
        if self._client is not None:
            return self._client
        if time.monotonic() - self._discovery_failed_at < DISCOVERY_RETRY_SECONDS:
            raise IssuerUnavailable(self._discovery_error)
        url = f"{self.issuer}/.well-known/openid-configuration"
        try:
            response = httpx.get(url, timeout=self.timeout)
            response.raise_for_status()
            document = response.json()
            if not isinstance(document, dict):
                raise ValueError("not a JSON object")
            # OpenID Connect Discovery 1.0 §4.3: the issuer must be the one asked
            if document.get("issuer") != self.issuer:
                raise IssuerUnavailable(
                    f"{url} names the issuer {document.get('issuer')!r}, not {self.issuer!r}"
                )
            jwks_uri = _http_url(document.get("jwks_uri"), "jwks_uri")
        except (httpx.HTTPError, ValueError, IssuerUnavailable) as exc:
            self._discovery_failed_at = time.monotonic()
            self._discovery_error = f"the OpenID Connect issuer cannot be used: {url}: {exc}"
            log.warning("%s", self._discovery_error)
            raise IssuerUnavailable(self._discovery_error) from None
        self._client = PyJWKClient(
            jwks_uri, lifespan=JWKS_CACHE_SECONDS, timeout=self.timeout, cooldown_duration=0
        )
        return self._client

    def _read(self, client: PyJWKClient, *, refresh: bool) -> list[PyJWK]:
        """The key set, from the cache unless *refresh* or expired; the last one read while
        the issuer does not answer."""
        try:
            self._keys = client.get_signing_keys(refresh=refresh)
        except jwt.PyJWKClientConnectionError as exc:
            if not self._keys:
                raise IssuerUnavailable(f"the issuer's keys cannot be read: {exc}") from None
            log.warning("the issuer's keys cannot be read (using those read before): %s", exc)
        except (jwt.PyJWKClientError, jwt.PyJWKSetError) as exc:
            if not self._keys:
                raise IssuerUnavailable(f"the issuer's key set is unusable: {exc}") from None
            log.warning("the issuer's key set is unusable (using the one before): %s", exc)
        return self._keys


class JwtVerifier:
    """Checks a JWT and makes its :class:`Principal` (``method="jwt"``)."""

    def __init__(
        self,
        *,
        audience: str,
        scope_prefix: str = "",
        secret: bytes | None = None,
        secret_issuer: str | None = None,
        issuer: IssuerKeys | None = None,
    ) -> None:
        self.audience = audience
        self.scope_prefix = scope_prefix
        self.secret = secret
        self.secret_issuer = secret_issuer
        self.issuer = issuer

    @property
    def fetches(self) -> bool:
        """True when verifying may read from the network (the issuer's keys)."""
        return self.issuer is not None

    def principal(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("the bearer token is neither a known API key nor a JWT") from None
        algorithm = header.get("alg")
        key: Any
        if algorithm == SECRET_ALGORITHM and self.secret is not None:
            key, issuer, required = self.secret, self.secret_issuer, ["exp", "aud", "sub"]
        elif algorithm in ISSUER_ALGORITHMS and self.issuer is not None:
            kid = header.get("kid")
            if not isinstance(kid, str) or not kid:
                raise InvalidToken("the token does not name its signing key (kid)")
            key = self.issuer.key(kid, algorithm)
            issuer, required = self.issuer.issuer, ["exp", "aud", "iss", "sub"]
        else:
            raise InvalidToken(f"tokens signed with {algorithm!r} are not accepted here")
        if issuer is not None and "iss" not in required:
            required.append("iss")
        claims = self._decode(token, key, algorithm, issuer, required)
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise InvalidToken("the token's sub claim is empty")
        scopes = scopes_from_claims(claims, self.scope_prefix)
        return Principal(subject=subject, scopes=scopes, method="jwt")

    def _decode(
        self, token: str, key: Any, algorithm: str, issuer: str | None, required: list[str]
    ) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": required},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the token has expired (exp)") from None
        except jwt.ImmatureSignatureError:
            raise InvalidToken("the token is not valid yet (nbf)") from None
        except jwt.InvalidAudienceError:
            wanted = self.audience
            raise InvalidToken(f"the token is for another service (aud not {wanted!r})") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken(f"another issuer made the token (iss is not {issuer!r})") from None
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidToken(f"the token has no {exc.claim} claim") from None
        except jwt.InvalidSignatureError:
            raise InvalidToken("the token's signature does not verify") from None
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"the token is not valid: {exc}") from None
        return claims
