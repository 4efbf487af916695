"""The routing state's tables (SQLAlchemy Core, the bridge's own database).

``cursor``: how far the change feed has been read. ``delivery``: one row per (destination,
feed entry), the durable queue: ``pending`` until the destination confirms it (``delivered``),
refuses it for good (``failed``, kept for an operator to retry) or the instance leaves the
archive first (``cancelled``); an instance whose Pixel Data is incomplete is not sent
(``quarantined``) until an administrator releases it (``waived``: sent without the check) or
drops it (``dropped``). ``destination``: each node's backoff after a failed attempt.
"""

from __future__ import annotations

from pacs_common.audit_outbox import outbox_table
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData()
_ID = BigInteger().with_variant(Integer(), "sqlite")

cursor = Table(
    "routing_cursor",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

delivery = Table(
    "routing_delivery",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("destination", String(16), nullable=False),
    Column("route", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("study", String(64), nullable=False),
    Column("series", String(64), nullable=False),
    Column("instance", String(64), nullable=False),
    Column("sop_class", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_status", Integer, nullable=True),
    Column("last_error", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("waived", Boolean, nullable=False, server_default=false()),
    UniqueConstraint("destination", "seq", name="uq_routing_delivery_destination_seq"),
    Index("ix_routing_delivery_queue", "destination", "state", "seq"),
    Index("ix_routing_delivery_instance", "instance"),
)

destination = Table(
    "routing_destination",
    metadata,
    Column("ae_title", String(16), primary_key=True),
    Column("consecutive_failures", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=True),
    Column("last_error", Text, nullable=False),
    Column("last_error_at", DateTime(timezone=True), nullable=True),
    Column("last_success_at", DateTime(timezone=True), nullable=True),
)

#: The audit outbox (:mod:`pacs_common.audit_outbox`): records of DIMSE activity waiting to be
#: posted to the API's ``POST /audit``; a row is deleted once the API has taken it.
audit_outbox = outbox_table(metadata)
