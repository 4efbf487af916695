"""Content negotiation for WADO-RS (PS3.18 §8.7): media types and transfer syntaxes.

An Accept header is a list of media ranges with parameters and q-values (RFC 9110 §12.5.1).
For retrieving instances PS3.18 §8.7.3 defines ``multipart/related; type="application/dicom"``
with an optional ``transfer-syntax`` parameter: ``*`` asks for the stored syntax.
"""

from __future__ import annotations

from dataclasses import dataclass

from pacs_api.dicomweb.multipart import MediaType
from pacs_api.errors import NotAcceptable


@dataclass(frozen=True, slots=True)
class Accepted:
    media: MediaType
    q: float


def parse_accept(header: str | None) -> list[Accepted]:
    """The media ranges of an Accept header, highest q first (absent header: ``*/*``)."""
    if not header or not header.strip():
        return [Accepted(MediaType("*/*", {}), 1.0)]
    ranges: list[Accepted] = []
    for item in _split(header):
        media = MediaType.parse(item)
        try:
            q = float(media.params.pop("q", "1"))
        except ValueError:
            q = 1.0
        if q > 0 and media.value:
            ranges.append(Accepted(media, q))
    return sorted(ranges, key=lambda a: -a.q)


def _split(header: str) -> list[str]:
    """Split on commas outside quoted strings."""
    items: list[str] = []
    current: list[str] = []
    quoted = False
    for char in header:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return [i.strip() for i in items if i.strip()]


def dicom_transfer_syntax(header: str | None) -> str | None:
    """For instance retrieval, the transfer syntax asked for: a UID, ``*`` or ``None`` for
    "no preference" (PS3.18 §8.7.3.5). Raises 406 when no range accepts DICOM instances."""
    for accepted in parse_accept(header):
        media = accepted.media
        if media.value in ("*/*", "multipart/*"):
            return None
        if media.value == "multipart/related":
            part_type = media.params.get("type", "application/dicom").lower()
            if part_type in ("application/dicom", "*/*", "application/*"):
                return media.params.get("transfer-syntax")
        if media.value == "application/dicom":
            return media.params.get("transfer-syntax")
    raise NotAcceptable(
        f"cannot answer Accept: {header!r}; instances are served as "
        'multipart/related; type="application/dicom" (PS3.18 §8.7.3)'
    )


def accepts_json(header: str | None) -> None:
    """Raise 406 unless DICOM JSON is acceptable (metadata and QIDO answers, PS3.18 §8.7.3)."""
    for accepted in parse_accept(header):
        if accepted.media.value in (
            "*/*",
            "application/*",
            "application/dicom+json",
            "application/json",
        ):
            return
    raise NotAcceptable(
        f"cannot answer Accept: {header!r}; this resource is served as application/dicom+json"
    )
