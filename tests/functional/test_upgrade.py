"""An upgrade from release 0.1: a database and storage it wrote (tests/fixtures/release-0.1,
one index, schema 0002), migrated with the real `pypirepo-migrate`, serve the same pages
byte for byte, now as the default group of a hosted and a proxy repository."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from servers import VENV_BIN

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "release-0.1"


@pytest.fixture
def upgraded(tmp_path, make_app):
    shutil.copytree(FIXTURE, tmp_path / "old")
    db, storage = tmp_path / "old" / "db.sqlite", tmp_path / "old" / "storage"
    ini = tmp_path / "server.ini"
    ini.write_text(f"[app:main]\nuse = egg:pypirepo\nsqlalchemy.url = sqlite:///{db}\n"
                   f"storage.dir = {storage}\n")
    migrated = subprocess.run([str(VENV_BIN / "pypirepo-migrate"), str(ini)],
                              capture_output=True, text=True, timeout=120)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    app = make_app(**{
        "sqlalchemy.url": f"sqlite:///{db}", "storage.dir": str(storage),
        "pypirepo.auto_migrate": "false", "pypi.fallback": "none",
        # The 0.1 answers were made with absolute JSON API URLs from WebTest's host.
        "pypirepo.public_url": "http://localhost",
    })
    return app, db


def test_an_upgraded_database_serves_the_same_pages(upgraded):
    app, db = upgraded
    answers = json.loads((FIXTURE / "answers.json").read_text())
    assert len(answers) >= 10
    for answer in answers:
        headers = {"Accept": answer["accept"]} if answer["accept"] else {}
        res = app.get(answer["url"], headers=headers, status=answer["status"])
        what = f"{answer['url']} ({answer['accept']})"
        if answer["url"].startswith("/api/"):
            # Events now also name their repository; everything 0.1 said is unchanged.
            old, new = json.loads(answer["body"]), res.json
            assert [{k: v for k, v in e.items() if k != "repository"}
                    for e in new["events"]] == old["events"], what
            assert {e["repository"] for e in new["events"]} == {"local"}, what
            continue
        assert res.text == answer["body"], what
        assert res.headers.get("ETag") == answer["etag"], what


def test_an_upgraded_database_holds_three_repositories(upgraded):
    app, db = upgraded
    with sqlite3.connect(db) as conn:
        repos = dict(conn.execute("SELECT name, kind FROM repositories").fetchall())
        held = dict(conn.execute("SELECT f.filename, r.name FROM files f JOIN repositories r "
                                 "ON f.repository_id = r.id").fetchall())
    assert repos == {"local": "hosted", "pypi": "proxy", "default": "group"}
    # What was uploaded is the hosted repository's; what was cached, the proxy's.
    assert held.pop("pubpkg-1.0-py3-none-any.whl") == "pypi"
    assert set(held.values()) == {"local"}
    listed = {r["name"]: r for r in app.get("/api/repositories").json["repositories"]}
    assert listed["default"]["members"] == ["local", "pypi"]
    assert app.get("/r/local/simple/pubpkg/", status=404)
    assert "pubpkg-1.0-py3-none-any.whl" in app.get("/r/pypi/simple/pubpkg/").text
    # The storage keys are as 0.1 wrote them.
    assert app.get("/packages/pubpkg/pubpkg-1.0-py3-none-any.whl").body
    assert app.get("/r/local/packages/acme-core/acme_core-1.0.tar.gz").body


def test_a_rebuild_after_the_upgrade_gives_each_repository_its_files(upgraded, tmp_path,
                                                                     make_app):
    """The same storage into an empty database: the records' origin says whose each
    file on the shared packages/ prefix is."""
    _app, old_db = upgraded
    app = make_app(**{"sqlalchemy.url": f"sqlite:///{tmp_path}/fresh.sqlite",
                      "storage.dir": str(tmp_path / "old" / "storage"),
                      "pypi.fallback": "none"})
    assert "pubpkg-1.0-py3-none-any.whl" in app.get("/r/pypi/simple/pubpkg/").text
    app.get("/r/local/simple/pubpkg/", status=404)
    assert "acme_core-1.0.tar.gz" in app.get("/r/local/simple/acme-core/").text
    assert app.get("/simple/").text.count("<a ") == 3


@pytest.mark.postgres
def test_the_repositories_migration_on_postgresql(pg_url):
    """0004 on PostgreSQL: a project holding uploads and cached files becomes one in each
    repository, ids and sequences stay usable, the constraints are the models'."""
    import datetime as dt

    from sqlalchemy import inspect, text

    from pypirepo.db import migrate
    from pypirepo.db.engine import make_engine

    engine = make_engine(pg_url)
    migrate.upgrade(engine, "0003")
    now = dt.datetime(2026, 1, 1)
    with engine.begin() as conn:
        conn.execute(text("UPDATE index_state SET serial = 7"))
        conn.execute(text("INSERT INTO projects (id, name, display_name, serial, created) "
                          "VALUES (1, 'mixed', 'Mixed', 7, :t), (2, 'cached', 'cached', 3, :t)"),
                     {"t": now})
        for fid, pid, filename, origin in ((1, 1, "mixed-1.0.tar.gz", "private"),
                                           (2, 1, "mixed-0.9.tar.gz", "upstream"),
                                           (3, 2, "cached-1.0.tar.gz", "upstream")):
            conn.execute(text(
                "INSERT INTO files (id, project_id, filename, filename_key, version, "
                "canonical_version, packagetype, python_version, size, sha256, upload_time, "
                "yanked, origin) VALUES (:id, :pid, :f, :f, '1', '1', 'sdist', 'source', 1, "
                ":h, :t, false, :o)"),
                {"id": fid, "pid": pid, "f": filename, "h": str(fid) * 64, "t": now,
                 "o": origin})
        conn.execute(text("INSERT INTO upstream_pages (project, upstream, status, fetched) "
                          "VALUES ('cached', 'http://up/simple/', 'found', :t)"), {"t": now})
    migrate.upgrade(engine)
    with engine.connect() as conn:
        held = sorted(conn.execute(text(
            "SELECT r.name, p.name, f.filename FROM files f JOIN projects p ON "
            "p.id = f.project_id JOIN repositories r ON r.id = p.repository_id "
            "WHERE r.id = f.repository_id")).all())
        serials = dict(conn.execute(text("SELECT name, serial FROM repositories")).all())
        pages = conn.execute(text("SELECT repository_id FROM upstream_pages")).scalars().all()
    assert held == [("local", "mixed", "mixed-1.0.tar.gz"),
                    ("pypi", "cached", "cached-1.0.tar.gz"),
                    ("pypi", "mixed", "mixed-0.9.tar.gz")]
    assert serials == {"local": 7, "pypi": 7} and pages == [2]
    assert "index_state" not in inspect(engine).get_table_names()
    # New rows get ids after the migration's own.
    with engine.begin() as conn:
        made = conn.execute(text("INSERT INTO repositories (name, kind, serial, created) "
                                 "VALUES ('dev', 'hosted', 0, :t) RETURNING id"),
                            {"t": now}).scalar()
    assert made == 3
    engine.dispose()
