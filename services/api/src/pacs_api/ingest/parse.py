"""Reading a received Part 10 object without loading its bulk data (PS3.10 §7).

The header is read with pydicom up to, not into, the Pixel Data; values longer than the bulk data
threshold are deferred (never read). What retrieval needs is computed here, once, at ingest:

- the index columns (patient, study, series and instance attributes QIDO matches on);
- the instance's DICOM JSON (PS3.18 Annex F) with bulk data replaced by BulkDataURI (F.2.6);
- the byte offset and length, in the stored object, of each top-level bulk data element.

Every check that makes an object unacceptable raises :class:`InvalidInstance` with the C-STORE
status (PS3.4 B.2.3) that STOW-RS reports as FailureReason (PS3.18 §10.5.3). An image whose
Pixel Data is incomplete (:mod:`pacs_common.pixel_check`) raises the subclass
:class:`IncompletePixelData`, which carries what the header says the object is: the ingest
keeps such objects in the quarantine (:mod:`pacs_api.quarantine`).
"""

from __future__ import annotations

import base64
import json
import math
import zlib
from dataclasses import dataclass
from typing import IO, Any, BinaryIO, cast

from pacs_common import pixel_check, statuses
from pacs_common.pixel_check import PIXEL_DATA_TAGS, Incomplete
from pacs_common.uids import InvalidUIDError, validate_uid
from pydicom import dcmread
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_dataset, read_preamble
from pydicom.tag import BaseTag

#: Marks a BulkDataURI in stored metadata; replaced by the service root when it is served.
BULK_MARK = "pacs-bulk:"
#: VRs whose values are bulk data when long (PS3.18 §8.6.3, F.2.6).
BULK_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
UNDEFINED_LENGTH = 0xFFFFFFFF
DEFLATED = frozenset({"1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.8.1"})
#: The largest data set a deflated object (PS3.5 A.5) may inflate to. pydicom inflates it whole,
#: in memory (about three times its size at peak): a 256 KiB body inflating to 256 MiB of zeros
#: held the server at 900 MiB. Deflate is used for structured reports and small images.
MAX_INFLATED_BYTES = 32 * 1024 * 1024
_INFLATE_CHUNK = 1024 * 1024


class InvalidInstance(ValueError):
    """The object cannot be stored; *status* is its C-STORE failure status."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Identity:
    """Who and what an object is, as its header says (validated UIDs)."""

    sop_class_uid: str
    sop_instance_uid: str
    study_uid: str
    series_uid: str
    patient_id: str = ""
    patient_name: str = ""
    sender_ae: str = ""


class IncompletePixelData(InvalidInstance):
    """An image whose Pixel Data is missing, truncated or shorter than its header describes
    (:mod:`pacs_common.pixel_check`): not stored in the archive, kept in the quarantine."""

    def __init__(self, problem: Incomplete, identity: Identity) -> None:
        super().__init__(problem.status, problem.reason)
        self.problem = problem
        self.identity = identity


@dataclass(slots=True)
class ParsedInstance:
    sop_class_uid: str
    sop_instance_uid: str
    study_uid: str
    series_uid: str
    transfer_syntax_uid: str
    metadata: dict[str, Any]
    bulk: dict[str, tuple[int, int]]
    sender_ae: str = ""

    def metadata_text(self) -> str:
        return json.dumps(self.metadata, separators=(",", ":"), ensure_ascii=False)


def read_instance(
    file: IO[bytes], size: int, *, bulk_threshold: int = 1024, check_pixels: bool = True
) -> ParsedInstance:
    """Read and check one Part 10 object from *file* (positioned at its start).

    An image with incomplete Pixel Data raises :class:`IncompletePixelData`, unless
    *check_pixels* is false (an administrator releasing it from the quarantine).

    pydicom converts values only when they are used, so a corrupt value (an unknown VR, a
    length past its element) can raise while the object is checked, not only while its header
    is read: whatever it raises means the object cannot be understood (PS3.4 B.2.3)."""
    try:
        return _read_instance(file, size, bulk_threshold, check_pixels)
    except InvalidInstance:
        raise
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types on corrupt input
        raise InvalidInstance(
            statuses.CANNOT_UNDERSTAND, f"the DICOM data set cannot be parsed: {exc}"
        ) from None


def _read_instance(
    file: IO[bytes], size: int, bulk_threshold: int, check_pixels: bool
) -> ParsedInstance:
    _check_inflated_size(file)
    try:
        ds = _read_header(file, max(bulk_threshold, 256))
    except (InvalidDicomError, EOFError) as exc:
        raise InvalidInstance(
            statuses.CANNOT_UNDERSTAND, f"not a DICOM Part 10 object (PS3.10 §7.1): {exc}"
        ) from None
    except Exception as exc:  # pydicom raises many types on corrupt input
        raise InvalidInstance(
            statuses.CANNOT_UNDERSTAND, f"the DICOM data set cannot be parsed: {exc}"
        ) from None

    meta = getattr(ds, "file_meta", None)
    ts = str(getattr(meta, "TransferSyntaxUID", "") or "")
    if not ts:
        raise InvalidInstance(
            statuses.CANNOT_UNDERSTAND,
            "the File Meta Information has no Transfer Syntax UID (PS3.10 §7.1)",
        )
    uids = {
        keyword: _required_uid(ds, keyword)
        for keyword in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
    }
    _check_uid(ts, "TransferSyntaxUID")
    if ts not in DEFLATED:
        _check_not_truncated(ds, size)

    pixel, problem = _pixel_data(file, ds, ts, size)
    if problem is not None and check_pixels:
        raise IncompletePixelData(problem, _identity(ds, meta, uids))
    if pixel is not None and pixel.offset is not None:
        _read_trailing(file, ds, ts, size, max(bulk_threshold, 256))

    metadata, bulk = _metadata(ds, bulk_threshold, uids)
    if pixel is not None:
        key = f"{pixel.tag:08X}"
        metadata[key] = {"vr": pixel.vr, "BulkDataURI": _bulk_uri(uids, key)}
        if pixel.offset is not None:
            bulk[key] = (pixel.offset, pixel.length)
    return ParsedInstance(
        sop_class_uid=uids["SOPClassUID"],
        sop_instance_uid=uids["SOPInstanceUID"],
        study_uid=uids["StudyInstanceUID"],
        series_uid=uids["SeriesInstanceUID"],
        transfer_syntax_uid=ts,
        metadata=metadata,
        bulk=bulk,
        sender_ae=_sender_ae(meta),
    )


def _identity(ds: Dataset, meta: Dataset | None, uids: dict[str, str]) -> Identity:
    def text(keyword: str) -> str:
        try:
            return str(ds.get(keyword, "") or "").strip()
        except Exception:  # noqa: BLE001 - a garbled value is shown as absent
            return ""

    return Identity(
        sop_class_uid=uids["SOPClassUID"],
        sop_instance_uid=uids["SOPInstanceUID"],
        study_uid=uids["StudyInstanceUID"],
        series_uid=uids["SeriesInstanceUID"],
        patient_id=text("PatientID")[:64],
        patient_name=text("PatientName")[:324],
        sender_ae=_sender_ae(meta),
    )


def _sender_ae(meta: Dataset | None) -> str:
    """The AE title the object came from, as its File Meta Information states it (PS3.10
    table 7.1-1): the Sending Application Entity Title (0002,0017) of the AE that sent it over
    the network (the DIMSE bridge writes the calling AE title there), else the Source
    Application Entity Title (0002,0016) of the AE that wrote the file."""
    for keyword in ("SendingApplicationEntityTitle", "SourceApplicationEntityTitle"):
        value = getattr(meta, keyword, None)
        if isinstance(value, str) and value.strip():
            return value.strip()[:16]
    return ""


def _check_inflated_size(file: IO[bytes]) -> None:
    """Refuse a deflated object whose data set would inflate past :data:`MAX_INFLATED_BYTES`,
    before pydicom inflates it: the File Meta Information (always Explicit VR Little Endian,
    PS3.10 §7.1) is read, then the rest inflated in bounded steps and counted, never kept."""
    file.seek(0)
    try:
        read_preamble(cast(BinaryIO, file), True)
        meta = read_dataset(
            cast(BinaryIO, file), False, True, stop_when=lambda tag, _vr, _length: tag.group != 2
        )
        syntax = str(meta.get("TransferSyntaxUID", "") or "")
    except Exception:  # noqa: BLE001 - not readable as Part 10: the header read says why
        syntax = ""
    if syntax in DEFLATED:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        inflated = 0
        while chunk := file.read(_INFLATE_CHUNK):
            try:
                inflated += len(inflater.decompress(chunk, MAX_INFLATED_BYTES + 1 - inflated))
                while inflater.unconsumed_tail and inflated <= MAX_INFLATED_BYTES:
                    tail = inflater.unconsumed_tail
                    inflated += len(inflater.decompress(tail, MAX_INFLATED_BYTES + 1 - inflated))
            except zlib.error as exc:
                raise InvalidInstance(
                    statuses.CANNOT_UNDERSTAND, f"the deflated data set cannot be inflated: {exc}"
                ) from None
            if inflated > MAX_INFLATED_BYTES:
                raise InvalidInstance(
                    statuses.OUT_OF_RESOURCES,
                    f"the deflated data set inflates to more than {MAX_INFLATED_BYTES} bytes "
                    "(PS3.5 A.5); not read",
                )
    file.seek(0)


def _read_header(file: IO[bytes], defer_size: int) -> Dataset:
    """Read up to the Pixel Data. A File Meta Information group without the 128-byte preamble
    and ``DICM`` prefix (as some DICOMweb clients send, dicomweb-client among them) is accepted:
    the meta group still states the transfer syntax. Anything else without the prefix is not
    DICOM."""
    try:
        return dcmread(file, stop_before_pixels=True, defer_size=defer_size)
    except InvalidDicomError:
        file.seek(0)
        if file.read(2) != b"\x02\x00":  # group 0002 (little endian, PS3.10 §7.1)
            raise
        file.seek(0)
        return dcmread(file, stop_before_pixels=True, defer_size=defer_size, force=True)


@dataclass(frozen=True, slots=True)
class _PixelData:
    tag: int
    vr: str
    offset: int | None  # None when the stored bytes are deflated (no direct offset)
    length: int  # for encapsulated data: items and Sequence Delimitation Item included


def _check_uid(value: str, keyword: str) -> str:
    try:
        return validate_uid(value, what=keyword)
    except InvalidUIDError as exc:
        raise InvalidInstance(statuses.DATA_SET_DOES_NOT_MATCH_SOP_CLASS, str(exc)) from None


def _required_uid(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    if value is None or str(value).strip() == "":
        raise InvalidInstance(
            statuses.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
            f"{keyword} is missing or empty (Type 1, PS3.3 C.12.1 / C.7.2.1 / C.7.3.1)",
        )
    return _check_uid(str(value).strip(), keyword)


def _pixel_data(
    file: IO[bytes], ds: Dataset, ts: str, size: int
) -> tuple[_PixelData | None, Incomplete | None]:
    """Find the Pixel Data element the header read stopped before, without reading its value,
    and check it is complete (:func:`pacs_common.pixel_check.check`).

    pydicom leaves *file* at the element's tag when ``stop_before_pixels`` stops (PS3.5 §7.1
    encodes tag, VR and length before the value); an encapsulated value is walked item header by
    item header to its Sequence Delimitation Item (PS3.5 §A.4). *file* is left after the value
    as present in the object.
    """
    if ts in DEFLATED:
        file.seek(0)
        whole = dcmread(file)
        problem = pixel_check.check_dataset(whole)
        for tag in PIXEL_DATA_TAGS:
            if tag in whole:
                return _PixelData(tag, whole[tag].VR, None, 0), problem
        return None, problem
    element = None
    if file.tell() < size:
        element = pixel_check.read_pixel_element(cast(BinaryIO, file), ts)
    problem, length = pixel_check.check(ds, element, cast(BinaryIO, file), size)
    if element is None or element.length == 0 or length == 0:
        return None, problem
    file.seek(element.value_offset + length)
    # PS3.5 A.1: in Implicit VR Little Endian, Pixel Data is OW.
    vr = element.vr or str(dictionary_VR(element.tag))
    return _PixelData(element.tag, vr, element.value_offset, length), problem


def _read_trailing(file: IO[bytes], ds: Dataset, ts: str, size: int, defer_size: int) -> None:
    """Add the elements that follow the Pixel Data (PS3.10 §7.1: (FFFA,FFFA) Digital
    Signatures Sequence, (FFFC,FFFC) Data Set Trailing Padding) to *ds*, values deferred.

    *file* is positioned just after the Pixel Data element."""
    if file.tell() >= size:
        return
    try:
        trailing = read_dataset(
            cast(BinaryIO, file),
            ts == "1.2.840.10008.1.2",
            ts != "1.2.840.10008.1.2.2",
            defer_size=defer_size,
        )
    except Exception as exc:  # noqa: BLE001 - corrupt element encoding
        raise InvalidInstance(
            statuses.CANNOT_UNDERSTAND, f"the elements after Pixel Data cannot be read: {exc}"
        ) from None
    for tag, elem in trailing._dict.items():
        ds._dict[tag] = elem
    _check_not_truncated(ds, size)


def _check_not_truncated(ds: Dataset, size: int) -> None:
    """A defined-length element running past the end of the object means a truncated file."""
    for elem in ds._dict.values():
        if isinstance(elem, RawDataElement) and not elem.length == UNDEFINED_LENGTH:
            if elem.value_tell + elem.length > size:
                raise InvalidInstance(
                    statuses.CANNOT_UNDERSTAND,
                    f"the object is truncated inside element {elem.tag}",
                )


def _bulk_uri(uids: dict[str, str], key: str) -> str:
    return (
        f"{BULK_MARK}/studies/{uids['StudyInstanceUID']}/series/{uids['SeriesInstanceUID']}"
        f"/instances/{uids['SOPInstanceUID']}/bulkdata/{key}"
    )


#: Elements already converted, by their encoded form. The instances of a series repeat most of
#: their header byte for byte (patient, study, series, equipment, image plane), so pydicom
#: converts each distinct value once per process instead of once per instance (measured: the
#: conversion is ~80 % of reading a CT header). Bounded: emptied when full.
_CONVERTED: dict[tuple[Any, ...], dict[str, Any]] = {}
_CONVERTED_MAX = 8192
_CACHED_VALUE_MAX = 256


def _metadata(
    ds: Dataset, threshold: int, uids: dict[str, str]
) -> tuple[dict[str, Any], dict[str, tuple[int, int]]]:
    """The instance's DICOM JSON without bulk data, and where its bulk data lies (F.2.6)."""
    out: dict[str, Any] = {}
    bulk: dict[str, tuple[int, int]] = {}
    charset = str(ds.get("SpecificCharacterSet", ""))
    for tag, elem in ds._dict.items():
        key = f"{tag:08X}"
        if not isinstance(elem, RawDataElement):
            out[key] = _element_json(ds, tag)
            continue
        vr = elem.VR or _dictionary_vr(tag)
        if vr in BULK_VRS and elem.length > threshold and elem.length != UNDEFINED_LENGTH:
            out[key] = {"vr": vr, "BulkDataURI": _bulk_uri(uids, key)}
            bulk[key] = (elem.value_tell, elem.length)
            continue
        value = elem.value
        if elem.VR is None or vr == "SQ" or value is None or len(value) > _CACHED_VALUE_MAX:
            # Implicit VR may need the data set to resolve it (US or SS); sequences and long
            # values are converted every time.
            out[key] = _element_json(ds, tag)
            continue
        cache_key = (tag, vr, value, elem.is_little_endian, charset)
        converted = _CONVERTED.get(cache_key)
        if converted is None:
            converted = _element_json(ds, tag)
            if len(_CONVERTED) >= _CONVERTED_MAX:
                _CONVERTED.clear()
            _CONVERTED[cache_key] = converted
        out[key] = converted
    return out, bulk


def _dictionary_vr(tag: int) -> str:
    try:
        return str(dictionary_VR(tag)).split(" or ")[0]
    except KeyError:
        return "UN"


def _element_json(ds: Dataset, tag: BaseTag) -> dict[str, Any]:
    """The element in the DICOM JSON Model (PS3.18 F.2). A value pydicom cannot convert, or a
    number JSON cannot carry (NaN, infinity: RFC 8259 §6; a DS "NaN" or an FD NaN), is kept as
    its raw bytes: VR UN with InlineBinary (F.2.7), so that the metadata stays valid JSON."""
    raw = ds._dict[tag]
    raw_value = raw.value if isinstance(raw, RawDataElement) else None
    try:
        elem: DataElement = ds[tag]
        result: dict[str, Any] = elem.to_json_dict(None, 2**62)
        if _finite(result):
            return result
        if raw_value is None:  # already converted: encode the value pydicom holds
            raw_value = elem.value if isinstance(elem.value, bytes) else str(elem.value).encode()
    except Exception:  # noqa: BLE001 - a value pydicom cannot convert is kept as raw bytes
        pass
    return {"vr": "UN", "InlineBinary": base64.b64encode(raw_value or b"").decode("ascii")}


def _finite(value: Any) -> bool:
    """Whether every number in a DICOM JSON value is one JSON can carry (RFC 8259 §6)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return True
