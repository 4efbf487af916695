"""What the verbs share: exit codes, consoles, tables, service URLs and the DICOMweb client
with its errors turned into exit code 5."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import httpx
import typer
from pacs_common.client import BearerToken, DicomWebClient, DicomWebError
from pacs_common.media import MultipartError
from rich.console import Console
from rich.table import Table
from rich.text import Text

#: The API's DICOMweb root and the exporter as ``make run`` starts them.
DEFAULT_DICOMWEB_URL = "http://127.0.0.1:8080/dicom-web"
DEFAULT_EXPORTER_URL = "http://127.0.0.1:8081"
#: Seconds to wait for a service's answer (a STOW batch of large instances takes a while).
TIMEOUT = httpx.Timeout(300.0, connect=10.0)


class Exit(enum.IntEnum):
    """Exit codes scripts can rely on (listed in :mod:`pacs_cli.cli`'s docstring)."""

    OK = 0
    INCOMPLETE = 1
    USAGE = 2
    NO_ASSOCIATION = 3
    STATUS = 4
    UNAVAILABLE = 5
    JOB_FAILED = 6
    INTERRUPTED = 130


DicomWebURL = Annotated[
    str,
    typer.Option("--url", envvar="PACS_URL", help="The API's DICOMweb root.", show_default=True),
]
#: A bearer token (an API key, or a JWT) for services that require one (RFC 6750).
Token = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="PACS_TOKEN",
        help="Bearer token (an API key, pacs_..., or a JWT) for a service that requires one.",
        show_default=False,
    ),
]


def bearer_auth(token: str | None) -> httpx.Auth | None:
    """The ``auth`` of an ``httpx.Client`` sending *token*, or None without one."""
    return BearerToken(token) if token else None


def console(*, stderr: bool = False) -> Console:
    """Plain lines when not on a terminal (no wrapping, no colour) for scripts to read."""
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def fail(code: Exit, message: str) -> typer.Exit:
    """Print *message* on stderr; the exit to raise."""
    console(stderr=True).print(message, markup=False)
    return typer.Exit(code)


def print_table(out: Console, headers: list[str], rows: list[list[str]]) -> None:
    """A table on a terminal; tab-separated lines, header first, for scripts otherwise."""
    if not out.is_terminal:
        # written as they are: rich would expand the tabs into spaces
        out.file.write("".join("\t".join(line) + "\n" for line in [headers, *rows]))
        return
    table = Table()
    for header in headers:
        table.add_column(header, overflow="fold")  # a UID wraps, never cut short
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    out.print(table)


@contextmanager
def dicomweb(url: str, token: str | None = None) -> Iterator[DicomWebClient]:
    """The shared DICOMweb client on *url* (sending *token*); an unreachable or failing API
    exits with 5."""
    with httpx.Client(timeout=TIMEOUT) as http, service_errors(f"the API at {url}"):
        yield DicomWebClient(http, url, token=token)


@contextmanager
def service_errors(what: str) -> Iterator[None]:
    """Exit 5 with the reason when *what* cannot be reached or answers an error."""
    try:
        yield
    except httpx.TransportError as exc:
        raise fail(Exit.UNAVAILABLE, f"{what} cannot be reached: {exc}") from None
    except (DicomWebError, MultipartError) as exc:
        raise fail(Exit.UNAVAILABLE, f"{what} answered an error: {exc}") from None
