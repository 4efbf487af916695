"""``pacs quarantine``: the API's quarantine of images with incomplete Pixel Data (``GET
/quarantine`` and friends at the server root, beside ``--url``'s ``/dicom-web``; the
``admin`` scope): list the entries, show one (and save its bytes), release one into the
archive, delete one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from pacs_cli.common import (
    DEFAULT_DICOMWEB_URL,
    TIMEOUT,
    DicomWebURL,
    Exit,
    console,
    fail,
    print_table,
)

EXITS = "Exit codes: 0 done; 5 the API cannot be reached, or refused (unknown entry, 403, 409)."

app = typer.Typer(
    help="Images kept out of the archive because their Pixel Data is incomplete (admin).",
    no_args_is_help=True,
)
EntryId = Annotated[str, typer.Argument(help="The entry id (16 hex digits).", metavar="ID")]


def _root(url: str) -> str:
    return url.rstrip("/").removesuffix("/dicom-web")


def _call(method: str, url: str, **options: Any) -> httpx.Response:
    """The API's answer; exit 5 with the reason when it cannot be reached or refuses."""
    try:
        with httpx.Client(timeout=TIMEOUT) as http:
            response = http.request(method, url, **options)
    except httpx.HTTPError as exc:
        raise fail(Exit.UNAVAILABLE, f"cannot reach {url}: {exc}") from None
    if response.is_error:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise fail(Exit.UNAVAILABLE, f"{method} {url} -> {response.status_code}: {detail}")
    return response


def _name(value: str) -> str:
    return value.replace("^", " ").strip()


@app.command("list", epilog=EXITS)
def list_entries(
    url: DicomWebURL = DEFAULT_DICOMWEB_URL,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    offset: Annotated[int, typer.Option(min=0)] = 0,
) -> None:
    """The quarantined images, last received first."""
    page = _call("GET", f"{_root(url)}/quarantine", params={"limit": limit, "offset": offset})
    body = page.json()
    headers = ["id", "last received", "kind", "patient id", "patient", "source", "bytes", "reason"]
    rows = [
        [
            e["id"],
            e["last_received_at"].replace("T", " ")[:19],
            e["kind"],
            e["patient_id"],
            _name(e["patient_name"]),
            " ".join(v for v in (e["source_ae"], e["source_subject"], e["source_address"]) if v),
            str(e["size"]),
            e["reason"],
        ]
        for e in body["entries"]
    ]
    out = console()
    print_table(out, headers, rows)
    if body["total"] > len(rows) + offset:
        console(stderr=True).print(f"{body['total']} entries in all; see --offset")


@app.command(epilog=EXITS)
def show(
    entry_id: EntryId,
    url: DicomWebURL = DEFAULT_DICOMWEB_URL,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Also save the kept bytes (as received) here."),
    ] = None,
) -> None:
    """One entry's details; with --output, its bytes exactly as received."""
    entry = _call("GET", f"{_root(url)}/quarantine/{entry_id}").json()
    out = console()
    for key, value in entry.items():
        out.print(f"{key}: {value}", markup=False)
    if output is not None:
        data = _call("GET", f"{_root(url)}/quarantine/{entry_id}/object").content
        output.write_bytes(data)
        console(stderr=True).print(f"saved {len(data)} bytes to {output}", markup=False)


@app.command(epilog=EXITS)
def release(entry_id: EntryId, url: DicomWebURL = DEFAULT_DICOMWEB_URL) -> None:
    """Store the entry's image in the archive anyway (Pixel Data check waived) and remove the
    entry; prints where it is now."""
    done = _call("POST", f"{_root(url)}/quarantine/{entry_id}/release").json()
    console().print(
        f"released {entry_id}: study {done['study_uid']} series {done['series_uid']} "
        f"instance {done['sop_instance_uid']}",
        markup=False,
    )


@app.command(epilog=EXITS)
def delete(entry_id: EntryId, url: DicomWebURL = DEFAULT_DICOMWEB_URL) -> None:
    """Delete the entry and its kept bytes for good."""
    _call("DELETE", f"{_root(url)}/quarantine/{entry_id}")
    console().print(f"deleted {entry_id}", markup=False)
