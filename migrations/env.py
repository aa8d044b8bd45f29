"""Alembic environment.

Run from code (pypirepo.db.migrate passes the engine) or by `alembic -c <ini>`, in
which case the database URL comes from the app's settings, PYPIREPO_* overrides included.
"""

from alembic import context

from pypirepo.models import Base
from pypirepo.db.engine import make_engine
from pypirepo.settings import Settings

config = context.config


def _engine():
    engine = config.attributes.get("engine")
    if engine is not None:
        return engine
    app = dict(config.file_config.items("app:main")) if config.file_config else {}
    return make_engine(Settings(app).get_value("sqlalchemy.url"))


def run_migrations_offline():
    context.configure(url=str(_engine().url), target_metadata=Base.metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    with _engine().connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # SQLite changes a table by copying it into a new one and dropping the old:
            # with foreign keys enforced, dropping `projects` would delete every file
            # (ON DELETE CASCADE). Off for the migration (outside any transaction, where
            # the pragma takes effect), on again for whoever gets this connection next.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        context.configure(connection=connection, target_metadata=Base.metadata,
                          render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
