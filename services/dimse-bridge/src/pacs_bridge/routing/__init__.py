"""Store-and-forward routing: instances the archive stores go on to other DICOM nodes."""
