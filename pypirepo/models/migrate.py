"""Alembic, driven from code: used at start-up (development) and by pypirepo-migrate."""

from __future__ import annotations

import contextlib
import fcntl

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from ..paths import resource_dir

# The newest revision in migrations/versions. A test checks it against alembic's own
# view, so that a start-up can tell "current" with one query, without importing alembic.
SCHEMA_HEAD = "0003"


def alembic_config(engine: Engine):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resource_dir("migrations")))
    cfg.attributes["engine"] = engine
    return cfg


def is_current(engine: Engine) -> bool:
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except DBAPIError:
        return False  # no alembic_version table yet: an empty database
    return rows == [SCHEMA_HEAD]


def upgrade(engine: Engine, revision: str = "head") -> None:
    if revision == "head" and is_current(engine):
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
        with engine.connect() as conn:
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
    from .session import make_engine

    engine = make_engine(url)
    if auto_migrate:
        upgrade(engine)
    elif not is_current(engine):
        raise SystemExit("pypirepo: the database schema is not current; "
                         "run `pypirepo-migrate <your ini>` first")
    return engine
