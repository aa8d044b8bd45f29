"""The web UI's list queries (pypirepo.metadata.browse) on a real SQLite database:
search ranking, paging, sorting, and a group's first-holder-wins union."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import insert
from sqlalchemy.orm import Session

from pypirepo.db.engine import make_engine
from pypirepo.metadata.browse import Browse
from pypirepo.models import Base, Project, Repository

T0 = dt.datetime(2026, 1, 1)


@pytest.fixture
def session(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/b.sqlite")
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        s.execute(insert(Repository.__table__), [
            {"id": i, "name": n, "kind": "hosted", "serial": 0, "created": T0}
            for i, n in ((1, "a"), (2, "b"), (3, "c"))])
        yield s


def add(session, repository_id, display, summary=None, minutes=0):
    session.execute(insert(Project.__table__), {
        "repository_id": repository_id, "name": display.lower().replace("_", "-")
        .replace(".", "-"), "display_name": display, "serial": 1, "created": T0,
        "summary": summary, "last_upload": T0 + dt.timedelta(minutes=minutes)})


NAMES = ["Django", "django-extensions", "my_django", "flask", "Djangorestframework"]


def names(rows):
    return [r.display_name for r in rows]


def test_search_ranks_exact_then_prefix_then_substring_then_summary(session):
    for i, n in enumerate(NAMES):
        add(session, 1, n, minutes=i)
    add(session, 1, "webapp", summary="Built on DJANGO")
    rows, total = Browse(session).search([1], "django", "DJANGO")
    assert names(rows) == ["Django", "django-extensions", "Djangorestframework", "my_django",
                           "webapp"]
    assert total == 5
    page, total = Browse(session).search([1], "django", "django", offset=1, limit=2)
    assert names(page) == ["django-extensions", "Djangorestframework"] and total == 5
    newest, _ = Browse(session).search([1], "django", "django", sort="updated")
    assert names(newest)[0] == "Djangorestframework"
    assert Browse(session).search([1], "nothing", "nothing") == ([], 0)
    assert Browse(session).search([1], "flask", "flask", offset=10) == ([], 1)  # past the end
    # LIKE's wildcards are characters here.
    add(session, 1, "under_score")
    assert names(Browse(session).search([1], "_", "%")[0]) == []


def test_lists_page_and_sort_on_one_repository(session):
    for i, n in enumerate(NAMES):
        add(session, 1, n, minutes=10 - i)
    browse = Browse(session)
    assert names(browse.projects([1])) == sorted(NAMES, key=str.lower)
    assert names(browse.projects([1], offset=3, limit=5)) == ["flask", "my_django"]
    assert names(browse.projects([1], sort="updated", limit=2)) == ["Django",
                                                                  "django-extensions"]
    assert browse.count([1]) == 5


def test_a_group_lists_each_name_once_from_its_first_holder(session):
    add(session, 1, "shared", summary="from a", minutes=1)
    add(session, 2, "shared", summary="from b", minutes=9)
    add(session, 2, "only-b", minutes=5)
    add(session, 3, "only-c", minutes=2)
    add(session, 3, "shared", summary="from c")
    browse = Browse(session)
    rows = browse.projects([1, 2, 3])
    assert names(rows) == ["only-b", "only-c", "shared"]
    assert rows[2].summary == "from a"
    assert names(browse.projects([2, 1, 3])) == ["only-b", "only-c", "shared"]
    assert browse.projects([2, 1, 3])[2].summary == "from b"
    assert names(browse.projects([1, 2, 3], sort="updated")) == ["only-b", "only-c",
                                                                 "shared"]
    assert names(browse.projects([1, 2, 3], offset=1, limit=1)) == ["only-c"]
    assert names(browse.projects([1, 2, 3], offset=2)) == ["shared"]
    assert browse.count([1, 2, 3]) == 3
    found, total = browse.search([1, 2, 3], "from", "from")
    assert names(found) == ["shared"] and found[0].summary == "from a" and total == 1
    found, total = browse.search([3, 2], "shared", "shared")
    assert found[0].summary == "from c" and total == 1
