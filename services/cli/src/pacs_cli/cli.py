"""``pacs``: the verbs of pacs-cloud's command line, each with ``--help``.

DICOMweb verbs (on the shared client, :mod:`pacs_common.client`): ``upload`` (STOW-RS),
``query`` (QIDO-RS), ``download`` (WADO-RS), ``deidentify`` (PS3.15 copy of a study), the
API's ``quarantine`` (admin); the exporter: ``export``; DIMSE: ``echo``, ``send``; the
bridge's status API: ``routing``.

Exit codes scripts can rely on (:class:`pacs_cli.common.Exit`): 0 success; 1 incomplete: some
files failed or were skipped (``send``, ``upload``), nothing to download (``download``), a
destination needs attention (``routing status``); 2 bad arguments, or a request the exporter
refuses; 3 no association (peer unreachable, association rejected or aborted); 4 a
non-success status (``echo``); 5 a service's HTTP API cannot be reached or answered an error;
6 the export job failed (``export``); 130 interrupted (Ctrl-C; ``export`` cancels its job).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Annotated

import typer
from pacs_common.dimse import AssociationFailed, validate_ae_title
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pacs_cli import deidentify, download, export, quarantine, query, routing, upload
from pacs_cli import echo as echo_scu
from pacs_cli import send as send_scu
from pacs_cli.common import Exit
from pacs_cli.peer import Peer, parse_peer

app = typer.Typer(help="pacs-cloud's command line.", no_args_is_help=True, add_completion=False)
app.command("upload", epilog=upload.EXITS)(upload.command)
app.command("query", epilog=query.EXITS)(query.command)
app.command("download", epilog=download.EXITS)(download.command)
app.command("export", epilog=export.EXITS)(export.command)
app.command("deidentify", epilog=deidentify.EXITS)(deidentify.command)
app.add_typer(routing.app, name="routing")
app.add_typer(quarantine.app, name="quarantine")


def _console(*, stderr: bool = False) -> Console:
    """Plain lines when not on a terminal (no wrapping, no colour) for scripts to read."""
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _peer(value: str) -> Peer:
    try:
        return parse_peer(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _ae_title(value: str) -> str:
    try:
        return validate_ae_title(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


CallingAE = Annotated[
    str, typer.Option("--calling-ae", help="Our AE title.", parser=_ae_title, show_default=True)
]


@app.command()
def echo(
    peer: Annotated[Peer, typer.Argument(help="AET@HOST:PORT", parser=_peer, metavar="PEER")],
    calling_ae: CallingAE = "PACSCLI",
) -> None:
    """C-ECHO (verification) to PEER; prints the round-trip time."""
    out, err = _console(), _console(stderr=True)
    try:
        result = echo_scu.echo(peer, calling_ae)
    except AssociationFailed as exc:
        err.print(f"C-ECHO failed: {exc}")
        raise typer.Exit(Exit.NO_ASSOCIATION) from None
    status = f"{send_scu.describe_status(result.status)} (0x{result.status:04X})"
    if not result.success:
        err.print(f"C-ECHO to {peer}: {status}")
        raise typer.Exit(Exit.STATUS)
    out.print(f"C-ECHO to {peer}: {status}, round trip {result.round_trip_s * 1000:.1f} ms")


@app.command()
def send(
    paths: Annotated[list[Path], typer.Argument(help="Files and directories.", exists=True)],
    to: Annotated[Peer, typer.Option("--to", help="AET@HOST:PORT", parser=_peer, metavar="PEER")],
    calling_ae: CallingAE = "PACSCLI",
    recursive: Annotated[
        bool, typer.Option("--recursive", "-r", help="Descend into subdirectories.")
    ] = False,
) -> None:
    """C-STORE the DICOM files in PATHS to a peer (a modality sending), with a summary."""
    out = _console()
    files = send_scu.find_files(paths, recursive=recursive)
    outcomes: list[send_scu.Outcome] = []
    progress = Progress(
        TextColumn("sending"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=out,
        disable=not out.is_terminal,
    )
    start = time.perf_counter()
    with progress:
        task = progress.add_task("send", total=len(files))

        def on_outcome(outcome: send_scu.Outcome) -> None:
            outcomes.append(outcome)
            progress.advance(task)

        failure = send_scu.send(files, to, calling_ae, on_outcome)
    elapsed = time.perf_counter() - start
    _summary(out, outcomes, elapsed)
    if failure is not None:
        _console(stderr=True).print(f"C-STORE failed: {failure}")
        raise typer.Exit(Exit.NO_ASSOCIATION)
    if any(outcome.state is not send_scu.State.SENT for outcome in outcomes):
        raise typer.Exit(Exit.INCOMPLETE)


def _summary(out: Console, outcomes: list[send_scu.Outcome], elapsed: float) -> None:
    by_state = {state: [o for o in outcomes if o.state is state] for state in send_scu.State}
    sent = len(by_state[send_scu.State.SENT])
    rate = sent / elapsed if elapsed > 0 else 0.0
    out.print(
        f"sent {sent}, failed {len(by_state[send_scu.State.FAILED])},"
        f" skipped {len(by_state[send_scu.State.SKIPPED])}"
        f" in {elapsed:.2f} s ({rate:.1f} instances/s)"
    )
    for state in (send_scu.State.FAILED, send_scu.State.SKIPPED):
        for outcome in by_state[state]:
            status = "" if outcome.status is None else f" 0x{outcome.status:04X}"
            out.print(f"{state}{status} {outcome.path}: {outcome.reason}", markup=False)


def main() -> None:
    # pynetdicom logs to the root logger's last-resort handler otherwise; the verbs report.
    logging.getLogger("pynetdicom").addHandler(logging.NullHandler())
    logging.getLogger("pynetdicom").propagate = False
    app()
