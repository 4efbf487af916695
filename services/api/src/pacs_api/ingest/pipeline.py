"""One STOW-RS request's instances, from received part to durable, indexed object.

Order of work, for every instance (ARCHITECTURE.md "Data flow"):

1. read and check the header (:mod:`pacs_api.ingest.parse`), in request order;
2. write the exact received bytes to the object store, atomically and durably, in the
   application's writer threads (:func:`writer_pool`; starting threads for every request cost
   about 0.5 ms of a single-instance STOW); up to ``WRITES_IN_FLIGHT`` writes of a request
   run at once (an S3 PUT is mostly waiting);
3. commit the index rows in batches, each only after every object of the batch is durable.

A crash between 2 and 3 leaves an object no row references (swept later), never a row
without its object.

Every write has a key of its own (:func:`object_key`: the SHA-256 of the bytes and a random
token), so no two requests ever write, or delete, the same object: a request only deletes
objects it wrote and no row references (its conflicts, its undo) or that a row referenced
until its own commit replaced them. With keys shared by identical bytes, a DELETE (or the undo
of a failed request) removing "its" object could remove the object a concurrent STOW of the
same bytes had just indexed: a row without its object, an acknowledged instance lost. When
the same bytes are stored again, the new row state points at the new object and the old one
is deleted (:data:`~pacs_api.index.ingest.Outcome.IDENTICAL` with ``replaced_key``): the
instance is then held by the request that acknowledged it last, and the undo of the request
that first created it (which removes a row only while it still references that request's own
object) cannot take it away.

When a request fails as a whole (broken multipart, body too large, store or index down), the
instances it created are removed again: a request answered with an error has stored nothing.

An image whose Pixel Data is incomplete (:class:`pacs_api.ingest.parse.IncompletePixelData`)
is not stored in the archive: its exact bytes go to the quarantine
(:mod:`pacs_api.quarantine`) and its answer is a failure naming the quarantine entry. Those
kept bytes stay when the request later fails as a whole: they were never acknowledged, and
nothing received is lost.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, BinaryIO, cast

from pacs_common import statuses
from pacs_common.storage.base import ObjectStore
from pydicom.tag import Tag

from pacs_api.index.ingest import InstanceRecord, Outcome
from pacs_api.index.repository import Index
from pacs_api.ingest.parse import IncompletePixelData, InvalidInstance, read_instance
from pacs_api.settings import OverwritePolicy, Settings

if TYPE_CHECKING:
    from pacs_api.quarantine.service import Quarantine, Source

log = logging.getLogger(__name__)

#: Instances whose index rows are committed in one transaction.
BATCH = 50
#: Object writes running at once for one request (each holds its part until written).
WRITES_IN_FLIGHT = 4
#: Writer threads of the application, shared by its requests.
WRITER_THREADS = 16


def writer_pool() -> ThreadPoolExecutor:
    """The object writers shared by every request of an application (shut down with it)."""
    return ThreadPoolExecutor(WRITER_THREADS, "pacs-stow-write")


def object_key(record_uids: tuple[str, str, str], sha256: str, token: str | None = None) -> str:
    """``studies/{study}/series/{series}/instances/{sop}.{sha256[:24]}.{token}.dcm``
    (validated UIDs; *token*: 16 random hex digits unless given).

    The digest names the bytes; the token makes every write's key its own (module docstring).
    The instances of a series share one directory (on the filesystem store, one directory
    fsync per object instead of three)."""
    study, series, sop = record_uids
    token = token or secrets.token_hex(8)
    return f"studies/{study}/series/{series}/instances/{sop}.{sha256[:24]}.{token}.dcm"


#: The instance prefix of the store: every key :func:`object_key` builds starts with it.
INSTANCE_PREFIX = "studies/"
_OBJECT_KEY = re.compile(
    # Keys written before the token was added have none.
    r"^studies/[0-9.]{1,64}/series/[0-9.]{1,64}/instances/([0-9.]{1,64})"
    r"\.[0-9a-f]{24}(?:\.[0-9a-f]{16})?\.dcm$"
)


def sop_instance_of_key(key: str) -> str | None:
    """The SOP Instance UID in a key that :func:`object_key` built, else ``None``."""
    match = _OBJECT_KEY.match(key)
    return match.group(1) if match else None


@dataclass(slots=True)
class InstanceResult:
    """The answer for one received part (PS3.18 §10.5.3)."""

    sop_class_uid: str = ""
    sop_instance_uid: str = ""
    study_uid: str = ""
    series_uid: str = ""
    failure: int | None = None  # a C-STORE status (PS3.4 B.2.3); None on success
    reason: str = ""
    size: int = 0  # bytes received
    patient_id: str = ""  # Patient ID (0010,0020), for the audit trail
    quarantine_id: str | None = None  # the quarantine entry that keeps it, if it is kept


@dataclass(slots=True)
class _Pending:
    result: InstanceResult
    record: InstanceRecord
    written: Future[None]


@dataclass(slots=True)
class Ingest:
    """The instances of one request: feed parts with :meth:`add`, then :meth:`finish` (or
    :meth:`abort`). Objects are written in *writer* (:func:`writer_pool`); without one, the
    request starts its own threads, which :meth:`finish` or :meth:`abort` end."""

    index: Index
    store: ObjectStore
    settings: Settings
    study_uid: str | None = None
    writer: Executor | None = None
    #: Where images with incomplete Pixel Data are kept (None: they are only refused).
    quarantine: Quarantine | None = None
    source: Source | None = None
    #: False when an administrator releases an object from the quarantine.
    check_pixels: bool = True
    results: list[InstanceResult] = field(default_factory=list)
    _pending: list[_Pending] = field(default_factory=list)
    _created: list[InstanceRecord] = field(default_factory=list)
    _own_writer: ThreadPoolExecutor | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.writer is None:
            self._own_writer = ThreadPoolExecutor(WRITES_IN_FLIGHT, "pacs-stow-write")
            self.writer = self._own_writer

    def _end_writer(self) -> None:
        """Wait for this request's writes (all awaited already) and end its own threads."""
        if self._own_writer is not None:
            self._own_writer.shutdown(wait=True)

    @property
    def overwrite(self) -> bool:
        return self.settings.overwrite_policy == OverwritePolicy.OVERWRITE

    def fail(self, status: int, reason: str) -> None:
        """Record a part refused before it could be read (e.g. wrong part media type)."""
        self.results.append(InstanceResult(failure=status, reason=reason))

    def add(self, stream: IO[bytes], size: int, sha256: str, release: Callable[[], None]) -> None:
        """Check one received object and start writing it; *release* frees the received bytes
        and is called once they are no longer needed. Index rows follow in batches."""
        try:
            parsed = read_instance(
                stream,
                size,
                bulk_threshold=self.settings.bulk_data_threshold,
                check_pixels=self.check_pixels,
            )
        except IncompletePixelData as exc:
            self._quarantine(stream, size, sha256, release, exc)
            return
        except InvalidInstance as exc:
            release()
            self.results.append(InstanceResult(failure=exc.status, reason=exc.reason))
            return
        result = InstanceResult(
            parsed.sop_class_uid,
            parsed.sop_instance_uid,
            parsed.study_uid,
            parsed.series_uid,
            size=size,
            patient_id=_first_text(parsed.metadata, _PATIENT_ID),
        )
        self.results.append(result)
        if self.study_uid is not None and parsed.study_uid != self.study_uid:
            release()
            result.failure = statuses.DATA_SET_DOES_NOT_MATCH_SOP_CLASS
            result.reason = (
                f"Study Instance UID {parsed.study_uid} does not match the study "
                f"{self.study_uid} of the request URL (PS3.18 §10.5.1)"
            )
            return
        key = object_key((parsed.study_uid, parsed.series_uid, parsed.sop_instance_uid), sha256)
        record = InstanceRecord(
            sop_class_uid=parsed.sop_class_uid,
            sop_instance_uid=parsed.sop_instance_uid,
            study_uid=parsed.study_uid,
            series_uid=parsed.series_uid,
            transfer_syntax_uid=parsed.transfer_syntax_uid,
            object_key=key,
            size=size,
            sha256=sha256,
            metadata=parsed.metadata,
            metadata_text=parsed.metadata_text(),
            bulk=parsed.bulk,
            sender_ae=parsed.sender_ae,
        )
        # Whether the instance is new, the same bytes again or a conflict is settled when its
        # row is committed (flush); the object lands on a key of its own meanwhile.
        assert self.writer is not None  # set by __post_init__
        written = self.writer.submit(self._write, key, stream, size, release)
        self._pending.append(_Pending(result, record, written))
        self._throttle()
        if len(self._pending) >= BATCH:
            self.flush()

    def _quarantine(
        self,
        stream: IO[bytes],
        size: int,
        sha256: str,
        release: Callable[[], None],
        exc: IncompletePixelData,
    ) -> None:
        """Keep an incomplete image's bytes in the quarantine and answer it as a failure that
        names the entry (a store failure fails the request: nothing is dropped silently)."""
        who = exc.identity
        result = InstanceResult(
            who.sop_class_uid,
            who.sop_instance_uid,
            who.study_uid,
            who.series_uid,
            failure=exc.status,
            reason=exc.reason,
            size=size,
        )
        try:
            if self.quarantine is not None:
                entry = self.quarantine.keep(stream, size, sha256, exc, self.source)
                result.reason = self.quarantine.comment(entry)
                result.quarantine_id = entry.id
        finally:
            release()
        self.results.append(result)

    def _write(self, key: str, stream: IO[bytes], size: int, release: Callable[[], None]) -> None:
        try:
            stream.seek(0)
            self.store.put(key, cast(BinaryIO, stream), size)
        finally:
            release()

    def _throttle(self) -> None:
        """Wait while WRITES_IN_FLIGHT writes are running (bounds the parts held)."""
        running = [p.written for p in self._pending if not p.written.done()]
        while len(running) >= WRITES_IN_FLIGHT:
            _, still = wait(running, return_when=FIRST_COMPLETED)
            running = list(still)

    def flush(self) -> None:
        """Commit the index rows of every object written so far (after its write is done; a
        failed write raises here, failing the request)."""
        if not self._pending:
            return
        for item in self._pending:
            item.written.result()
        pending, self._pending = self._pending, []
        outcomes = self.index.register([p.record for p in pending], overwrite=self.overwrite)
        unreferenced: list[str] = []
        for item, outcome in zip(pending, outcomes, strict=True):
            if outcome.outcome is Outcome.CREATED:
                self._created.append(item.record)
            elif outcome.outcome is Outcome.CONFLICT:
                # Another request stored other bytes under this UID first: ours go.
                self._conflict(item.result)
                unreferenced.append(item.record.object_key)
            elif outcome.outcome is Outcome.SERIES_IN_OTHER_STUDY:
                item.result.failure = statuses.DATA_SET_DOES_NOT_MATCH_SOP_CLASS
                item.result.reason = (
                    f"Series Instance UID {item.record.series_uid} is stored in another study "
                    f"than {item.record.study_uid} (a series belongs to one study, PS3.3 C.7.3.1)"
                )
                unreferenced.append(item.record.object_key)
            elif outcome.replaced_key:  # REPLACED, or IDENTICAL: the row took our object
                unreferenced.append(outcome.replaced_key)
            else:  # IDENTICAL to an earlier part of this batch, whose object the row took
                unreferenced.append(item.record.object_key)
        if unreferenced:
            self.store.delete(unreferenced)

    def finish(self) -> list[InstanceResult]:
        try:
            self.flush()
        finally:
            wait([p.written for p in self._pending])
            self._end_writer()
        return self.results

    def abort(self) -> None:
        """Undo this request: remove what it created (best effort; never touches others')."""
        wait([p.written for p in self._pending])
        self._end_writer()
        unindexed = [item.record.object_key for item in self._pending]  # no row names them
        self._pending.clear()
        if unindexed:
            try:
                self.store.delete(unindexed)
            except Exception:  # noqa: BLE001 - the sweep removes what is left
                log.warning("could not remove %d unindexed objects", len(unindexed))
        for record in self._created:
            try:
                # Only while the row still references our object: a later request that
                # acknowledged the same bytes has taken the row over, and keeps it.
                if self.index.unregister(record.sop_instance_uid, record.object_key):
                    self.store.delete([record.object_key])
            except Exception:  # noqa: BLE001
                log.warning("could not undo instance %s", record.sop_instance_uid)
        self._created.clear()

    @staticmethod
    def _conflict(result: InstanceResult) -> None:
        result.failure = statuses.DUPLICATE_SOP_INSTANCE
        result.reason = (
            f"SOP Instance {result.sop_instance_uid} is already stored with different content "
            "and the overwrite policy is 'reject'"
        )


_PATIENT_ID = f"{Tag('PatientID'):08X}"


def _first_text(metadata: dict[str, Any], tag: str) -> str:
    """The first value of *tag* in DICOM JSON *metadata* (PS3.18 F.2), or ""."""
    values = (metadata.get(tag) or {}).get("Value") or [""]
    return str(values[0])[:64]
