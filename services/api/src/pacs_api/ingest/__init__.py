"""Ingest: reading a received DICOM object, checking it, storing it, indexing it."""
