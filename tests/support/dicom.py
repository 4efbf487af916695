"""Test data: small synthetic CT instances and STOW-RS request helpers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx
from pacs_common.media import encode_multipart_related
from pacs_common.synthetic import iter_ct_series, to_bytes
from pydicom import Dataset


def ct_datasets(n: int = 3, *, seed: int = 0, **kwargs: Any) -> list[Dataset]:
    """*n* slices of a small (32 x 32) synthetic CT series."""
    return list(iter_ct_series(n, 32, 32, seed=seed, **kwargs))


def ct_instances(n: int = 3, *, seed: int = 0, **kwargs: Any) -> list[bytes]:
    return [to_bytes(ds) for ds in ct_datasets(n, seed=seed, **kwargs)]


def stow(
    client: httpx.Client,
    parts: Iterable[bytes],
    *,
    study: str | None = None,
    part_type: str = "application/dicom",
) -> httpx.Response:
    body, content_type = encode_multipart_related(parts, part_type)
    url = "/dicom-web/studies" + (f"/{study}" if study else "")
    return client.post(url, content=b"".join(body), headers={"Content-Type": content_type})


def values(dataset: dict[str, Any], tag: str) -> list[Any]:
    return list((dataset.get(tag) or {}).get("Value", []))


def referenced(response: httpx.Response) -> list[dict[str, Any]]:
    """ReferencedSOPSequence (0008,1199) items of a STOW-RS response."""
    return values(response.json(), "00081199")


def failed(response: httpx.Response) -> list[dict[str, Any]]:
    """FailedSOPSequence (0008,1198) items of a STOW-RS response."""
    return values(response.json(), "00081198")


def failure_reasons(response: httpx.Response) -> list[int]:
    return [values(item, "00081197")[0] for item in failed(response)]
