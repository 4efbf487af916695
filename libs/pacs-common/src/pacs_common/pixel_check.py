"""Is an image's Pixel Data all there? Decided from the header, without decoding a pixel.

The API checks every received object before it stores it (an incomplete image goes to the
quarantine instead of the archive); the DIMSE bridge checks every instance before it routes it
on (an incomplete one is not forwarded). Both use :func:`check`; the bridge reads a whole file
with :func:`check_file`.

An image is incomplete when

- its Pixel Data is missing or empty (Type 1 in every image IOD, PS3.3 C.7.6.3);
- the Pixel Data value runs past the end of the object (a truncated file, PS3.5 §7.1.1: the
  value has the length the element declares);
- native (uncompressed) Pixel Data is shorter than Rows x Columns x Samples per Pixel x Number
  of Frames x Bits Allocated / 8 (PS3.5 §8.1.1, PS3.3 C.7.6.3.1; computed by pydicom's
  :func:`~pydicom.pixels.utils.get_expected_length`, which knows the 4:2:2 and 1-bit cases);
- encapsulated Pixel Data (PS3.5 §A.4) is not a Basic Offset Table item, at least one fragment
  item and a Sequence Delimitation Item, each item inside the object.

Nothing here reads a value: element headers and item headers are read, values are skipped with
``seek``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import StrEnum
from typing import BinaryIO

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.pixels.utils import get_expected_length
from pydicom.tag import Tag
from pydicom.uid import UID

from pacs_common import statuses

PIXEL_DATA_TAGS = frozenset({Tag("FloatPixelData"), Tag("DoubleFloatPixelData"), Tag("PixelData")})
UNDEFINED_LENGTH = 0xFFFFFFFF
IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"
DEFLATED = frozenset({"1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.8.1"})
#: PS3.5 §7.5: item, item delimitation and sequence delimitation tags.
_ITEM = 0xFFFEE000
_SEQUENCE_DELIMITER = 0xFFFEE0DD
#: PS3.5 §7.1.2: explicit VRs whose length is 4 bytes after 2 reserved ones.
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN"})
_LONG_VRS |= {b"UR", b"UT", b"UV"}


class Kind(StrEnum):
    MISSING = "missing"
    TRUNCATED = "truncated"
    SHORT = "short"
    UNDELIMITED = "undelimited"


@dataclass(frozen=True, slots=True)
class Incomplete:
    """Why an image's Pixel Data is incomplete."""

    kind: Kind
    reason: str

    @property
    def status(self) -> int:
        """The C-STORE failure status (PS3.4 B.2.3) STOW-RS reports it with: 0xA900 for a
        data set whose header promises pixels it lacks, 0xC000 for an object that cannot be
        read to its end."""
        if self.kind in (Kind.MISSING, Kind.SHORT):
            return statuses.DATA_SET_DOES_NOT_MATCH_SOP_CLASS
        return statuses.CANNOT_UNDERSTAND


@dataclass(frozen=True, slots=True)
class PixelElement:
    """A Pixel Data element as encoded: tag, VR, declared length, where its value starts."""

    tag: int
    vr: str
    length: int
    value_offset: int

    @property
    def encapsulated(self) -> bool:
        return self.length == UNDEFINED_LENGTH


def is_image(sop_class_uid: str) -> bool:
    """An image SOP class (PS3.4 B.5: the "... Image Storage" classes), whose IOD requires
    Pixel Data."""
    return "Image Storage" in UID(sop_class_uid).name


def read_pixel_element(file: BinaryIO, transfer_syntax: str) -> PixelElement | None:
    """The element header at *file*'s position (PS3.5 §7.1), when it is a Pixel Data element;
    *file* is left at its value (or where it was, for another element)."""
    start = file.tell()
    little = transfer_syntax != EXPLICIT_VR_BIG_ENDIAN
    order = "<" if little else ">"
    head = file.read(8)
    if len(head) < 8:
        file.seek(start)
        return None
    group, element = struct.unpack(f"{order}HH", head[:4])
    tag = group << 16 | element
    if tag not in PIXEL_DATA_TAGS:
        file.seek(start)
        return None
    vr_bytes = head[4:6]
    implicit = transfer_syntax == IMPLICIT_VR_LITTLE_ENDIAN
    if implicit or not (vr_bytes.isalpha() and vr_bytes.isupper()):
        # Implicit VR, or a data set encoded implicitly despite its explicit transfer syntax
        # (pydicom reads those too: it checks the VR bytes the same way).
        (length,) = struct.unpack(f"{order}L", head[4:])
        vr = "OW" if tag == Tag("PixelData") else ("OF" if tag == Tag("FloatPixelData") else "OD")
        return PixelElement(tag, vr, length, start + 8)
    if vr_bytes in _LONG_VRS:
        more = file.read(4)
        if len(more) < 4:
            return PixelElement(tag, vr_bytes.decode("ascii", "replace"), 4, start + 12)
        (length,) = struct.unpack(f"{order}L", more)
        return PixelElement(tag, vr_bytes.decode("ascii"), length, start + 12)
    (length,) = struct.unpack(f"{order}H", head[6:8])
    return PixelElement(tag, vr_bytes.decode("ascii", "replace"), length, start + 8)


def check(
    ds: Dataset, element: PixelElement | None, file: BinaryIO, size: int
) -> tuple[Incomplete | None, int]:
    """Check the Pixel Data of the object in *file* (*size* bytes), whose header up to the
    Pixel Data is *ds* and whose Pixel Data element (if any) is *element*.

    Returns the problem (``None`` when complete, or when the object is not an image and has no
    Pixel Data) and the length of the element's value as present in the object: for
    encapsulated data, up to and including the Sequence Delimitation Item."""
    sop_class = str(ds.get("SOPClassUID", "") or "")
    if element is None or element.length == 0:
        if sop_class and is_image(sop_class):
            name = UID(sop_class).name
            return Incomplete(
                Kind.MISSING,
                f"{name} instance without Pixel Data (PS3.3 C.7.6.3: Type 1 in image IODs)",
            ), 0
        return None, 0
    present = max(size - element.value_offset, 0)
    if element.encapsulated:
        return _walk_encapsulated(file, element.value_offset, size)
    if element.length > present:
        return Incomplete(
            Kind.TRUNCATED,
            f"the object is truncated: Pixel Data declares {element.length} bytes, "
            f"{present} are present (PS3.5 §7.1.1)",
        ), present
    expected = expected_length(ds)
    if expected is not None and element.length < expected:
        return Incomplete(
            Kind.SHORT,
            f"Pixel Data holds {element.length} bytes, the header describes {expected} "
            f"(Rows x Columns x Samples per Pixel x Number of Frames x Bits Allocated / 8, "
            f"PS3.5 §8.1.1)",
        ), element.length
    return None, element.length


def expected_length(ds: Dataset) -> int | None:
    """Bytes of native Pixel Data the header describes (PS3.5 §8.1.1), without the padding to
    an even length; ``None`` when the header lacks or garbles what it takes."""
    try:
        if int(ds.get("NumberOfFrames", 1) or 1) < 1:
            return None
        expected = int(get_expected_length(ds, unit="bytes"))
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
    return expected if expected > 0 else None


def _walk_encapsulated(file: BinaryIO, start: int, size: int) -> tuple[Incomplete | None, int]:
    """Walk the items of encapsulated Pixel Data (PS3.5 §A.4) from *start*, item header by
    item header, up to the Sequence Delimitation Item."""
    position, items = start, 0
    while True:
        file.seek(position)
        head = file.read(8)
        if len(head) < 8:
            return Incomplete(
                Kind.UNDELIMITED,
                f"encapsulated Pixel Data ends after {items} item(s) without a Sequence "
                "Delimitation Item (PS3.5 §A.4): the object is truncated",
            ), size - start
        group, element, length = struct.unpack("<HHL", head)
        tag = group << 16 | element
        if tag == _SEQUENCE_DELIMITER:
            end = position + 8
            if items < 2:
                return Incomplete(
                    Kind.MISSING,
                    "encapsulated Pixel Data without a fragment after its Basic Offset Table "
                    "(PS3.5 §A.4)",
                ), end - start
            file.seek(end)
            return None, end - start
        if tag != _ITEM or length == UNDEFINED_LENGTH:
            return Incomplete(
                Kind.UNDELIMITED,
                f"encapsulated Pixel Data holds ({group:04X},{element:04X}) where an item or "
                f"the Sequence Delimitation Item belongs, at byte {position} (PS3.5 §A.4)",
            ), size - start
        if position + 8 + length > size:
            return Incomplete(
                Kind.TRUNCATED,
                f"the object is truncated inside fragment {items} of the encapsulated Pixel "
                f"Data: it declares {length} bytes, {max(size - position - 8, 0)} are present "
                "(PS3.5 §A.4)",
            ), size - start
        items += 1
        position += 8 + length


def check_file(file: BinaryIO, size: int) -> Incomplete | None:
    """Check the Part 10 object in *file* (positioned at its start, *size* bytes): the header
    is read up to the Pixel Data, then :func:`check`. Not for deflated transfer syntaxes,
    whose Pixel Data has no offset (their objects are read whole)."""
    ds = dcmread(file, stop_before_pixels=True, force=True)
    ts = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "") or "")
    if ts in DEFLATED:
        file.seek(0)
        return check_dataset(dcmread(file, force=True))
    element = read_pixel_element(file, ts)
    return check(ds, element, file, size)[0]


def check_dataset(ds: Dataset) -> Incomplete | None:
    """Check a data set read whole (a deflated object): missing or short native Pixel Data."""
    value = next((ds[tag].value for tag in PIXEL_DATA_TAGS if tag in ds), None)
    sop_class = str(ds.get("SOPClassUID", "") or "")
    if not value:
        if sop_class and is_image(sop_class):
            return Incomplete(
                Kind.MISSING,
                f"{UID(sop_class).name} instance without Pixel Data (PS3.3 C.7.6.3)",
            )
        return None
    expected = expected_length(ds)
    if expected is not None and len(value) < expected:
        return Incomplete(
            Kind.SHORT,
            f"Pixel Data holds {len(value)} bytes, the header describes {expected} (PS3.5 §8.1.1)",
        )
    return None
