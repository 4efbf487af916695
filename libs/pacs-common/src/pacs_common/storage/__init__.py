"""Object storage: the :class:`ObjectStore` contract, its two backends, and :func:`open_store`,
shared by the services that keep objects (the API's instances, the exporter's meshes).

``settings.store_url`` picks the backend:

- ``file://PATH``: :class:`FilesystemStore` under PATH, relative (``file://./var/objects``) or
  absolute (``file:///srv/pacs/objects``); everything after ``file://`` is the path.
- ``s3://HOST[:PORT]/BUCKET`` (plain HTTP) or ``s3+https://HOST[:PORT]/BUCKET`` (TLS, verified
  against the system's CA certificates): :class:`S3Store`, with ``s3_access_key`` and
  ``s3_secret_key`` (never in the URL) and the optional ``s3_region``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from pacs_common.storage.base import ObjectInfo, ObjectNotFound, ObjectStore, StoreError, check_key
from pacs_common.storage.filesystem import FilesystemStore
from pacs_common.storage.s3 import S3Store

__all__ = [
    "FilesystemStore",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "S3Store",
    "StoreError",
    "check_key",
    "open_store",
]

_FORMS = "file://PATH, s3://HOST:PORT/BUCKET or s3+https://HOST:PORT/BUCKET"
# S3 bucket naming rules: 3-63 lowercase letters, digits, dots and hyphens, alphanumeric ends.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class StoreSettings(Protocol):
    """The settings a service gives :func:`open_store` (its own ``Settings`` has these)."""

    @property
    def store_url(self) -> str: ...
    @property
    def s3_access_key(self) -> str | None: ...
    @property
    def s3_secret_key(self) -> str | None: ...
    @property
    def s3_region(self) -> str | None: ...


def open_store(settings: StoreSettings) -> ObjectStore:
    """Open the object store that ``settings.store_url`` names.

    Raises :class:`ValueError` for a malformed URL or missing S3 credentials, and
    :class:`StoreError` when the store cannot be created or reached (S3: the bucket is created
    when missing).
    """
    url = settings.store_url
    scheme, separator, rest = url.partition("://")
    scheme = scheme.lower()
    if not separator:
        raise ValueError(f"store_url {url!r} has no scheme; expected {_FORMS}")
    if scheme == "file":
        if not rest:
            raise ValueError(f"store_url {url!r} names no directory; expected file://PATH")
        return FilesystemStore(Path(rest))
    if scheme in ("s3", "s3+https"):
        endpoint, bucket = _parse_s3(rest)
        if not settings.s3_access_key or not settings.s3_secret_key:
            prefix = _env_prefix(settings)
            raise ValueError(
                f"store_url {url!r} is an S3 store: set both s3_access_key and s3_secret_key "
                f"({prefix}S3_ACCESS_KEY, {prefix}S3_SECRET_KEY)"
            )
        return S3Store(
            endpoint,
            bucket,
            settings.s3_access_key,
            settings.s3_secret_key,
            secure=scheme == "s3+https",
            region=settings.s3_region,
        )
    raise ValueError(f"store_url scheme {scheme!r} is not supported; expected {_FORMS}")


def _env_prefix(settings: Any) -> str:
    """The environment prefix of a pydantic-settings class (``PACS_API_``), else nothing."""
    config = getattr(type(settings), "model_config", {})
    prefix = config.get("env_prefix", "") if isinstance(config, dict) else ""
    return str(prefix)


def _parse_s3(rest: str) -> tuple[str, str]:
    """Split ``HOST[:PORT]/BUCKET`` (the URL after its scheme) into endpoint and bucket."""
    endpoint, _, path = rest.partition("/")
    if "@" in endpoint:  # do not echo the URL: it holds a secret
        raise ValueError(
            "store_url must not hold credentials: set s3_access_key and s3_secret_key instead"
        )
    where = f"store_url s3 location {rest!r}"
    if any(char in rest for char in "?#"):
        raise ValueError(f"{where} has a query or fragment; expected {_FORMS}")
    parts = urlsplit(f"//{endpoint}")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{where} has an invalid port; expected {_FORMS}") from exc
    if not parts.hostname or (":" in endpoint and port is None):
        raise ValueError(f"{where} names no host; expected {_FORMS}")
    bucket = path.removesuffix("/")
    if not bucket:
        raise ValueError(f"{where} names no bucket; expected {_FORMS}")
    if "/" in bucket:
        raise ValueError(f"{where} has a path after the bucket name; only a bucket is supported")
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise ValueError(
            f"{where}: {bucket!r} is not a valid bucket name (3-63 lowercase letters, digits, "
            "dots and hyphens, starting and ending with a letter or digit)"
        )
    return endpoint, bucket
