"""Store and index kept in agreement: the sweep of unreferenced objects, and the check.

STOW writes an instance's object first and its index row second (:mod:`pacs_api.ingest.pipeline`),
and DELETE removes rows first and objects second, so a crash (kill -9, power cut) or a store
failure during an undo can leave an object that no row references; it can never leave a row
without its object. :func:`sweep` deletes those objects; :func:`check` confirms the other
direction (and reports rows whose object is missing, it never deletes rows).

Why the sweep is safe while the API serves:

- **Grace period.** An in-flight STOW has written its object but not yet committed its row: for
  a moment a good object looks unreferenced. Only objects written more than ``grace`` ago are
  candidates (the store's write time: file mtime, S3 ``LastModified``). A request would have to
  spend longer than ``grace`` between writing an object and committing its row for the sweep to
  see it wrongly; requests time out long before the default hour. The grace must also cover
  clock skew between this host and the S3 server.
- **Key uniqueness.** Every write has a key of its own (a random token besides the SOP
  Instance UID and the SHA-256; :func:`~pacs_api.ingest.pipeline.object_key`), so a row
  committed later references only an object its own request wrote, never an old one. (Keys
  written before the token existed have none: for those, the same bytes sent again rewrote
  the object first, a fresh write time that keeps it out of the sweep.)
- **Re-check before delete.** The one interleaving left is a resend of an orphan's exact bytes
  between the listing and the delete. The index is asked again right before each delete batch
  (milliseconds before), and once more after it: any key a row came to reference in between is
  reported as ``raced`` (an error to look at; :func:`check` lists it too), never hidden.

Only keys that :func:`~pacs_api.ingest.pipeline.object_key` builds, under ``studies/``, are
candidates: any other object (someone else's, a future derived artefact) is counted as foreign
and kept. The store is read as a stream (:meth:`ObjectStore.scan`) and the index asked in
batches, so memory stays bounded for a million objects.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice

from pacs_common.storage.base import ObjectInfo, ObjectNotFound, ObjectStore

from pacs_api.index.repository import Index
from pacs_api.ingest.pipeline import INSTANCE_PREFIX, sop_instance_of_key

log = logging.getLogger(__name__)

#: Default grace period: objects younger than this are never swept.
DEFAULT_GRACE = timedelta(hours=1)
#: Objects (or rows) looked up in the index at once.
BATCH = 500
#: Most keys a report lists by name (the counts are always complete).
LISTED = 100
_STAT_THREADS = 8


@dataclass(slots=True)
class SweepReport:
    dry_run: bool
    scanned: int = 0
    scanned_bytes: int = 0
    young: int = 0  # within the grace period: kept
    foreign: int = 0  # not an instance key: kept
    orphans: int = 0  # unreferenced and older than the grace period
    orphan_bytes: int = 0
    deleted: int = 0
    deleted_bytes: int = 0
    raced: list[str] = field(default_factory=list)  # deleted, then found referenced

    def summary(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        return (
            f"scanned {self.scanned} objects ({self.scanned_bytes} bytes); {verb} {self.orphans} "
            f"unreferenced ({self.orphan_bytes} bytes); kept {self.young} within the grace period "
            f"and {self.foreign} foreign; raced {len(self.raced)}"
        )


@dataclass(slots=True)
class CheckReport:
    rows: int = 0
    missing: int = 0  # rows whose object is absent
    wrong_size: int = 0  # rows whose object's size differs from the row's
    examples: list[str] = field(default_factory=list)  # their keys, up to LISTED

    @property
    def ok(self) -> bool:
        return self.missing == 0 and self.wrong_size == 0

    def summary(self) -> str:
        return (
            f"checked {self.rows} index rows: {self.missing} without their object, "
            f"{self.wrong_size} with an object of another size"
        )


def sweep(
    index: Index,
    store: ObjectStore,
    *,
    grace: timedelta = DEFAULT_GRACE,
    dry_run: bool = False,
    now: datetime | None = None,
    batch: int = BATCH,
) -> SweepReport:
    """Delete the instance objects that no index row references and that were written more
    than *grace* before *now* (see the module docstring for why this is safe while serving)."""
    cutoff = (now or datetime.now(UTC)) - grace
    report = SweepReport(dry_run=dry_run)
    for infos in _batches(store.scan(INSTANCE_PREFIX), batch):
        candidates: dict[str, ObjectInfo] = {}
        sops: dict[str, str] = {}
        for info in infos:
            report.scanned += 1
            report.scanned_bytes += info.size
            sop = sop_instance_of_key(info.key)
            if sop is None:
                report.foreign += 1
            elif info.modified is None or info.modified > cutoff:
                report.young += 1
            else:
                candidates[info.key] = info
                sops[info.key] = sop
        orphans = _unreferenced(index, candidates, sops)
        if orphans and not dry_run:
            # Asked again right before deleting: a row committed since the first question wins.
            orphans = _unreferenced(index, orphans, sops)
            store.delete(list(orphans))
            report.deleted += len(orphans)
            report.deleted_bytes += sum(info.size for info in orphans.values())
            raced = set(orphans) - set(_unreferenced(index, orphans, sops))
            for key in sorted(raced):
                log.error("swept object %s is referenced by a row committed meanwhile", key)
            report.raced.extend(sorted(raced))
        report.orphans += len(orphans)
        report.orphan_bytes += sum(info.size for info in orphans.values())
    log.info("sweep: %s", report.summary())
    return report


def check(index: Index, store: ObjectStore, *, batch: int = BATCH) -> CheckReport:
    """Every index row's object exists with the row's size; rows are read in pk pages."""
    report = CheckReport()
    after = 0
    with ThreadPoolExecutor(_STAT_THREADS, "pacs-check") as pool:
        while rows := index.stored_objects(after, batch):
            after = rows[-1][0]
            report.rows += len(rows)
            sizes = pool.map(_size_or_none, [store] * len(rows), [key for _, key, _ in rows])
            for (_, key, size), found in zip(rows, sizes, strict=True):
                if found == size:
                    continue
                if found is None:
                    report.missing += 1
                else:
                    report.wrong_size += 1
                if len(report.examples) < LISTED:
                    report.examples.append(key)
    return report


def _unreferenced(
    index: Index, infos: dict[str, ObjectInfo], sops: dict[str, str]
) -> dict[str, ObjectInfo]:
    if not infos:
        return {}
    referenced = index.referenced_keys({sops[key] for key in infos})
    return {key: info for key, info in infos.items() if key not in referenced}


def _size_or_none(store: ObjectStore, key: str) -> int | None:
    try:
        return store.stat(key).size
    except ObjectNotFound:
        return None


def _batches(items: Iterable[ObjectInfo], size: int) -> Iterator[list[ObjectInfo]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk
