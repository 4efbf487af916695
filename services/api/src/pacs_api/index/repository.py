"""The index as the routes see it: one object with one method per question.

Routes never write SQL; they call :class:`Index`. Each method opens and closes its own session,
so an :class:`Index` is safe to share between threads and requests.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVarTuple

from sqlalchemy import Engine, Select, delete, exists, select, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from pacs_api.index import changes, counts, versions
from pacs_api.index.db import WRITE_OPTION
from pacs_api.index.ingest import InstanceRecord, RegisterResult, register
from pacs_api.index.models import Instance, Patient, Series, Study
from pacs_api.index.search import QidoQuery, QidoResult, run_search

_Row = TypeVarTuple("_Row")


@dataclass(frozen=True, slots=True)
class StoredInstance:
    """Where an indexed instance's bytes are, and what they are."""

    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    object_key: str
    size: int
    sha256: str
    bulk: dict[str, tuple[int, int]]


@dataclass(frozen=True, slots=True)
class Scope:
    """A study, a series of it, or an instance of that series (validated UIDs)."""

    study_uid: str
    series_uid: str | None = None
    sop_instance_uid: str | None = None


class Index:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            if write:
                session.connection(execution_options={WRITE_OPTION: True})
            yield session

    def ping(self) -> None:
        """Raise when the database cannot be reached (readiness)."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    # -- ingest ---------------------------------------------------------------------------
    def find(self, sop_instance_uid: str) -> StoredInstance | None:
        with self.session() as session:
            rows = self._stored(session, select_scope=None, sop=sop_instance_uid)
            return rows[0] if rows else None

    def register(
        self, records: Sequence[InstanceRecord], *, overwrite: bool
    ) -> list[RegisterResult]:
        """Index stored objects in one transaction; on a race with another writer, one by one.

        Every result is committed when this returns.
        """
        try:
            with self.session(write=True) as session:
                results = register(session.connection(), records, overwrite=overwrite)
                session.commit()
                return results
        except IntegrityError:
            if len(records) > 1:
                return [self.register([r], overwrite=overwrite)[0] for r in records]
        # A single record lost a race (another request indexed the same UID first): once more,
        # now seeing the winner's row.
        with self.session(write=True) as session:
            results = register(session.connection(), records, overwrite=overwrite)
            session.commit()
            return results

    def unregister(self, sop_instance_uid: str, object_key: str) -> bool:
        """Remove an instance row if it still references *object_key* (undo of a failed
        request; a row another request has taken over since is kept)."""
        with self.session(write=True) as session:
            row = session.execute(
                _identified(select(col(Instance.pk), col(Instance.series_fk)))
                .where(
                    col(Instance.sop_instance_uid) == sop_instance_uid,
                    col(Instance.object_key) == object_key,
                )
                # Locked: a STOW taking the row over meanwhile makes it no longer match.
                .with_for_update(of=Instance)
            ).first()
            if row is None:
                return False
            session.execute(delete(Instance).where(col(Instance.pk) == row[0]))
            studies = versions.bump(session.connection(), {row[1]})
            _prune(session, {row[1]})
            counts.refresh(session.connection(), {row[1]}, studies)
            changes.append(
                session.connection(), changes.ChangeKind.DELETED, [changes.Entry(*row[2:])]
            )
            session.commit()
            return True

    # -- retrieval ------------------------------------------------------------------------
    def instances(self, scope: Scope) -> list[StoredInstance]:
        """Instances in a study, series or single instance, in series and instance order."""
        with self.session() as session:
            return self._stored(session, select_scope=scope)

    def metadata(self, scope: Scope) -> list[str]:
        """Each instance's precomputed DICOM JSON text (PS3.18 §10.4.1.1.2), in order."""
        with self.session() as session:
            statement = (
                select(col(Instance.metadata_json))
                .join(Series, col(Instance.series_fk) == col(Series.pk))
                .join(Study, col(Series.study_fk) == col(Study.pk))
            )
            statement = _where_scope(statement, scope).order_by(
                col(Series.series_number),
                col(Series.pk),
                col(Instance.instance_number),
                col(Instance.pk),
            )
            return list(session.execute(statement).scalars())

    def metadata_version(self, scope: Scope) -> str | None:
        """The metadata version of a study or series scope (:mod:`pacs_api.index.versions`),
        ``None`` when no such study or series is indexed. One lookup by unique UID."""
        with self.session() as session:
            if scope.series_uid is None:
                statement = select(col(Study.metadata_version)).where(
                    col(Study.study_instance_uid) == scope.study_uid
                )
            else:
                statement = (
                    select(col(Series.metadata_version))
                    .join(Study, col(Series.study_fk) == col(Study.pk))
                    .where(
                        col(Series.series_instance_uid) == scope.series_uid,
                        col(Study.study_instance_uid) == scope.study_uid,
                    )
                )
            version = session.execute(statement).scalar_one_or_none()
            return None if version is None else str(version)

    # -- deletion -------------------------------------------------------------------------
    def delete(self, scope: Scope) -> list[str]:
        """Remove the scope's instance rows (and emptied series, studies, patients) and return
        the object keys that no row references any more, for the caller to delete."""
        with self.session(write=True) as session:
            # FOR UPDATE (PostgreSQL; SQLite's writers are serialised anyway): a STOW that
            # re-points a row at its own object commits before this reads the key, or after
            # this deletes the row, so the key returned is the one the row last referenced.
            keyed = _where_scope(
                _identified(
                    select(col(Instance.pk), col(Instance.object_key), col(Instance.series_fk))
                ),
                scope,
            )
            keyed = keyed.order_by(col(Instance.sop_instance_uid)).with_for_update(of=Instance)
            rows = session.execute(keyed).all()
            if rows:
                session.execute(delete(Instance).where(col(Instance.pk).in_([r[0] for r in rows])))
            touched = {r[2] for r in rows}
            studies = versions.bump(session.connection(), touched)
            _prune(session, touched)
            counts.refresh(session.connection(), touched, studies)
            changes.append(
                session.connection(),
                changes.ChangeKind.DELETED,
                [changes.Entry(*r[3:]) for r in rows],
            )
            session.commit()
            return [r[1] for r in rows]

    def exists(self, scope: Scope) -> bool:
        with self.session() as session:
            statement = _where_scope(
                select(col(Instance.pk))
                .join(Series, col(Instance.series_fk) == col(Series.pk))
                .join(Study, col(Series.study_fk) == col(Study.pk)),
                scope,
            ).limit(1)
            return session.execute(statement).first() is not None

    # -- change feed ----------------------------------------------------------------------
    def changes(self, after: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        """Change feed entries after *after*, oldest first, and the newest entry's ``seq``
        (:mod:`pacs_api.index.changes`)."""
        with self.session() as session:
            connection = session.connection()
            return changes.read(connection, after, limit), changes.head(connection)

    # -- maintenance (pacs_api.sweep) -----------------------------------------------------
    def referenced_keys(self, sop_instance_uids: Collection[str]) -> set[str]:
        """The object keys that the rows of these SOP Instance UIDs reference (one query,
        through the unique index on the UID; keep batches to a few hundred UIDs)."""
        if not sop_instance_uids:
            return set()
        with self.session() as session:
            statement = select(col(Instance.object_key)).where(
                col(Instance.sop_instance_uid).in_(set(sop_instance_uids))
            )
            return set(session.execute(statement).scalars())

    def stored_objects(self, after: int, limit: int) -> list[tuple[int, str, int]]:
        """``(pk, object_key, size)`` of up to *limit* instance rows whose pk is above *after*,
        in pk order: page through every row with the last pk seen."""
        with self.session() as session:
            statement = (
                select(col(Instance.pk), col(Instance.object_key), col(Instance.size))
                .where(col(Instance.pk) > after)
                .order_by(col(Instance.pk))
                .limit(limit)
            )
            return [(int(r[0]), str(r[1]), int(r[2])) for r in session.execute(statement).all()]

    # -- queries --------------------------------------------------------------------------
    def search(self, query: QidoQuery) -> QidoResult:
        """Answer a QIDO-RS query (PS3.18 §10.6)."""
        with self.session() as session:
            return run_search(session, query)

    @staticmethod
    def _stored(
        session: Session, select_scope: Scope | None, sop: str | None = None
    ) -> list[StoredInstance]:
        statement = (
            select(
                col(Study.study_instance_uid),
                col(Series.series_instance_uid),
                col(Instance.sop_instance_uid),
                col(Instance.sop_class_uid),
                col(Instance.transfer_syntax_uid),
                col(Instance.object_key),
                col(Instance.size),
                col(Instance.sha256),
                col(Instance.bulk_data_json),
            )
            .join(Series, col(Instance.series_fk) == col(Series.pk))
            .join(Study, col(Series.study_fk) == col(Study.pk))
        )
        if select_scope is not None:
            statement = _where_scope(statement, select_scope)
        if sop is not None:
            statement = statement.where(col(Instance.sop_instance_uid) == sop)
        statement = statement.order_by(
            col(Series.series_number),
            col(Series.pk),
            col(Instance.instance_number),
            col(Instance.pk),
        )
        return [
            StoredInstance(
                study_uid=row[0],
                series_uid=row[1],
                sop_instance_uid=row[2],
                sop_class_uid=row[3],
                transfer_syntax_uid=row[4],
                object_key=row[5],
                size=row[6],
                sha256=row[7],
                bulk={k: (v[0], v[1]) for k, v in json.loads(row[8]).items()},
            )
            for row in session.execute(statement).all()
        ]


def _where_scope(statement: Select[*_Row], scope: Scope) -> Select[*_Row]:
    statement = statement.where(col(Study.study_instance_uid) == scope.study_uid)
    if scope.series_uid is not None:
        statement = statement.where(col(Series.series_instance_uid) == scope.series_uid)
    if scope.sop_instance_uid is not None:
        statement = statement.where(col(Instance.sop_instance_uid) == scope.sop_instance_uid)
    return statement


def _identified(statement: Select[*_Row]) -> Select[*_Row, str, str, str, str, str]:
    """*statement* joined to its series and study, with the instance's four identifying UIDs
    and its modality appended to each row (the fields of a :class:`changes.Entry`)."""
    return (
        statement.add_columns(
            col(Study.study_instance_uid),
            col(Series.series_instance_uid),
            col(Instance.sop_instance_uid),
            col(Instance.sop_class_uid),
            col(Series.modality),
        )
        .join_from(Instance, Series, col(Instance.series_fk) == col(Series.pk))
        .join(Study, col(Series.study_fk) == col(Study.pk))
    )


def _prune(session: Session, series_pks: set[int]) -> None:
    """Delete those of *series_pks* left without instances, then their studies left without
    series and those studies' patients left without studies."""
    if not series_pks:
        return
    study_pks = set(
        session.execute(
            select(col(Series.study_fk)).where(col(Series.pk).in_(series_pks))
        ).scalars()
    )
    patient_pks = set(
        session.execute(select(col(Study.patient_fk)).where(col(Study.pk).in_(study_pks))).scalars()
    )
    session.execute(
        delete(Series).where(
            col(Series.pk).in_(series_pks),
            ~exists().where(col(Instance.series_fk) == col(Series.pk)),
        )
    )
    session.execute(
        delete(Study).where(
            col(Study.pk).in_(study_pks),
            ~exists().where(col(Series.study_fk) == col(Study.pk)),
        )
    )
    session.execute(
        delete(Patient).where(
            col(Patient.pk).in_(patient_pks),
            ~exists().where(col(Study.patient_fk) == col(Patient.pk)),
        )
    )
