"""computed attributes on the study and series rows, back-filled

PS3.4 C.3.4 / PS3.18 table 6.7.1-2a: ``series.number_of_instances`` (Number of Series Related
Instances), ``study.number_of_series``, ``study.number_of_instances`` and
``study.modalities_in_study`` (Number of Study Related Series / Instances, Modalities in
Study), so that a QIDO-RS page reads them with its own rows instead of counting the instances
of its studies (:mod:`pacs_api.index.counts` keeps them exact from here on).

The back-fill counts the rows that are there, with the same statements on SQLite and
PostgreSQL: a database migrated from 0006, and a backup made at 0006 and restored (restore
inserts the rows at the backup's revision, then migrates), get the values every later store
and delete would have kept.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_instance = sa.table("instance", sa.column("series_fk", sa.Integer))
_series = sa.table(
    "series",
    sa.column("pk", sa.Integer),
    sa.column("study_fk", sa.Integer),
    sa.column("modality", sa.String),
    sa.column("number_of_instances", sa.Integer),
)
_study = sa.table(
    "study",
    sa.column("pk", sa.Integer),
    sa.column("number_of_series", sa.Integer),
    sa.column("number_of_instances", sa.Integer),
    sa.column("modalities_in_study", sa.String),
)


def upgrade() -> None:
    with op.batch_alter_table("series") as batch:
        batch.add_column(
            sa.Column("number_of_instances", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("study") as batch:
        batch.add_column(
            sa.Column("number_of_series", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("number_of_instances", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("modalities_in_study", sa.String(), nullable=False, server_default="")
        )
    _backfill(op.get_bind())


def _backfill(connection: sa.Connection) -> None:
    instances = (
        sa.select(sa.func.count())
        .select_from(_instance)
        .where(_instance.c.series_fk == _series.c.pk)
        .scalar_subquery()
    )
    connection.execute(sa.update(_series).values(number_of_instances=instances))
    inner = _series.alias("inner_series")
    series = (
        sa.select(sa.func.count())
        .select_from(inner)
        .where(inner.c.study_fk == _study.c.pk)
        .scalar_subquery()
    )
    total = (
        sa.select(sa.func.coalesce(sa.func.sum(inner.c.number_of_instances), 0))
        .where(inner.c.study_fk == _study.c.pk)
        .scalar_subquery()
    )
    connection.execute(sa.update(_study).values(number_of_series=series, number_of_instances=total))
    # Modalities in Study: distinct, sorted, joined by backslash (string aggregation is
    # spelled differently on each database, so it is joined here).
    rows = connection.execute(
        sa.select(_series.c.study_fk, _series.c.modality)
        .where(_series.c.modality != "")
        .distinct()
        .order_by(_series.c.study_fk, _series.c.modality)
    )
    joined: dict[int, list[str]] = {}
    for study_pk, modality in rows:
        joined.setdefault(study_pk, []).append(modality)
    if joined:
        connection.execute(
            sa.update(_study)
            .where(_study.c.pk == sa.bindparam("study_pk"))
            .values(modalities_in_study=sa.bindparam("modalities")),
            [{"study_pk": pk, "modalities": "\\".join(values)} for pk, values in joined.items()],
        )


def downgrade() -> None:
    with op.batch_alter_table("study") as batch:
        batch.drop_column("modalities_in_study")
        batch.drop_column("number_of_instances")
        batch.drop_column("number_of_series")
    with op.batch_alter_table("series") as batch:
        batch.drop_column("number_of_instances")
