"""C-GET SCP (PS3.4 C.4.3): the instances go back on the requestor's association.

Each C-STORE sub-operation uses a presentation context the requestor proposed for the
instance's SOP class, with the SCP/SCU role selection it asked for (PS3.4 C.4.3.1.2, PS3.7
D.3.3.4). An instance whose transfer syntax was not accepted for its SOP class cannot be sent
(the bridge does not transcode): its sub-operation fails.
"""

from __future__ import annotations

from collections.abc import Iterator

from pacs_common.client import DicomWebClient
from pydicom.dataset import Dataset
from pynetdicom.events import Event

from pacs_bridge.retrieve.suboperations import SubOperation, prepare, refused, sub_operations


def get_instances(
    event: Event, dicomweb: DicomWebClient, page_size: int
) -> Iterator[int | SubOperation]:
    """The responses to one C-GET request, in pynetdicom's ``EVT_C_GET`` protocol."""
    retrieval = prepare(event, dicomweb, page_size)
    if isinstance(retrieval, Dataset):
        yield from refused(retrieval)
        return
    yield from sub_operations(event, dicomweb, retrieval)
