"""The credential cache the fast path answers authenticated pages from
(Access.cached_identity): a request's Basic header is looked up by its salted digest, a
token's entry holds only while the token store vouches for it, and nothing in it is a
secret in clear. On a real database (the token store's), SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import datetime as dt
import threading
import time

import pytest
from passlib.hash import pbkdf2_sha256
from sqlalchemy import event

from pypirepo.access import Access, LoginThrottle
from pypirepo.access.config import ConfigBackend
from pypirepo.access.tokens import TokenStore, digest_of, scope_of
from pypirepo.metadata.access import TokensSQL
from pypirepo.records import utcnow

PASSWORD = "pw-of-alice"


def header(user, password) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def tokens(database):
    store = TokenStore(TokensSQL(database.session_factory), recheck=0.5)
    yield store
    store.close()


@pytest.fixture
def access(tokens):
    backend = ConfigBackend({"alice": pbkdf2_sha256.hash(PASSWORD)}, {"team": {"alice"}},
                            set(), [], None)
    return Access(backend, [], cache_ttl=300, tokens=tokens,
                  throttle=LoginThrottle(failures=3, address_failures=100))


def test_a_password_is_answered_from_the_cache_after_one_check(access):
    assert access.cached_identity(header("alice", PASSWORD), "10.0.0.1") is None  # not yet
    checked = access.identify("alice", PASSWORD, address="10.0.0.1")
    assert checked is not None and checked.groups == {"team"}
    assert access.cached_identity(header("alice", PASSWORD), "10.0.0.1") is checked
    assert access.cached_identity(header("alice", PASSWORD).replace("Basic", "basic"),
                                  None) is checked  # the scheme in any case, as parse_basic
    assert access.cached_identity(header("alice", PASSWORD + "x"), None) is None
    assert access.cached_identity("Bearer " + PASSWORD, None) is None
    assert access.cached_identity("Basic é", None) is None  # not base64: the router says so
    # Nothing kept is the secret or the header in clear.
    kept = repr(access.credentials._items).encode()
    assert PASSWORD.encode() not in kept
    assert header("alice", PASSWORD).split()[1].encode() not in kept
    access.credentials.clear()  # what a changed password or user does
    assert access.cached_identity(header("alice", PASSWORD), None) is None


def test_a_user_name_with_a_colon_never_meets_another_pair():
    # Basic can't carry a colon in a user name: "a:b" + "c" would read as "a" + "b:c".
    backend = ConfigBackend({"alice": pbkdf2_sha256.hash("x:" + PASSWORD)}, {}, set(), [],
                            None)
    access = Access(backend, [], cache_ttl=300)
    assert access.identify("alice", "x:" + PASSWORD) is not None
    assert access.cached_identity(header("alice", "x:" + PASSWORD), None) is not None
    assert access.credentials.get("alice:x", PASSWORD) is None
    assert access.identify("alice:x", PASSWORD) is None


def test_a_throttled_account_is_not_answered_from_the_cache(access):
    assert access.identify("alice", PASSWORD, address="10.0.0.1") is not None
    for n in range(3):
        assert access.identify("alice", f"wrong-{n}", address="10.0.0.2") is None
    # The right password, cached, must not tell a guesser it is right: the router
    # answers 429 instead.
    assert access.cached_identity(header("alice", PASSWORD), "10.0.0.1") is None


def test_a_token_is_answered_from_the_cache_only_while_the_store_vouches(access, tokens):
    secret, info = tokens.create("alice", scope_of())
    as_token = header("__token__", secret)
    checked = access.identify("__token__", secret)
    assert checked is not None and checked.via == "token"
    assert access.cached_identity(as_token, None) is checked
    assert access.cached_identity(header("alice", secret), None) is None  # its own pair
    assert secret.encode() not in repr(access.credentials._items).encode()
    # After the store's recheck the token is read again, here (not through the router).
    time.sleep(0.6)
    assert not tokens.vouches(digest_of(secret))
    assert access.cached_identity(as_token, None) is not None
    assert tokens.vouches(digest_of(secret))
    # Revoked in this process: refused at once, though its identity is cached.
    assert tokens.revoke(info.id)
    assert access.cached_identity(as_token, None) is None
    assert access.identify("__token__", secret) is None


def test_a_token_revoked_elsewhere_stops_within_the_recheck(access, tokens, database):
    elsewhere = TokenStore(TokensSQL(database.session_factory))
    try:
        secret, info = tokens.create("alice", scope_of())
        as_token = header("__token__", secret)
        assert access.identify("__token__", secret) is not None
        assert access.cached_identity(as_token, None) is not None
        elsewhere.revoke(info.id)
        time.sleep(0.6)
        assert access.cached_identity(as_token, None) is None
        assert access.identify("__token__", secret) is None
    finally:
        elsewhere.close()


def test_an_expired_token_is_not_answered_from_the_cache(access, tokens):
    tokens.recheck = 60.0  # trusted from memory all along: expiry alone must stop it
    secret, _ = tokens.create("alice", scope_of(),
                              expires=utcnow() + dt.timedelta(seconds=1.5))
    as_token = header("__token__", secret)
    assert access.identify("__token__", secret) is not None
    assert access.cached_identity(as_token, None) is not None
    time.sleep(1.6)
    assert tokens.vouches(digest_of(secret)) is False
    assert access.cached_identity(as_token, None) is None
    assert access.identify("__token__", secret) is None


def test_requests_in_flight_when_a_tokens_second_is_up_read_it_once(access, tokens,
                                                                     database):
    secret, _ = tokens.create("alice", scope_of())
    as_token = header("__token__", secret)
    assert access.identify("__token__", secret) is not None
    time.sleep(0.6)  # the store's recheck (0.5 s) is up
    reads = []

    @event.listens_for(database.engine, "before_cursor_execute")
    def slow_read(conn, cursor, statement, *args):
        if "api_tokens" in statement and statement.lstrip().upper().startswith("SELECT"):
            reads.append(statement)
            time.sleep(0.1)  # a database that takes its time: the others arrive meanwhile

    start = threading.Barrier(8)
    answers = []

    def request():
        start.wait()
        answers.append(access.cached_identity(as_token, "10.0.0.1"))

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 8 and all(a is not None and a.via == "token" for a in answers)
    assert len(reads) == 1
