"""API keys for scripts and services: random, recognisable, stored only as a digest.

A key is ``pacs_`` followed by 32 random bytes in URL-safe base64 (``secrets.token_urlsafe``),
so a leaked key is easy to spot in logs and by secret scanners. The services keep only its
SHA-256 digest (a key has 256 bits of entropy: a fast hash is enough, no salt or slow KDF is
needed) and compare digests in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

from pacs_common.auth import Principal
from pacs_common.auth.settings import ApiKeyEntry

PREFIX = "pacs_"
KEY_BYTES = 32


def new_api_key() -> str:
    """A fresh key, to be shown once and never stored."""
    return PREFIX + secrets.token_urlsafe(KEY_BYTES)


def key_digest(key: str) -> str:
    """The hex SHA-256 of *key*: what ``auth_api_keys`` holds."""
    return hashlib.sha256(key.encode()).hexdigest()


def looks_like_api_key(token: str) -> bool:
    return token.startswith(PREFIX)


class ApiKeys:
    """The configured keys; :meth:`principal` finds the one a presented key is."""

    def __init__(self, entries: Iterable[ApiKeyEntry]) -> None:
        self._entries = tuple(entries)

    def __bool__(self) -> bool:
        return bool(self._entries)

    def principal(self, key: str) -> Principal | None:
        """The principal of *key*, or None when no configured key has its digest.

        Every entry is compared (``hmac.compare_digest``), so the time taken does not tell
        which entry, or how much of a digest, matched.
        """
        digest = key_digest(key).encode()
        found: ApiKeyEntry | None = None
        for entry in self._entries:
            if hmac.compare_digest(digest, entry.sha256.encode()):
                found = entry
        if found is None:
            return None
        return Principal(subject=found.name, scopes=frozenset(found.scopes), method="api-key")
