"""C-FIND responses: a QIDO-RS match (DICOM JSON) turned into the identifier of a pending
response (PS3.4 C.4.1.1.3.2).

An answer holds exactly the keys the request held: those the API returned, with its values,
read with pydicom's ``Dataset.from_json`` (PS3.18 Annex F); the others zero length. Bulk data
references are never followed: such a key is answered zero length. Query/Retrieve Level is
the request's; Specific Character Set is ``ISO_IR 192`` (UTF-8, PS3.5 §6.1.2.5.3) when a value
is not ASCII, since the JSON values are already decoded text.
"""

from __future__ import annotations

import json

from pacs_common.attributes import attribute
from pacs_common.dicomjson import JsonDataset
from pydicom.dataset import Dataset

from pacs_bridge.find.identifier import FindRequest

UTF8 = "ISO_IR 192"
_SPECIFIC_CHARACTER_SET = attribute("SpecificCharacterSet")
_QUERY_RETRIEVE_LEVEL = attribute("QueryRetrieveLevel")


def answer_identifier(match: JsonDataset, request: FindRequest) -> Dataset:
    """The identifier of the pending C-FIND response for one match."""
    selected = {
        key.json_key: match[key.json_key]
        for key in request.requested
        if key.tag not in (_SPECIFIC_CHARACTER_SET.tag, _QUERY_RETRIEVE_LEVEL.tag)
        and isinstance(match.get(key.json_key), dict)
        and "BulkDataURI" not in match[key.json_key]
    }
    answer = Dataset.from_json(selected)
    for key in request.requested:
        if key.tag not in answer:
            answer.add_new(key.tag, key.vr, None)
    answer.QueryRetrieveLevel = request.level.value
    if not json.dumps(selected, ensure_ascii=False).isascii():
        answer.SpecificCharacterSet = UTF8
    return answer
