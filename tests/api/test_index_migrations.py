"""The index schema is owned by Alembic migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from pacs_api.index import models  # noqa: F401  (registers the tables)
from pacs_api.index.db import MIGRATIONS, make_engine, migrate
from sqlalchemy import Engine, inspect, text
from sqlmodel import SQLModel


def _head() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


HEAD = _head()


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
    assert version == HEAD
    assert {"patient", "study", "series", "instance"} <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_concurrent_migrations_serialised(index_url: str) -> None:
    """Worker processes start together and each migrates: four at once on an empty database
    all succeed and leave one schema at the newest version."""
    engines = [make_engine(index_url) for _ in range(4)]
    errors: list[BaseException] = []

    def run(engine: Engine) -> None:
        try:
            migrate(engine)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with engines[0].connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).all() == [
            (HEAD,)
        ]
    for engine in engines:
        engine.dispose()
