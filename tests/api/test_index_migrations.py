"""The index schema is owned by Alembic migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from pacs_api.index import models  # noqa: F401  (registers the tables)
from pacs_api.index.db import make_engine, migrate
from sqlalchemy import inspect, text
from sqlmodel import SQLModel


def test_migrations_build_the_models_schema(index_url: str) -> None:
    """After ``migrate`` the database matches the SQLModel tables exactly: a model change
    without its migration fails here."""
    engine = make_engine(index_url)
    migrate(engine)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    engine.dispose()
    assert diff == []


def test_migrate_again_keeps_data(index_url: str) -> None:
    """Running the migrations on an up-to-date database (every start does) changes nothing
    and keeps the rows."""
    engine = make_engine(index_url)
    migrate(engine)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO patient (patient_id, issuer_of_patient_id, "
                "patient_name, patient_name_norm, patient_birth_date, "
                "patient_sex) VALUES ('P1', '', 'Doe^Jane', 'DOE^JANE', '', 'F')"
            )
        )
    migrate(engine)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT patient_id FROM patient")).scalars().all() == ["P1"]
        version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert version == "0001"
    assert {"patient", "study", "series", "instance"} <= set(inspect(engine).get_table_names())
    engine.dispose()
