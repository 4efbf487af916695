"""Who may talk to the bridge: the association check and the per-command permissions.

An A-ASSOCIATE-RQ is checked when it arrives (``EVT_REQUESTED``), before any presentation
context is negotiated: a called AE title other than the bridge's, or a calling AE title (and
address) the allow-list does not hold, gets an A-ASSOCIATE-RJ (PS3.8 §7.1.1.9, §9.3.4) with
result "rejected-permanent", source "DICOM UL service-user" and the diagnostic naming the AE
title at fault, and the reason is logged. A DIMSE request the peer has no permission for is
answered with "Refused: Not Authorized" (PS3.7 Annex C) by :func:`permitted`.
"""

from __future__ import annotations

import logging
from enum import IntEnum

from pynetdicom.events import Event

from pacs_bridge.settings import Permission, Settings

log = logging.getLogger(__name__)


class RejectResult(IntEnum):
    """A-ASSOCIATE-RJ Result (PS3.8 §9.3.4, table 9-21)."""

    PERMANENT = 0x01
    TRANSIENT = 0x02


class RejectSource(IntEnum):
    """A-ASSOCIATE-RJ Source (PS3.8 §9.3.4, table 9-21)."""

    SERVICE_USER = 0x01
    SERVICE_PROVIDER_ACSE = 0x02
    SERVICE_PROVIDER_PRESENTATION = 0x03


class RejectReason(IntEnum):
    """A-ASSOCIATE-RJ Reason/Diag. for source "service-user" (PS3.8 §9.3.4, table 9-21);
    pynetdicom names them in ``A_ASSOCIATE.reason_str``."""

    NO_REASON_GIVEN = 0x01
    CALLING_AE_TITLE_NOT_RECOGNIZED = 0x03
    CALLED_AE_TITLE_NOT_RECOGNIZED = 0x07


class AccessPolicy:
    """The allow-list and the called AE title check of one bridge."""

    def __init__(self, settings: Settings) -> None:
        self.ae_title = settings.ae_title
        self.require_called_ae_title = settings.require_called_ae_title
        self.allow_any = settings.allow_any_calling_ae
        self.peers = settings.allow

    def permissions(self, calling_ae_title: str, address: str) -> frozenset[Permission]:
        """What a peer may do: the union of the entries that admit it (empty: not admitted)."""
        if self.allow_any:
            return frozenset(Permission)
        granted: set[Permission] = set()
        for peer in self.peers:
            if peer.admits(calling_ae_title, address):
                granted |= peer.permissions
        return frozenset(granted)

    def rejection(
        self, called_ae_title: str, calling_ae_title: str, address: str
    ) -> tuple[RejectReason, str] | None:
        """Why an association request must be rejected, or ``None`` to negotiate it."""
        if self.require_called_ae_title and called_ae_title != self.ae_title:
            return (
                RejectReason.CALLED_AE_TITLE_NOT_RECOGNIZED,
                f"called AE title {called_ae_title!r} is not this bridge's {self.ae_title!r}",
            )
        if not self.permissions(calling_ae_title, address):
            return (
                RejectReason.CALLING_AE_TITLE_NOT_RECOGNIZED,
                f"calling AE title {calling_ae_title!r} from {address} is not in the allow-list",
            )
        return None

    def handle_requested(self, event: Event) -> None:
        """``EVT_REQUESTED``: reject an association the policy does not admit."""
        assoc = event.assoc
        request = assoc.requestor.primitive
        address = assoc.requestor.address
        called = request.called_ae_title.strip() if request else ""
        calling = request.calling_ae_title.strip() if request else ""
        rejection = self.rejection(called, calling, address)
        if rejection is None:
            return
        reason, text = rejection
        log.warning("association from %s rejected: %s", address, text)
        assoc.acse.send_reject(RejectResult.PERMANENT, RejectSource.SERVICE_USER, reason)
        assoc.kill()  # as pynetdicom's own rejections: returns once the A-ASSOCIATE-RJ is sent


def permitted(event: Event, permission: Permission, policy: AccessPolicy) -> bool:
    """True when the peer of *event*'s association may use *permission*; logs a refusal."""
    requestor = event.assoc.requestor
    calling = requestor.ae_title.strip()
    if permission in policy.permissions(calling, requestor.address):
        return True
    log.warning("%s refused to %r from %s: no permission", permission, calling, requestor.address)
    return False
