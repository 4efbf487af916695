"""``pacs download``: WADO-RS (PS3.18 §10.4) of a study, a series or an instance to files.

The multipart response is read as a stream and each instance written as it completes, so one
instance is in memory at a time. Files are named by SOP Instance UID (``DIR/{uid}.dcm``),
written beside their final name and renamed into place, so a file that is there is whole. By
default the API sends the instances as stored (``transfer-syntax=*``): the files are
byte-identical to what was uploaded.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Annotated

import typer
from pacs_common.client import DicomWebClient, DicomWebError
from pacs_common.dicomjson import first_value
from pacs_common.uids import validate_uid
from pydicom import dcmread
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pacs_cli.common import (
    DEFAULT_DICOMWEB_URL,
    DicomWebURL,
    Exit,
    Token,
    console,
    dicomweb,
    fail,
)
from pacs_cli.query import uid


def sop_instance_uid(content: bytes) -> str:
    """The SOP Instance UID of a Part 10 object (its data set's, else its file meta's)."""
    ds = dcmread(BytesIO(content), stop_before_pixels=True, specific_tags=["SOPInstanceUID"])
    value = ds.get("SOPInstanceUID") or ds.file_meta.get("MediaStorageSOPInstanceUID")
    if not value:
        raise ValueError("it has no SOP Instance UID")
    return validate_uid(str(value), what="SOP Instance UID")  # safe as a file name


def write_atomically(path: Path, content: bytes) -> None:
    """*content* at *path*, never half-written: a temporary file beside it, then a rename."""
    partial = path.with_name(f".{path.name}.part")
    with open(partial, "wb") as file:
        file.write(content)
        file.flush()
        os.fsync(file.fileno())
    os.replace(partial, path)


def expected_count(
    client: DicomWebClient, study: str, series: str | None, instance: str | None
) -> int | None:
    """How many instances the retrieval will bring (QIDO computed counts); None when the API
    holds no such study or series."""
    if instance is not None:
        return 1
    if series is not None:
        found = client.search_series(study, SeriesInstanceUID=series)
        name = "NumberOfSeriesRelatedInstances"
    else:
        found = client.search_studies(StudyInstanceUID=study)
        name = "NumberOfStudyRelatedInstances"
    if not found:
        return None
    return int(first_value(found[0], name) or 0)


def retrieve(
    client: DicomWebClient,
    study: str,
    series: str | None,
    instance: str | None,
    transfer_syntax: str | None,
) -> Iterator[bytes]:
    if instance is not None:
        assert series is not None
        return client.retrieve_instance(study, series, instance, transfer_syntax=transfer_syntax)
    if series is not None:
        return client.retrieve_series(study, series, transfer_syntax=transfer_syntax)
    return client.retrieve_study(study, transfer_syntax=transfer_syntax)


EXITS = (
    "Exit 0 when everything was written, 1 when the API holds no such study, series or "
    "instance, 5 when the API cannot be reached or answers an error, 130 when interrupted."
)


def command(
    study: Annotated[str, typer.Argument(help="Study Instance UID.", parser=uid)],
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Directory the files go to (made when missing).", file_okay=False
        ),
    ],
    series: Annotated[
        str | None, typer.Option(help="Only this series (Series Instance UID).", parser=uid)
    ] = None,
    instance: Annotated[
        str | None,
        typer.Option(help="Only this instance (SOP Instance UID; needs --series).", parser=uid),
    ] = None,
    transfer_syntax: Annotated[
        str,
        typer.Option(
            "--transfer-syntax",
            metavar="UID|*",
            help="Ask for this transfer syntax ('*': as stored, byte-identical to the upload).",
        ),
    ] = "*",
    url: DicomWebURL = DEFAULT_DICOMWEB_URL,
    token: Token = None,
) -> None:
    """WADO-RS STUDY (or one series or instance of it) into files named by SOP Instance UID."""
    if instance is not None and series is None:
        raise typer.BadParameter("--instance needs --series", param_hint="--instance")
    if transfer_syntax != "*":
        uid(transfer_syntax)
    what = " ".join(
        f"{kind} {value}"
        for kind, value in (("study", study), ("series", series), ("instance", instance))
        if value
    )
    stdout = console()
    out.mkdir(parents=True, exist_ok=True)
    written, size = 0, 0
    start = time.perf_counter()
    with dicomweb(url, token) as client:
        total = expected_count(client, study, series, instance)
        if total is None:
            raise fail(Exit.INCOMPLETE, f"the API holds no {what}")
        progress = Progress(
            TextColumn("downloading"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=stdout,
            disable=not stdout.is_terminal,
        )
        try:
            with progress:
                task = progress.add_task("download", total=total)
                for content in retrieve(client, study, series, instance, transfer_syntax):
                    try:
                        path = out / f"{sop_instance_uid(content)}.dcm"
                    except Exception as exc:  # pydicom raises many types on broken input
                        message = f"the API sent an instance that cannot be read: {exc}"
                        raise fail(Exit.UNAVAILABLE, message) from None
                    write_atomically(path, content)
                    written, size = written + 1, size + len(content)
                    progress.advance(task)
                    if not stdout.is_terminal:
                        stdout.print(f"{written}/{total} {path}", markup=False)
        except DicomWebError as exc:
            if exc.status == 404:
                raise fail(Exit.INCOMPLETE, f"the API holds no {what}: {exc}") from None
            raise
        except KeyboardInterrupt:
            raise fail(Exit.INTERRUPTED, f"interrupted after {written} instances") from None
    elapsed = time.perf_counter() - start
    rate = size / elapsed / 1e6 if elapsed > 0 else 0.0
    stdout.print(
        f"downloaded {written} instances ({size / 1e6:.1f} MB) to {out}"
        f" in {elapsed:.2f} s ({rate:.1f} MB/s)",
        markup=False,
    )
