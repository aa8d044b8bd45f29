"""A rebuild on an object store reads one snapshot instead of one record per file.

Run on every backend (local with the snapshot forced on, since it stays off there by
default). Reads are counted by wrapping the store's read entry points on the instance, so
a rebuild that quietly fell back to a GET per record fails the count.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import shutil

import pytest
from sqlalchemy import text

from pypirepo.metadata.rebuild import reconcile
from pypirepo.interfaces import StorageError
from pypirepo.db import migrate
from pypirepo.db.engine import make_engine, make_session_factory
from pypirepo.records import SNAPSHOT_KEY, FileRecord, record_key

COUNT = 12


@pytest.fixture(scope="session")
def schema_db(tmp_path_factory):
    """One migrated empty database, copied for each rebuild (alembic once per session)."""
    path = tmp_path_factory.mktemp("schema") / "empty.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture
def fresh_db(schema_db, tmp_path):
    """A factory of empty databases: (session_factory, engine)."""
    made = []

    def make():
        path = tmp_path / f"db{len(made)}.sqlite"
        shutil.copy(schema_db, path)
        engine = make_engine(f"sqlite:///{path}")
        made.append(engine)
        return make_session_factory(engine), engine

    yield make
    for engine in made:
        engine.dispose()


@pytest.fixture
def snap_store(store):
    store.snapshot_rebuild = True  # a no-op on remote stores, forced on for local
    return store


def make_record(i: int, yanked: bool = False) -> FileRecord:
    name = f"proj{i % 3}"
    filename = f"{name}-1.{i}-py3-none-any.whl"
    return FileRecord(project=name, display_name=name.capitalize(), filename=filename,
                      version=f"1.{i}", canonical_version=f"1.{i}", packagetype="bdist_wheel",
                      python_version="py3", size=100 + i,
                      sha256=hashlib.sha256(filename.encode()).hexdigest(),
                      upload_time=dt.datetime(2026, 1, 1, 12, 0, i), yanked=yanked,
                      yanked_reason="bad" if yanked else None, info={"summary": f"s{i}"})


def put_record(store, rec: FileRecord) -> None:
    store.put_bytes(record_key(rec.project, rec.filename), rec.to_json())


def rows(engine) -> dict[str, tuple]:
    with engine.connect() as conn:
        return {r[0]: (r[1], r[2], r[3]) for r in conn.execute(
            text("SELECT filename, yanked, size, sha256 FROM files"))}


class Reads:
    """Every key the store was asked to read, whichever entry point was used."""

    def __init__(self, store):
        self.single, self.many = [], []
        read_bytes, read_many = store.read_bytes, store.read_many

        def counted_bytes(key):
            self.single.append(key)
            return read_bytes(key)

        def counted_many(keys):
            keys = list(keys)
            self.many.extend(keys)
            return read_many(keys)

        store.read_bytes, store.read_many = counted_bytes, counted_many


def seeded(store, fresh_db):
    """COUNT records, reconciled once into a database: which writes the snapshot."""
    recs = [make_record(i) for i in range(COUNT)]
    for rec in recs:
        put_record(store, rec)
    factory, engine = fresh_db()
    first = reconcile(store, factory)
    assert (first.added, first.fetched, first.snapshot_written) == (COUNT, COUNT, True)
    return recs, rows(engine)


def test_listing_etag_changes_when_an_object_is_rewritten(store):
    store.put_bytes("e/obj.json", b'{"yanked":false}')
    before = {o.key: o.etag for o in store.list("e/")}
    assert before["e/obj.json"]
    store.put_bytes("e/obj.json", b'{"yanked":true,"x":1}')
    after = {o.key: o.etag for o in store.list("e/")}
    assert after["e/obj.json"] and after["e/obj.json"] != before["e/obj.json"]


def test_rebuild_with_a_valid_snapshot_makes_one_get(snap_store, fresh_db):
    _recs, expected = seeded(snap_store, fresh_db)
    assert snap_store.exists(SNAPSHOT_KEY)
    reads = Reads(snap_store)
    factory, engine = fresh_db()
    result = reconcile(snap_store, factory)
    assert (result.added, result.fetched) == (COUNT, 0)
    assert reads.single == [SNAPSHOT_KEY] and reads.many == []
    assert rows(engine) == expected
    assert not result.snapshot_written  # nothing fetched: the snapshot is current


def test_rewritten_record_is_refetched_and_deleted_file_dropped(snap_store, fresh_db):
    recs, _ = seeded(snap_store, fresh_db)
    # After the snapshot: a yank rewrites one record, a file is deleted, one is added.
    put_record(snap_store, make_record(0, yanked=True))
    snap_store.delete(record_key(recs[1].project, recs[1].filename))
    added = make_record(COUNT)
    put_record(snap_store, added)

    reads = Reads(snap_store)
    factory, engine = fresh_db()
    result = reconcile(snap_store, factory)
    assert result.added == COUNT and result.fetched == 2
    assert sorted(reads.many) == sorted([record_key(recs[0].project, recs[0].filename),
                                         record_key(added.project, added.filename)])
    found = rows(engine)
    assert found[recs[0].filename][0]  # the yank won over the snapshot's text
    assert recs[1].filename not in found and added.filename in found
    assert result.snapshot_written  # 2 of 12 fetched: worth a fresh snapshot

    # The fresh snapshot holds the new state: the next rebuild fetches nothing.
    reads = Reads(snap_store)
    factory, engine = fresh_db()
    result = reconcile(snap_store, factory)
    assert (result.added, result.fetched, reads.many) == (COUNT, 0, [])
    assert rows(engine) == found


def test_a_record_rewritten_during_the_rebuild_is_not_pinned_to_the_old_etag(snap_store,
                                                                            fresh_db):
    recs = [make_record(i) for i in range(COUNT)]
    for rec in recs:
        put_record(snap_store, rec)
    read_many = snap_store.read_many

    def yank_and_unyank_around_the_reads(keys):
        # After the listing: a yank lands before the GET, its unyank right after, which
        # leaves bytes (and on S3 the MD5 etag) equal to what the listing saw.
        put_record(snap_store, make_record(0, yanked=True))
        got = list(read_many(keys))
        put_record(snap_store, recs[0])
        return iter(got)

    snap_store.read_many = yank_and_unyank_around_the_reads
    factory, _engine = fresh_db()
    assert reconcile(snap_store, factory).snapshot_written
    del snap_store.read_many
    factory, engine = fresh_db()
    assert reconcile(snap_store, factory).added == COUNT
    assert not rows(engine)[recs[0].filename][0]  # storage says unyanked, and so do we


def test_corrupt_snapshot_falls_back_to_one_get_per_record(snap_store, fresh_db):
    _recs, expected = seeded(snap_store, fresh_db)
    snap_store.put_bytes(SNAPSHOT_KEY, b"not gzip at all")
    reads = Reads(snap_store)
    factory, engine = fresh_db()
    result = reconcile(snap_store, factory)
    assert (result.added, result.fetched, len(reads.many)) == (COUNT, COUNT, COUNT)
    assert rows(engine) == expected
    assert result.snapshot_written

    # One damaged entry whose etag still matches: that record alone is fetched.
    data = json.loads(gzip.decompress(snap_store.read_bytes(SNAPSHOT_KEY)))
    damaged = sorted(data)[3]
    data[damaged][1] = "{broken"
    snap_store.put_bytes(SNAPSHOT_KEY, gzip.compress(json.dumps(data).encode()))
    reads = Reads(snap_store)
    factory, engine = fresh_db()
    result = reconcile(snap_store, factory)
    assert (result.added, reads.many) == (COUNT, [damaged])
    assert rows(engine) == expected


def test_failing_to_write_the_snapshot_never_fails_the_rebuild(snap_store, fresh_db):
    for i in range(COUNT):
        put_record(snap_store, make_record(i))

    def refuse(key, data):
        raise StorageError("read-only bucket")

    snap_store.put_bytes = refuse
    factory, engine = fresh_db()
    result = reconcile(snap_store, factory)
    assert (result.added, result.snapshot_written) == (COUNT, False)
    assert len(rows(engine)) == COUNT


@pytest.mark.backends("local")
def test_local_storage_keeps_its_fast_path(store, fresh_db):
    for i in range(COUNT):
        put_record(store, make_record(i))
    factory, _engine = fresh_db()
    result = reconcile(store, factory)
    assert (result.added, result.snapshot_written) == (COUNT, False)
    assert not store.exists(SNAPSHOT_KEY)


def test_background_reconcile_writes_a_missing_snapshot(snap_store, fresh_db):
    """A bucket filled by uploads has no snapshot; the start-up walk of a populated
    database writes one, so a rebuild into an empty database afterwards is one GET."""
    recs = [make_record(i) for i in range(COUNT)]
    for rec in recs:
        put_record(snap_store, rec)
    factory, engine = fresh_db()
    reconcile(snap_store, factory)
    snap_store.delete(SNAPSHOT_KEY)  # as if the records had arrived by uploads
    populated = reconcile(snap_store, factory)
    assert not populated.snapshot_written and not snap_store.exists(SNAPSHOT_KEY)
    refreshed = reconcile(snap_store, factory, refresh_snapshot=True)
    assert refreshed.snapshot_written and refreshed.added == 0
    reads = Reads(snap_store)
    factory2, engine2 = fresh_db()
    result = reconcile(snap_store, factory2)
    assert (result.added, result.fetched) == (COUNT, 0)
    assert reads.single == [SNAPSHOT_KEY] and reads.many == []
    assert rows(engine2) == rows(engine)
    # and a current snapshot is not rewritten
    assert not reconcile(snap_store, factory, refresh_snapshot=True).snapshot_written


def test_debris_of_interrupted_uploads_is_cleared(store):
    """A distribution without a record (an upload killed before its record was written)
    goes, with its .metadata; a complete file and a lone upstream sidecar stay. Only
    once old enough: another server's upload in progress looks the same for a moment."""
    from pypirepo.metadata.rebuild import clear_debris

    store.put_bytes("packages/demo/demo-1.0.tar.gz", b"whole")
    store.put_bytes("packages/demo/demo-1.0.tar.gz.json", b"{}")
    store.put_bytes("packages/demo/demo-2.0-py3-none-any.whl", b"cut short")
    store.put_bytes("packages/demo/demo-2.0-py3-none-any.whl.metadata", b"Name: demo")
    store.put_bytes("packages/other/other-1.0-py3-none-any.whl.metadata", b"Name: other")
    assert clear_debris(store).recent == 1  # just written: left alone
    assert len(list(store.list_keys("packages/"))) == 5
    found = clear_debris(store, min_age=0)
    assert (found.removed, found.recent) == (1, 0)
    assert sorted(store.list_keys("packages/")) == [
        "packages/demo/demo-1.0.tar.gz", "packages/demo/demo-1.0.tar.gz.json",
        "packages/other/other-1.0-py3-none-any.whl.metadata"]


def test_a_rebuild_restores_every_repository(snap_store, fresh_db):
    """Each repository's records under its own prefix, and the two repositories that
    share packages/ (a server without declared repositories) told apart by origin: an
    empty database gets them all back, each file in its own repository, the same filename
    in two of them included; the records snapshot covers every prefix."""
    from pypirepo.metadata.rebuild import Shelf
    from pypirepo.records import PREFIX

    dev, release = "repositories/dev/", "repositories/release/"
    layout = {
        dev: [make_record(i) for i in range(4)],
        release: [make_record(i) for i in range(2, 6)],  # 2 and 3 are in dev too
        PREFIX: [make_record(i) for i in range(6, 8)],
    }
    cached = make_record(8)
    cached.origin = "upstream"
    layout[PREFIX].append(cached)
    for prefix, recs in layout.items():
        for rec in recs:
            snap_store.put_bytes(record_key(rec.project, rec.filename, prefix), rec.to_json())
    factory, engine = fresh_db()
    with engine.begin() as conn:  # the declared ones (local 1 and pypi 2 come with 0004)
        for rid, name in ((3, "dev"), (4, "release")):
            conn.execute(text("INSERT INTO repositories (id, name, kind, serial, created) "
                              "VALUES (:id, :name, 'hosted', 0, '2026-01-01')"),
                         {"id": rid, "name": name})
    shelves = [Shelf(1, PREFIX, lambda r: r.origin != "upstream"),
               Shelf(2, PREFIX, lambda r: r.origin == "upstream"),
               Shelf(3, dev), Shelf(4, release)]
    result = reconcile(snap_store, factory, shelves=shelves)
    assert result.added == sum(len(recs) for recs in layout.values())
    with engine.connect() as conn:
        held = sorted(conn.execute(text(
            "SELECT r.name, f.filename FROM files f JOIN repositories r "
            "ON r.id = f.repository_id")).all())
    expect = sorted([("dev", r.filename) for r in layout[dev]]
                    + [("release", r.filename) for r in layout[release]]
                    + [("local", r.filename) for r in layout[PREFIX][:2]]
                    + [("pypi", cached.filename)])
    assert held == expect
    # A record gone from one repository leaves its twin in the other.
    twin = layout[dev][2]
    snap_store.delete(record_key(twin.project, twin.filename, dev))
    again = reconcile(snap_store, factory, shelves=shelves)
    assert (again.removed, again.added) == (1, 0)
    # And a rebuild into another empty database reads the snapshot, not each record.
    if snap_store.alias != "local":
        factory2, engine2 = fresh_db()
        with engine2.begin() as conn:
            for rid, name in ((3, "dev"), (4, "release")):
                conn.execute(text("INSERT INTO repositories (id, name, kind, serial, "
                                  "created) VALUES (:id, :name, 'hosted', 0, '2026-01-01')"),
                             {"id": rid, "name": name})
        reads = Reads(snap_store)
        rebuilt = reconcile(snap_store, factory2, shelves=shelves)
        assert rebuilt.added == len(expect) - 1
        assert rebuilt.fetched <= 1 and len(reads.many) <= 1, reads.many
