"""Keeping, releasing and deleting quarantined objects: the object store and the rows together.

Object first, row second (as for the archive, ARCHITECTURE.md "Data flow"): a crash in between
leaves an object no row names, under a key that holds its digest, so sending the same bytes
again rewrites the same object and inserts the row. Deleting removes the bytes, then the row.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import IO, BinaryIO, cast

from pacs_common.problems import Conflict, NotFound
from pacs_common.storage.base import ObjectStore

from pacs_api.index.repository import Index
from pacs_api.ingest.parse import IncompletePixelData
from pacs_api.ingest.pipeline import Ingest
from pacs_api.quarantine.models import QuarantineEntry
from pacs_api.quarantine.repository import QuarantineRepository
from pacs_api.settings import Settings

log = logging.getLogger(__name__)

#: Where quarantined objects are kept; outside ``studies/``, so the sweep never looks there.
PREFIX = "quarantine/"
ID_LENGTH = 16


@dataclass(frozen=True, slots=True)
class Source:
    """Who sent a request: the authenticated subject and the client's address (the calling AE
    title comes from the object's own File Meta Information, PS3.10 table 7.1-1)."""

    subject: str = ""
    address: str = ""


@dataclass(frozen=True, slots=True)
class Released:
    """Where a released instance now is in the archive."""

    entry_id: str
    sop_class_uid: str
    sop_instance_uid: str
    study_uid: str
    series_uid: str


def entry_id_of(sha256: str) -> str:
    return sha256[:ID_LENGTH]


class Quarantine:
    def __init__(self, repository: QuarantineRepository, store: ObjectStore) -> None:
        self.repository = repository
        self.store = store

    @classmethod
    def of(cls, index: Index, store: ObjectStore) -> Quarantine:
        """The quarantine in the index database and object store of the application."""
        return cls(QuarantineRepository(index.engine), store)

    # -- keeping ---------------------------------------------------------------------------
    @staticmethod
    def comment(entry: QuarantineEntry) -> str:
        """The ErrorComment of a quarantined instance: the entry id first, so that it survives
        the 64 characters of a DIMSE Error Comment (LO, PS3.7 C.4)."""
        return f"quarantined as {entry.id}: {entry.reason}"

    def keep(
        self,
        stream: IO[bytes],
        size: int,
        sha256: str,
        refused: IncompletePixelData,
        source: Source | None = None,
    ) -> QuarantineEntry:
        """Keep the *size* bytes of *stream* exactly as received; the same bytes again count
        on their existing entry."""
        entry_id = entry_id_of(sha256)
        key = f"{PREFIX}{sha256}.dcm"
        existing = self.repository.touch(entry_id, sha256)
        if existing is not None and self.store.exists(existing.object_key):
            return existing
        stream.seek(0)
        self.store.put(key, cast(BinaryIO, stream), size)
        if existing is not None:  # the row outlived its bytes (a delete cut short)
            return existing
        who, source = refused.identity, source or Source()
        entry = QuarantineEntry(
            id=entry_id,
            sha256=sha256,
            object_key=key,
            size=size,
            kind=refused.problem.kind.value,
            failure=refused.status,
            reason=refused.reason,
            sop_class_uid=who.sop_class_uid,
            sop_instance_uid=who.sop_instance_uid,
            study_uid=who.study_uid,
            series_uid=who.series_uid,
            patient_id=who.patient_id,
            patient_name=who.patient_name,
            source_subject=source.subject[:128],
            source_address=source.address[:64],
            source_ae=who.sender_ae,
        )
        kept = self.repository.add(entry)
        log.warning(
            "quarantined %s as %s (%s): %s", who.sop_instance_uid, kept.id, kept.kind, kept.reason
        )
        return kept

    # -- administrators --------------------------------------------------------------------
    def get(self, entry_id: str) -> QuarantineEntry:
        entry = self.repository.get(entry_id)
        if entry is None:
            raise NotFound(f"no quarantine entry {entry_id!r}")
        return entry

    def delete(self, entry_id: str) -> None:
        """Remove the kept bytes, then the entry (404 when there is none)."""
        entry = self.get(entry_id)
        self.store.delete([entry.object_key])
        self.repository.remove(entry_id)
        log.warning("quarantine entry %s deleted", entry_id)

    def release(
        self, entry_id: str, index: Index, settings: Settings, writer: Executor
    ) -> Released:
        """Store the kept bytes in the archive after all, through the ingest pipeline with the
        Pixel Data check waived (an administrator's decision), then remove the entry. 409 with
        the archive's reason when it refuses the object for another reason."""
        entry = self.get(entry_id)
        with tempfile.SpooledTemporaryFile(
            max_size=settings.spool_memory_bytes,
            dir=str(settings.spool_dir) if settings.spool_dir else None,
        ) as spool:
            digest = hashlib.sha256()
            for chunk in self.store.open(entry.object_key):
                digest.update(chunk)
                spool.write(chunk)
            size = spool.tell()
            if digest.hexdigest() != entry.sha256 or size != entry.size:
                raise Conflict(
                    f"the kept copy of quarantine entry {entry_id} no longer matches its "
                    "SHA-256; it was not released"
                )
            spool.seek(0)
            ingest = Ingest(index, self.store, settings, writer=writer, check_pixels=False)
            try:
                ingest.add(cast(IO[bytes], spool), size, entry.sha256, lambda: None)
                result = ingest.finish()[0]
            except BaseException:
                ingest.abort()
                raise
        if result.failure is not None:
            raise Conflict(
                f"the archive refuses quarantine entry {entry_id} "
                f"(0x{result.failure:04X}): {result.reason}"
            )
        self.store.delete([entry.object_key])
        self.repository.remove(entry_id)
        log.warning("quarantine entry %s released into the archive", entry_id)
        return Released(
            entry_id,
            result.sop_class_uid,
            result.sop_instance_uid,
            result.study_uid,
            result.series_uid,
        )
