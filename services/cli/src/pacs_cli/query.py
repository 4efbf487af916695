"""``pacs query``: QIDO-RS (PS3.18 §10.6) searches for studies, series or instances.

Matching keys and included fields are attribute keywords (or 8-hex-digit tags), checked against
pydicom's data dictionary (:func:`pacs_common.attributes.attribute`) before anything is sent.
"""

from __future__ import annotations

import enum
import json
from typing import Annotated, Any

import typer
from pacs_common.attributes import attribute
from pacs_common.dicomjson import JsonDataset, tag_key
from pacs_common.uids import validate_uid

from pacs_cli.common import (
    DEFAULT_DICOMWEB_URL,
    DicomWebURL,
    Token,
    console,
    dicomweb,
    print_table,
)


class Level(enum.StrEnum):
    STUDIES = "studies"
    SERIES = "series"
    INSTANCES = "instances"


#: The columns shown per level, before the matching keys and included fields.
COLUMNS: dict[Level, tuple[str, ...]] = {
    Level.STUDIES: (
        "StudyInstanceUID",
        "PatientID",
        "PatientName",
        "StudyDate",
        "AccessionNumber",
        "ModalitiesInStudy",
        "StudyDescription",
        "NumberOfStudyRelatedSeries",
        "NumberOfStudyRelatedInstances",
    ),
    Level.SERIES: (
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "Modality",
        "SeriesNumber",
        "SeriesDescription",
        "NumberOfSeriesRelatedInstances",
    ),
    Level.INSTANCES: (
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "SOPInstanceUID",
        "SOPClassUID",
        "InstanceNumber",
    ),
}


def keyword(value: str) -> str:
    """*value* as a dictionary keyword (a tag is turned into its keyword when it has one)."""
    try:
        return attribute(value).keyword
    except KeyError as exc:
        raise typer.BadParameter(f"{exc.args[0]} (not in pydicom's data dictionary)") from None


def matching_key(value: str) -> tuple[str, str]:
    """``KEY=VALUE`` with KEY a known attribute."""
    key, sep, match = value.partition("=")
    if not sep:
        raise typer.BadParameter(f"{value!r} is not KEY=VALUE (e.g. PatientID=12345)")
    return keyword(key), match


def uid(value: str | None) -> str | None:
    """A well-formed UID (PS3.5 §9.1), else a usage error."""
    try:
        return validate_uid(value) if value is not None else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _field(value: str) -> str:
    return value if value == "all" else keyword(value)


def cell(ds: JsonDataset, name: str) -> str:
    """One attribute of a DICOM JSON dataset as text: values joined by a backslash (the DICOM
    value separator), a person name by its alphabetic form, a sequence by its item count."""
    element = ds.get(tag_key(name)) or {}
    values: list[Any] = element.get("Value") or []
    if element.get("vr") == "SQ":
        return f"({len(values)} items)"
    texts = []
    for value in values:
        if isinstance(value, dict):
            value = value.get("Alphabetic", "")
        texts.append(str(value))
    # one line per result, one field per column: no tab or line break inside a cell
    return " ".join("\\".join(texts).split())


EXITS = (
    "Exit 0 (also when nothing matches), 2 for an unknown attribute, 5 when the API cannot be"
    " reached or refuses the query."
)


def command(
    level: Annotated[Level, typer.Argument(help="What to search for.")] = Level.STUDIES,
    study: Annotated[
        str | None, typer.Option(help="Within this study (Study Instance UID).", parser=uid)
    ] = None,
    series: Annotated[
        str | None,
        typer.Option(help="Within this series (Series Instance UID; needs --study).", parser=uid),
    ] = None,
    keys: Annotated[
        list[str] | None,
        typer.Option(
            "--key",
            "-k",
            metavar="KEY=VALUE",
            help="A matching key by keyword, e.g. -k PatientID=123 -k StudyDate=20240101- "
            "-k PatientName='DOE^J*' -k Modality=CT,MR.",
        ),
    ] = None,
    include: Annotated[
        list[str] | None,
        typer.Option(help="Also return this attribute (a keyword, or 'all')."),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many results.")] = None,
    offset: Annotated[int | None, typer.Option(min=0, help="Skip this many results.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the DICOM JSON answer (PS3.18 Annex F).")
    ] = False,
    url: DicomWebURL = DEFAULT_DICOMWEB_URL,
    token: Token = None,
) -> None:
    """QIDO-RS search; a table on a terminal, tab-separated lines (header first) otherwise."""
    filters: dict[str, Any] = dict(matching_key(k) for k in keys or ())
    fields = [_field(f) for f in include or ()]
    if series and not study:
        raise typer.BadParameter("--series needs --study", param_hint="--series")
    includefield = fields or None
    with dicomweb(url, token) as client:
        if level is Level.STUDIES:
            if study:
                filters["StudyInstanceUID"] = study
            results = client.search_studies(
                includefield=includefield, limit=limit, offset=offset, **filters
            )
        elif level is Level.SERIES:
            if series:
                filters["SeriesInstanceUID"] = series
            results = client.search_series(
                study, includefield=includefield, limit=limit, offset=offset, **filters
            )
        else:
            results = client.search_instances(
                study, series, includefield=includefield, limit=limit, offset=offset, **filters
            )
    if as_json:
        typer.echo(json.dumps(results, indent=2))
        return
    columns = list(dict.fromkeys([*COLUMNS[level], *filters, *(f for f in fields if f != "all")]))
    print_table(console(), columns, [[cell(ds, name) for name in columns] for ds in results])
