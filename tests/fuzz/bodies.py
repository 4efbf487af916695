"""Broken ``multipart/related`` STOW-RS bodies (RFC 2046 §5.1, RFC 2387, PS3.18 §8.6.1.2).

Each builder takes the instances of a case, a boundary and the case's ``random.Random`` and
returns the body, its request Content-Type, and the payloads a server may store from it (the
only bytes an acknowledged instance may hold): well formed, or with no or another boundary, a
boundary line doubled, no close delimiter, parts without or with the wrong Content-Type, huge
or countless part headers, LF or CR instead of CRLF, empty parts, garbage between parts, a
preamble and epilogue, and request Content-Types that are not multipart/related at all.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

DICOM = "application/dicom"


def boundary_for(rng: random.Random) -> str:
    return f"fuzz{rng.getrandbits(64):016x}"


def _multipart(
    parts: list[bytes], boundary: str, *, headers: list[bytes] | None = None, eol: bytes = b"\r\n"
) -> bytes:
    out = []
    for position, payload in enumerate(parts):
        head = headers[position] if headers is not None else b"Content-Type: application/dicom"
        out.append(b"--" + boundary.encode() + eol + (head + eol if head else b"") + eol)
        out.append(payload + eol)
    out.append(b"--" + boundary.encode() + b"--" + eol)
    return b"".join(out)


def _related(boundary: str, part_type: str = DICOM) -> str:
    return f'multipart/related; type="{part_type}"; boundary={boundary}'


@dataclass(slots=True)
class Body:
    body: bytes
    content_type: str
    payloads: set[bytes]
    notes: list[str] = field(default_factory=list)


def _well_formed(_rng: random.Random, parts: list[bytes], boundary: str) -> Body:
    return Body(_multipart(parts, boundary), _related(boundary), set(parts))


def _no_boundary_param(_rng: random.Random, parts: list[bytes], boundary: str) -> Body:
    return Body(_multipart(parts, boundary), f'multipart/related; type="{DICOM}"', set())


def _other_boundary(rng: random.Random, parts: list[bytes], boundary: str) -> Body:
    return Body(_multipart(parts, boundary), _related(boundary_for(rng)), set())


def _doubled_boundary(_rng: random.Random, parts: list[bytes], boundary: str) -> Body:
    """A delimiter line twice: an empty part with no headers between them."""
    body = _multipart(parts, boundary)
    line = b"--" + boundary.encode() + b"\r\n"
    return Body(body.replace(line, line + line, 1), _related(boundary), set(parts))


def _no_close(rng: random.Random, parts: list[bytes], boundary: str) -> Body:
    body = _multipart(parts, boundary)
    close = b"--" + boundary.encode() + b"--\r\n"
    cut = body[: -len(close)]
    return Body(cut[: len(cut) - rng.choice((0, 2))], _related(boundary), set())


def _without_content_type(_rng: random.Random, parts: list[bytes], boundary: str) -> Body:
    """Parts with no header at all: their type is the body's ``type`` (RFC 2387 §3.1)."""
    body = _multipart(parts, boundary, headers=[b""] * len(parts))
    return Body(body, _related(boundary), set(parts))


def _wrong_part_type(rng: random.Random, parts: list[bytes], boundary: str) -> Body:
    head = rng.choice((b"Content-Type: application/json", b"Content-Type: text/plain", b"X: y"))
    headers = [head if i == 0 else b"Content-Type: application/dicom" for i in range(len(parts))]
    body = _multipart(parts, boundary, headers=headers)
    stored = set(parts[1:]) | ({parts[0]} if head == b"X: y" else set())
    return Body(body, _related(boundary), stored, [f"first part {head.decode()}"])


def _huge_headers(rng: random.Random, parts: list[bytes], boundary: str) -> Body:
    if rng.random() < 0.5:
        head = b"Content-Type: application/dicom\r\nX-Padding: " + b"a" * rng.choice(
            (8 * 1024, 100 * 1024, 1024 * 1024)
        )
        note = f"a {len(head)}-byte header"
    else:
        head = b"\r\n".join([b"Content-Type: application/dicom"] + [b"X-H: v"] * 1000)
        note = "1,000 headers"
    body = _multipart(parts, boundary, headers=[head] * len(parts))
    return Body(body, _related(boundary), set(parts), [note])


def _line_ends(rng: random.Random, parts: list[bytes], boundary: str) -> Body:
    eol = rng.choice((b"\n", b"\r", b"\n\r"))
    body = _multipart(parts, boundary, eol=eol)
    return Body(body, _related(boundary), set(parts), [f"EOL {eol!r}"])


def _empty_parts(rng: random.Random, parts: list[bytes], boundary: str) -> Body:
    where = rng.randrange(len(parts) + 1)
    with_empty = [*parts[:where], b"", *parts[where:]]
    return Body(_multipart(with_empty, boundary), _related(boundary), set(parts))


def _garbage_between(rng: random.Random, parts: list[bytes], boundary: str) -> Body:
    """Bytes after a part's CRLF and before the next delimiter: they belong to the part
    (RFC 2046 §5.1.1: only CRLF--boundary delimits), so that part holds them too."""
    garbage = rng.randbytes(rng.choice((1, 7, 300)))
    first = parts[0] + b"\r\n" + garbage
    body = _multipart([first, *parts[1:]], boundary)
    return Body(body, _related(boundary), {first, *parts[1:]}, [f"{len(garbage)} garbage bytes"])


def _preamble_epilogue(rng: random.Random, parts: list[bytes], boundary: str) -> Body:
    """A preamble and an epilogue, both ignored (RFC 2046 §5.1.1)."""
    body = rng.randbytes(40).replace(b"-", b"+") + b"\r\n" + _multipart(parts, boundary)
    return Body(body + rng.randbytes(40), _related(boundary), set(parts))


def _not_multipart(rng: random.Random, parts: list[bytes], boundary: str) -> Body:
    content_type = rng.choice(
        (
            DICOM,
            "application/json",
            _related(boundary, "application/dicom+json"),
            "",
            f"multipart/form-data; boundary={boundary}",
        )
    )
    return Body(
        _multipart(parts, boundary), content_type, set(), [f"Content-Type {content_type!r}"]
    )


def _bad_boundary_param(rng: random.Random, parts: list[bytes], boundary: str) -> Body:
    odd = rng.choice(("", "x" * 71, '"', "a b", "\u00e9t\u00e9"))
    return Body(_multipart(parts, boundary), _related(odd), set(), [f"boundary {odd!r}"])


BODIES: dict[str, tuple[Callable[[random.Random, list[bytes], str], Body], int]] = {
    "well-formed": (_well_formed, 10),
    "no boundary parameter": (_no_boundary_param, 1),
    "other boundary": (_other_boundary, 1),
    "doubled boundary": (_doubled_boundary, 1),
    "no close delimiter": (_no_close, 1),
    "part without Content-Type": (_without_content_type, 1),
    "wrong part type": (_wrong_part_type, 1),
    "huge part headers": (_huge_headers, 1),
    "LF/CR line ends": (_line_ends, 1),
    "zero-length part": (_empty_parts, 1),
    "garbage between parts": (_garbage_between, 1),
    "preamble and epilogue": (_preamble_epilogue, 1),
    "not multipart/related": (_not_multipart, 1),
    "bad boundary parameter": (_bad_boundary_param, 1),
}
