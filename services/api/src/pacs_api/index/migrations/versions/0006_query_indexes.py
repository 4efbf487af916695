"""query indexes for scale; metadata versions of studies and series

- ``ix_patient_id``: Patient ID matching (the partial unique index on Patient ID and Issuer
  serves only queries that repeat its ``patient_id != ''`` predicate, which SQLite requires);
- ``ix_patient_name_norm`` again, with PostgreSQL's ``text_pattern_ops``: a name prefix wild
  card (``PatientName=SMI*``, ``LIKE 'SMI%'``) uses it whatever the database's collation;
- ``metadata_version`` on study and series: a token that changes whenever an instance of the
  study or series is stored or deleted, which keys the assembled ``/metadata`` answers
  (:mod:`pacs_api.index.versions`).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("patient") as batch:
        batch.drop_index("ix_patient_name_norm")
        batch.create_index(
            "ix_patient_name_norm",
            ["patient_name_norm"],
            postgresql_ops={"patient_name_norm": "text_pattern_ops"},
        )
        batch.create_index("ix_patient_id", ["patient_id"])
    for table in ("study", "series"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column(
                    "metadata_version", sa.String(length=32), nullable=False, server_default=""
                )
            )


def downgrade() -> None:
    for table in ("series", "study"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("metadata_version")
    with op.batch_alter_table("patient") as batch:
        batch.drop_index("ix_patient_id")
        batch.drop_index("ix_patient_name_norm")
        batch.create_index("ix_patient_name_norm", ["patient_name_norm"])
