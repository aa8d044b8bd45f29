"""The sql access backend (pypirepo.access.sql) on a real database, SQLite and PostgreSQL:
users, groups, admins and grants in the database over the ini's."""

from __future__ import annotations

import time

import pytest

from pypirepo.access import Access
from pypirepo.access.config import ConfigBackend
from pypirepo.access.model import ANYWHERE, READ, UPLOAD, Grant
from pypirepo.access.sql import SqlBackend
from pypirepo.errors import Refused
from pypirepo.metadata.access import AccessSQL
from pypirepo.passwords import PASSWORDS

ALICE_HASH = PASSWORDS.hash("alicepw")  # a user of the ini
REPOS = ["local", "release"]


def ini_backend(**kw) -> ConfigBackend:
    return ConfigBackend(
        users=kw.get("users", {"alice": ALICE_HASH}),
        groups=kw.get("groups", {"ops": frozenset({"alice"})}),
        admins=kw.get("admins", {"alice"}),
        grants=kw.get("grants", [Grant("local", ANYWHERE, READ, "everyone")]),
        bootstrap=kw.get("bootstrap", ("boot", "bootpw")))


@pytest.fixture
def backend(database):
    return SqlBackend(AccessSQL(database.session_factory), ini_backend(), REPOS)


def test_users_live_in_the_database(backend):
    backend.add_user("bob", "bobpw")
    assert backend.exists("bob") and backend.verify("bob", "bobpw")
    assert not backend.verify("bob", "wrong") and not backend.is_admin("bob")
    backend.set_password("bob", "newpw")
    assert backend.verify("bob", "newpw") and not backend.verify("bob", "bobpw")
    backend.set_admin("bob", True)
    assert backend.is_admin("bob")
    backend.add_user("tokens-only", None)
    assert backend.exists("tokens-only") and not backend.verify("tokens-only", "")
    assert backend.user_names() == ["alice", "bob", "boot", "tokens-only"]
    backend.remove_user("bob")
    assert not backend.exists("bob") and not backend.verify("bob", "newpw")
    with pytest.raises(Refused) as exc:
        backend.remove_user("bob")
    assert exc.value.status == 404
    with pytest.raises(Refused) as exc:
        backend.add_user("tokens-only", "x")
    assert exc.value.status == 409


def test_users_of_the_ini_work_and_stay_the_inis(backend):
    assert backend.verify("alice", "alicepw") and backend.verify("boot", "bootpw")
    assert backend.is_admin("alice") and backend.is_admin("boot")
    assert backend.groups_of("alice") == frozenset({"ops"})
    for change in (lambda: backend.add_user("alice", "x"),
                   lambda: backend.set_password("alice", "x"),
                   lambda: backend.remove_user("boot"),
                   lambda: backend.set_admin("alice", False),
                   lambda: backend.remove_group("ops")):
        with pytest.raises(Refused) as exc:
            change()
        assert exc.value.status == 409 and "ini" in exc.value.message
    # A database group may hold a user of the ini; an ini group gets members added.
    backend.add_user("bob", "bobpw")
    backend.set_group("team", ["alice", "bob"])
    backend.set_group("ops", ["bob"])
    assert backend.groups_of("alice") == frozenset({"ops", "team"})
    assert backend.groups_of("bob") == frozenset({"ops", "team"})
    assert backend.groups()["ops"] == ["alice", "bob"]
    assert backend.verify("alice", "alicepw")  # the row made for her holds no password
    with pytest.raises(Refused) as exc:
        backend.set_group("team", ["nobody"])
    assert exc.value.status == 400


def test_an_unknown_user_costs_a_hash_too(backend, monkeypatch):
    backend.add_user("bob", "bobpw")
    verified = []
    real = PASSWORDS.verify
    monkeypatch.setattr(PASSWORDS, "verify", lambda pw, h: verified.append(h) or real(pw, h))
    assert not backend.verify("nobody", "x")
    assert not backend.verify("bob", "x")
    # The same scheme and rounds checked for both: the decoy is a real user's hash.
    assert len(verified) == 2 and PASSWORDS.identify(verified[0]) == \
        PASSWORDS.identify(verified[1])


def test_grants_add_to_the_inis(backend):
    assert backend.grants() == [Grant("local", ANYWHERE, READ, "everyone")]
    backend.add_user("bob", "bobpw")
    backend.set_group("team", ["bob"])
    gid = backend.add_grant(Grant("release", "Team_*", UPLOAD, "group:team"))
    assert backend.add_grant(Grant("release", "team-*", UPLOAD, "group:team")) == gid
    assert backend.grants() == [Grant("local", ANYWHERE, READ, "everyone"),
                                Grant("release", "team-*", UPLOAD, "group:team")]
    with pytest.raises(Refused) as exc:  # the ini's own, not the database's to give
        backend.add_grant(Grant("local", ANYWHERE, READ, "everyone"))
    assert exc.value.status == 409
    for bad in (Grant("nope", ANYWHERE, READ, "bob"), Grant("local", ANYWHERE, "own", "bob"),
                Grant("local", "bad pattern", READ, "bob"),
                Grant("local", ANYWHERE, READ, "nobody"),
                Grant("local", ANYWHERE, READ, "group:nogroup")):
        with pytest.raises(Refused) as exc:
            backend.add_grant(bad)
        assert exc.value.status == 400
    assert backend.remove_grant(gid) == Grant("release", "team-*", UPLOAD, "group:team")
    assert backend.grants() == [Grant("local", ANYWHERE, READ, "everyone")]
    # Removing a user or a group takes the grants naming them along.
    backend.add_grant(Grant("local", "x", UPLOAD, "bob"))
    backend.add_grant(Grant("local", "y", UPLOAD, "group:team"))
    backend.remove_user("bob")
    backend.remove_group("team")
    assert backend.stored_grants() == []


def test_every_process_sees_a_change_within_a_second(database):
    here = SqlBackend(AccessSQL(database.session_factory), ini_backend(), REPOS)
    there = SqlBackend(AccessSQL(database.session_factory), ini_backend(), REPOS)
    access = Access(there, [], 0)
    version = there.version
    asked = access.policy
    here.add_user("bob", "bobpw")
    here.add_grant(Grant("release", ANYWHERE, UPLOAD, "bob"))
    assert here.version > version  # the process that changed it: at once
    deadline = time.monotonic() + 1.5
    while there.version == version and time.monotonic() < deadline:
        time.sleep(0.05)
    assert there.version == here.version and there.exists("bob")
    assert access.policy is not asked  # recompiled with the new grant
    assert access.policy.may(access.identity_of("bob"), "release", "x", UPLOAD)


def test_the_version_is_read_at_most_once_a_second(backend, database):
    from sqlalchemy import event

    asked = []

    @event.listens_for(database.engine, "before_cursor_execute")
    def spy(conn, cursor, statement, *args):
        if "access_state" in statement:
            asked.append(statement)

    backend.version  # noqa: B018
    asked.clear()
    for _ in range(1000):
        backend.version  # noqa: B018
        backend.exists("alice")
    assert len(asked) <= 1
