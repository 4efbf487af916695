"""pacs-common: the one library shared by the pacs-cloud services, the CLI and the tests.

- :mod:`pacs_common.uids`: UID validation (PS3.5 §9.1).
- :mod:`pacs_common.attributes`: QIDO-RS / C-FIND attribute sets per query level (PS3.18 §6.7.1,
  PS3.4 Annex C), with tags and VRs taken from pydicom's data dictionary.
- :mod:`pacs_common.dicomjson`: building DICOM JSON (PS3.18 Annex F) elements.
- :mod:`pacs_common.media`: DICOMweb media types and multipart/related encoding.
- :mod:`pacs_common.client`: a typed DICOMweb client on ``httpx``.
- :mod:`pacs_common.synthetic`: generated CT series with known geometry (demos, tests, benchmarks).
"""
