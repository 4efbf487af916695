"""pacs-cloud DIMSE bridge: a pynetdicom AE that turns DIMSE requests into DICOMweb calls."""
