"""multipart/related encoding and decoding (PS3.18 §8.6.1.2, RFC 2046 §5.1)."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from pacs_common.media import (
    APPLICATION_DICOM,
    APPLICATION_DICOM_JSON,
    MultipartError,
    Part,
    encode_multipart_related,
    iter_multipart_related,
    parse_content_type,
)

BOUNDARY = "test-boundary-1234"


def chunked(body: bytes, sizes: Iterator[int]) -> Iterator[bytes]:
    """*body* cut into chunks of the given sizes (the last one takes the rest)."""
    at = 0
    while at < len(body):
        size = next(sizes, len(body))
        yield body[at : at + size]
        at += size


def round_trip(parts: list[bytes], chunk_size: int = 65536, **kwargs: str) -> list[Part]:
    body, header = encode_multipart_related(parts, **kwargs)
    media_type, params = parse_content_type(header)
    assert media_type == "multipart/related"
    whole = b"".join(body)
    return list(
        iter_multipart_related(chunked(whole, iter(lambda: chunk_size, None)), params["boundary"])
    )


def test_encode_content_type_header_names_type_and_boundary() -> None:
    _, header = encode_multipart_related([b"x"], boundary=BOUNDARY)
    assert parse_content_type(header) == (
        "multipart/related",
        {"type": APPLICATION_DICOM, "boundary": BOUNDARY},
    )


def test_encode_body_layout_rfc2046() -> None:
    body, _ = encode_multipart_related([b"one", b"two"], boundary=BOUNDARY)
    assert b"".join(body) == (
        b"--test-boundary-1234\r\nContent-Type: application/dicom\r\n\r\none\r\n"
        b"--test-boundary-1234\r\nContent-Type: application/dicom\r\n\r\ntwo\r\n"
        b"--test-boundary-1234--\r\n"
    )


def test_encode_is_lazy() -> None:
    consumed: list[int] = []

    def parts() -> Iterator[bytes]:
        for i in range(3):
            consumed.append(i)
            yield bytes([i])

    body, _ = encode_multipart_related(parts())
    assert consumed == []
    next(body)
    assert consumed == [0]


def test_round_trip_keeps_bytes_and_headers() -> None:
    parts = round_trip([b"first", b"", b"third"], content_type=APPLICATION_DICOM_JSON)
    assert [p.content for p in parts] == [b"first", b"", b"third"]
    assert all(p.content_type == APPLICATION_DICOM_JSON for p in parts)


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 64, 4096])
def test_round_trip_boundary_like_bytes_any_chunking(chunk_size: int) -> None:
    body, header = encode_multipart_related([b"probe"])
    boundary = parse_content_type(header)[1]["boundary"].encode()
    tricky = [
        b"x--" + boundary,  # the delimiter, but not at a line start
        b"x--" + boundary + b"--\r\n",
        b"\r\n--" + boundary[:-1],  # a delimiter cut one byte short, at the part's end
        b"\r\n--" + boundary[:-1] + b"\r\n--" + boundary[:5] + b"\r\n",
        b"\r\n\r\n--\r\n--\r\n",
        b"\r",
        b"\n",
        b"\r\n",
        boundary,
        b"abc\r\n-",
    ]
    decoded = round_trip(tricky, chunk_size=chunk_size, boundary=boundary.decode())
    assert [p.content for p in decoded] == tricky


def test_round_trip_many_parts_random_chunks() -> None:
    rng = random.Random(7)
    parts = [rng.randbytes(rng.randrange(0, 3000)) + b"\r\n--" for _ in range(500)]
    body, header = encode_multipart_related(parts)
    whole = b"".join(body)
    sizes = iter(lambda: rng.randrange(1, 5000), None)
    boundary = parse_content_type(header)[1]["boundary"]
    decoded = list(iter_multipart_related(chunked(whole, sizes), boundary))
    assert [p.content for p in decoded] == parts


def test_round_trip_5_mb_part() -> None:
    big = random.Random(5).randbytes(5 * 1024 * 1024)
    decoded = round_trip([b"small", big, b"tail"], chunk_size=65536)
    assert [len(p.content) for p in decoded] == [5, len(big), 4]
    assert decoded[1].content == big


def test_decode_yields_parts_before_the_body_ends() -> None:
    body, header = encode_multipart_related([b"a" * 100, b"b" * 100])
    chunks = list(body)
    boundary = parse_content_type(header)[1]["boundary"]
    fed: list[int] = []

    def source() -> Iterator[bytes]:
        for i, chunk in enumerate(chunks):
            fed.append(i)
            yield chunk

    parts = iter_multipart_related(source(), boundary)
    assert next(parts).content == b"a" * 100
    assert len(fed) < len(chunks)


def test_decode_skips_preamble_and_epilogue() -> None:
    body = (
        b"This is a preamble.\r\n"
        b"--b1\r\nContent-Type: application/dicom\r\nContent-Location: /x\r\n\r\nDATA\r\n"
        b"--b1--\r\nepilogue"
    )
    (part,) = iter_multipart_related([body[:10], body[10:]], "b1")
    assert part.content == b"DATA"
    assert part.headers == {"content-type": "application/dicom", "content-location": "/x"}


def test_decode_truncated_body_raises() -> None:
    body, header = encode_multipart_related([b"x" * 1000])
    whole = b"".join(body)
    boundary = parse_content_type(header)[1]["boundary"]
    with pytest.raises(MultipartError, match="close delimiter"):
        list(iter_multipart_related([whole[:-20]], boundary))


def test_decode_wrong_boundary_raises() -> None:
    body, _ = encode_multipart_related([b"x"], boundary="right")
    with pytest.raises(MultipartError):
        list(iter_multipart_related(body, "wrong"))


def test_decode_empty_body_raises() -> None:
    with pytest.raises(MultipartError):
        list(iter_multipart_related([], "b1"))


def test_encode_rejects_part_containing_delimiter() -> None:
    body, _ = encode_multipart_related([b"ok", b"bad\r\n--b1\r\n"], boundary="b1")
    with pytest.raises(MultipartError, match="delimiter"):
        list(body)


@pytest.mark.parametrize("boundary", ["", "has space", "x" * 71, 'quo"te'])
def test_encode_rejects_invalid_boundary(boundary: str) -> None:
    with pytest.raises(MultipartError):
        encode_multipart_related([b"x"], boundary=boundary)


def test_parse_content_type_quoted_and_case() -> None:
    assert parse_content_type(
        'Multipart/Related; Type="application/dicom"; BOUNDARY="a b"; transfer-syntax=*'
    ) == (
        "multipart/related",
        {"type": "application/dicom", "boundary": "a b", "transfer-syntax": "*"},
    )
