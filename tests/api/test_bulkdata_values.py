"""Every BulkDataURI of the metadata resolves to exactly the element's value (PS3.18 §10.4.1.1.5,
F.2.6): native and encapsulated Pixel Data, overlays, private binary elements."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from fastapi.testclient import TestClient
from pacs_common.media import iter_multipart_related, parse_content_type
from pydicom.data import get_testdata_file

from tests.support.dicom import stow

FILES = [
    "CT_small.dcm",  # native Pixel Data and a private OB element
    "MR_small_bigendian.dcm",  # big endian native
    "examples_overlay.dcm",  # Overlay Data (6000,3000)
    "JPEG2000.dcm",  # encapsulated, one frame
    "SC_rgb_rle_2frame.dcm",  # encapsulated, two frames
]


@pytest.mark.parametrize("name", FILES)
def test_every_bulk_data_uri_resolves_to_the_value(client: TestClient, name: str) -> None:
    """Each BulkDataURI answers the bytes pydicom reads for that element (for encapsulated
    Pixel Data: its items, without the Sequence Delimitation Item)."""
    data = Path(str(get_testdata_file(name))).read_bytes()
    assert stow(client, [data]).status_code == 200
    ds = pydicom.dcmread(io.BytesIO(data))
    instance = (
        f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )
    [metadata] = client.get(f"{instance}/metadata").json()
    uris = {key: item["BulkDataURI"] for key, item in metadata.items() if "BulkDataURI" in item}
    assert "7FE00010" in uris
    for key, uri in uris.items():
        response = client.get(uri.removeprefix("http://testserver"))
        assert response.status_code == 200, (key, response.text)
        _, params = parse_content_type(response.headers["content-type"])
        [part] = list(iter_multipart_related([response.content], params["boundary"]))
        assert part.content == ds[int(key, 16)].value, key
