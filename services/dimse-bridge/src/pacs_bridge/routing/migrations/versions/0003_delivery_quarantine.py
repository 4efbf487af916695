"""routing: deliveries quarantined for incomplete Pixel Data, and released ones (waived)

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
    with op.batch_alter_table("routing_delivery") as batch:
        batch.add_column(
            sa.Column("waived", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("routing_delivery") as batch:
        batch.drop_column("waived")
