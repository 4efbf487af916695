"""``pacs send``: C-STORE SCU (PS3.4 Annex B) of DICOM files, as a modality sends them.

Each file is read up to its Pixel Data (pydicom ``stop_before_pixels``) to learn its SOP class
and transfer syntax; files pydicom cannot read are skipped, not sent. One presentation context
is proposed per (SOP class, transfer syntax) pair found, so every file goes out byte for byte as
stored, never transcoded; more than 128 pairs (PS3.8 §9.3.2.2) are sent on one association per
128. An association the peer aborts is reopened, and the instance it was sending sent once more.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pacs_common.dimse import AssociationFailed
from pydicom import dcmread
from pydicom.uid import UID
from pynetdicom.association import Association
from pynetdicom.presentation import PresentationContext, build_context
from pynetdicom.status import GENERAL_STATUS, STORAGE_SERVICE_CLASS_STATUS, code_to_category

from pacs_cli.peer import MAX_CONTEXTS, Peer, association


class State(enum.StrEnum):
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Outcome:
    path: Path
    state: State
    reason: str = ""
    status: int | None = None


@dataclass(frozen=True)
class Instance:
    """A readable DICOM file and what its presentation context must be."""

    path: Path
    sop_class_uid: UID
    transfer_syntax_uid: UID

    @property
    def syntaxes(self) -> tuple[UID, UID]:
        return self.sop_class_uid, self.transfer_syntax_uid


OnOutcome = Callable[[Outcome], None]


def find_files(paths: Iterable[Path], *, recursive: bool) -> list[Path]:
    """The files named, and those in the directories named (their subdirectories too when
    *recursive*), each once, in name order within a directory."""
    found: dict[Path, None] = {}
    for path in paths:
        if path.is_dir():
            children = path.rglob("*") if recursive else path.iterdir()
            found.update(dict.fromkeys(sorted(p for p in children if p.is_file())))
        else:
            found[path] = None
    return list(found)


def describe_status(code: int) -> str:
    """The meaning of a C-STORE status (PS3.4 B.2.3, general statuses PS3.7 Annex C)."""
    for table in (STORAGE_SERVICE_CLASS_STATUS, GENERAL_STATUS):
        if table.get(code, ("", ""))[1]:
            return table[code][1]
    return code_to_category(code)


def inspect_file(path: Path) -> Instance | Outcome:
    """The SOP class and transfer syntax of *path*, or why it is skipped."""
    try:
        ds = dcmread(path, stop_before_pixels=True)
    except Exception as exc:  # pydicom raises many types on broken input
        return Outcome(path, State.SKIPPED, f"not readable as DICOM: {exc}")
    meta = ds.file_meta
    sop_class = meta.get("MediaStorageSOPClassUID") or ds.get("SOPClassUID")
    transfer_syntax = meta.get("TransferSyntaxUID")
    if not sop_class:
        return Outcome(path, State.SKIPPED, "no SOP Class UID")
    if not transfer_syntax:
        return Outcome(path, State.SKIPPED, "no Transfer Syntax UID in its File Meta Information")
    return Instance(path, UID(str(sop_class)), UID(str(transfer_syntax)))


def _batches(
    instances: Sequence[Instance],
) -> Iterator[tuple[list[PresentationContext], list[Instance]]]:
    """Presentation contexts (one per SOP class and transfer syntax pair, at most 128) and the
    instances sent with them."""
    pairs = list(dict.fromkeys(instance.syntaxes for instance in instances))
    for start in range(0, len(pairs), MAX_CONTEXTS):
        chunk = set(pairs[start : start + MAX_CONTEXTS])
        contexts = [build_context(sop, ts) for sop, ts in pairs[start : start + MAX_CONTEXTS]]
        yield contexts, [instance for instance in instances if instance.syntaxes in chunk]


def _store(assoc: Association, instance: Instance) -> Outcome | None:
    """C-STORE of one file as it is stored; None when the association ended before an answer."""
    accepted = any(
        context.abstract_syntax == instance.sop_class_uid
        and context.transfer_syntax[0] == instance.transfer_syntax_uid
        for context in assoc.accepted_contexts
    )
    if not accepted:
        return Outcome(
            instance.path,
            State.FAILED,
            f"the peer accepted no context for {instance.sop_class_uid.name}"
            f" in {instance.transfer_syntax_uid.name}",
        )
    response = assoc.send_c_store(instance.path)
    if "Status" not in response:
        return None
    status = int(response.Status)
    reason = describe_status(status)
    if comment := response.get("ErrorComment"):
        reason = f"{reason}: {comment}"
    if code_to_category(status) in ("Success", "Warning"):
        return Outcome(instance.path, State.SENT, "" if status == 0 else reason, status)
    return Outcome(instance.path, State.FAILED, reason, status)


def _send_batch(
    peer: Peer,
    calling_ae: str,
    contexts: list[PresentationContext],
    instances: list[Instance],
    on_outcome: OnOutcome,
) -> str | None:
    """Send *instances* on one association, reopened when the peer aborts it; the reason when
    no association could be (re)opened."""
    pending = deque(instances)
    resent: set[Path] = set()
    while pending:
        try:
            with association(peer, calling_ae, contexts) as assoc:
                while pending:
                    outcome = _store(assoc, pending[0])
                    if outcome is None:
                        if pending[0].path not in resent:
                            resent.add(pending[0].path)
                            break
                        outcome = Outcome(pending[0].path, State.FAILED, "association aborted")
                    on_outcome(outcome)
                    pending.popleft()
        except AssociationFailed as exc:
            for instance in pending:
                on_outcome(Outcome(instance.path, State.FAILED, str(exc)))
            return str(exc)
    return None


def send(files: Sequence[Path], peer: Peer, calling_ae: str, on_outcome: OnOutcome) -> str | None:
    """C-STORE every readable file in *files* to *peer*, reporting each file's outcome; the
    reason when an association could not be opened."""
    instances: list[Instance] = []
    for path in files:
        inspected = inspect_file(path)
        if isinstance(inspected, Outcome):
            on_outcome(inspected)
        else:
            instances.append(inspected)
    failure = None
    for contexts, batch in _batches(instances):
        failure = _send_batch(peer, calling_ae, contexts, batch, on_outcome) or failure
    return failure
