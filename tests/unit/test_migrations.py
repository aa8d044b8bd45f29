"""The migrations: one head, known to the start-up check, and they build the models."""

from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from pypirepo.db import migrate
from pypirepo.models import Base
from pypirepo.db.engine import make_engine


def test_schema_head_constant_is_alembics_head():
    heads = ScriptDirectory.from_config(migrate.alembic_config(None)).get_heads()
    assert heads == [migrate.SCHEMA_HEAD], "update SCHEMA_HEAD in pypirepo/db/migrate.py"


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


def test_filename_key_migration_keeps_files_stored_under_two_spellings(tmp_path):
    """Before 0003 two spellings of one distribution could both be uploaded: both stay
    listed, the older one holds the key, and the key rule holds from then on."""
    import datetime as dt

    from sqlalchemy import text

    engine = make_engine(f"sqlite:///{tmp_path}/m.sqlite")
    migrate.upgrade(engine, "0002")
    now = dt.datetime(2026, 1, 1)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO projects (id, name, display_name, serial, created) "
                          "VALUES (1, 'foo-bar', 'foo_bar', 1, :t)"), {"t": now})
        for i, filename in enumerate(["foo_bar-1.0-py3-none-any.whl",
                                      "Foo_Bar-1.0-py3-none-any.whl", "foo_bar-1.0.tar.gz"]):
            conn.execute(text(
                "INSERT INTO files (id, project_id, filename, version, canonical_version, "
                "packagetype, python_version, size, sha256, upload_time, yanked, origin) "
                "VALUES (:id, 1, :f, '1.0', '1', 'x', 'py3', 1, :h, :t, 0, 'private')"),
                {"id": i + 1, "f": filename, "h": str(i) * 64, "t": now})
    migrate.upgrade(engine, "0003")
    with engine.connect() as conn:
        keys = dict(conn.execute(text("SELECT filename, filename_key FROM files")).all())
    assert keys == {"foo_bar-1.0-py3-none-any.whl": "foo_bar-1-py3-none-any.whl",
                    "Foo_Bar-1.0-py3-none-any.whl": None,
                    "foo_bar-1.0.tar.gz": "foo_bar-1.tar.gz"}
    assert any(ix["unique"] and ix["column_names"] == ["filename_key"]
               for ix in inspect(engine).get_indexes("files"))


def test_a_schema_committed_by_another_instance_meanwhile_is_current(tmp_path):
    """Two instances starting at once: this one's first look finds no alembic_version, and
    by the time it asks whether the table exists the other has committed its migration.
    That is a current schema, not an unusable database."""
    from sqlalchemy import event

    url = f"sqlite:///{tmp_path}/m.sqlite"
    other = make_engine(url)
    engine = make_engine(url)
    asked = []

    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def the_other_commits_just_after(conn, cursor, statement, parameters, context, many):
        if "alembic_version" in statement and not asked:
            asked.append(statement)
            migrate.upgrade(other)  # its migration, committed before this one looks again
            return statement.replace("alembic_version", "alembic_version_not_yet"), parameters
        return statement, parameters

    assert migrate.is_current(engine)
    assert asked
