"""Bad STOW-RS requests, seeded and reproducible: mutated DICOM files in broken bodies.

Case *n* of seed *s* is always the same request: :func:`case` draws everything from a
``random.Random`` seeded with ``(s, n)``, so one case can be rebuilt alone (``FUZZ_CASE=n``).

The instances are pydicom's own test files (``pydicom/data/test_files``: every encoding, some
deliberately broken) and one 512 x 512 synthetic CT slice, mutated at the byte level:

- byte flips, truncation at any offset, a big file cut inside its Pixel Data;
- an element's length field set huge, odd, zero or one past the end (PS3.5 §7.1.2);
- an explicit VR swapped for another or for garbage (PS3.5 §7.1.2);
- the items of a sequence corrupted (PS3.5 §7.5: item and delimiter tags and lengths);
- an element duplicated (PS3.5 §7.1: tags ascend, each once);
- the Transfer Syntax UID of the File Meta Information swapped (PS3.10 §7.1);
- the preamble, the ``DICM`` prefix or the whole File Meta Information removed.

They are sent in the ``multipart/related`` bodies of :mod:`tests.fuzz.bodies`, well formed or
broken. Each :class:`Case` says which payloads a server may store from it (``payloads``): the
only bytes an acknowledged instance may hold.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import BinaryIO, cast

import pydicom.data
from pacs_common.synthetic import iter_ct_series, to_bytes
from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.filereader import data_element_generator

from tests.fuzz.bodies import BODIES, boundary_for

TEST_FILES = Path(pydicom.data.__file__).parent / "test_files"
#: Transfer syntaxes a swapped File Meta Information may claim (PS3.5 §10, Annex A).
TRANSFER_SYNTAXES = (
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.2",
    "1.2.840.10008.1.2.1.99",
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.70",
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.5",
    "1.2.3.4.5.6.7",
)
#: VRs of PS3.5 table 6.2-1, and some that are not.
VRS = (b"AE", b"CS", b"DS", b"IS", b"LO", b"OB", b"OW", b"SQ", b"UL", b"UN", b"UT", b"ZZ", b"\0\0")
LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT"})
PIXEL_DATA = 0x7FE00010


@dataclass(frozen=True, slots=True)
class Element:
    """Where one data set element lies in its file."""

    tag: int
    vr: str | None  # None in implicit VR
    header: int  # offset of the tag
    value: int  # offset of the value
    length: int  # the encoded length (0xFFFFFFFF: undefined)
    length_at: int  # offset of the length field
    length_size: int  # 2 or 4 bytes
    little: bool


@dataclass(frozen=True, slots=True)
class Source:
    """A DICOM file to mutate, with the elements of its data set."""

    name: str
    data: bytes
    elements: tuple[Element, ...]


@dataclass(slots=True)
class Case:
    """One STOW-RS request: its body, Content-Type, and what it may store."""

    index: int
    kind: str
    body: bytes
    content_type: str
    payloads: set[bytes] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return f"case {self.index} ({self.kind}: {'; '.join(self.notes)})"


def _elements(data: bytes) -> tuple[Element, ...]:
    """The top-level elements of the data set after the File Meta Information (and, for
    sequences, their position: item corruption finds the items by offset)."""
    try:
        ds = dcmread(BytesIO(data), defer_size=64, force=True)
        start = ds.file_meta.get("FileMetaInformationGroupLength")
        ts = ds.file_meta.get("TransferSyntaxUID")
    except Exception:  # noqa: BLE001 - a deliberately broken test file: bytes mutations only
        return ()
    if start is None or ts is None or ts in ("1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.8.1"):
        return ()
    if data[128:132] != b"DICM":  # offsets below assume the preamble and prefix
        return ()
    offset = 132 + 12 + int(start)
    implicit = ts == "1.2.840.10008.1.2"
    little = ts != "1.2.840.10008.1.2.2"
    stream = BytesIO(data)
    stream.seek(offset)
    found = []
    try:
        for raw in data_element_generator(cast(BinaryIO, stream), implicit, little, defer_size=1):
            if not isinstance(raw, RawDataElement):
                continue
            vr = None if implicit else raw.VR
            long_form = implicit or (vr in LONG_VRS)
            size = 4 if long_form else 2
            length_at = raw.value_tell - size
            header = raw.value_tell - (8 if implicit or not long_form else 12)
            found.append(
                Element(raw.tag, vr, header, raw.value_tell, raw.length, length_at, size, little)
            )
    except Exception:  # noqa: BLE001 - keep what was read before the break
        pass
    return tuple(found)


@cache
def sources() -> tuple[Source, ...]:
    """pydicom's test files (sorted by name, so the same on every machine) and a big slice."""
    files = sorted(p for p in TEST_FILES.rglob("*") if p.is_file() and _is_candidate(p))
    found = [Source(str(p.relative_to(TEST_FILES)), p.read_bytes(), ()) for p in files]
    big = to_bytes(next(iter_ct_series(1, 512, 512, seed=7, patient_id="FUZZBIG")))
    found.append(Source("synthetic-ct-512.dcm", big, ()))
    return tuple(Source(s.name, s.data, _elements(s.data)) for s in found)


def _is_candidate(path: Path) -> bool:
    return path.suffix not in (".txt", ".icc", ".py", ".gz", ".bz2", ".json", ".xml") and (
        path.stat().st_size > 0
    )


# -- instance mutations: (rng, source) -> (bytes, note) ------------------------------------------


def _unchanged(_rng: random.Random, src: Source) -> tuple[bytes, str]:
    return src.data, "unchanged"


def _flip(rng: random.Random, src: Source) -> tuple[bytes, str]:
    data = bytearray(src.data)
    count = rng.choice((1, 2, 8, 64))
    for _ in range(count):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return bytes(data), f"{count} bit flips"


def _truncate(rng: random.Random, src: Source) -> tuple[bytes, str]:
    at = rng.randrange(len(src.data))
    return src.data[:at], f"cut at {at}"


def _element(rng: random.Random, src: Source, fit: Callable[[Element], bool]) -> Element | None:
    chosen = [e for e in src.elements if fit(e)]
    return rng.choice(chosen) if chosen else None


def _length(rng: random.Random, src: Source) -> tuple[bytes, str]:
    elem = _element(rng, src, lambda e: True)
    if elem is None:
        return _flip(rng, src)
    top = (1 << (8 * elem.length_size)) - 1
    value = rng.choice((top, top - 1, 0, elem.length | 1, len(src.data) - elem.value + 1, 0x7FFF))
    value = min(value, top)
    data = bytearray(src.data)
    data[elem.length_at : elem.length_at + elem.length_size] = value.to_bytes(
        elem.length_size, "little" if elem.little else "big"
    )
    return bytes(data), f"length of ({elem.tag:08X}) set to {value:#x}"


def _vr(rng: random.Random, src: Source) -> tuple[bytes, str]:
    elem = _element(rng, src, lambda e: e.vr is not None)
    if elem is None:
        return _length(rng, src)
    vr = rng.choice([v for v in VRS if v.decode("latin-1") != elem.vr])
    data = bytearray(src.data)
    data[elem.header + 4 : elem.header + 6] = vr
    return bytes(data), f"VR of ({elem.tag:08X}) {elem.vr} -> {vr!r}"


def _sequence(rng: random.Random, src: Source) -> tuple[bytes, str]:
    """Corrupt an item or delimiter of a sequence: its tag, or its length (PS3.5 §7.5)."""
    elem = _element(rng, src, lambda e: e.vr == "SQ" or (e.vr is None and e.tag in _SQ_TAGS))
    if elem is None:
        return _vr(rng, src)
    end = len(src.data) if elem.length == 0xFFFFFFFF else elem.value + elem.length
    data = bytearray(src.data)
    item_tags = [
        at
        for at in range(elem.value, min(end, len(data) - 8))
        if data[at : at + 4] in (b"\xfe\xff\x00\xe0", b"\xfe\xff\x0d\xe0", b"\xfe\xff\xdd\xe0")
    ]
    if not item_tags:
        return _flip(rng, src)
    at = rng.choice(item_tags)
    how = rng.choice(("tag", "length", "huge"))
    if how == "tag":
        data[at : at + 4] = rng.choice(
            (b"\xfe\xff\xdd\xe0", b"\x08\x00\x18\x00", b"\xff\xff\xff\xff")
        )
    else:
        data[at + 4 : at + 8] = (0xFFFFFFF0 if how == "huge" else rng.randrange(1, 64)).to_bytes(
            4, "little"
        )
    return bytes(data), f"sequence ({elem.tag:08X}) item at {at}: {how}"


def _duplicate(rng: random.Random, src: Source) -> tuple[bytes, str]:
    elem = _element(rng, src, lambda e: e.length != 0xFFFFFFFF and e.tag != PIXEL_DATA)
    if elem is None:
        return _flip(rng, src)
    end = elem.value + elem.length
    whole = src.data[elem.header : end]
    return src.data[:end] + whole + src.data[end:], f"({elem.tag:08X}) twice"


def _transfer_syntax(rng: random.Random, src: Source) -> tuple[bytes, str]:
    """Claim another transfer syntax in the File Meta Information (lengths kept right)."""
    at = src.data.find(b"\x02\x00\x10\x00UI")
    if at < 0:
        return _flip(rng, src)
    old_length = int.from_bytes(src.data[at + 6 : at + 8], "little")
    uid = rng.choice(TRANSFER_SYNTAXES).encode()
    uid += b"\0" * (len(uid) % 2)
    data = src.data[: at + 6] + len(uid).to_bytes(2, "little") + uid
    data += src.data[at + 8 + old_length :]
    group = src.data.find(b"\x02\x00\x00\x00UL\x04\x00")
    if 0 <= group < at:
        value = int.from_bytes(data[group + 8 : group + 12], "little") + len(uid) - old_length
        data = data[: group + 8] + value.to_bytes(4, "little") + data[group + 12 :]
    return data, f"transfer syntax -> {uid.decode().rstrip(chr(0))}"


def _headless(rng: random.Random, src: Source) -> tuple[bytes, str]:
    """Without the preamble, without preamble and DICM, or the bare data set (PS3.10 §7.1)."""
    if src.data[128:132] != b"DICM":
        return _truncate(rng, src)
    how = rng.choice(("preamble", "DICM", "meta"))
    if how == "preamble":
        return src.data[128:], "no preamble"
    if how == "DICM":
        return src.data[132:], "no preamble, no DICM"
    length = int.from_bytes(src.data[140:144], "little")
    return src.data[144 + length :], "no File Meta Information"


def _cut_pixels(rng: random.Random, src: Source) -> tuple[bytes, str]:
    big = next(s for s in sources() if s.name == "synthetic-ct-512.dcm")
    pixels = next(e for e in big.elements if e.tag == PIXEL_DATA)
    at = pixels.value + rng.randrange(1, pixels.length)
    return big.data[:at], f"512x512 CT cut {at - pixels.value} bytes into Pixel Data"


#: What an item tag may be corrupted to: a delimiter, an ordinary tag, nothing valid.
_NOT_AN_ITEM = (b"\xfe\xff\xdd\xe0", b"\x08\x00\x18\x00", b"\xff\xff\xff\xff")


def _deflate_bomb(rng: random.Random, _src: Source) -> tuple[bytes, str]:
    """Deflated Explicit VR Little Endian (PS3.5 A.5) whose data set inflates a thousandfold:
    a private OB value of zeros."""
    return _bomb(rng.choice((16, 64, 256)) << 20), "deflate bomb"


@cache
def _bomb(size: int) -> bytes:
    ds = next(iter_ct_series(1, 8, 8, seed=11, patient_id="FUZZBOMB"))
    ds.add_new(0x00091010, "LO", "FUZZ")  # private creator of block (0009,10xx)
    ds.add_new(0x00091000 | 0x1001, "OB", bytes(size))
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1.99"
    return to_bytes(ds)


def _non_finite(rng: random.Random, src: Source) -> tuple[bytes, str]:
    """A DS (decimal string, PS3.5 table 6.2-1) value that Python reads as NaN or infinity."""
    elem = _element(rng, src, lambda e: e.vr == "DS" and 3 <= e.length <= 16)
    if elem is None:
        return _flip(rng, src)
    text = rng.choice((b"NaN", b"inf", b"-Infinity", b"1e999"))
    text = (text if len(text) <= elem.length else b"NaN").ljust(elem.length, b" ")
    data = src.data[: elem.value] + text + src.data[elem.value + elem.length :]
    return data, f"DS ({elem.tag:08X}) = {text.strip().decode()}"


_SQ_TAGS = frozenset({0x00081140, 0x00081115, 0x00082112, 0x00400275, 0x00081111, 0x00089215})

MUTATIONS: tuple[tuple[Callable[[random.Random, Source], tuple[bytes, str]], int], ...] = (
    (_unchanged, 2),
    (_flip, 4),
    (_truncate, 3),
    (_length, 4),
    (_vr, 3),
    (_sequence, 3),
    (_duplicate, 2),
    (_transfer_syntax, 2),
    (_headless, 2),
    (_cut_pixels, 1),
    (_deflate_bomb, 1),
    (_non_finite, 2),
)


def _fresh_uid(rng: random.Random, src: Source) -> Source:
    """The file with another SOP Instance UID of the same length (in its File Meta Information
    and its data set), so that most cases store new instances rather than duplicates."""
    uid = _sop_instance_uid(src.data)
    head, _, last = uid.rpartition(b".")
    if not head or len(last) < 2:
        return src
    digits = str(rng.randrange(10 ** (len(last) - 1), 10 ** len(last))).encode()
    return Source(src.name, src.data.replace(uid, head + b"." + digits), src.elements)


@cache
def _sop_instance_uid(data: bytes) -> bytes:
    try:
        ds = dcmread(BytesIO(data), stop_before_pixels=True, force=True)
        return str(ds.SOPInstanceUID).encode()
    except Exception:  # noqa: BLE001 - a broken test file keeps its bytes
        return b""


def instance(rng: random.Random) -> tuple[bytes, str]:
    """One (usually) mutated test file, most often under a new SOP Instance UID."""
    src = rng.choice(sources())
    if rng.random() < 0.7:
        src = _fresh_uid(rng, src)
    mutate = rng.choices([m for m, _ in MUTATIONS], weights=[w for _, w in MUTATIONS])[0]
    data, note = mutate(rng, src)
    return data, f"{src.name}: {note}"


# -- cases ---------------------------------------------------------------------------------------


def case(seed: int, index: int) -> Case:
    """Case *index* of *seed*: always the same request."""
    rng = random.Random(f"{seed}:{index}")
    count = rng.choice((1, 1, 1, 2, 3))
    drawn = [instance(rng) for _ in range(count)]
    parts = [data for data, _ in drawn]
    notes = [note for _, note in drawn]
    boundary = boundary_for(rng)
    kind = rng.choices(list(BODIES), weights=[w for _, w in BODIES.values()])[0]
    build = BODIES[kind][0]
    made = build(rng, parts, boundary)
    return Case(index, kind, made.body, made.content_type, made.payloads, notes + made.notes)


def cases(seed: int, count: int) -> Iterator[Case]:
    for index in range(count):
        yield case(seed, index)
