"""The upstream figures of the repositories' overview (pypirepo.fallback.stats): counted in
memory, added to the shared row at most once per interval, summed over processes (two
counters on one database stand for two instances), the newest error kept."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from sqlalchemy import event, text

from pypirepo.fallback.stats import UpstreamCounter
from pypirepo.metadata.stats import RepositoryStats, UpstreamFigures


@pytest.fixture
def proxy_id(database):
    with database.engine.begin() as conn:
        conn.execute(text("INSERT INTO repositories (id, name, kind, serial, created) "
                          "VALUES (77, 'mirror', 'proxy', 0, :t)"),
                     {"t": dt.datetime(2026, 1, 1)})
    return 77


def stored(database, repository_id) -> UpstreamFigures:
    with database.engine.connect() as conn:
        return RepositoryStats(conn).upstream([repository_id]).get(repository_id,
                                                                   UpstreamFigures())


def writes(engine) -> list:
    seen = []

    @event.listens_for(engine, "before_cursor_execute")
    def count(conn, cursor, statement, *args):
        if "upstream_stats" in statement and not statement.lstrip().upper().startswith(
                "SELECT"):
            seen.append(statement)

    return seen


def test_a_burst_is_one_write_after_the_interval(database, proxy_id):
    seen = writes(database.engine)
    counter = UpstreamCounter(database.engine, proxy_id, interval=0.3)
    for _ in range(500):
        counter.hit()
    counter.miss()
    counter.error("the upstream index answered 503")
    assert seen == [] and counter.pending().hits == 500  # nothing written yet
    assert stored(database, proxy_id) == UpstreamFigures()
    deadline = time.monotonic() + 5
    while counter.pending() != UpstreamFigures() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.1)
    got = stored(database, proxy_id)
    assert (got.hits, got.misses, got.errors) == (500, 1, 1)
    assert got.last_error == "the upstream index answered 503"
    # The first write makes the row: an UPDATE that found none, then the INSERT.
    assert len(seen) <= 2
    counter.close()


def test_two_processes_sum_up_and_the_newest_error_wins(database, proxy_id):
    a = UpstreamCounter(database.engine, proxy_id, interval=60)
    b = UpstreamCounter(database.engine, proxy_id, interval=60)
    a.hit()
    a.error("first")
    a.flush()
    time.sleep(1.1)  # the errors' times are to the second
    b.hit()
    b.hit()
    b.miss()
    b.error("second")
    b.flush()
    # Written last, but it happened before: the newer error stays.
    with database.engine.begin() as conn:
        RepositoryStats(conn).add_upstream(proxy_id, UpstreamFigures(
            errors=1, last_error="older", last_error_at=dt.datetime(2020, 1, 1)))
    got = stored(database, proxy_id)
    assert (got.hits, got.misses, got.errors) == (3, 1, 3)
    assert got.last_error == "second" and got.last_error_at > dt.datetime(2026, 1, 1)


def test_nothing_to_write_writes_nothing(database, proxy_id):
    seen = writes(database.engine)
    counter = UpstreamCounter(database.engine, proxy_id)
    counter.flush()
    counter.close()
    assert seen == []
