"""STOW-RS reads its body as a stream: memory stays bounded whatever the body size."""

from __future__ import annotations

import struct
import tracemalloc
from collections.abc import Iterator
from io import BytesIO

import httpx
import pydicom
from pacs_api.settings import Settings
from pacs_common.media import multipart_related_type
from pacs_common.synthetic import iter_ct_series
from pydicom.uid import ExplicitVRLittleEndian

from tests.support.server import running_api

SIDE = 8192  # 8192 x 8192 x 16 bit: 128 MiB of Pixel Data in one instance
CHUNK = 1024 * 1024


def _large_instance_stream(boundary: str) -> tuple[Iterator[bytes], int, pydicom.Dataset]:
    """A multipart body holding one CT image with 128 MiB of Pixel Data, produced lazily."""
    ds = next(iter_ct_series(1, 16, 16, seed=11))
    del ds.PixelData
    ds.Rows = ds.Columns = SIDE
    head = BytesIO()
    ds.save_as(head, enforce_file_format=True)
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    length = SIDE * SIDE * 2
    # PS3.5 §7.1.2: Explicit VR Little Endian element header for OW: tag, VR, 2 reserved bytes,
    # 32-bit length.
    pixel_header = struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, length)
    prefix = (f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n").encode()
    suffix = f"\r\n--{boundary}--\r\n".encode()

    def body() -> Iterator[bytes]:
        yield prefix + head.getvalue() + pixel_header
        block = bytes(CHUNK)
        for _ in range(length // CHUNK):
            yield block
        yield suffix

    return body(), length, ds


def test_stow_large_body_memory_bounded(settings: Settings) -> None:
    """A 128 MiB instance sent in a chunked body is stored while the process allocates far
    less than the body (peak traced by tracemalloc, client and server in one process). The
    bound covers the part spool and, on S3, the SDK's multipart-upload part buffer (16 MiB)."""
    boundary = "pacs-cloud-streaming-test"
    body, length, ds = _large_instance_stream(boundary)
    with running_api(settings) as url, httpx.Client(timeout=120) as http:
        tracemalloc.start()
        try:
            response = http.post(
                f"{url}/studies",
                content=body,
                headers={"Content-Type": multipart_related_type("application/dicom", boundary)},
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert response.status_code == 200, response.text
        shown = f"peak {peak / 2**20:.1f} MiB for a {length / 2**20:.0f} MiB body"
        assert peak < 48 * 2**20, shown
        found = http.get(f"{url}/studies/{ds.StudyInstanceUID}/metadata")
        assert found.status_code == 200
        assert found.json()[0]["00080018"]["Value"] == [ds.SOPInstanceUID]
