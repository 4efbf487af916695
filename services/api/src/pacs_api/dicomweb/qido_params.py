"""QIDO-RS query parameters (PS3.18 §8.3.4) parsed into a :class:`QidoQuery`.

- ``limit`` / ``offset`` (§8.3.4.4): non-negative integers, else 400. Without ``limit`` the
  configured default applies; above the configured maximum it is lowered, with a warning.
- ``includefield`` (§8.3.4.3): keywords or 8-hex-digit tags, comma-separated or repeated, or
  ``all``.
- ``fuzzymatching`` (§8.3.4.2): ``true`` / ``false``, else 400.
- ``emptyvaluematching`` / ``multiplevaluematching`` (§8.3.4.5-6): ``true`` / ``false``, else
  400; ``true`` is not supported and ignored with a warning.
- Anything else is a matching key (§8.3.4.1) named by keyword or tag. A key given more than
  once matches any of its values (as one backslash-separated list). Unknown names and
  sequence paths (``RequestAttributesSequence.ScheduledProcedureStepID``) are ignored with a
  warning, as §8.3 asks for unsupported parameters.
"""

from __future__ import annotations

from collections.abc import Iterable

from pacs_common.attributes import Attribute, Level, attribute

from pacs_api.errors import BadRequest
from pacs_api.index.search import QidoQuery
from pacs_api.settings import Settings

_UNSUPPORTED_FLAGS = ("emptyvaluematching", "multiplevaluematching")
_MAX_DIGITS = 18  # keeps limit/offset within a 64-bit SQL integer


def parse_query(
    params: Iterable[tuple[str, str]],
    *,
    level: Level,
    settings: Settings,
    base_url: str,
    study_uid: str | None = None,
    series_uid: str | None = None,
) -> tuple[QidoQuery, list[str]]:
    """The query the parameters ask for, and warnings about what was ignored."""
    warnings: list[str] = []
    keys: dict[Attribute, list[str]] = {}
    includefields: dict[Attribute, None] = {}
    include_all = fuzzy = False
    limit: int | None = None
    offset = 0
    unknown: list[str] = []
    for name, value in params:
        if name == "limit":
            limit = _non_negative(name, value)
        elif name == "offset":
            offset = _non_negative(name, value)
        elif name == "fuzzymatching":
            fuzzy = _boolean(name, value)
        elif name in _UNSUPPORTED_FLAGS:
            if _boolean(name, value):
                warnings.append(f"The {name} parameter is not supported and was ignored")
        elif name == "includefield":
            for item in (i.strip() for i in value.split(",")):
                if item == "all":
                    include_all = True
                elif item:
                    found = _attribute(item)
                    if found is None:
                        unknown.append(item)
                    else:
                        includefields[found] = None
        else:
            found = _attribute(name)
            if found is None:
                unknown.append(name)
            else:
                keys.setdefault(found, []).append(value)
    if unknown:
        warnings.append(
            "Unknown attributes and sequence paths are not supported, so they were ignored: "
            + ", ".join(dict.fromkeys(unknown))
        )
    query = QidoQuery(
        level=level,
        base_url=base_url,
        limit=_limit(limit, settings, warnings),
        offset=offset,
        study_uid=study_uid,
        series_uid=series_uid,
        matching=[(attr, "\\".join(values)) for attr, values in keys.items()],
        includefields=list(includefields),
        include_all=include_all,
        fuzzymatching=fuzzy,
    )
    return query, warnings


def _attribute(name: str) -> Attribute | None:
    """The attribute a parameter names (keyword or tag); ``None`` when unknown or a path."""
    if "." in name:
        return None
    try:
        return attribute(name)
    except KeyError:
        return None


def _limit(requested: int | None, settings: Settings, warnings: list[str]) -> int:
    if requested is None:
        return min(settings.qido_default_limit, settings.qido_max_limit)
    if requested > settings.qido_max_limit:
        warnings.append(
            f"The limit {requested} exceeds this server's maximum; at most "
            f"{settings.qido_max_limit} results are returned per request"
        )
        return settings.qido_max_limit
    return requested


def _non_negative(name: str, value: str) -> int:
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > _MAX_DIGITS:
        shown = value if len(value) <= 40 else value[:37] + "..."
        raise BadRequest(f"{name}={shown!r}: expected a non-negative integer (PS3.18 §8.3.4.4)")
    return int(text)


def _boolean(name: str, value: str) -> bool:
    text = value.strip().lower()
    if text not in ("true", "false"):
        raise BadRequest(f"{name}={value!r}: expected true or false (PS3.18 §8.3.4)")
    return text == "true"
