"""The migrations: one head, known to the start-up check, and they build the models."""

from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from pypirepo.models import Base, migrate
from pypirepo.models.session import make_engine


def test_schema_head_constant_is_alembics_head():
    heads = ScriptDirectory.from_config(migrate.alembic_config(None)).get_heads()
    assert heads == [migrate.SCHEMA_HEAD], "update SCHEMA_HEAD in pypirepo/models/migrate.py"


def test_migrations_create_every_model_table(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/m.sqlite")
    assert not migrate.is_current(engine)
    migrate.upgrade(engine)
    assert migrate.is_current(engine)
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    for name, table in Base.metadata.tables.items():
        columns = {c["name"] for c in inspect(engine).get_columns(name)}
        assert set(table.columns.keys()) <= columns, name
