"""One attempt to deliver a destination's due instances: C-STORE SCU (PS3.4 Annex B) on one
association.

Each instance is fetched from the API as stored (WADO-RS, ``transfer-syntax=*``) into a file
of a temporary directory and sent from it by pynetdicom without being decoded (chunked
sending), so the destination receives the data set bytes the archive holds. One presentation
context is proposed per (SOP class, stored transfer syntax), and an uncompressed one per SOP
class (PS3.5 §10.1, §A.2); an instance whose stored syntax the destination refuses is fetched
again transcoded by the API to the uncompressed syntax it accepted.

Outcomes follow the C-STORE response status (PS3.4 B.2.3; categories from pynetdicom's
tables): Success and Warning deliver; "Refused: Out of Resources" (0xA7xx) and a lost
association leave the instance pending, to try again after a backoff; every other failure
status is the destination refusing that instance, kept as ``failed`` for an operator to see
and retry. A destination that cannot be reached, rejects the association or aborts it, and an
archive that cannot be read, raise :class:`AttemptFailed`.

Before anything is sent, the fetched object's Pixel Data is checked
(:func:`pacs_common.pixel_check.check_file`: missing, truncated, shorter than its header
describes, encapsulated without its delimiter): an incomplete image is not forwarded, its
delivery is ``quarantined`` with the reason, unless an administrator released it (``waived``).
The archive holds such images only when an administrator released them from the API's
quarantine, or when it was restored from elsewhere.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from pacs_common import statuses
from pacs_common.client import DicomWebClient, DicomWebError
from pacs_common.dimse import AssociationFailed, open_association
from pacs_common.media import MultipartError
from pacs_common.pixel_check import check_file
from pydicom.filereader import read_file_meta_info
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, build_context
from pynetdicom.association import Association
from pynetdicom.presentation import PresentationContext
from pynetdicom.status import STATUS_SUCCESS, STATUS_WARNING, code_to_category

from pacs_bridge.reactor import install_checkpoint, pause_reactor
from pacs_bridge.retrieve.move import MAX_CONTEXTS, Destination
from pacs_bridge.routing.queue import Delivery, Outcome, State

log = logging.getLogger(__name__)

#: WADO-RS "as stored" (PS3.18 §8.7.3.5.2).
AS_STORED = "*"
UNCOMPRESSED = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)


class AttemptFailed(Exception):
    """The attempt could not go on (destination unreachable or refusing the association, the
    association lost, the archive unavailable); nothing further was sent."""


@dataclass(frozen=True, slots=True)
class Fetched:
    delivery: Delivery
    path: Path
    transfer_syntax: str


def deliver(
    ae: AE,
    title: str,
    destination: Destination,
    deliveries: list[Delivery],
    dicomweb: DicomWebClient,
) -> Iterator[tuple[Delivery, Outcome]]:
    """Send *deliveries* (in order) to the node *title* (over DICOM TLS for a TLS node);
    yields each one's outcome, and stops after one to try again later so that nothing
    overtakes it. Raises :class:`AttemptFailed` after the outcomes of what was tried."""
    with tempfile.TemporaryDirectory(prefix="pacs-route-") as workdir:
        fetched: list[Fetched] = []
        for item in deliveries:
            got = _fetch(dicomweb, item, Path(workdir), AS_STORED)
            if isinstance(got, Fetched) and not item.waived:
                got = _quarantine_incomplete(got)
            if isinstance(got, Outcome):
                yield item, got
            else:
                fetched.append(got)
        if not fetched:
            return
        contexts = _contexts(fetched)
        sendable = [f for f in fetched if (f.delivery.sop_class, f.transfer_syntax) in contexts]
        node, options = destination.node, {}
        if destination.tls is not None:
            options["tls_args"] = (destination.tls, node.host)
        try:
            assoc = open_association(
                ae,
                title,
                node.host,
                node.port,
                list(contexts.values()),
                on_open=install_checkpoint,
                **options,
            )
        except AssociationFailed as exc:
            raise AttemptFailed(str(exc)) from None
        try:
            for sent in sendable:
                outcome = _send(assoc, dicomweb, sent, Path(workdir))
                yield sent.delivery, outcome
                if outcome.state is State.PENDING:
                    return  # to try again later, before anything after it (keeps the order)
                if not assoc.is_established:
                    raise AttemptFailed(f"{title} ended the association")
        finally:
            if assoc.is_established:
                assoc.release()


def _fetch(
    dicomweb: DicomWebClient, item: Delivery, workdir: Path, transfer_syntax: str
) -> Fetched | Outcome:
    try:
        parts = list(
            dicomweb.retrieve_instance(
                item.study, item.series, item.instance, transfer_syntax=transfer_syntax
            )
        )
    except DicomWebError as exc:
        if exc.status == 404:
            return Outcome(State.CANCELLED, reason="no longer in the archive")
        if exc.status == 406:
            return Outcome(State.FAILED, reason=f"the archive cannot transcode it: {exc}")
        raise AttemptFailed(f"the archive answered {exc}") from None
    except (httpx.HTTPError, MultipartError) as exc:
        raise AttemptFailed(f"the archive cannot be read: {exc}") from None
    if len(parts) != 1:
        raise AttemptFailed(f"the archive sent {len(parts)} objects for instance {item.instance}")
    path = workdir / f"{item.id}-{len(transfer_syntax)}.dcm"
    path.write_bytes(parts[0])
    try:
        syntax = str(read_file_meta_info(path).TransferSyntaxUID)
    except Exception as exc:  # noqa: BLE001  pydicom raises many types on a broken header
        return Outcome(State.FAILED, reason=f"the archive's object has no readable header: {exc}")
    return Fetched(item, path, syntax)


def _quarantine_incomplete(fetched: Fetched) -> Fetched | Outcome:
    """The fetched object, or a ``quarantined`` outcome when its Pixel Data is incomplete."""
    try:
        with fetched.path.open("rb") as file:
            problem = check_file(file, fetched.path.stat().st_size)
    except Exception as exc:  # noqa: BLE001  pydicom raises many types on a broken object
        return Outcome(State.FAILED, reason=f"the archive's object cannot be read: {exc}")
    if problem is None:
        return fetched
    return Outcome(State.QUARANTINED, reason=f"not sent: {problem.reason}")


def _contexts(fetched: list[Fetched]) -> dict[tuple[str, str], PresentationContext]:
    """One context per (SOP class, stored syntax), then one uncompressed context per SOP class
    (key: syntax ""), within PS3.8's 128; instances left out wait for the next attempt."""
    contexts: dict[tuple[str, str], PresentationContext] = {}
    for item in fetched:
        wanted = [(item.delivery.sop_class, item.transfer_syntax), (item.delivery.sop_class, "")]
        for key in wanted:
            if key not in contexts and len(contexts) < MAX_CONTEXTS:
                syntaxes: list[str | UID] = [key[1]] if key[1] else list(UNCOMPRESSED)
                contexts[key] = build_context(key[0], syntaxes)
    return contexts


def _send(assoc: Association, dicomweb: DicomWebClient, item: Fetched, workdir: Path) -> Outcome:
    """One C-STORE; the stored syntax when accepted, else the uncompressed one accepted."""
    accepted = {
        (str(cx.abstract_syntax), str(cx.transfer_syntax[0])) for cx in assoc.accepted_contexts
    }
    sop_class = item.delivery.sop_class
    if (sop_class, item.transfer_syntax) not in accepted:
        fallback = next((ts for ts in UNCOMPRESSED if (sop_class, str(ts)) in accepted), None)
        if fallback is None:
            return Outcome(
                State.FAILED,
                reason=f"the destination accepts neither the stored transfer syntax "
                f"{item.transfer_syntax} nor an uncompressed one for SOP class {sop_class}",
            )
        got = _fetch(dicomweb, item.delivery, workdir, str(fallback))
        if isinstance(got, Outcome):
            return got
        item = got
    pause_reactor(assoc)  # else the reactor may take the response (pacs_bridge.reactor)
    response = assoc.send_c_store(item.path)
    status = getattr(response, "Status", None)
    if status is None:
        return Outcome(State.PENDING, reason="no C-STORE response (association lost or timed out)")
    category = code_to_category(status)
    comment = str(getattr(response, "ErrorComment", "") or "")
    if category in (STATUS_SUCCESS, STATUS_WARNING):
        return Outcome(State.DELIVERED, status, comment)
    if status & 0xFF00 == statuses.OUT_OF_RESOURCES:  # "Refused: Out of Resources", A7xx
        return Outcome(
            State.PENDING, status, f"out of resources (0x{status:04X}) {comment}".strip()
        )
    return Outcome(State.FAILED, status, f"refused (0x{status:04X} {category}) {comment}".strip())
