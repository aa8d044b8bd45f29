"""The access policy's decisions, on grants made by hand."""

from __future__ import annotations

import pytest

from pypirepo.access.model import (
    ADMIN,
    DELETE,
    READ,
    UPLOAD,
    Grant,
    Identity,
    TokenScope,
    check_pattern,
    implies,
    principal_of,
)
from pypirepo.access.policy import Policy
from pypirepo.pages import make_page

GRANTS = [
    Grant("release", "*", READ, "everyone"),
    Grant("release", "*", UPLOAD, "group:ci"),
    Grant("release", "team-*", READ, "group:team"),
    Grant("release", "team-*", UPLOAD, "carol"),
    Grant("release", "*", ADMIN, "rita"),
    Grant("*", "*", DELETE, "dora"),
]
ALICE = Identity("alice", groups=frozenset({"ci"}))
TEAMER = Identity("tom", groups=frozenset({"team"}))
CAROL = Identity("carol")


@pytest.fixture
def policy():
    owners = {("release", "team-owned"): frozenset({"olga"})}
    return Policy(GRANTS, owners=lambda r, p: owners.get((r, p), frozenset()),
                  owned=lambda r, u: frozenset(p for (rr, p), us in owners.items()
                                                if rr == r and u in us))


def test_implies():
    assert implies(ADMIN, DELETE) and implies(UPLOAD, READ) and implies(DELETE, READ)
    assert not implies(READ, UPLOAD) and not implies(UPLOAD, DELETE)


def test_repository_wide_grants(policy):
    assert policy.may(None, "release", "pkg", READ)
    assert not policy.may(None, "release", "pkg", UPLOAD)
    assert policy.may(ALICE, "release", "pkg", UPLOAD)
    assert not policy.may(ALICE, "release", "pkg", DELETE)
    assert policy.may(Identity("dora"), "elsewhere", "x", DELETE)  # a grant on * repos
    assert not policy.may(None, "elsewhere", "x", READ)


def test_pattern_grants_make_a_project_private(policy):
    # team-* is governed by its own grants: everyone's read and ci's upload don't reach it.
    assert not policy.may(None, "release", "team-tools", READ)
    assert not policy.may(ALICE, "release", "team-tools", READ)
    assert policy.may(TEAMER, "release", "team-tools", READ)
    assert not policy.may(TEAMER, "release", "team-tools", UPLOAD)
    assert policy.may(CAROL, "release", "team-tools", UPLOAD)
    assert policy.may(CAROL, "release", "team-tools", READ)  # writers read what they write
    # The repository's admins keep their rights on it; server admins have them all.
    assert policy.may(Identity("rita"), "release", "team-tools", DELETE)
    assert policy.may(Identity("root", admin=True), "release", "team-tools", ADMIN)


def test_owners_may_do_everything_to_their_project(policy):
    olga = Identity("olga")
    assert policy.may(olga, "release", "team-owned", DELETE)
    assert not policy.may(olga, "release", "team-other", READ)
    assert not policy.may(None, "release", "team-owned", READ)


def test_a_token_narrows_its_owners_rights(policy):
    read_only = Identity("alice", groups=frozenset({"ci"}), token=TokenScope())
    assert policy.may(read_only, "release", "pkg", READ)
    assert not policy.may(read_only, "release", "pkg", UPLOAD)
    scoped = Identity("alice", groups=frozenset({"ci"}), token=TokenScope(
        frozenset({READ, UPLOAD}), frozenset({"release"}), ("pkg-*",)))
    assert policy.may(scoped, "release", "pkg-a", UPLOAD)
    assert not policy.may(scoped, "release", "other", UPLOAD)
    assert not policy.may(scoped, "dev", "pkg-a", READ)
    admin_token = Identity("root", admin=True, token=TokenScope())
    assert not policy.may(admin_token, "release", "pkg", DELETE)


def test_may_somewhere(policy):
    assert policy.may_somewhere(CAROL, "release", UPLOAD)  # only team-*, but somewhere
    assert not policy.may_somewhere(TEAMER, "release", UPLOAD)
    assert policy.may_somewhere(Identity("olga"), "release", DELETE)  # owns a project
    assert not policy.may_somewhere(None, "dev", READ)


def test_visible_filters_by_class_of_projects(policy):
    names = ["pkg", "team-a", "team-b", "team-owned", "zeta"]
    assert policy.visible(None, "release", names) == ["pkg", "zeta"]
    assert policy.visible(TEAMER, "release", names) == names
    assert policy.visible(Identity("olga"), "release", names) == ["pkg", "team-owned", "zeta"]
    assert policy.visible(None, "dev", names) == []


def test_visible_page_is_kept_per_version_and_principals(policy):
    page = make_page(3, {"meta": {}, "projects": [
        {"name": n, "_normalized": n} for n in ("pkg", "team-a")]}, "index")
    first = policy.visible_page(None, "release", page, make_page)
    assert [p["name"] for p in first.data["projects"]] == ["pkg"]
    assert policy.visible_page(None, "release", page, make_page) is first
    assert policy.visible_page(TEAMER, "release", page, make_page) is not first
    # A repository everyone may read whole: the page itself.
    open_policy = Policy([Grant("dev", "*", READ, "everyone")])
    assert open_policy.visible_page(None, "dev", page, make_page) is page


@pytest.mark.parametrize("pattern, normalized", [
    ("Team_Tools.*", "team-tools-*"), ("*", "*"), ("a?c", "a?c"), ("X", "x")])
def test_patterns_are_normalized_as_names(pattern, normalized):
    assert check_pattern(pattern) == normalized


@pytest.mark.parametrize("bad", ["", "a b", "../x", "-x"])
def test_bad_patterns(bad):
    with pytest.raises(ValueError):
        check_pattern(bad)


@pytest.mark.parametrize("word, ok", [("everyone", True), ("group:ci", True), ("al@x", True),
                                      ("group:", False), ("a b", False), ("", False)])
def test_principals(word, ok):
    if ok:
        assert principal_of(word) == word
    else:
        with pytest.raises(ValueError):
            principal_of(word)
