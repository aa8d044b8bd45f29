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


def test_browse_migration_fills_each_projects_last_upload_and_its_summary(db_url):
    """0006 gives the projects there are the list columns, from their files: the time of
    the latest upload and that upload's summary (cut to 512 characters)."""
    import datetime as dt
    import json

    from sqlalchemy import text

    engine = make_engine(db_url)
    migrate.upgrade(engine, "0005")
    old, new = dt.datetime(2026, 1, 1), dt.datetime(2026, 3, 1)
    with engine.begin() as conn:
        # 0004 made the repository the files were in before (id 1).
        assert conn.execute(text("SELECT count(*) FROM repositories WHERE id = 1")).scalar()
        for pid, name in ((1, "held"), (2, "empty")):
            conn.execute(text("INSERT INTO projects (id, name, display_name, serial, created, "
                              "repository_id) VALUES (:id, :n, :n, 1, :t, 1)"),
                         {"id": pid, "n": name, "t": old})
        for fid, version, when, summary in ((1, "1.0", old, "the old one"),
                                            (2, "2.0", new, "x" * 600)):
            conn.execute(text(
                "INSERT INTO files (id, project_id, filename, version, canonical_version, "
                "packagetype, python_version, size, sha256, upload_time, yanked, origin, "
                "info, repository_id) VALUES (:id, 1, :f, :v, :v, 'bdist_wheel', 'py3', 1, "
                ":h, :t, false, 'private', :info, 1)"),
                {"id": fid, "f": f"held-{version}-py3-none-any.whl", "v": version,
                 "h": str(fid) * 64, "t": when, "info": json.dumps({"summary": summary})})
    migrate.upgrade(engine)
    with engine.connect() as conn:
        rows = {r.name: (r.last_upload, r.summary) for r in conn.execute(
            text("SELECT name, last_upload, summary FROM projects"))}
    assert rows["empty"] == (None, None)
    last_upload, summary = rows["held"]
    assert str(last_upload).startswith("2026-03-01") and summary == "x" * 512
