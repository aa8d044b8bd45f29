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
