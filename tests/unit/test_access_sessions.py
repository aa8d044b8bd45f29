"""The parts of browser sessions and login throttling below the views: the throttle's
memory bound and keys, the signed cookie, the password rehash hook."""

from __future__ import annotations

import logging
import sys

import pytest
from passlib.hash import pbkdf2_sha256, sha256_crypt

from pypirepo.access import Access
from pypirepo.access.config import ConfigBackend
from pypirepo.access.rehash import Rehash
from pypirepo.access.session import Signer, equal
from pypirepo.access.throttle import LoginThrottle, Throttled, address_key
from pypirepo.passwords import PASSWORDS


class Clock:
    now = 0.0

    def __call__(self):
        return self.now


def test_memory_stays_bounded_whatever_names_and_addresses_are_tried():
    clock = Clock()
    throttle = LoginThrottle(failures=10, address_failures=30, window=300, entries=500,
                             clock=clock)
    for n in range(20000):
        throttle.failed(f"name-{n}", f"10.{n // 65536}.{n // 256 % 256}.{n % 256}", "x")
        clock.now += 0.001
    assert len(throttle.accounts) <= 500 and len(throttle.addresses) <= 500
    # Each key holds at most its limit of failures.
    for n in range(100):
        throttle.failed("one", "10.9.9.9", f"guess-{n}")
    assert len(throttle.accounts.items["one"]) == 10
    assert len(throttle.addresses.items["10.9.9.9"]) == 30
    # A full table drops what is older than the window first: then the rest stay.
    clock.now += 301
    throttle.failed("new", "10.8.8.8", "x")
    throttle.failed("newer", "10.8.8.9", "x")
    assert list(throttle.accounts.items) == ["new", "newer"]


def test_sliding_window():
    clock = Clock()
    throttle = LoginThrottle(failures=3, window=60, clock=clock)
    for n in range(3):
        throttle.failed("alice", None, f"g{n}")
        clock.now += 10
    with pytest.raises(Throttled) as refused:
        throttle.check("alice", None)
    assert not throttle.allows("alice", None) and throttle.allows("bob", None)
    assert refused.value.retry_after == 30  # the first (at 0 s) turns 60 s old then
    clock.now += 30
    throttle.check("alice", None)  # one slot free again: one more guess
    throttle.failed("alice", None, "g4")
    with pytest.raises(Throttled):
        throttle.check("alice", None)


def test_tokens_count_per_address_only():
    throttle = LoginThrottle(failures=2, address_failures=5)
    for n in range(4):
        throttle.failed(None, "10.0.0.1", f"token-{n}")
    assert not throttle.accounts.items
    throttle.check("alice", "10.0.0.2")
    throttle.failed(None, "10.0.0.1", "token-5")
    with pytest.raises(Throttled, match="this address"):
        throttle.check(None, "10.0.0.1")


def test_address_keys():
    assert address_key("192.0.2.1") == "192.0.2.1"
    assert address_key("2001:db8::1") == address_key("2001:db8::ffff:1") == "2001:db8::/64"
    assert address_key("2001:db8:0:1::1") != address_key("2001:db8::1")
    assert address_key(None) is None and address_key("") is None
    assert address_key("not:an:address") == "not:an:address"


def test_switched_off():
    throttle = LoginThrottle(failures=0)
    for n in range(100):
        throttle.failed("alice", "10.0.0.1", f"g{n}")
    throttle.check("alice", "10.0.0.1")
    assert not throttle.accounts.items


def test_signed_values():
    signer = Signer(b"k" * 32)
    value = signer.sign("session", {"u": "alice"})
    assert signer.unsign("session", value) == {"u": "alice"}
    assert signer.unsign("login", value) is None  # another purpose, another key
    assert Signer(b"x" * 32).unsign("session", value) is None
    payload, mac = value.split(".")
    assert signer.unsign("session", payload + "." + mac[:-1] + ("A" if mac[-1] != "A" else "B")) \
        is None
    for junk in ("", ".", "a.b", "!!!." + signer.mac("session", "!!!"),
                 "bm90IGpzb24." + signer.mac("session", "bm90IGpzb24")):
        assert signer.unsign("session", junk) is None
    assert equal("abc", "abc") and not equal("abc", "abd") and not equal(None, "x")
    assert not equal("", "") and not equal("é", "e")


class Backend:
    """A backend with the optional hooks (the sql backend's shape)."""

    name, version = "fake", 0

    def __init__(self, hashed):
        self.hashed = hashed
        self.stored = []

    def password_hash(self, user):
        return self.hashed

    def rehash(self, user, new_hash):
        self.stored.append((user, new_hash))
        self.hashed = new_hash


def test_rehash_stores_a_hash_of_the_current_policy():
    old = sha256_crypt.hash("pw-of-alice")
    backend = Backend(old)
    Rehash(backend).after_login("alice", "pw-of-alice")
    ((user, new),) = backend.stored
    assert user == "alice" and new.startswith("$pbkdf2-sha256$")
    assert PASSWORDS.verify("pw-of-alice", new) and not PASSWORDS.needs_update(new)
    Rehash(backend).after_login("alice", "pw-of-alice")
    assert len(backend.stored) == 1  # up to date now
    weak = Backend(pbkdf2_sha256.using(rounds=1000).hash("pw"))
    Rehash(weak).after_login("bob", "pw")
    assert len(weak.stored) == 1


def test_rehash_with_the_config_backend_says_once_what_to_do(caplog):
    backend = ConfigBackend({"alice": sha256_crypt.hash("pw-of-alice")}, {}, set(), [], None)
    access = Access(backend, [])
    with caplog.at_level(logging.WARNING, logger="pypirepo"):
        for _ in range(3):
            assert access.identify("alice", "pw-of-alice") is not None
            access.credentials.clear()
    said = [r.getMessage() for r in caplog.records]
    assert said == ["the password hash of user 'alice' (sha256_crypt) is weaker than the "
                    "current policy (pbkdf2_sha256): make a new one with "
                    "`pypirepo-hash-password` and replace user.alice (or "
                    "PYPIREPO_USER_ALICE) with it"]
    assert "pw-of-alice" not in caplog.text


def test_a_failing_rehash_never_fails_the_login(caplog):
    class Failing(Backend):
        def rehash(self, user, new_hash):
            raise OSError("database away")

        def verify(self, user, password):
            return True

        def exists(self, user):
            return True

        def is_admin(self, user):
            return False

        def groups_of(self, user):
            return frozenset()

        def grants(self):
            return []

    access = Access(Failing(sha256_crypt.hash("pw")), [])
    with caplog.at_level(logging.WARNING, logger="pypirepo"):
        assert access.identify("alice", "pw") is not None
    assert "could not store the updated password hash of user 'alice'" in caplog.text


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
