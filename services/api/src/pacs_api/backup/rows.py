"""Row values as JSON and back, by column type, the same on SQLite and PostgreSQL.

Each column gets a *kind* from the Python type its SQL type holds; the kind is written in the
manifest, so restore decodes a value as it was encoded whatever database reads it back:

| kind       | JSON                                   | back                                   |
|------------|----------------------------------------|----------------------------------------|
| `datetime` | ISO 8601 (RFC 3339 with an offset when the value had one) | `datetime`       |
| `date`, `time` | ISO 8601                           | `date`, `time`                         |
| `interval` | seconds (a number)                     | `timedelta`                            |
| `bytes`    | base64 (RFC 4648 §4)                   | `bytes`                                |
| `decimal`  | the decimal's string                   | `Decimal`                              |
| `json`     | the JSON value itself                  | the value                              |
| `plain`    | strings, integers, floats, booleans, null as they are |                         |

Time zones: the API writes UTC (:func:`pacs_api.index.models.utcnow`). SQLite keeps no offset,
so its values come back naive; a naive value restored into a column with a time zone
(PostgreSQL ``timestamptz``) is taken as UTC, and a value with an offset restored into a column
without one (SQLite) is converted to UTC first. No instant moves between deployments.
"""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import types as sqltypes
from sqlalchemy.types import TypeEngine

_KINDS: dict[type, str] = {
    datetime: "datetime",
    date: "date",
    time: "time",
    timedelta: "interval",
    bytes: "bytes",
    Decimal: "decimal",
    dict: "json",
    list: "json",
}
KINDS = frozenset({*_KINDS.values(), "plain"})


def column_kind(type_: TypeEngine[Any]) -> str:
    """The kind of values a column of this SQL type holds (``plain`` when it has no other)."""
    if isinstance(type_, sqltypes.JSON):
        return "json"
    try:
        python_type = type_.python_type
    except NotImplementedError:  # NullType and types SQLAlchemy does not know: as stored
        return "plain"
    return _KINDS.get(python_type, "plain")


def encode(kind: str, value: Any) -> Any:
    """A column value as a JSON value."""
    if value is None or kind in ("plain", "json"):
        return value
    if kind in ("datetime", "date", "time"):
        return value.isoformat()
    if kind == "interval":
        return value.total_seconds()
    if kind == "bytes":
        return base64.b64encode(bytes(value)).decode("ascii")
    if kind == "decimal":
        return str(value)
    raise ValueError(f"unknown column kind {kind!r}")


def decode(kind: str, value: Any, target: TypeEngine[Any]) -> Any:
    """A JSON value back as the column value to insert into a column of type *target*."""
    if value is None or kind in ("plain", "json"):
        return value
    if kind == "datetime":
        return _to_column(datetime.fromisoformat(value), target)
    if kind == "date":
        return date.fromisoformat(value)
    if kind == "time":
        return time.fromisoformat(value)
    if kind == "interval":
        return timedelta(seconds=value)
    if kind == "bytes":
        return base64.b64decode(value, validate=True)
    if kind == "decimal":
        return Decimal(value)
    raise ValueError(f"unknown column kind {kind!r}")


def _to_column(value: datetime, target: TypeEngine[Any]) -> datetime:
    with_zone = bool(getattr(target, "timezone", False))
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC) if with_zone else value
    return value if with_zone else value.astimezone(UTC).replace(tzinfo=None)
