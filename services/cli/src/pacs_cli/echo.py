"""``pacs echo``: C-ECHO SCU (PS3.7 §9.1.5, Verification Service Class PS3.4 Annex A)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from pacs_common.dimse import AssociationFailed
from pynetdicom.presentation import build_context
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.status import code_to_category

from pacs_cli.peer import Peer, association


@dataclass(frozen=True)
class EchoResult:
    status: int
    round_trip_s: float

    @property
    def success(self) -> bool:
        return code_to_category(self.status) == "Success"


def echo(peer: Peer, calling_ae: str) -> EchoResult:
    """One C-ECHO on a new association; the status (None when no answer came) and the time
    from request to response. :class:`AssociationFailed` when no association is established."""
    with association(peer, calling_ae, [build_context(Verification)]) as assoc:
        start = time.perf_counter()
        response = assoc.send_c_echo()
        round_trip = time.perf_counter() - start
    status = response.get("Status")
    if status is None:
        raise AssociationFailed(f"{peer} aborted the association before answering the C-ECHO")
    return EchoResult(int(status), round_trip)
