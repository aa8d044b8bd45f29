"""Freshness across processes on one SQLite file: the beacon that spares the query."""

from __future__ import annotations

import pytest
from helpers import check_processes_share_one_database
from sqlalchemy import text

import pypirepo.db.serials as serials_module
from pypirepo.metadata import MetadataCache
from pypirepo.db.serials import Serials
from pypirepo.db.beacon import SUFFIX, attach
from pypirepo.db import migrate
from pypirepo.db.engine import make_engine, make_session_factory


def test_two_processes_share_one_sqlite_file(tmp_path):
    check_processes_share_one_database(f"sqlite:///{tmp_path}/shared.sqlite", tmp_path)


@pytest.fixture
def two_engines(tmp_path):
    """Two engines on one file, each with its own mapping of the beacon: what two
    processes have."""
    url = f"sqlite:///{tmp_path}/db.sqlite"
    engines = [make_engine(url), make_engine(url)]
    migrate.upgrade(engines[0])
    yield engines
    for engine in engines:
        engine.dispose()


LOCAL = 1  # the hosted repository every migrated database has


def _bump(factory, name="demo"):
    with factory() as session:
        cache = MetadataCache(session)
        pid = cache.ensure_project(LOCAL, name, name)
        serial = cache.bump_serial(LOCAL, pid)
        session.commit()
    return serial


def test_a_commit_elsewhere_is_seen_at_once(two_engines):
    reader, writer = two_engines
    serials, factory = Serials(reader), make_session_factory(writer)
    assert attach(reader) is not attach(writer)  # separate mappings of one file
    assert serials.repository(LOCAL) == 0 and serials.projects("demo") == {}
    for _ in range(3):
        serial = _bump(factory)
        assert serials.repository(LOCAL) == serial
        assert serials.projects("demo")[LOCAL][1] == serial


def test_unchanged_beacon_spares_the_query(two_engines, monkeypatch):
    """A change written behind the beacon's back (a writer that died between commit and
    bump) stays unseen until the answer is RECHECK old: proof that the query is skipped,
    and that the recheck bounds it."""
    reader, writer = two_engines
    serials = Serials(reader)
    _bump(make_session_factory(writer))
    before = serials.repository(LOCAL)
    with writer.begin() as conn:
        conn.execute(text("UPDATE repositories SET serial = serial + 100 WHERE id = 1"))
    assert serials.repository(LOCAL) == before
    monkeypatch.setattr(serials_module, "RECHECK", 0.0)
    assert serials.repository(LOCAL) == before + 100


def test_rollback_does_not_bump(two_engines):
    reader, writer = two_engines
    factory = make_session_factory(writer)
    beacon = attach(reader)
    count = beacon.read()
    with factory() as session:
        cache = MetadataCache(session)
        cache.bump_serial(LOCAL, cache.ensure_project(LOCAL, "demo", "demo"))
        session.rollback()
        session.commit()  # nothing left to announce
    assert beacon.read() == count
    _bump(factory)
    assert beacon.read() == count + 1


def test_beacon_file_sits_beside_the_database(two_engines, tmp_path):
    assert attach(two_engines[0]).path == str(tmp_path / "db.sqlite") + SUFFIX
    assert attach(make_engine("sqlite://")) is None  # in memory: no other process
