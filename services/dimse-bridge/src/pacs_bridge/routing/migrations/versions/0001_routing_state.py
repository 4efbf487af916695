"""routing state: change feed cursor, delivery queue, destination backoff

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "routing_cursor",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "routing_delivery",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("destination", sa.String(length=16), nullable=False),
        sa.Column("route", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("study", sa.String(length=64), nullable=False),
        sa.Column("series", sa.String(length=64), nullable=False),
        sa.Column("instance", sa.String(length=64), nullable=False),
        sa.Column("sop_class", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("destination", "seq", name="uq_routing_delivery_destination_seq"),
    )
    op.create_index(
        "ix_routing_delivery_queue", "routing_delivery", ["destination", "state", "seq"]
    )
    op.create_index("ix_routing_delivery_instance", "routing_delivery", ["instance"])
    op.create_table(
        "routing_destination",
        sa.Column("ae_title", sa.String(length=16), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("ae_title"),
    )


def downgrade() -> None:
    op.drop_table("routing_destination")
    op.drop_index("ix_routing_delivery_instance", table_name="routing_delivery")
    op.drop_index("ix_routing_delivery_queue", table_name="routing_delivery")
    op.drop_table("routing_delivery")
    op.drop_table("routing_cursor")
