"""``pacs upload``: STOW-RS (PS3.18 §10.5) of DICOM files, in batches, resumable.

Each file is read up to its Pixel Data (pydicom ``stop_before_pixels``) for its SOP Instance
UID; files pydicom cannot read are skipped with the reason. The others go out as they are (the
bytes of the file, never re-encoded), one multipart/related request per batch, each file read
from disk only while its part is being sent.

Resuming asks the API, not a journal: before a batch is sent, one QIDO-RS query
(``/instances?SOPInstanceUID=uid1,uid2,...``) learns which of its instances the API already
holds, and those are not sent again. So a re-run after an interruption (Ctrl-C, a lost
connection, a crash) sends only the rest, from any machine, and still sends what was deleted
on the server in between. A file whose SOP Instance UID is held with other content is then
counted as already stored: ``--no-resume`` sends everything, and the API answers identical
instances with success and different ones with 0x0111 (Duplicate SOP Instance).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import httpx
import typer
from pacs_common.client import DicomWebClient, DicomWebError, StoreResult
from pacs_common.dicomjson import first_value
from pacs_common.media import MultipartError
from pacs_common.uids import validate_uid
from pydicom import dcmread
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from pacs_cli.common import (
    DEFAULT_DICOMWEB_URL,
    TIMEOUT,
    DicomWebURL,
    Exit,
    Token,
    console,
    fail,
)
from pacs_cli.send import describe_status, find_files

#: UIDs per resume query: keeps its URL far below the servers' request-line limits (8 KiB).
QUERY_UIDS = 100


class State(enum.StrEnum):
    STORED = "stored"
    ALREADY_STORED = "already stored"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Outcome:
    path: Path
    state: State
    reason: str = ""
    status: int | None = None
    size: int = 0


@dataclass(frozen=True)
class Candidate:
    """A file pydicom can read, and its SOP Instance UID (None when missing or malformed)."""

    path: Path
    sop_instance_uid: str | None
    size: int


def inspect_file(path: Path) -> Candidate | Outcome:
    """*path*'s SOP Instance UID, or why it is skipped."""
    try:
        ds = dcmread(path, stop_before_pixels=True)
        size = path.stat().st_size
    except Exception as exc:  # pydicom raises many types on broken input
        return Outcome(path, State.SKIPPED, f"not readable as DICOM: {exc}")
    uid = ds.get("SOPInstanceUID") or ds.file_meta.get("MediaStorageSOPInstanceUID")
    try:
        checked = validate_uid(str(uid), what="SOP Instance UID") if uid else None
    except ValueError:
        checked = None  # sent anyway: the API says what is wrong with it
    return Candidate(path, checked, size)


def stored_uids(client: DicomWebClient, uids: Sequence[str]) -> set[str]:
    """The SOP Instance UIDs of *uids* the API holds (QIDO-RS UID list matching)."""
    held: set[str] = set()
    for start in range(0, len(uids), QUERY_UIDS):
        chunk = list(dict.fromkeys(uids[start : start + QUERY_UIDS]))
        found = client.search_instances(SOPInstanceUID=chunk, limit=len(chunk))
        held.update(str(first_value(ds, "SOPInstanceUID")) for ds in found)
    return held


def _status_reason(code: int | None, comment: str | None) -> str:
    reason = describe_status(code) if code is not None else "no reason given"
    return f"{reason}: {comment}" if comment else reason


def match_response(sent: Sequence[Candidate], result: StoreResult) -> list[Outcome]:
    """Each sent file's outcome from the store response (PS3.18 §10.5.3), matched by SOP
    Instance UID; items without one go to the files the response does not name otherwise."""
    remaining = list(sent)
    named = {ref.sop_instance_uid for ref in result.referenced}
    named |= {failed.sop_instance_uid for failed in result.failed}

    def take(uid: str | None) -> Candidate | None:
        for i, candidate in enumerate(remaining):
            if uid is not None and candidate.sop_instance_uid == uid:
                return remaining.pop(i)
        for i, candidate in enumerate(remaining):
            if candidate.sop_instance_uid not in named:
                return remaining.pop(i)
        return None

    outcomes: list[Outcome] = []
    for ref in result.referenced:
        if (candidate := take(ref.sop_instance_uid)) is not None:
            reason = "" if ref.warning_reason is None else _status_reason(ref.warning_reason, None)
            outcomes.append(
                Outcome(candidate.path, State.STORED, reason, ref.warning_reason, candidate.size)
            )
    for failed in result.failed:
        if (candidate := take(failed.sop_instance_uid)) is not None:
            reason = _status_reason(failed.failure_reason, failed.error_comment)
            outcomes.append(Outcome(candidate.path, State.FAILED, reason, failed.failure_reason))
    for candidate in remaining:
        reason = f"the store response (HTTP {result.status}) does not name it"
        outcomes.append(Outcome(candidate.path, State.FAILED, reason))
    return outcomes


def _contents(candidates: Iterable[Candidate]) -> Iterator[bytes]:
    for candidate in candidates:
        yield candidate.path.read_bytes()


def store_batch(
    client: DicomWebClient, batch: Sequence[Candidate], *, resume: bool
) -> list[Outcome]:
    """Store *batch* with one STOW-RS request, less what the API holds when *resume*.

    An error answer to the whole request (400, 413, 503...) fails every file it carried;
    ``httpx.TransportError`` (the API cannot be reached) is raised.
    """
    outcomes: list[Outcome] = []
    to_send = list(batch)
    if resume:
        held = stored_uids(client, [c.sop_instance_uid for c in batch if c.sop_instance_uid])
        outcomes += [
            Outcome(c.path, State.ALREADY_STORED, size=c.size)
            for c in batch
            if c.sop_instance_uid in held
        ]
        to_send = [c for c in batch if c.sop_instance_uid not in held]
    if not to_send:
        return outcomes
    try:
        result = client.store(_contents(to_send))
    except (DicomWebError, MultipartError, OSError) as exc:
        return outcomes + [
            Outcome(c.path, State.FAILED, f"the request was refused: {exc}") for c in to_send
        ]
    return outcomes + match_response(to_send, result)


def upload_files(
    client: DicomWebClient, files: Iterable[Path], *, batch: int, resume: bool
) -> Iterator[list[Outcome]]:
    """The outcomes of *files*, a batch (or a skipped file) at a time."""
    pending: list[Candidate] = []
    for path in files:
        inspected = inspect_file(path)
        if isinstance(inspected, Outcome):
            yield [inspected]
            continue
        pending.append(inspected)
        if len(pending) >= batch:
            yield store_batch(client, pending, resume=resume)
            pending = []
    if pending:
        yield store_batch(client, pending, resume=resume)


def summarize(outcomes: Sequence[Outcome], elapsed: float) -> list[str]:
    """The summary's lines: counts and rate, then every failure, skip and warning with why."""
    count = {state: sum(o.state is state for o in outcomes) for state in State}
    sent = sum(o.size for o in outcomes if o.state is State.STORED)
    rate = sent / elapsed / 1e6 if elapsed > 0 else 0.0
    lines = [
        f"stored {count[State.STORED]}, already stored {count[State.ALREADY_STORED]},"
        f" failed {count[State.FAILED]}, skipped {count[State.SKIPPED]}"
        f" in {elapsed:.2f} s ({sent / 1e6:.1f} MB sent, {rate:.1f} MB/s)"
    ]
    for outcome in outcomes:
        if outcome.state in (State.FAILED, State.SKIPPED) or outcome.reason:
            label = "warning" if outcome.state is State.STORED else str(outcome.state)
            status = "" if outcome.status is None else f" 0x{outcome.status:04X}"
            lines.append(f"{label}{status} {outcome.path}: {outcome.reason}")
    return lines


EXITS = (
    "Exit 0 when every file is stored (or already was), 1 when some failed or were skipped, 5"
    " when the API cannot be reached, 130 when interrupted (a re-run sends only the rest)."
)


def command(
    paths: Annotated[list[Path], typer.Argument(help="Files and directories.", exists=True)],
    url: DicomWebURL = DEFAULT_DICOMWEB_URL,
    recursive: Annotated[
        bool, typer.Option("--recursive", "-r", help="Descend into subdirectories.")
    ] = False,
    batch: Annotated[
        int, typer.Option("--batch", min=1, max=1000, help="Files per STOW-RS request.")
    ] = 20,
    resume: Annotated[
        bool,
        typer.Option(
            help="Ask the API which instances it holds before each batch and send only the "
            "others (--no-resume: send everything)."
        ),
    ] = True,
    token: Token = None,
) -> None:
    """STOW-RS the DICOM files in PATHS to the API, as they are, in batches; resumable."""
    out = console()
    files = find_files(paths, recursive=recursive)
    outcomes: list[Outcome] = []
    progress = Progress(
        TextColumn("uploading"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=out,
        disable=not out.is_terminal,
    )
    start = time.perf_counter()
    stopped: typer.Exit | None = None
    with httpx.Client(timeout=TIMEOUT) as http, progress:
        client = DicomWebClient(http, url, token=token)
        task = progress.add_task("upload", total=len(files))
        try:
            for done in upload_files(client, files, batch=batch, resume=resume):
                outcomes += done
                progress.advance(task, len(done))
                if not out.is_terminal and any(o.state is not State.SKIPPED for o in done):
                    counts = ", ".join(
                        f"{state} {n}"
                        for state in State
                        if (n := sum(o.state is state for o in done))
                    )
                    out.print(f"{len(outcomes)}/{len(files)} files: {counts}", markup=False)
        except httpx.TransportError as exc:
            stopped = fail(Exit.UNAVAILABLE, f"the API at {url} cannot be reached: {exc}")
        except (DicomWebError, MultipartError) as exc:
            stopped = fail(Exit.UNAVAILABLE, f"the API at {url} answered an error: {exc}")
        except KeyboardInterrupt:
            stopped = fail(Exit.INTERRUPTED, "interrupted: a re-run sends only what is not stored")
    for line in summarize(outcomes, time.perf_counter() - start):
        out.print(line, markup=False)
    if stopped is not None:
        raise stopped
    if any(o.state in (State.FAILED, State.SKIPPED) for o in outcomes):
        raise typer.Exit(Exit.INCOMPLETE)
