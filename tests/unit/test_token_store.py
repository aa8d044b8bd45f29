"""API tokens (pypirepo.access.tokens) on a real database, SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from sqlalchemy import event, select

from pypirepo.access.model import ANYWHERE, READ, UPLOAD, TokenScope
from pypirepo.access.tokens import PREFIX, TokenStore, digest_of, scope_of
from pypirepo.metadata.access import TokensSQL
from pypirepo.models.access import ApiToken
from pypirepo.records import utcnow


@pytest.fixture
def store(database):
    s = TokenStore(TokensSQL(database.session_factory))
    yield s
    s.close()


def updates_of_last_used(engine) -> list:
    """Every UPDATE of api_tokens.last_used the engine runs, as it runs it."""
    seen = []

    @event.listens_for(engine, "before_cursor_execute")
    def spy(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("UPDATE API_TOKENS") and \
                "last_used" in statement:
            seen.append(statement)

    return seen


def test_a_token_is_shown_once_and_kept_as_its_digest(store, database):
    secret, info = store.create("alice", scope_of(UPLOAD, ["local"], ["team-*"]), note="ci")
    assert secret.startswith(PREFIX) and store.looks_like(secret)
    assert info.prefix == secret[:len(PREFIX) + 6]
    with database.session_factory() as session:
        row = session.execute(select(ApiToken)).scalar_one()
    assert row.digest == digest_of(secret) and secret not in repr(row.__dict__)
    checked = store.check(secret)
    assert checked.user == "alice"
    assert checked.scope == TokenScope(frozenset({READ, UPLOAD}), frozenset({"local"}),
                                       ("team-*",))
    assert store.listed("alice")[0].as_json()["permission"] == "upload"
    # Two tokens are never alike.
    assert store.create("alice", scope_of())[0] != secret


@pytest.mark.parametrize("secret", [
    "", "pypirepo_", "pypirepo_short", PREFIX + "x" * 42, PREFIX + "x" * 44,
    PREFIX + "!" * 43, "PYPIREPO_" + "x" * 43, "a-password",
])
def test_what_is_not_a_token_shape_is_a_password(store, secret):
    assert not store.looks_like(secret)
    assert store.check(secret) is None


def test_unknown_expired_and_revoked_tokens_are_refused(store, database):
    assert store.check(PREFIX + "A" * 43) is None
    soon, _ = store.create("alice", scope_of(), expires=utcnow() + dt.timedelta(seconds=2))
    assert store.check(soon) is not None
    time.sleep(2.1)
    # Expiry is checked on every use, also while the token is trusted from memory.
    assert store.check(soon) is None
    secret, info = store.create("alice", scope_of())
    assert store.check(secret) is not None
    assert store.revoke(info.id)
    assert store.check(secret) is None  # at once, in the process that revoked it
    assert not store.revoke(info.id)  # once
    assert store.get(info.id).revoked is not None
    assert info.id not in [t.id for t in store.listed("alice")]
    assert info.id in [t.id for t in store.listed("alice", revoked=True)]


def test_a_revocation_elsewhere_counts_within_a_second(database):
    here = TokenStore(TokensSQL(database.session_factory), recheck=0.5)
    elsewhere = TokenStore(TokensSQL(database.session_factory))
    try:
        secret, info = here.create("alice", scope_of())
        assert here.check(secret) is not None
        elsewhere.revoke(info.id)
        time.sleep(0.6)
        assert here.check(secret) is None
    finally:
        here.close()
        elsewhere.close()


def test_checks_within_a_second_ask_the_database_once(store, database):
    secret, _ = store.create("alice", scope_of())
    asked = []

    @event.listens_for(database.engine, "before_cursor_execute")
    def spy(conn, cursor, statement, *args):
        if "api_tokens" in statement and statement.lstrip().upper().startswith("SELECT"):
            asked.append(statement)

    for _ in range(50):
        assert store.check(secret) is not None
    assert len(asked) == 1


def test_last_used_is_written_behind_not_per_use(database):
    writes = updates_of_last_used(database.engine)
    store = TokenStore(TokensSQL(database.session_factory), last_used_interval=1.0)
    try:
        secret, info = store.create("alice", scope_of())
        assert store.get(info.id).last_used is None
        for _ in range(100):
            assert store.check(secret) is not None
        deadline = time.monotonic() + 5
        while not writes and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(writes) == 1  # the first use, written by the background writer
        with database.session_factory() as session:
            assert session.get(ApiToken, info.id).last_used is not None
        # More uses within the interval: one more write, once the interval has passed.
        for _ in range(100):
            store.check(secret)
        time.sleep(0.3)
        assert len(writes) == 1
        time.sleep(1.2)
        assert len(writes) == 2
    finally:
        store.close()


def test_scope_of_checks_what_a_user_asks_for():
    assert scope_of().permissions == frozenset({READ})
    assert scope_of(UPLOAD).permissions == frozenset({READ, UPLOAD})
    assert scope_of(READ, ["a", "*"]).repositories == frozenset({ANYWHERE})
    assert scope_of(READ, ["*"], ["Team_Tools.*", "x"]).projects == ("team-tools-*", "x")
    for bad in [dict(permission="delete"), dict(permission="admin"),
                dict(repositories=[]), dict(repositories=[""]), dict(repositories=[3]),
                dict(projects=["no spaces"]), dict(projects=[])]:
        with pytest.raises(ValueError):
            scope_of(**bad)
    with pytest.raises(ValueError, match="no repository named 'nope'"):
        scope_of(READ, ["nope"], known_repositories=["local"])


def test_scope_narrows_what_the_owner_may():
    scope = scope_of(READ, ["local"], ["team-*"])
    assert scope.allows("local", "team-a", READ)
    assert not scope.allows("local", "team-a", UPLOAD)  # a read token never uploads
    assert not scope.allows("other", "team-a", READ)  # another repository
    assert not scope.allows("local", "public", READ)  # another project


def test_the_writer_ends_when_idle_and_comes_back(database, monkeypatch):
    from pypirepo.access import tokens

    monkeypatch.setattr(tokens, "IDLE", 0.3)
    writes = updates_of_last_used(database.engine)
    store = TokenStore(TokensSQL(database.session_factory), last_used_interval=0.2)
    try:
        secret, _ = store.create("alice", scope_of())
        store.check(secret)
        deadline = time.monotonic() + 3
        while store._flusher is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store._flusher is None and len(writes) == 1
        store.check(secret)
        deadline = time.monotonic() + 3
        while len(writes) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(writes) == 2
    finally:
        store.close()
