"""Unique Identifier checks (PS3.5 §9.1, VR UI in PS3.5 table 6.2-1).

A UID is at most 64 characters of dot-separated numeric components, each without a leading
zero (except the single digit ``0``). Every key the services build from a UID is built from a
value that passed :func:`validate_uid`, so a UID can never carry a path (``../``) or a
wildcard into a storage key or a query.
"""

from __future__ import annotations

from pydicom.uid import RE_VALID_UID

MAX_UID_LENGTH = 64


class InvalidUIDError(ValueError):
    """A value that is not a valid DICOM UID."""


def is_valid_uid(value: str) -> bool:
    """True when *value* is a syntactically valid UID (PS3.5 §9.1)."""
    return 0 < len(value) <= MAX_UID_LENGTH and RE_VALID_UID.match(value) is not None


def validate_uid(value: str, *, what: str = "UID") -> str:
    """Return *value* when it is a valid UID, else raise :class:`InvalidUIDError` naming *what*."""
    if not is_valid_uid(value):
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise InvalidUIDError(f"{what} {shown!r} is not a valid UID (PS3.5 §9.1)")
    return value
