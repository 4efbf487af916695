"""The pieces of a credential: API keys as minted and matched, scopes read from JWT claims,
and the RFC 6750 challenge."""

from __future__ import annotations

from typing import Any

import pytest
from pacs_common.auth import Scope
from pacs_common.auth.api_keys import PREFIX, ApiKeys, key_digest, new_api_key
from pacs_common.auth.authenticator import challenge
from pacs_common.auth.settings import ApiKeyEntry
from pacs_common.auth.tokens import scopes_from_claims


def test_new_api_key_random_prefixed_urlsafe() -> None:
    keys = {new_api_key() for _ in range(50)}
    assert len(keys) == 50
    for key in keys:
        assert key.startswith(PREFIX)
        assert len(key) == len(PREFIX) + 43  # 32 bytes, URL-safe base64 without padding
        assert set(key[len(PREFIX) :]) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        )


def test_api_keys_match_by_digest_only() -> None:
    key, other = new_api_key(), new_api_key()
    keys = ApiKeys(
        [
            ApiKeyEntry(name="a", sha256=key_digest(other), scopes=frozenset({Scope.READ})),
            ApiKeyEntry(name="b", sha256=key_digest(key), scopes=frozenset({Scope.WRITE})),
        ]
    )
    principal = keys.principal(key)
    assert principal is not None
    assert (principal.subject, principal.scopes, principal.method) == (
        "b",
        frozenset({Scope.WRITE}),
        "api-key",
    )
    assert keys.principal(key_digest(key)) is None  # the digest is not a key
    assert keys.principal(new_api_key()) is None


@pytest.mark.parametrize(
    ("claims", "prefix", "scopes"),
    [
        ({"scope": "read write"}, "", {Scope.READ, Scope.WRITE}),
        ({"scope": "openid profile read"}, "", {Scope.READ}),
        ({"scp": ["delete", "admin"]}, "", {Scope.DELETE, Scope.ADMIN}),
        ({"scp": "read"}, "", {Scope.READ}),  # Azure AD sends scp as a string
        ({"scope": "pacs.read other.write write"}, "pacs.", {Scope.READ}),
        ({"scope": "READ"}, "", set()),  # scopes are case-sensitive (RFC 6749 §3.3)
        ({"scope": 7, "scp": [1, None]}, "", set()),
        ({}, "", set()),
    ],
)
def test_scopes_from_claims(claims: dict[str, Any], prefix: str, scopes: set[Scope]) -> None:
    assert scopes_from_claims(claims, prefix) == frozenset(scopes)


def test_challenge_quotes_nothing_unsafe() -> None:
    """error_description may not hold a quote or a backslash (RFC 6750 §3)."""
    header = challenge("invalid_token", 'a "quoted" \\ reason é')
    assert header == (
        'Bearer realm="pacs-cloud", error="invalid_token", error_description="a quoted  reason "'
    )
    assert challenge(None, "no credentials") == 'Bearer realm="pacs-cloud"'
