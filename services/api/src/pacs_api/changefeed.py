"""``GET /changefeed``: the ordered feed of instances stored and deleted.

Not a DICOMweb service: it is how other services (store-and-forward routing in the DIMSE
bridge) follow the archive without reading its tables. A consumer keeps the ``next`` cursor
of the last answer and asks again with ``since=next``; entries come in commit order, so
nothing is skipped (:mod:`pacs_api.index.changes`). Delivery built on it is at least once.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from pacs_api.deps import IndexDep

router = APIRouter(tags=["change feed"])


@router.get("/changefeed", summary="Instances stored and deleted, in commit order")
def change_feed(
    index: IndexDep,
    since: Annotated[int, Query(ge=0, description="Answer entries after this cursor.")] = 0,
    limit: Annotated[int, Query(ge=1, le=10000, description="At most this many.")] = 1000,
) -> dict[str, Any]:
    entries = index.changes(since, limit)
    return {
        "changes": [
            {
                "seq": entry["seq"],
                "kind": entry["kind"],
                "study": entry["study_instance_uid"],
                "series": entry["series_instance_uid"],
                "instance": entry["sop_instance_uid"],
                "sop_class": entry["sop_class_uid"],
                "at": entry["at"].isoformat() if entry["at"] else None,
            }
            for entry in entries
        ],
        "next": entries[-1]["seq"] if entries else since,
    }
