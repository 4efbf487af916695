"""A typed client of the API's change feed (``GET /changefeed``), for services that follow the
archive (store-and-forward routing in the DIMSE bridge).

The feed lists every instance stored and deleted in commit order, each with a growing ``seq``;
a follower keeps the ``next`` cursor of the page it processed and asks from there, so nothing is
skipped (the contract is documented in ``openapi/api.json``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx

from pacs_common.client import DicomWebError, bearer


class ChangeKind(StrEnum):
    """What happened to the instance (the API writes these, followers read them)."""

    STORED = "stored"  # a new instance, or new bytes for one (overwrite policy)
    DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class Change:
    """One feed entry: an instance stored or deleted."""

    seq: int
    kind: ChangeKind
    study: str
    series: str
    instance: str
    sop_class: str
    modality: str = ""
    #: The AE title the instance came from ((0002,0017), else (0002,0016); PS3.10 7.1).
    sender_ae: str = ""

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> Change:
        return cls(
            seq=int(entry["seq"]),
            kind=ChangeKind(entry["kind"]),
            study=str(entry["study"]),
            series=str(entry["series"]),
            instance=str(entry["instance"]),
            sop_class=str(entry["sop_class"]),
            modality=str(entry.get("modality") or ""),
            sender_ae=str(entry.get("sender_ae") or ""),
        )


@dataclass(frozen=True, slots=True)
class ChangePage:
    changes: list[Change]
    next: int
    #: The newest entry's ``seq`` when the page was read.
    head: int = 0


class ChangeFeedClient:
    """``GET {url}?since=&limit=`` through a caller-owned ``httpx.Client``; with *token*, as a
    bearer token (the feed needs the ``read`` scope)."""

    def __init__(self, http: httpx.Client, url: str, *, token: str | None = None) -> None:
        self.http = http
        self.url = url
        self._auth = bearer(token)

    def read(self, since: int, limit: int = 1000) -> ChangePage:
        """The entries after *since* (at most *limit*) and the cursor to ask from next.

        Raises ``httpx.HTTPError`` when the API cannot be reached and :class:`DicomWebError`
        for an error answer or a body that is not a change feed page.
        """
        params = {"since": since, "limit": limit}
        response = self.http.get(self.url, params=params, auth=self._auth)
        if response.is_error:
            raise DicomWebError.from_response(response)
        try:
            body = response.json()
            return ChangePage(
                [Change.from_json(entry) for entry in body["changes"]],
                int(body["next"]),
                int(body.get("head", 0)),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise DicomWebError(
                "GET", self.url, response.status_code, detail=f"not a change feed page: {exc}"
            ) from None
