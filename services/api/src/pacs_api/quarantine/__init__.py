"""The quarantine: images whose Pixel Data is incomplete, kept byte for byte beside the archive.

An image whose Pixel Data is missing, truncated or shorter than its header describes
(:mod:`pacs_common.pixel_check`) is neither stored in the archive nor acknowledged: STOW-RS
lists it in FailedSOPSequence with an ErrorComment naming its quarantine entry, and the bytes
received are kept under ``quarantine/`` in the object store with a row in the ``quarantine``
table (:mod:`.models`). Administrators list, download, release (store it in the archive after
all) or delete entries (:mod:`.routes`, ``pacs quarantine``, the dashboard's Quarantine page).
"""
