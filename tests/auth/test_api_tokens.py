"""Bearer tokens at the API: JWTs of a real OpenID Connect issuer and of a shared secret, and
API keys; what is refused is 401 problem+json with an RFC 6750 challenge."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient
from pacs_api.main import create_app
from pacs_api.settings import Settings
from pacs_common.auth import Scope
from pacs_common.auth.api_keys import new_api_key

from tests.auth.conftest import AUDIENCE, SECRET, bearer
from tests.auth.issuer import Issuer, SigningKey

STUDIES = "/dicom-web/studies"


def assert_unauthorized(response: object, error: str | None = "invalid_token") -> str:
    """401 problem+json with a Bearer challenge carrying *error*; returns the detail."""
    assert response.status_code == 401, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    challenge = response.headers["www-authenticate"]  # type: ignore[attr-defined]
    assert challenge.startswith('Bearer realm="pacs-cloud"')
    if error is None:
        assert "error=" not in challenge
    else:
        assert f'error="{error}"' in challenge
    body = response.json()  # type: ignore[attr-defined]
    assert body["status"] == 401
    detail: str = body["detail"]
    return detail


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_with_public_key(issuer: Issuer) -> str:
    """The algorithm-confusion attack (RFC 8725 §2.1): HS256 keyed with the issuer's public
    key, which anyone can read from its JWKS."""
    public = issuer.rsa.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": issuer.rsa.kid}).encode())
    payload = _b64(json.dumps(issuer.claims(AUDIENCE)).encode())
    signature = hmac.new(public, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def unsigned(issuer: Issuer) -> str:
    """``alg: none`` (RFC 7519 §6): no signature at all."""
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(issuer.claims(AUDIENCE)).encode())
    return f"{header}.{payload}."


def impostor(issuer: Issuer) -> SigningKey:
    """Another RSA key under the issuer's kid: its signatures do not verify."""
    return SigningKey(issuer.rsa.kid, SigningKey.rsa().private, "RS256")


@pytest.fixture
def oidc_only(tmp_path: Path, issuer: Issuer) -> Iterator[TestClient]:
    """The API accepting the issuer's JWTs with this service's scopes prefixed by "pacs."."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'index.sqlite3'}",
        store_url=f"file://{tmp_path / 'objects'}",
        auth_oidc_issuer=issuer.url,
        auth_audience=AUDIENCE,
        auth_scope_prefix="pacs.",
    )
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.mark.parametrize("kind", ["RS256", "PS256", "ES256"])
def test_oidc_token_reads_200(api: TestClient, issuer: Issuer, kind: str) -> None:
    key = issuer.ec if kind == "ES256" else issuer.rsa
    token = issuer.mint(AUDIENCE, key=key, algorithm=kind)
    response = api.get(STUDIES, headers=bearer(token))
    assert response.status_code in (200, 204), response.text


def test_oidc_token_with_leeway_on_exp_200(api: TestClient, issuer: Issuer) -> None:
    """A token that expired a few seconds ago, within the clock skew allowed, still works."""
    token = issuer.mint(AUDIENCE, exp=int(time.time()) - 5)
    assert api.get(STUDIES, headers=bearer(token)).status_code in (200, 204)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("expired", "expired"),
        ("not yet valid", "not valid yet"),
        ("wrong issuer", "another issuer"),
        ("wrong audience", "another service"),
        ("no exp", "no exp claim"),
        ("no sub", "no sub claim"),
        ("bad signature", "signature"),
        ("alg none", "'none'"),
        ("HS256 with the public key", "signature"),  # checked against the shared secret
        ("no kid", "kid"),
        ("not a JWT", "neither"),
    ],
)
def test_oidc_token_refused_401(api: TestClient, issuer: Issuer, case: str, reason: str) -> None:
    now = int(time.time())
    tokens = {
        "expired": lambda: issuer.mint(AUDIENCE, exp=now - 120),
        "not yet valid": lambda: issuer.mint(AUDIENCE, nbf=now + 600),
        "wrong issuer": lambda: issuer.mint(AUDIENCE, iss="https://elsewhere.example"),
        "wrong audience": lambda: issuer.mint("another-service"),
        "no exp": lambda: issuer.mint(AUDIENCE, exp=None),
        "no sub": lambda: issuer.mint(AUDIENCE, sub=None),
        # signed by another key under the issuer's kid
        "bad signature": lambda: issuer.mint(AUDIENCE, key=impostor(issuer)),
        "alg none": lambda: unsigned(issuer),
        "HS256 with the public key": lambda: hs256_with_public_key(issuer),
        "no kid": lambda: jwt.encode(issuer.claims(AUDIENCE), issuer.rsa.private, "RS256"),
        "not a JWT": lambda: "bm90LWEtand0",
    }
    response = api.get(STUDIES, headers=bearer(tokens[case]()))
    assert reason in assert_unauthorized(response)


def test_no_authorization_401_bare_challenge(api: TestClient) -> None:
    """RFC 6750 §3.1: a request without credentials gets a challenge without error codes."""
    detail = assert_unauthorized(api.get(STUDIES), error=None)
    assert "Bearer" in detail


@pytest.mark.parametrize(
    ("header", "error"),
    [
        ("Bearer", "invalid_token"),
        ("Bearer two words", "invalid_token"),
        ('Bearer "quoted"', "invalid_token"),
        ("Basic YWxhZGRpbjpvcGVuc2VzYW1l", None),
    ],
)
def test_malformed_authorization_401(api: TestClient, header: str, error: str | None) -> None:
    assert_unauthorized(api.get(STUDIES, headers={"Authorization": header}), error=error)


def test_scheme_is_case_insensitive_200(api: TestClient, api_keys: dict[Scope, str]) -> None:
    headers = {"Authorization": f"bearer {api_keys[Scope.READ]}"}
    assert api.get(STUDIES, headers=headers).status_code in (200, 204)


def test_rotated_key_refreshes_jwks_once_200(api: TestClient, issuer: Issuer) -> None:
    """A token signed by a key published after the JWKS was read (rotation) makes the service
    read it again, once; the retired key's tokens then fail."""
    old_token = issuer.mint(AUDIENCE)
    assert api.get(STUDIES, headers=bearer(old_token)).status_code in (200, 204)
    assert issuer.jwks_reads == 1
    issuer.rotate()
    new_token = issuer.mint(AUDIENCE)
    assert api.get(STUDIES, headers=bearer(new_token)).status_code in (200, 204)
    assert issuer.jwks_reads == 2
    assert api.get(STUDIES, headers=bearer(new_token)).status_code in (200, 204)
    assert issuer.jwks_reads == 2  # cached again
    assert "no signing key" in assert_unauthorized(api.get(STUDIES, headers=bearer(old_token)))


def test_unknown_kids_do_not_hammer_the_issuer_401(api: TestClient, issuer: Issuer) -> None:
    """Made-up kids cause at most one refresh per cooldown, whatever their number."""
    assert api.get(STUDIES, headers=bearer(issuer.mint(AUDIENCE))).status_code in (200, 204)
    for n in range(5):
        stranger = SigningKey(f"made-up-{n}", issuer.rsa.private, "RS256")
        response = api.get(STUDIES, headers=bearer(issuer.mint(AUDIENCE, key=stranger)))
        assert "no signing key" in assert_unauthorized(response)
    assert issuer.jwks_reads == 2


def test_token_without_the_scope_403(api: TestClient, issuer: Issuer) -> None:
    token = issuer.mint(AUDIENCE, scope="write delete")
    response = api.get(STUDIES, headers=bearer(token))
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    challenge = response.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge and 'scope="read"' in challenge
    assert "'read'" in response.json()["detail"] and "'alice'" in response.json()["detail"]


def test_issuer_down_503_retry_after(api: TestClient, issuer: Issuer) -> None:
    token = issuer.mint(AUDIENCE)
    issuer.stop()
    response = api.get(STUDIES, headers=bearer(token))
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    assert "issuer" in response.json()["detail"]


def test_issuer_down_after_keys_read_keeps_working_200(api: TestClient, issuer: Issuer) -> None:
    """Keys read before the issuer went away keep verifying its tokens."""
    token = issuer.mint(AUDIENCE)
    assert api.get(STUDIES, headers=bearer(token)).status_code in (200, 204)
    issuer.stop()
    assert api.get(STUDIES, headers=bearer(token)).status_code in (200, 204)


def test_shared_secret_token_200(api: TestClient) -> None:
    now = int(time.time())
    claims = {"sub": "ci", "aud": AUDIENCE, "exp": now + 60, "scope": "read"}
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    assert api.get(STUDIES, headers=bearer(token)).status_code in (200, 204)


def test_shared_secret_token_wrong_secret_401(api: TestClient) -> None:
    now = int(time.time())
    claims = {"sub": "ci", "aud": AUDIENCE, "exp": now + 60, "scope": "read"}
    token = jwt.encode(claims, "another-secret-of-at-least-32-bytes-long", algorithm="HS256")
    assert "signature" in assert_unauthorized(api.get(STUDIES, headers=bearer(token)))


def test_api_key_reads_200(api: TestClient, api_keys: dict[Scope, str]) -> None:
    assert api.get(STUDIES, headers=bearer(api_keys[Scope.READ])).status_code in (200, 204)


@pytest.mark.parametrize("case", ["revoked", "altered"])
def test_api_key_unknown_401(api: TestClient, api_keys: dict[Scope, str], case: str) -> None:
    """A key no longer listed (revoked: its entry removed) or altered is refused."""
    key = new_api_key() if case == "revoked" else api_keys[Scope.READ][:-1] + "A"
    if key == api_keys[Scope.READ]:
        key = api_keys[Scope.READ][:-1] + "B"
    assert "API key" in assert_unauthorized(api.get(STUDIES, headers=bearer(key)))


def test_scope_prefix_and_scp_list_200(oidc_only: TestClient, issuer: Issuer) -> None:
    """With auth_scope_prefix, only prefixed scopes count; ``scp`` may be a list."""
    prefixed = issuer.mint(AUDIENCE, scope=None, scp=["pacs.read", "other.delete"])
    assert oidc_only.get(STUDIES, headers=bearer(prefixed)).status_code in (200, 204)
    bare = issuer.mint(AUDIENCE, scope="read")
    assert oidc_only.get(STUDIES, headers=bearer(bare)).status_code == 403


def test_hs256_with_the_public_key_without_secret_401(
    oidc_only: TestClient, issuer: Issuer
) -> None:
    """With only an issuer configured, HS256 is not an algorithm the service accepts at all, so
    the public key is never used as an HMAC key."""
    response = oidc_only.get(STUDIES, headers=bearer(hs256_with_public_key(issuer)))
    assert "'HS256' are not accepted" in assert_unauthorized(response)


def test_api_key_where_none_configured_401(oidc_only: TestClient) -> None:
    response = oidc_only.get(STUDIES, headers=bearer(new_api_key()))
    assert "API key" in assert_unauthorized(response)


def test_public_routes_need_no_token_200(api: TestClient) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/ui/", "/openapi.json", "/docs"):
        assert api.get(path).status_code == 200, path
