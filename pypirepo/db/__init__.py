"""The database's plumbing: the engine, the schema's migrations, and how every process
that shares the database learns of a change (serials, and the beacon beside a SQLite
file). The tables are in pypirepo.models; the statements in pypirepo.metadata."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Database:
    """The database a server (or a console script) works with: its engine, the session
    factory every request's unit of work opens sessions from, and the freshness reads."""

    engine: object
    session_factory: object
    serials: object

    @classmethod
    def open(cls, url: str, auto_migrate: bool) -> Database:
        """A database whose schema is current (migrated here when allowed; else the start
        stops with the command that migrates it)."""
        from .engine import make_session_factory
        from .migrate import ready_engine
        from .serials import Serials

        engine = ready_engine(url, auto_migrate)
        return cls(engine, make_session_factory(engine), Serials(engine))

    def close(self) -> None:
        """Close its connections and the beacon's file (an app built in a process that
        goes on: tests, benchmarks)."""
        from .beacon import detach

        self.serials.close()
        self.engine.dispose()
        detach(self.engine)


def includeme(config):
    from ..interfaces import IAppConfig, IDatabase

    app_config = config.registry.getUtility(IAppConfig)
    config.registry.registerUtility(Database.open(app_config.database_url,
                                                  app_config.auto_migrate), IDatabase)
