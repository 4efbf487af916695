"""Content negotiation for WADO-RS (PS3.18 §8.7): media types and transfer syntaxes.

An Accept header is a list of media ranges with parameters and q-values (RFC 9110 §12.5.1).
For retrieving instances PS3.18 §8.7.3 defines ``multipart/related; type="application/dicom"``
with an optional ``transfer-syntax`` parameter: ``*`` asks for the stored syntax.

Several ranges may name different syntaxes with q-values; :func:`choose_transfer_syntax` picks,
for one stored instance, the highest-q syntax the server can produce (§8.7.3.5.2: the origin
server answers in an acceptable syntax or 406).

A range naming no ``transfer-syntax`` gets the stored syntax, though PS3.18 Table 8.7.3-2
gives Explicit VR Little Endian as the default: the clients that name none (dicomweb-client,
viewers, our DIMSE bridge forwarding objects) rely on the stored bytes (whose SHA-256 is the
ETag), transcoding whole studies by default would multiply CPU and bytes sent, and each part's
Content-Type tells the client which syntax it got. A client that needs a syntax asks for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import groupby

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


@dataclass(frozen=True, slots=True)
class SyntaxRange:
    """One Accept range's transfer syntax for instances: a UID, ``*`` (as stored) or ``None``
    (the range names none), with the range's q-value."""

    syntax: str | None
    q: float


def dicom_transfer_syntaxes(header: str | None) -> list[SyntaxRange]:
    """For instance retrieval, the transfer syntaxes the Accept ranges that take DICOM
    instances ask for, highest q first, in header order within one q (PS3.18 §8.7.3.5).
    Raises 406 when no range accepts DICOM instances."""
    found: list[SyntaxRange] = []
    for accepted in parse_accept(header):
        media = accepted.media
        if media.value in ("*/*", "multipart/*"):
            found.append(SyntaxRange(None, accepted.q))
        elif media.value == "multipart/related":
            part_type = media.params.get("type", "application/dicom").lower()
            if part_type in ("application/dicom", "*/*", "application/*"):
                found.append(SyntaxRange(media.params.get("transfer-syntax"), accepted.q))
        elif media.value == "application/dicom":
            found.append(SyntaxRange(media.params.get("transfer-syntax"), accepted.q))
    if not found:
        raise NotAcceptable(
            f"cannot answer Accept: {header!r}; instances are served as "
            'multipart/related; type="application/dicom" (PS3.18 §8.7.3)'
        )
    return found


def choose_transfer_syntax(
    ranges: list[SyntaxRange], stored: str, refusal: Callable[[str, str], str | None]
) -> str:
    """The syntax to send an instance stored in *stored* in: from the highest-q ranges that
    can be served, the stored syntax if one of them takes it, else the first that *refusal*
    (source, target -> reason or ``None``) accepts; a range without ``transfer-syntax`` takes
    the stored syntax (see the module docstring). 406 naming every syntax asked for, the
    stored one and the reasons, when none can be produced."""
    reasons: list[str] = []
    for _, group in groupby(ranges, key=lambda r: r.q):
        wanted = [stored if r.syntax in (None, "*") else r.syntax for r in group]
        if stored in wanted:
            return stored
        for syntax in wanted:
            reason = refusal(stored, syntax)
            if reason is None:
                return syntax
            reasons.append(reason)
    asked = ", ".join(dict.fromkeys(str(r.syntax) for r in ranges))
    raise NotAcceptable(
        f"an instance is stored in transfer syntax {stored} and none of the transfer syntaxes "
        f"asked for ({asked}) can be produced from it: {'; '.join(dict.fromkeys(reasons))}; "
        "ask with transfer-syntax=* for the stored syntax (PS3.18 §8.7.3.5)"
    )
