"""The data sets of the resolved instances, fetched by WADO-RS (PS3.18 §10.4) one at a time.

Instances are fetched per series (one streamed ``.../series/{uid}`` request), or per instance
for an IMAGE level retrieve, always as stored (``transfer-syntax=*``: nothing is transcoded).
Each part is written as received to a file in the retrieval's temporary directory and yielded
as a :class:`~.stored.StoredInstance` naming that file: it is never decoded (only its File
Meta Information is read, PS3.10 §7.1), and pynetdicom sends its data set bytes unchanged.
Only the instance being sent is held, in its file; the file is removed once its sub-operation
is done, the directory when the retrieval ends, whether completed, cancelled or aborted (the
generator is closed). An instance the API does not deliver (gone since the search, or the API
failing) is yielded as :func:`unavailable`, whose C-STORE sub-operation fails and lists it in
the Failed SOP Instance UID List (PS3.4 C.4.3.1.3.2).
"""

from __future__ import annotations

import itertools
import logging
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import httpx
from pacs_common.client import DicomWebClient, DicomWebError
from pacs_common.media import MultipartError
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_file_meta_info

from pacs_bridge.find.levels import QueryLevel
from pacs_bridge.retrieve.resolve import Match
from pacs_bridge.retrieve.stored import StoredInstance

log = logging.getLogger(__name__)

#: WADO-RS Accept transfer-syntax parameter for "as stored" (PS3.18 §8.7.3.5.2).
AS_STORED = "*"
#: Name prefix of a retrieval's temporary directory.
TEMP_PREFIX = "pacs-bridge-retrieve-"


def unavailable(match: Match) -> Dataset:
    """A stand-in for an instance that could not be fetched: it holds the SOP Instance UID only,
    so pynetdicom's C-STORE sub-operation fails and reports the instance as failed."""
    ds = Dataset()
    ds.SOPInstanceUID = match.sop_instance
    return ds


def iter_data_sets(
    dicomweb: DicomWebClient, matches: Iterable[Match], level: QueryLevel
) -> Iterator[Dataset]:
    """One data set per match (or its :func:`unavailable` stand-in), series by series."""
    with tempfile.TemporaryDirectory(prefix=TEMP_PREFIX) as temp:
        fetched = _fetch(dicomweb, matches, level, Path(temp))
        for ds in fetched:
            yield ds
            _remove(ds)


def _fetch(
    dicomweb: DicomWebClient, matches: Iterable[Match], level: QueryLevel, directory: Path
) -> Iterator[Dataset]:
    files = (directory / f"{number}.dcm" for number in itertools.count())
    for series in _by_series(matches):
        if level is QueryLevel.IMAGE:
            for match in series:
                yield from _series_data_sets(dicomweb, [match], files, single=True)
        else:
            yield from _series_data_sets(dicomweb, series, files, single=False)


def _remove(ds: Dataset) -> None:
    """Remove the file of a :class:`StoredInstance` once it is sent (or will not be)."""
    if isinstance(ds, StoredInstance):
        ds.stored_path.unlink(missing_ok=True)


def _by_series(matches: Iterable[Match]) -> list[list[Match]]:
    groups: dict[tuple[str, str], list[Match]] = {}
    for match in matches:
        groups.setdefault((match.study, match.series), []).append(match)
    return list(groups.values())


def _series_data_sets(
    dicomweb: DicomWebClient, series: list[Match], files: Iterator[Path], *, single: bool
) -> Iterator[Dataset]:
    """The wanted instances of one series, in the order the API sends them, each in the next
    of *files* (new files: overwriting one costs its truncation, about three times as much on
    ext4), then stand-ins for those the API did not send."""
    wanted = {match.sop_instance: match for match in series}
    first = series[0]
    if single:
        parts = dicomweb.retrieve_instance(
            first.study, first.series, first.sop_instance, transfer_syntax=AS_STORED
        )
    else:
        parts = dicomweb.retrieve_series(first.study, first.series, transfer_syntax=AS_STORED)
    try:
        for part in parts:
            path = next(files)
            path.write_bytes(part)
            uid = _sop_instance_uid(path)
            if uid is not None and uid in wanted:
                del wanted[uid]
                yield StoredInstance(path, uid)
            else:
                path.unlink()
    except (httpx.HTTPError, DicomWebError, MultipartError) as exc:
        log.warning("WADO-RS of series %s failed: %s", first.series, exc)
    for match in wanted.values():
        log.warning("instance %s not delivered by the API", match.sop_instance)
        yield unavailable(match)


def _sop_instance_uid(path: Path) -> str | None:
    """The Media Storage SOP Instance UID of the Part 10 file *path* (PS3.10 §7.1), or None
    when it is not one."""
    try:
        uid = read_file_meta_info(path).get("MediaStorageSOPInstanceUID")
    except (InvalidDicomError, EOFError, ValueError) as exc:
        log.warning("WADO-RS part is not a DICOM Part 10 object: %s", exc)
        return None
    if not uid:
        log.warning("WADO-RS part has no Media Storage SOP Instance UID")
        return None
    return str(uid)
