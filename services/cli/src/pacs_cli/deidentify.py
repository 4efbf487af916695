"""``pacs deidentify STUDY``: ask the API for a de-identified copy of a study (PS3.15 Basic
Profile; ``POST /studies/{study}/deidentify`` at the server root, beside ``--url``'s
``/dicom-web``) and print the new Study Instance UID."""

from __future__ import annotations

from typing import Annotated

import httpx
import typer

from pacs_cli.common import (
    DEFAULT_DICOMWEB_URL,
    TIMEOUT,
    DicomWebURL,
    Exit,
    Token,
    bearer_auth,
    console,
    fail,
)

EXITS = "Exit codes: 0 done; 1 some instances failed; 5 the API cannot be reached or refused."


def command(
    study: Annotated[str, typer.Argument(help="Study Instance UID of the stored study.")],
    url: DicomWebURL = DEFAULT_DICOMWEB_URL,
    retain_dates: Annotated[
        bool, typer.Option("--retain-dates", help="Keep dates, shifted per patient.")
    ] = False,
    retain_device: Annotated[
        bool, typer.Option("--retain-device", help="Keep device identity (station, serials).")
    ] = False,
    token: Token = None,
) -> None:
    """Make a de-identified copy of STUDY; prints the new Study Instance UID."""
    root = url.rstrip("/").removesuffix("/dicom-web")
    body = {"retain_dates": retain_dates, "retain_device": retain_device}
    try:
        with httpx.Client(timeout=TIMEOUT, auth=bearer_auth(token)) as http:
            response = http.post(f"{root}/studies/{study}/deidentify", json=body)
    except httpx.HTTPError as exc:
        raise fail(Exit.UNAVAILABLE, f"cannot reach {root}: {exc}") from None
    if response.status_code != 200:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise fail(Exit.UNAVAILABLE, f"{response.status_code}: {detail}")
    answer = response.json()
    console().print(answer["study_uid"], markup=False)
    err = console(stderr=True)
    for item in answer["burned_in_annotation"]:
        err.print(f"review pixels of {item['sop_instance_uid']}: {item['reason']}", markup=False)
    if answer["failed"]:
        raise fail(Exit.INCOMPLETE, f"{len(answer['failed'])} instance(s) failed")
