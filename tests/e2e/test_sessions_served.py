"""Browser sessions on the real server (waitress as pserve runs it): the cookie's Secure
flag behind a TLS proxy, the trusted proxy's user header judged by the peer's address,
and the login throttle's window waited out for real."""

from __future__ import annotations

import re
import time

import pytest
import requests

from servers import Server

pytestmark = pytest.mark.e2e

ALICE_HASH = ("$pbkdf2-sha256$29000$mBOC8D6HsDaGUApB6J3Tug$"
              "kVuo4xgW9oKkBaZlqq.ZBKENn5oq8PiMmksNI7mbhpw")
# waitress believing the proxy on 127.0.0.1 (the test) for these headers, as
# production.ini ships it.
BEHIND_A_PROXY = {"trusted_proxy": "127.0.0.1",
                  "trusted_proxy_headers": "x-forwarded-for x-forwarded-proto",
                  "clear_untrusted_proxy_headers": "yes"}


def start(tmp_path, name="server", server=None, **app) -> Server:
    directory = tmp_path / name
    directory.mkdir()
    return Server(directory, app={"user.alice": ALICE_HASH, **app},
                  server=server or {}).start()


def sign_in(url, user="alice", password="alicepw", headers=None):
    """(the login page, the answer to its form). The login form's cookie is sent back by
    hand: a Secure one would not leave requests over the test's plain http."""
    page = requests.get(url + "/login", headers=headers, timeout=10)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    cookie = page.headers["Set-Cookie"].split(";")[0]
    res = requests.post(url + "/login", data={"username": user, "password": password,
                                              "csrf_token": token},
                        headers={**(headers or {}), "Cookie": cookie},
                        allow_redirects=False, timeout=10)
    return page, res


def cookie_flags(res, name) -> set[str]:
    header = next(h for h in res.raw.headers.getlist("Set-Cookie") if h.startswith(name + "="))
    return {part.strip().lower() for part in header.split(";")[1:]}


def test_the_cookie_is_secure_behind_a_tls_proxy(tmp_path):
    server = start(tmp_path, server=BEHIND_A_PROXY)
    try:
        page, res = sign_in(server.url, headers={"X-Forwarded-Proto": "https"})
        assert res.status_code == 303 and res.headers["Location"].startswith("https://")
        assert {"secure", "httponly", "samesite=lax"} <= cookie_flags(res, "pypirepo_session")
        assert "secure" in cookie_flags(page, "pypirepo_login")
        _page, plain = sign_in(server.url)
        assert "secure" not in cookie_flags(plain, "pypirepo_session")
    finally:
        server.stop()
    # Without a trusted proxy, anyone's X-Forwarded-Proto is no reason to think it https.
    untrusting = start(tmp_path, "untrusting")
    try:
        _page, res = sign_in(untrusting.url, headers={"X-Forwarded-Proto": "https"})
        assert "secure" not in cookie_flags(res, "pypirepo_session")
    finally:
        untrusting.stop()


def signed_in_as(url, headers) -> str | None:
    text = requests.get(url + "/", headers=headers, timeout=10).text
    found = re.search(r"Signed in as <a[^>]*><strong>([^<]+)</strong>", text)
    return found.group(1) if found else None


def test_the_remote_user_header_is_judged_by_the_peer(tmp_path):
    # The proxy (the test, on 127.0.0.1) forwards the client's address: waitress puts that
    # in REMOTE_ADDR, but the header is believed because of who sent it.
    server = start(tmp_path, server=BEHIND_A_PROXY,
                   **{"auth.remote_user_header": "X-Remote-User",
                      "auth.remote_user_proxies": "127.0.0.1/32"})
    try:
        proxied = {"X-Remote-User": "alice", "X-Forwarded-For": "203.0.113.9"}
        assert signed_in_as(server.url, proxied) == "alice"
        assert signed_in_as(server.url, {"X-Remote-User": "nobody-here"}) is None
    finally:
        server.stop()
    # A server that believes a proxy elsewhere: a client claiming that proxy's address in
    # X-Forwarded-For gets nowhere.
    elsewhere = start(tmp_path, "elsewhere", server=BEHIND_A_PROXY,
                      **{"auth.remote_user_header": "X-Remote-User",
                         "auth.remote_user_proxies": "10.0.0.0/8"})
    try:
        claims = {"X-Remote-User": "alice", "X-Forwarded-For": "10.1.1.1"}
        assert signed_in_as(elsewhere.url, claims) is None
        assert signed_in_as(elsewhere.url, claims) is None
        said = [line for line in elsewhere.log.splitlines() if "X-Remote-User" in line]
        assert len(said) == 1 and "from 127.0.0.1: not one of auth.remote_user_proxies" \
            in said[0], said
    finally:
        elsewhere.stop()


def test_the_right_password_works_after_the_window(tmp_path):
    server = start(tmp_path, **{"auth.throttle_failures": "3", "auth.throttle_window": "2s"})
    missing = server.url + "/api/projects/nothing/files/nothing-1.0.tar.gz"
    try:
        statuses = [requests.delete(missing, auth=("alice", f"guess-{n}"), timeout=10)
                    .status_code for n in range(30)]
        assert statuses == [401] * 3 + [429] * 27
        refused = requests.delete(missing, auth=("alice", "alicepw"), timeout=10)
        assert refused.status_code == 429
        wait = int(refused.headers["Retry-After"])
        assert 1 <= wait <= 2
        assert "Too many failed logins for this account" in refused.reason
        # The form is throttled with it: that is the same account.
        _page, form = sign_in(server.url)
        assert form.status_code == 429 and form.headers["Retry-After"]
        time.sleep(wait + 0.2)
        assert requests.delete(missing, auth=("alice", "alicepw"), timeout=10) \
            .status_code == 404
        _page, form = sign_in(server.url)
        assert form.status_code == 303
    finally:
        server.stop()
