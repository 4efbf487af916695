"""C-STORE sub-operations that send each instance's data set as stored, without decoding it.

pynetdicom's retrieve SCP sends what the handler yields with ``Association.send_c_store``, and
accepts only a :class:`~pydicom.dataset.Dataset` there; encoding a decoded CT slice again
costs more than everything else a sub-operation does (``bench/dimse.py``). ``send_c_store``
can instead send a Part 10 file's data set bytes in PDU-sized chunks, as they are, when given
its path and ``pynetdicom._config.STORE_SEND_CHUNKED_DATASET`` is on (the File Meta
Information names the SOP class, instance and transfer syntax, PS3.10 §7.1).

So the handler yields a :class:`StoredInstance` (a data set holding only the SOP Instance UID,
which pynetdicom lists when the sub-operation fails, PS3.4 C.4.3.1.3.2) naming the file, and
:func:`send_as_stored` wraps the association's ``send_c_store`` so that it sends the file.
When the peer accepted no presentation context for the stored transfer syntax, the data set
is decoded and handed to pynetdicom as before, which may send it in another uncompressed
transfer syntax the peer accepted (PS3.5 Annex A).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import _config
from pynetdicom.association import Association
from pynetdicom.events import Event

from pacs_bridge.reactor import install_checkpoint, pause_reactor


class StoredInstance(Dataset):
    """An instance held in the Part 10 file *stored_path*, for a C-STORE sub-operation."""

    def __init__(self, stored_path: Path, sop_instance_uid: str) -> None:
        super().__init__()
        self.SOPInstanceUID = sop_instance_uid
        self.stored_path = stored_path


def send_as_stored(assoc: Association) -> None:
    """Make *assoc* send each :class:`StoredInstance` from its file (other data sets as
    before)."""
    _config.STORE_SEND_CHUNKED_DATASET = True
    send = assoc.send_c_store
    if not isinstance(send, _SendAsStored):
        setattr(assoc, "send_c_store", _SendAsStored(assoc, send))  # noqa: B010 - a method


def send_as_stored_on_open(event: Event) -> None:
    """``EVT_CONN_OPEN`` of a C-MOVE destination association: :func:`send_as_stored`, with
    the reactor paused reliably before each sub-operation (:mod:`pacs_bridge.reactor`)."""
    install_checkpoint(event)
    send_as_stored(event.assoc)


class _SendAsStored:
    def __init__(self, assoc: Association, send: Callable[..., Dataset]) -> None:
        self._assoc = assoc
        self._send = send
        functools.update_wrapper(self, send)

    def __call__(self, dataset: Any, *args: Any, **kwargs: Any) -> Dataset:
        pause_reactor(self._assoc)
        if not isinstance(dataset, StoredInstance):
            return self._send(dataset, *args, **kwargs)
        try:
            return self._send(dataset.stored_path, *args, **kwargs)
        except ValueError:
            # No accepted context for the stored transfer syntax: let pynetdicom find one
            # the decoded data set can be encoded in.
            return self._send(dcmread(dataset.stored_path), *args, **kwargs)
