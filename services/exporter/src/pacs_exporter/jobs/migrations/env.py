"""Alembic environment of the export jobs: runs on the connection
:func:`pacs_common.database.migrate` hands over."""

from __future__ import annotations

from alembic import context
from pacs_exporter.jobs.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=context.config.attributes["version_table"],
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
