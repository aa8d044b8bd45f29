"""Failed logins throttled (issue 11, item 4): per account and per client address, for
the login form and for Basic auth alike; 429 with Retry-After and the reason; the right
password works again after the window; other accounts are not touched.

The throttle's clock is moved on instead of waiting out the window (tests/e2e waits a
real one).
"""

from __future__ import annotations

import base64
import re

import pytest

from pypirepo.interfaces import IAccess

WINDOW = 300.0


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def make_site(make_app):
    def build(**settings):
        app = make_app(**{"auth.session_secret": "s" * 40, **settings})
        app.extra_environ = {"REMOTE_ADDR": "10.0.0.1"}
        app.clock = Clock()
        app.app.registry.getUtility(IAccess).throttle.clock = app.clock
        return app

    return build


@pytest.fixture
def site(make_site):
    return make_site()


def basic(user, password, address="10.0.0.1"):
    return {"headers": {"Authorization": "Basic " + base64.b64encode(
        f"{user}:{password}".encode()).decode()}, "extra_environ": {"REMOTE_ADDR": address}}


def by_basic(app, user, password, address="10.0.0.1") -> int:
    """The status of a writer's request (404: credentials taken, 401: refused, 429)."""
    return app.delete("/api/projects/nothing/files/nothing-1.0.tar.gz",
                      expect_errors=True, **basic(user, password, address)).status_int


def by_form(app, user, password, address="10.0.0.1"):
    environ = {"REMOTE_ADDR": address}
    page = app.get("/login", extra_environ=environ)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return app.post("/login", {"username": user, "password": password, "csrf_token": token},
                    extra_environ=environ, expect_errors=True)


def test_thirty_wrong_passwords_by_basic(site):
    statuses = [by_basic(site, "alice", f"guess-{n}") for n in range(30)]
    assert statuses == [401] * 10 + [429] * 20
    res = site.delete("/api/projects/nothing/files/x-1.0.tar.gz", expect_errors=True,
                      **basic("alice", "guess-31"))
    assert res.status == "429 Too many failed logins for this account; try again in 300 " \
                         "seconds."
    assert res.headers["Retry-After"] == "300"
    assert "try again in 300 seconds" in res.text
    # The right password is refused too until the window has passed: else the throttle
    # would tell a guesser when they are right.
    assert by_basic(site, "alice", "alicepw") == 429
    site.clock.now += 120
    assert site.delete("/api/projects/nothing/files/x-1.0.tar.gz", expect_errors=True,
                       **basic("alice", "alicepw")).headers["Retry-After"] == "180"
    site.clock.now += 180
    assert by_basic(site, "alice", "alicepw") == 404


def test_thirty_wrong_passwords_by_the_form(site):
    statuses = [by_form(site, "alice", f"guess-{n}").status_int for n in range(30)]
    assert statuses == [200] * 10 + [429] * 20
    res = by_form(site, "alice", "alicepw")
    assert res.status_int == 429 and res.headers["Retry-After"] == "300"
    assert "Too many failed logins for this account; try again in 300 seconds." in res.text
    assert "pypirepo_session" not in res.headers.get("Set-Cookie", "")
    site.clock.now += WINDOW
    assert by_form(site, "alice", "alicepw").status_int == 303


def test_the_form_and_basic_count_together(site):
    for n in range(5):
        by_form(site, "alice", f"guess-{n}")
        by_basic(site, "alice", f"other-guess-{n}")
    assert by_basic(site, "alice", "alicepw") == 429
    assert by_form(site, "alice", "alicepw").status_int == 429


def test_other_accounts_are_not_touched(site):
    for n in range(10):
        by_basic(site, "alice", f"guess-{n}")
    assert by_basic(site, "alice", "alicepw") == 429
    # admin, from the same address, logs in; and that does not let alice in.
    assert by_basic(site, "admin", "pw") == 404
    assert by_form(site, "admin", "pw").status_int == 303
    assert by_basic(site, "alice", "alicepw") == 429


def test_one_address_trying_many_names(site):
    statuses = [by_basic(site, f"user{n}", "guess") for n in range(30)]
    assert statuses == [401] * 30
    res = site.delete("/api/projects/nothing/files/x-1.0.tar.gz", expect_errors=True,
                      **basic("admin", "pw"))
    assert res.status.startswith("429 Too many failed logins for this address")
    assert by_basic(site, "admin", "pw", address="10.0.0.2") == 404
    # IPv6: the /64 counts as one address.
    for n in range(30):
        by_basic(site, f"v6user{n}", "guess", address=f"2001:db8:1:2::{n + 1:x}")
    assert by_basic(site, "admin", "pw", address="2001:db8:1:2:ffff::1") == 429
    assert by_basic(site, "admin", "pw", address="2001:db8:1:3::1") == 404


def test_a_client_repeating_an_old_password_is_not_throttled(site):
    # pip or a CI job with a stale password sends it on every request: that is one wrong
    # password, not a guesser, and must not lock the account (or its office) out.
    assert {by_basic(site, "alice", "the-old-password") for _ in range(50)} == {401}
    assert by_basic(site, "alice", "alicepw") == 404


def test_throttling_can_be_tuned_or_switched_off(make_site):
    tight = make_site(auth__throttle_failures="3", auth__throttle_window="1m")
    assert [by_basic(tight, "alice", f"g{n}") for n in range(4)] == [401, 401, 401, 429]
    res = tight.delete("/api/projects/nothing/files/x-1.0.tar.gz", expect_errors=True,
                       **basic("alice", "g5"))
    assert res.headers["Retry-After"] == "60"
    off = make_site(auth__throttle_failures="0")
    assert {by_basic(off, "alice", f"g{n}") for n in range(30)} == {401}


def test_a_public_read_with_a_throttled_password_is_refused_too(site):
    # Anonymous may read here, but a client that keeps sending wrong passwords is told why
    # its credentials are not taken (429), not served as if it sent none.
    for n in range(10):
        by_basic(site, "alice", f"guess-{n}")
    res = site.get("/simple/", expect_errors=True, **basic("alice", "alicepw"))
    assert res.status_int == 429 and res.headers["Retry-After"]
    assert site.get("/simple/").status_int == 200  # without credentials it is served
