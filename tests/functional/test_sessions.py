"""Browser sessions (issue 11, item 4): signing in and out with the login form, the session
cookie's flags, session fixation, CSRF on every write a signed-in browser makes, the
trusted proxy's user header, and the account page's password change.

WebTest keeps cookies like a browser (Path, Secure); its requests come from REMOTE_ADDR
10.0.0.1 unless a test says otherwise.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time

import pytest
from distfactory import upload_fields
from helpers import csrf, login, login_token, upload

from pypirepo.access.session import COOKIE, LOGIN_COOKIE
from pypirepo.interfaces import IAccess, ISessions
from pypirepo.passwords import PASSWORDS

SECRET = "a-session-secret-for-the-tests-0123456789"


@pytest.fixture
def make_site(make_app):
    """An app as a browser meets it: from 10.0.0.1, with a known session secret."""

    def build(address="10.0.0.1", **settings):
        app = make_app(**{"auth.session_secret": SECRET, **settings})
        app.extra_environ = {"REMOTE_ADDR": address}
        return app

    return build


@pytest.fixture
def site(make_site):
    return make_site()


def registry(app):
    return app.app.registry  # TestApp -> FastPath, which holds the registry


def set_cookies(res) -> dict[str, str]:
    """name -> the whole Set-Cookie header, for the cookies a response sets."""
    return {h.split("=", 1)[0]: h for h in res.headers.getall("Set-Cookie")}


def flags(header: str) -> set[str]:
    return {part.strip().lower() for part in header.split(";")[1:]}


def payload_of(cookie: str) -> dict:
    """What a signed cookie says (signed, not hidden: anyone holding it can read it)."""
    payload = cookie.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def password_works(app, user, password) -> bool:
    """Whether Basic credentials are taken where they are needed (a writer's request for
    a file that does not exist: 404 if they are, 401 if not)."""
    res = app.delete("/api/projects/nothing/files/nothing-1.0.tar.gz",
                     headers=basic(user, password), expect_errors=True)
    assert res.status_int in (401, 404), res.status
    return res.status_int == 404


def signed_in_as(app) -> str | None:
    text = app.get("/").text
    found = re.search(r"Signed in as <a[^>]*><strong>([^<]+)</strong>", text)
    return found.group(1) if found else None


# --- signing in and out ---------------------------------------------------------------------


def test_login_and_logout(site):
    assert signed_in_as(site) is None
    page = site.get("/login")
    assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert 'autocomplete="current-password"' in page.text
    res = login(site, next="/search?q=demo")
    assert res.location.endswith("/search?q=demo")
    assert res.headers["Cache-Control"] == "no-store"
    assert signed_in_as(site) == "alice"
    assert "You are signed in as <strong>alice</strong>." in site.get("/login").text
    # The header's sign-out button is a form that posts the session's token.
    home = site.get("/").text
    assert re.search(r'<form class="user-slot__logout" method="post" action="/logout">'
                     r'<input type="hidden" name="csrf_token" value="[^"]+">', home)
    out = site.post("/logout", {"csrf_token": csrf(site)}, status=303)
    assert out.location.endswith("/")
    gone = set_cookies(out)[COOKIE]
    assert "max-age=0" in flags(gone)
    assert signed_in_as(site) is None
    # /logout typed in is a page with the button, not a sign-out.
    login(site)
    page = site.get("/logout")
    assert 'action="/logout"' in page.text and "Sign out" in page.text
    assert signed_in_as(site) == "alice"


def test_a_signed_in_browser_may_do_what_its_user_may(site, dists):
    login(site, "admin", "pw")
    wheel = dists.wheel("demo", "1.0")
    site.post("/legacy/?csrf_token=" + csrf(site), upload_fields(wheel, "demo", "1.0"),
              upload_files=[("content", wheel.name, wheel.read_bytes())], status=200)
    assert wheel.name in site.get("/simple/demo/").text


def test_wrong_password_shows_the_form_again(site):
    res = login(site, "alice", "wrong", status=200)
    assert "Invalid username or password." in res.text
    assert COOKIE not in set_cookies(res)
    assert 'value="alice"' in res.text  # the name is kept, the password is not
    assert "wrong" not in res.text
    assert signed_in_as(site) is None
    res = login(site, "", "x", status=400)
    assert "Enter your user name and your password." in res.text
    login(site, "nobody", "x", status=200)


def test_next_never_leaves_the_site(site):
    for evil in ("//evil.example/", "/\\evil.example", "https://evil.example/", "javascript:x"):
        res = login(site, next=evil)
        assert res.location == "http://localhost/", evil
        site.post("/logout", {"csrf_token": csrf(site)})


def test_account_needs_a_sign_in(site):
    res = site.get("/account", status=303)
    assert res.location.endswith("/login?next=/account")


# --- the cookie -------------------------------------------------------------------------------


def test_cookie_flags_over_http(site):
    page = site.get("/login")
    pre = set_cookies(page)[LOGIN_COOKIE]
    assert {"httponly", "samesite=lax", "path=/login"} <= flags(pre)
    assert "secure" not in flags(pre)
    res = login(site)
    cookie = set_cookies(res)[COOKIE]
    assert {"httponly", "samesite=lax", "path=/", "max-age=43200"} <= flags(cookie)
    assert "secure" not in flags(cookie)
    # The login form's cookie is gone once it has served.
    assert "max-age=0" in flags(set_cookies(res)[LOGIN_COOKIE])


def test_cookie_is_secure_over_https(make_site):
    app = make_site(auth__session_max_age="2h")
    app.extra_environ["wsgi.url_scheme"] = "https"
    page = app.get("/login")
    assert "secure" in flags(set_cookies(page)[LOGIN_COOKIE])
    res = login(app)
    cookie = set_cookies(res)[COOKIE]
    assert {"secure", "httponly", "samesite=lax", "max-age=7200"} <= flags(cookie)


def test_session_fixation(site):
    # Whatever the browser held before signing in, the signed-in cookie is new: the login
    # form's cookie never becomes it, and a session planted by someone else is replaced.
    site.get("/login")
    before = site.cookies[LOGIN_COOKIE]
    planted = site.cookies.copy()
    site.set_cookie(COOKIE, "planted-by-an-attacker")
    res = login(site)
    after = set_cookies(res)[COOKIE].split(";")[0].split("=", 1)[1]
    assert after not in (before, "planted-by-an-attacker")
    assert payload_of(after)["i"] != payload_of(before)["i"]
    assert planted == {LOGIN_COOKIE: before}
    # Two sign-ins make two sessions, and two tokens.
    again = type(site)(site.app, extra_environ=site.extra_environ)
    login(again)
    assert again.cookies[COOKIE] != after
    site.set_cookie(COOKIE, after)
    assert csrf(site) != csrf(again)
    # The login form's cookie is signed for that purpose only: as a session it is nothing.
    other = type(site)(site.app, extra_environ=site.extra_environ)
    other.get("/login")
    other.set_cookie(COOKIE, other.cookies[LOGIN_COOKIE])
    assert signed_in_as(other) is None


def test_forged_and_expired_sessions_are_anonymous(site, make_site):
    login(site)
    value = site.cookies[COOKIE]
    mac = value.split(".")[1]
    data = payload_of(value)
    forged = base64.urlsafe_b64encode(json.dumps({**data, "u": "admin"}).encode()) \
        .rstrip(b"=").decode()
    site.set_cookie(COOKIE, f"{forged}.{mac}")
    assert signed_in_as(site) is None
    site.set_cookie(COOKIE, value)
    assert signed_in_as(site) == "alice"
    # Another secret (another server) does not take it.
    assert signed_in_as(make_site(auth__session_secret="another-secret-" + "x" * 30)) is None
    # After auth.session_max_age, it is worth nothing.
    sessions = registry(site).getUtility(ISessions)
    sessions.clock = lambda: time.time() + 12 * 3600 + 1
    assert signed_in_as(site) is None


def test_instances_sharing_the_secret_share_sessions(site, make_site, app_settings):
    from webtest import TestApp

    from pypirepo import main

    login(site)
    other = make_site()
    other.set_cookie(COOKIE, site.cookies[COOKIE])
    assert signed_in_as(other) == "alice"
    # Where alice is gone, or has another password, her session is over.
    without_alice = {k: v for k, v in app_settings.items() if k != "user.alice"}
    gone = TestApp(main({}, **without_alice, **{"auth.session_secret": SECRET}))
    gone.set_cookie(COOKIE, site.cookies[COOKIE])
    assert signed_in_as(gone) is None
    repassworded = make_site(**{"user.alice": PASSWORDS.hash("another-password")})
    repassworded.set_cookie(COOKIE, site.cookies[COOKIE])
    assert signed_in_as(repassworded) is None


# --- CSRF -----------------------------------------------------------------------------------


@pytest.fixture
def signed_in(make_site, dists):
    """admin signed in with a session, demo 1.0 uploaded; and a second session's token."""
    app = make_site()
    upload(app, dists.wheel("demo", "1.0"), "demo", "1.0")
    other = make_site()
    login(other, "admin", "pw")
    login(app, "admin", "pw")
    app.other_token = csrf(other)
    app.token = csrf(app)
    return app


def writes(dists):
    """what -> send(app, token, way, status): the write, its token (None: without one)
    carried the `way` the client would: "header" (X-CSRF-Token, what the UI's scripts
    send), "form" (a form's field), "query" (a multipart form's action URL)."""
    wheel = dists.wheel("demo", "2.0")

    def upload_form(app, token, way, status):
        query = f"?csrf_token={token}" if token and way == "query" else ""
        return app.post("/legacy/" + query, upload_fields(wheel, "demo", "2.0"),
                        upload_files=[("content", wheel.name, wheel.read_bytes())],
                        headers=header(token, way), status=status)

    def yank(app, token, way, status):
        return app.post("/api/projects/demo/versions/1.0/yank", json.dumps({"reason": "x"}),
                        headers={"Content-Type": "application/json", **header(token, way)},
                        status=status)

    def delete(app, token, way, status):
        return app.delete("/api/projects/demo/versions/1.0", headers=header(token, way),
                          status=status)

    def logout(app, token, way, status):
        field = {"csrf_token": token} if token and way == "form" else {}
        return app.post("/logout", field, headers=header(token, way), status=status)

    return {"upload": upload_form, "yank": yank, "delete": delete, "logout": logout}


def header(token, way) -> dict:
    return {"X-CSRF-Token": token} if token and way == "header" else {}


# How each write carries its token: the JSON API's in the header only.
WAYS = {"upload": ("header", "query"), "yank": ("header",), "delete": ("header",),
        "logout": ("header", "form")}


def unchanged(app):
    page = app.get("/simple/demo/").text
    assert "demo-2.0" not in page.replace("_", "-") and "data-yanked" not in page
    assert "demo-1.0" in page.replace("_", "-")
    assert signed_in_as(app) == "admin"


@pytest.mark.parametrize("what", list(WAYS))
@pytest.mark.parametrize("how", ["missing", "forged", "other session", "before login"])
def test_a_write_without_the_sessions_token_is_refused(signed_in, dists, what, how):
    token = {"missing": None, "forged": "A" * 43, "other session": signed_in.other_token,
             "before login": None}[how]
    if how == "before login":
        # The login form's token, from this very browser before it signed in.
        fresh = type(signed_in)(signed_in.app, extra_environ=signed_in.extra_environ)
        token = login_token(fresh)
        fresh.set_cookie(COOKIE, signed_in.cookies[COOKIE])
        signed_in = fresh
    send = writes(dists)[what]
    for way in WAYS[what]:
        res = send(signed_in, token, way, 403)
        reason = "CSRF token invalid" if token else "CSRF token missing"
        assert res.status.startswith(f"403 {reason}"), (way, res.status)
        assert "Reload the page" in res.text
        unchanged(signed_in)


@pytest.mark.parametrize("what, way", [(w, way) for w, ways in WAYS.items() for way in ways])
def test_a_write_with_the_sessions_token_passes(signed_in, dists, what, way):
    expected = {"upload": 200, "yank": 200, "delete": 200, "logout": 303}[what]
    writes(dists)[what](signed_in, signed_in.token, way, expected)


def test_basic_auth_clients_need_no_token(signed_in, dists):
    # twine sends Basic and no cookie; a cookie beside Basic changes nothing either: the
    # header says who it is.
    wheel = dists.wheel("demo", "3.0")
    upload(signed_in, wheel, "demo", "3.0")
    signed_in.delete("/api/projects/demo/versions/3.0", headers=basic("admin", "pw"),
                     status=200)
    fresh = type(signed_in)(signed_in.app, extra_environ=signed_in.extra_environ)
    fresh.post("/api/projects/demo/versions/1.0/yank", "{}", headers={
        "Content-Type": "application/json", **basic("admin", "pw")}, status=200)


def test_a_cross_site_write_is_refused_before_the_token_is_looked_at(signed_in):
    res = signed_in.post("/logout", {"csrf_token": signed_in.token}, status=403,
                         headers={"Origin": "https://evil.example"})
    assert res.status.startswith("403 Cross-site request refused")


def test_safe_methods_need_no_token(signed_in):
    signed_in.get("/account")
    signed_in.head("/simple/")


# --- the trusted proxy's user header ---------------------------------------------------------


@pytest.fixture
def proxied(make_site):
    def build(address):
        return make_site(address, auth__remote_user_header="X-Remote-User",
                         auth__remote_user_proxies="10.0.0.0/8, fd00::/8")
    return build


def test_remote_user_from_a_trusted_proxy(proxied, caplog):
    app = proxied("10.1.2.3")
    app.extra_environ["HTTP_X_REMOTE_USER"] = "alice"
    assert signed_in_as(app) == "alice"
    page = app.get("/account").text
    assert "your organisation&#39;s sign-in" in page
    assert "user-slot__logout" not in page  # the proxy signs people out, not this page
    # Its writes need the token too: the proxy's own cookie is as ambient as ours.
    app.post("/account/password", {"current_password": "x"}, status=403)
    ipv6 = proxied("fd00::5")
    ipv6.extra_environ["HTTP_X_REMOTE_USER"] = "alice"
    assert signed_in_as(ipv6) == "alice"


def test_remote_user_from_anyone_else_is_ignored_and_said_once(proxied, caplog):
    app = proxied("192.0.2.7")
    app.extra_environ["HTTP_X_REMOTE_USER"] = "admin"
    with caplog.at_level(logging.WARNING, logger="pypirepo"):
        assert signed_in_as(app) is None
        assert signed_in_as(app) is None
    said = [r.getMessage() for r in caplog.records if "X-Remote-User" in r.getMessage()]
    assert said == ["ignored the X-Remote-User header from 192.0.2.7: not one of "
                    "auth.remote_user_proxies"]
    # The address the proxy forwarded does not count: the peer's does (waitress keeps
    # it in pypirepo.peer_addr before a trusted proxy's X-Forwarded-For replaces
    # REMOTE_ADDR).
    app.extra_environ.update({"REMOTE_ADDR": "10.9.9.9", "pypirepo.peer_addr": "192.0.2.7"})
    assert signed_in_as(app) is None


def test_remote_user_must_exist(proxied, caplog):
    app = proxied("10.1.2.3")
    app.extra_environ["HTTP_X_REMOTE_USER"] = "mallory"
    with caplog.at_level(logging.WARNING, logger="pypirepo"):
        assert signed_in_as(app) is None
    assert any("'mallory', who has no account here" in r.getMessage() for r in caplog.records)


def test_remote_user_is_off_by_default(site):
    site.extra_environ["HTTP_X_REMOTE_USER"] = "admin"
    assert signed_in_as(site) is None


@pytest.mark.parametrize("settings, key", [
    ({"auth.remote_user_header": "X-Remote-User"}, "auth.remote_user_proxies"),
    ({"auth.remote_user_header": "X-Remote-User", "auth.remote_user_proxies": "10.0.0.0/33"},
     "auth.remote_user_proxies"),
    ({"auth.remote_user_header": "X Remote"}, "auth.remote_user_header"),
    ({"auth.session_secret": "short"}, "auth.session_secret"),
    ({"auth.session_max_age": "soon"}, "auth.session_max_age"),
    ({"pypirepo.environment": "production", "auth.session_secret": ""}, "auth.session_secret"),
    ({"auth.throttle_failures": "-1"}, "auth.throttle_failures"),
])
def test_bad_settings_stop_the_start_naming_the_key(make_app, settings, key):
    with pytest.raises(SystemExit) as stop:
        make_app(**settings)
    assert str(stop.value).startswith(f"pypirepo: configuration error: {key}: ")


def test_development_keeps_a_generated_secret(make_app, tmp_path):
    path = tmp_path / "var" / "session-secret"
    first = make_app(auth__session_secret_file=str(path))
    first.extra_environ = {"REMOTE_ADDR": "10.0.0.1"}
    login(first)
    assert path.stat().st_mode & 0o777 == 0o600
    second = make_app(auth__session_secret_file=str(path))
    second.set_cookie(COOKIE, first.cookies[COOKIE])
    assert signed_in_as(second) == "alice"


# --- the account page: the password -------------------------------------------------------


def change(app, current, new, again=None, status=200):
    return app.post("/account/password", {
        "current_password": current, "new_password": new,
        "new_password_again": new if again is None else again, "csrf_token": csrf(app)},
        status=status)


def test_password_change_with_the_config_backend_gives_the_line_to_declare(site):
    login(site)
    res = change(site, "alicepw", "a-new-password")
    assert res.headers["Cache-Control"] == "no-store"
    assert "has <strong>not</strong> changed yet" in res.text
    line = re.search(r"<code>user\.alice = (\$pbkdf2-sha256\$[^<]+)</code>", res.text)
    assert PASSWORDS.verify("a-new-password", line.group(1))
    assert "PYPIREPO_USER_ALICE" in res.text
    # Nothing changed meanwhile.
    assert password_works(site, "alice", "alicepw")
    assert not password_works(site, "alice", "a-new-password")


@pytest.mark.parametrize("current, new, again, field, message", [
    ("nope", "a-new-password", None, "current_password", "That is not your current password."),
    ("alicepw", "short", None, "new_password", "Use at least 8 characters."),
    ("alicepw", "a-new-password", "another-one", "new_password_again", "not the same"),
])
def test_password_change_mistakes(site, current, new, again, field, message):
    login(site)
    res = change(site, current, new, again, status=400)
    assert re.search(rf'<p class="field__error" id="field-{field}-error">[^<]*{message}',
                     res.text), res.text
    assert "has <strong>not</strong> changed" not in res.text


def test_the_new_password_must_be_new(make_site):
    app = make_site(auth__bootstrap_password="long-enough-pw")
    login(app, "admin", "long-enough-pw")
    res = change(app, "long-enough-pw", "long-enough-pw", status=400)
    assert "That is your current password: choose another." in res.text


def test_password_change_with_a_backend_that_stores_it(site):
    """A backend with set_password (the sql backend's) stores it: the old password stops
    working at once, other sessions end, this browser stays signed in."""
    backend = registry(site).getUtility(IAccess).backend

    def set_password(user, password):
        backend.users[user] = PASSWORDS.hash(password)

    backend.set_password = set_password
    assert password_works(site, "alice", "alicepw")  # in the credential cache now
    elsewhere = type(site)(site.app, extra_environ=site.extra_environ)
    login(elsewhere)
    login(site)
    res = change(site, "alicepw", "a-new-password")
    assert "Your password was changed." in res.text
    assert signed_in_as(site) == "alice"  # a new cookie came with the answer
    assert signed_in_as(elsewhere) is None
    assert password_works(site, "alice", "a-new-password")
    assert not password_works(site, "alice", "alicepw")


def test_the_development_account_is_told_where_its_password_lives(site):
    login(site, "admin", "pw")
    res = change(site, "pw", "a-new-password")
    assert "PYPIREPO_AUTH_BOOTSTRAP_PASSWORD" in res.text
    assert "$pbkdf2" not in res.text


def test_a_huge_form_is_refused_before_it_is_read(site):
    # WebOb reads a form's body whole: these pages take small ones only. (A cookie lets a
    # body past the anonymous limit checked before bodies are read.)
    padding = "x" * (70 * 1024)
    res = site.post("/login", {"username": "alice", "password": "alicepw",
                               "csrf_token": login_token(site), "pad": padding}, status=413)
    assert res.status.startswith("413 This form's body is too large")
    login(site)
    res = site.post("/account/password", {"csrf_token": csrf(site), "pad": padding},
                    status=413)
    assert signed_in_as(site) == "alice"


@pytest.mark.parametrize("value", ["\xff.\xff", "\xc3\xa9.\xc3\xa9", "x" * 5000,
                                   '"quoted.value"', "..", "e30.x", "bnVsbA." + "A" * 43])
def test_garbage_cookies_are_no_session_and_no_error(site, value):
    # As waitress hands them on: each header byte as one latin-1 character.
    cookie = {"HTTP_COOKIE": f"{COOKIE}={value}; {LOGIN_COOKIE}={value}"}
    for path in ("/", "/account", "/login"):
        assert site.get(path, extra_environ=cookie, expect_errors=True).status_int in (200, 303)
    assert site.post("/logout", extra_environ=cookie).status_int == 303
    res = site.post("/login", {"username": "alice", "password": "alicepw", "csrf_token": "x"},
                    extra_environ=cookie, status=403)
    assert "This sign-in form has expired" in res.text
