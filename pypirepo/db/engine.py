"""Engine and session plumbing."""

from __future__ import annotations

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from ..settings import ConfigError, StartError


def make_engine(url: str, **kw) -> Engine:
    """The engine of `sqlalchemy.url`; a URL SQLAlchemy cannot use is a ConfigError
    (nothing is connected yet: see migrate.connect for a database that cannot be reached)."""
    try:
        return _make_engine(url, **kw)
    except ArgumentError as exc:  # unparsable, or an unknown dialect
        raise ConfigError("sqlalchemy.url", f"{exc} (expected sqlite:///<path> or "
                          "postgresql+psycopg://<user>:<password>@<host>/<database>)") from None
    except ImportError as exc:  # the dialect's driver
        raise ConfigError("sqlalchemy.url", f"needs the database driver {exc.name!r} (for "
                          "PostgreSQL, install pypirepo with its extra: pip install "
                          "'.[postgresql]' in its checkout)") from None
    except OSError as exc:  # the SQLite file's folder
        raise unusable(url, f"cannot create the folder {exc.filename}: {exc.strerror}") from None


def unusable(url, exc: BaseException | str) -> StartError:
    """The one line for a database that cannot be used: the URL (password masked) and the
    driver's own reason, which says what failed (refused, password, missing database)."""
    reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
    shown = make_url(url).render_as_string(hide_password=True)
    return StartError(f"cannot use the database of sqlalchemy.url ({shown}): {reason}")


def _make_engine(url: str, **kw) -> Engine:
    if url.startswith("sqlite"):
        _make_parent(url)
        # One file shared by waitress' threads (and maybe by several processes): WAL lets
        # readers run beside a writer, busy_timeout makes writers queue instead of failing.
        kw.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
        engine = create_engine(url, **kw)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    kw.setdefault("pool_pre_ping", True)
    kw.setdefault("pool_size", 10)
    kw.setdefault("max_overflow", 20)
    return create_engine(url, **kw)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    from ..db.beacon import announce_commits

    factory = sessionmaker(bind=engine, expire_on_commit=False)
    # Other processes on the same SQLite file learn of each change from the beacon.
    announce_commits(factory, engine)
    return factory


def _make_parent(url: str) -> None:
    from pathlib import Path

    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
