"""C-STORE SCP (PS3.4 Annex B): each received instance goes to the API with STOW-RS.

The Part 10 object is the data set exactly as received, in the negotiated transfer syntax,
behind a File Meta Information header (PS3.10 §7.1) built from the request; it is never decoded
and re-encoded. The header names who sent the instance (PS3.10 table 7.1-1): the calling AE
title as Sending Application Entity Title (0002,0017), the bridge as Source (0002,0016, the AE
that wrote the file) and Receiving (0002,0018) Application Entity Title; store-and-forward
routes match on the sender through the API's change feed.

Success is answered only after the API's store response lists the instance in its
ReferencedSOPSequence, so nothing acknowledged can be lost; every other outcome is a failure
the modality sees (:mod:`pacs_bridge.errors` maps it to a C-STORE status). A refusal carries
the API's ErrorComment: for an image the API kept in its quarantine (incomplete Pixel Data)
that names the quarantine entry, so the modality's log says where the images went. The API
learns the calling AE title from the Sending Application Entity Title written here, so the
quarantined copy is the exact object the API received.
"""

from __future__ import annotations

import logging

import httpx
from pacs_common import statuses
from pacs_common.client import DicomWebClient, DicomWebError, StoreResult
from pydicom.dataset import Dataset
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import encode_file_meta
from pynetdicom.events import Event

from pacs_bridge.errors import failure_comment, status_dataset, store_failure_status

log = logging.getLogger(__name__)


def store_instance(event: Event, dicomweb: DicomWebClient) -> Dataset:
    """Store the instance of a C-STORE request; the C-STORE response status (PS3.4 B.2.3)."""
    request = event.request
    assert isinstance(request, C_STORE)  # bound to EVT_C_STORE only
    sop_instance_uid = str(request.AffectedSOPInstanceUID)
    try:
        result = dicomweb.store([part10(event)])
    except (httpx.HTTPError, DicomWebError) as exc:
        status = store_failure_status(exc)
        log.warning("C-STORE %s not stored (0x%04X): %s", sop_instance_uid, status, exc)
        return status_dataset(status, failure_comment(exc))
    return _answer(result, sop_instance_uid)


def part10(event: Event) -> bytes:
    """The received data set, as received, behind a File Meta Information header naming the
    sending and receiving AE titles (PS3.10 §7.1, table 7.1-1)."""
    meta = event.file_meta
    receiver = event.assoc.ae.ae_title
    meta.SourceApplicationEntityTitle = receiver
    meta.SendingApplicationEntityTitle = event.assoc.requestor.ae_title
    meta.ReceivingApplicationEntityTitle = receiver
    return b"".join(
        (b"\x00" * 128, b"DICM", encode_file_meta(meta), event.encoded_dataset(include_meta=False))
    )


def _ascii(text: str) -> str:
    """Error Comment is LO in the default character repertoire (PS3.5 §6.1.2.1, table 6.2-1):
    printable ASCII only."""
    text = text.replace("§", "sec. ")
    return "".join(c if " " <= c <= "~" else "?" for c in text)


def _answer(result: StoreResult, sop_instance_uid: str) -> Dataset:
    """The C-STORE status of the API's store response for one instance (PS3.18 §10.5.3)."""
    for failed in result.failed:
        if failed.sop_instance_uid == sop_instance_uid:
            status = failed.failure_reason or statuses.PROCESSING_FAILURE
            comment = _ascii(failed.error_comment or "refused by the archive")
            log.warning(
                "C-STORE %s refused by the API (0x%04X): %s", sop_instance_uid, status, comment
            )
            return status_dataset(status, comment)
    for referenced in result.referenced:
        if referenced.sop_instance_uid == sop_instance_uid:
            if referenced.warning_reason:
                return status_dataset(referenced.warning_reason, "stored with a warning")
            return status_dataset(statuses.SUCCESS)
    log.error("C-STORE %s: the API's store response does not list it", sop_instance_uid)
    return status_dataset(statuses.PROCESSING_FAILURE, "the archive did not confirm the instance")
