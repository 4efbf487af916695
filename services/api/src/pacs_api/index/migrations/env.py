"""Alembic environment: runs on the connection :func:`pacs_common.database.migrate` hands over."""

from __future__ import annotations

from alembic import context
from pacs_api.audit import tables as audit_tables  # noqa: F401  (the audit_event table)
from pacs_api.index import models  # noqa: F401  (registers the tables on SQLModel.metadata)
from sqlmodel import SQLModel

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    version_table=context.config.attributes.get("version_table", "alembic_version"),
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
