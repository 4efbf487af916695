"""change feed: modality and sender AE title (what store-and-forward routes match on)

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("change") as batch:
        batch.add_column(
            sa.Column("modality", sa.String(length=16), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column("sender_ae", sa.String(length=16), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("change") as batch:
        batch.drop_column("sender_ae")
        batch.drop_column("modality")
