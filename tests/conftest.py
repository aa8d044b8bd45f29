"""Fixtures shared by every test layer."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import distfactory  # noqa: E402
from servers import PostgreSQL, Server  # noqa: E402
from upstream_server import healthy  # noqa: E402
from emulators import azure_server, gcs_server, s3_server  # noqa: E402,F401 - fixtures

IN_CI = os.environ.get("CI") == "true"


def _track_apps():
    """Every app a test builds (pypirepo.main, imported by the tests when they run) is
    remembered, and closed when its module is done: main() freezes what it made out of
    the collector's way, so nothing would ever close their database files otherwise, and
    a worker that ran a few hundred apps passes select()'s 1,024 descriptors."""
    import pypirepo

    built = []
    make = pypirepo.main

    def main(*args, **kwargs):
        app = make(*args, **kwargs)
        built.append(app)
        return app

    pypirepo.main = main
    return built


_BUILT = _track_apps()


@pytest.fixture(scope="module", autouse=True)
def _close_apps():
    before = len(_BUILT)
    yield
    import pypirepo

    while len(_BUILT) > before:
        pypirepo.close(_BUILT.pop())


@pytest.fixture
def dists(tmp_path):
    """A factory of real wheels and sdists in a temporary folder."""

    class Factory:
        dir = tmp_path / "dists"

        def wheel(self, name="demo", version="1.0", **kw):
            return distfactory.make_wheel(self.dir, name, version, **kw)

        def sdist(self, name="demo", version="1.0", **kw):
            return distfactory.make_sdist(self.dir, name, version, **kw)

    return Factory()


@pytest.fixture
def app_settings(tmp_path):
    return {
        "sqlalchemy.url": f"sqlite:///{tmp_path}/db.sqlite",
        "pypirepo.auto_migrate": "true",
        # Tests that change storage behind the app's back need the walk done before the
        # first request, not in the background as a populated database would get.
        "pypirepo.reindex_on_start": "sync",
        "pypirepo.storage": "local",
        "storage.dir": str(tmp_path / "storage"),
        "pypi.default_read": "everyone",
        "pypi.default_write": "authenticated",
        "auth.bootstrap_user": "admin",
        "auth.bootstrap_password": "pw",
        "auth.admins": "",
        # A second user with a real passlib hash (of "alicepw").
        "user.alice": "$pbkdf2-sha256$29000$mBOC8D6HsDaGUApB6J3Tug$"
                      "kVuo4xgW9oKkBaZlqq.ZBKENn5oq8PiMmksNI7mbhpw",
    }


@pytest.fixture
def make_app(app_settings):
    """Build the WSGI app wrapped in WebTest, with optional setting overrides."""
    from webtest import TestApp

    from pypirepo import main

    def build(**overrides):
        settings = dict(app_settings)
        settings.update({k.replace("__", "."): v for k, v in overrides.items()})
        return TestApp(main({}, **settings))

    return build


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def server(tmp_path):
    """A real pserve process; call .start() after adjusting .app settings."""
    srv = Server(tmp_path / "server")
    srv.directory.mkdir()
    yield srv
    srv.stop()


@pytest.fixture
def up(upstream):
    """The upstream, well-behaved and with fresh counters, for one test (each module that
    uses it has its own `upstream` fixture)."""
    with healthy(upstream) as server:
        yield server


@pytest.fixture(scope="session")
def postgres():
    pg = PostgreSQL().start()
    yield pg
    pg.stop()


@pytest.fixture
def pg_url(postgres):
    """A fresh database in the session's PostgreSQL cluster."""
    return postgres.create_database("t" + uuid.uuid4().hex[:12])


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """A fresh database, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/db.sqlite"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def database(db_url):
    """The migrated database of db_url (pypirepo.db.Database); disposed after the test."""
    from pypirepo.db import Database

    db = Database.open(db_url, auto_migrate=True)
    yield db
    db.engine.dispose()
