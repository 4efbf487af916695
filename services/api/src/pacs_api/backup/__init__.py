"""Backup and restore of the whole archive: the index and the objects it references.

``pacs-api backup --to DIR`` and ``pacs-api restore --from DIR`` (:mod:`pacs_api.cli`) call
:func:`create_backup` and :func:`restore_backup`. A backup is a directory::

    DIR/tables/<table>.jsonl   every row of every index table, one JSON object a line
    DIR/objects.jsonl          every object copied: key, size, SHA-256
    DIR/objects/<key>          the objects, byte for byte
    DIR/manifest.json          written last: a backup without it is incomplete

- **Consistent.** The rows come from one read transaction (:mod:`.snapshot`), so the index in
  a backup is the index as it was at one commit, taken while the server serves. STOW writes an
  object before it commits its row (:mod:`pacs_api.ingest.pipeline`), so every row of the
  snapshot has its object; objects stored after the snapshot are simply not in the backup.
- **Verified.** Each instance object is hashed while it is copied and compared with the
  SHA-256 and size its row records; restore hashes every file again before it writes anything.
- **Portable.** Rows are typed JSON (:mod:`.rows`), not SQL: a backup of SQLite and a
  directory restores into PostgreSQL and S3, and back (the migration path from the embedded
  setup to the scaled one).
- **Generic.** Every table the API declares is backed up (:func:`.snapshot.api_tables`), so a
  table a new feature adds needs no change here.
"""

from __future__ import annotations

from pacs_api.backup.create import create_backup
from pacs_api.backup.manifest import BackupError, Manifest
from pacs_api.backup.restore import restore_backup, verify_backup

__all__ = ["BackupError", "Manifest", "create_backup", "restore_backup", "verify_backup"]
