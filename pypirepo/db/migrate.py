"""Alembic, driven from code: used at start-up (development) and by pypirepo-migrate."""

from __future__ import annotations

import contextlib
import fcntl

from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from ..paths import resource_dir
from ..settings import StartError
from .engine import make_engine, unusable

# The newest revision in migrations/versions. A test checks it against alembic's own
# view, so that a start-up can tell "current" with one query, without importing alembic.
SCHEMA_HEAD = "0007"


def alembic_config(engine: Engine):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resource_dir("migrations")))
    cfg.attributes["engine"] = engine
    return cfg


@contextlib.contextmanager
def connect(engine: Engine):
    """A connection, or a StartError that says why there is none (refused, wrong password,
    no such database, not a database file), naming sqlalchemy.url."""
    try:
        conn = engine.connect()
    except DBAPIError as exc:
        raise unusable(engine.url, exc) from None
    with conn:
        yield conn


def is_current(engine: Engine) -> bool:
    with connect(engine) as conn:
        for attempt in range(2):
            try:
                rows = conn.execute(
                    text("SELECT version_num FROM alembic_version")).scalars().all()
                break
            except DBAPIError as exc:
                # Only now (off the common path) ask whether the table is there at all:
                # an empty database has none, anything else is a real failure to report.
                conn.rollback()
                if not inspect(conn).has_table("alembic_version"):
                    return False
                # There now: another instance starting at the same time has just committed
                # the first migration since this one asked. Asked once more.
                if attempt:
                    raise unusable(engine.url, exc) from None
    return rows == [SCHEMA_HEAD]


def upgrade(engine: Engine, revision: str = "head") -> None:
    # Asked for every revision: a database that cannot be reached is reported by connect(),
    # not by a traceback from inside alembic.
    if is_current(engine) and revision == "head":
        return  # the common case at start-up
    from alembic import command

    # Several instances may start at once on one database: one migrates, the others wait
    # and then find the schema current.
    with _migration_lock(engine):
        command.upgrade(alembic_config(engine), revision)


# An arbitrary constant naming pypirepo's advisory lock in PostgreSQL.
_PG_LOCK_ID = 0x7079_7069_7265


@contextlib.contextmanager
def _migration_lock(engine: Engine):
    if engine.dialect.name == "postgresql":
        with connect(engine) as conn:
            conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _PG_LOCK_ID})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": _PG_LOCK_ID})
                conn.commit()
    elif engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        with open(engine.url.database + ".migrate-lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
    else:
        yield


def ready_engine(url: str, auto_migrate: bool) -> Engine:
    """The engine of a database whose schema is current: migrated here when the ini
    allows it, else a start refused with the one command that fixes it."""
    engine = make_engine(url)
    if auto_migrate:
        upgrade(engine)
    elif not is_current(engine):
        raise StartError("the database schema is not current; "
                         "run `pypirepo-migrate <your ini>` first")
    return engine
