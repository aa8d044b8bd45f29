"""The administration pages (/admin/...) through WebTest: every change an admin makes with
a form (users, groups, grants), who may see the pages, CSRF, bad input answered with the
form and its reason; the config backend shown read-only; the repositories' overview with
the holdings of known uploads and the upstream figures of real fetches from a local
upstream (tests/upstream_server.py)."""

from __future__ import annotations

import base64
import html
import re

import pytest
from helpers import TOKEN_RE, fallback_apps, login, proxy_repo, upload
from distfactory import wheel_name
from upstream_server import UpstreamIndex, UpstreamServer

from pypirepo.interfaces import IAccess

SECRET = {"auth.session_secret": "s" * 40}
ALICE_BASIC = ("Basic", ("alice", "alicepw"))
PAGES = ("/admin/users", "/admin/groups", "/admin/grants", "/admin/users/alice",
         "/admin/groups/team", "/admin/users/alice/remove", "/admin/grants/1/remove")


def _signed_in(app, user="admin", password="pw"):
    app.extra_environ = {"REMOTE_ADDR": "10.0.0.1"}
    login(app, user, password)
    return app


@pytest.fixture
def site(make_app, db_url):
    """The sql backend, an admin signed in with the login form."""
    return _signed_in(make_app(**SECRET, **{"sqlalchemy.url": db_url, "auth.backend": "sql"}))


@pytest.fixture
def config_site(make_app):
    return _signed_in(make_app(**SECRET))


def token(app, path="/admin/users") -> str:
    return TOKEN_RE.search(app.get(path).text).group(1)


def post(app, path, fields, status=303, page=None):
    return app.post(path, {**fields, "csrf_token": token(app, page or path)}, status=status)


def backend(app):
    return app.app.registry.getUtility(IAccess).backend


def flash(res) -> str:
    return html.unescape(" ".join(re.findall(r'class="flash flash--\w+[^"]*"[^>]*>([^<]+)<',
                                             res.text)))


def field_error(res, name) -> str:
    found = re.search(rf'id="field-{name}-error">([^<]+)<', res.text)
    return html.unescape(found.group(1)) if found else ""


# --- users --------------------------------------------------------------------------------------


def test_admin_adds_a_user_sets_the_password_makes_admin_and_removes(site):
    page = site.get("/admin/users")
    assert "Add a user" in page.text and ">alice</a>" in page.text
    res = post(site, "/admin/users", {"name": "bob", "password": "bobpw1",
                                      "password_again": "bobpw1"})
    assert res.location.endswith("/admin/users")
    assert flash(res.follow()) == "User bob was added."
    # Shown once; and a link can't make the page say anything.
    assert flash(site.get("/admin/users?done=user-added&name=mallory")) == ""
    assert backend(site).verify("bob", "bobpw1") and not backend(site).is_admin("bob")

    res = post(site, "/admin/users/bob/password", {"password": "newpw2",
                                                   "password_again": "newpw2"},
               page="/admin/users/bob")
    assert flash(res.follow()) == "The password of bob was set."
    assert backend(site).verify("bob", "newpw2") and not backend(site).verify("bob", "bobpw1")

    post(site, "/admin/users/bob/admin", {"admin": "on"}, page="/admin/users/bob")
    assert backend(site).is_admin("bob")
    assert "Remove administrator rights" in site.get("/admin/users/bob").text
    post(site, "/admin/users/bob/admin", {"admin": "off"}, page="/admin/users/bob")
    assert not backend(site).is_admin("bob")

    post(site, "/admin/users/bob/password", {"remove": "1"}, page="/admin/users/bob")
    assert not backend(site).verify("bob", "newpw2") and backend(site).exists("bob")

    confirm = site.get("/admin/users/bob/remove")
    assert "Remove the user bob?" in confirm.text
    form, = [f for f in confirm.forms.values() if f.action == "/admin/users/bob/remove"]
    res = form.submit(status=303)  # the confirmation page's own form
    assert flash(res.follow()) == "User bob was removed."
    assert not backend(site).exists("bob")
    site.get("/admin/users/bob", status=404)


def test_bad_user_input_shows_the_form_with_the_reason(site):
    post(site, "/admin/users", {"name": "bob", "password": "x", "password_again": "x"})
    res = post(site, "/admin/users", {"name": "bob", "password": "y", "password_again": "y"},
               status=409)
    assert field_error(res, "name") == "There is a user 'bob' already."
    assert 'value="bob"' in res.text  # the form keeps what was typed
    res = post(site, "/admin/users", {"name": "carol", "password": "a",
                                      "password_again": "b"}, status=400)
    assert field_error(res, "password_again") == "The two passwords differ."
    res = post(site, "/admin/users", {"name": "no way/", "password": "a",
                                      "password_again": "a"}, status=400)
    assert "is not a user name" in field_error(res, "name")
    res = post(site, "/admin/users", {"name": "everyone"}, status=400)
    assert "principal" in field_error(res, "name")
    res = post(site, "/admin/users", {"name": "alice", "password": "a",
                                      "password_again": "a"}, status=409)
    assert "declared in the ini" in field_error(res, "name")
    res = post(site, "/admin/users/bob/password", {"password": "a", "password_again": "b"},
               status=400, page="/admin/users/bob")
    assert field_error(res, "password") == "The two passwords differ."
    res = post(site, "/admin/users/alice/password", {"password": "a", "password_again": "a"},
               status=409, page="/admin/users/alice")
    assert "declared in the ini" in res.text
    assert {u for u in backend(site).user_names()} == {"admin", "alice", "bob"}
    assert backend(site).verify("bob", "x")
    site.get("/admin/users/nobody", status=404)
    site.post("/admin/users/nobody/remove", {"csrf_token": token(site)}, status=404)


# --- groups -------------------------------------------------------------------------------------


def test_admin_makes_a_group_adds_and_removes_members_and_removes_it(site):
    assert "No groups yet" in site.get("/admin/groups").text
    res = post(site, "/admin/groups", {"name": "team"})
    assert res.location.endswith("/admin/groups/team")
    page = res.follow()
    assert flash(page) == "Group team was made." and "No members yet." in page.text
    post(site, "/admin/groups/team/members", {"do": "add", "user": "alice"},
         page="/admin/groups/team")
    assert backend(site).groups_of("alice") == frozenset({"team"})
    page = site.get("/admin/groups")
    assert re.search(r'data-label="Members">alice<', page.text)

    res = post(site, "/admin/groups", {"name": "team"}, status=409)
    assert field_error(res, "name") == "There is a group 'team' already."
    res = post(site, "/admin/groups", {"name": "bad name!"}, status=400)
    assert field_error(res, "name")
    res = post(site, "/admin/groups/team/members", {"do": "add", "user": "nobody"},
               status=400, page="/admin/groups/team")
    assert field_error(res, "user") == "No user named 'nobody'."
    res = post(site, "/admin/groups/team/members", {"do": "add", "user": "alice"},
               status=409, page="/admin/groups/team")
    assert "already" in field_error(res, "user")
    res = post(site, "/admin/groups/team/members", {"do": "add", "user": ""},
               status=400, page="/admin/groups/team")
    assert field_error(res, "user") == "Choose the user to add."

    post(site, "/admin/groups/team/members", {"do": "remove", "user": "alice"},
         page="/admin/groups/team")
    assert backend(site).groups_of("alice") == frozenset()
    assert "Remove the group team?" in site.get("/admin/groups/team/remove").text
    post(site, "/admin/groups/team/remove", {}, page="/admin/groups/team")
    assert "team" not in backend(site).groups()
    site.get("/admin/groups/team", status=404)


# --- grants -------------------------------------------------------------------------------------


def test_admin_grants_a_group_read_on_a_pattern_and_removes_it(site, dists):
    upload(site, dists.wheel("team-a", "1.0"), "team-a", "1.0")
    alice = type(site)(site.app, extra_environ={"REMOTE_ADDR": "10.0.0.2"})
    alice.authorization = ALICE_BASIC
    assert "team-a" in alice.get("/simple/").text  # everyone may read today
    post(site, "/admin/groups", {"name": "team"})
    res = post(site, "/admin/grants", {"repository": "local", "pattern": "team-*",
                                       "principal": "group:team", "permission": "read"})
    assert flash(res.follow()) == ("The grant was added: read for group:team on local, "
                                   "projects team-*.")
    # team-* is the group's alone now: alice is not in it.
    alice.get("/simple/team-a/", status=404)
    post(site, "/admin/groups/team/members", {"do": "add", "user": "alice"},
         page="/admin/groups/team")
    alice.get("/simple/team-a/", status=200)

    (grant_id, grant), = backend(site).stored_grants()
    listed = site.get("/admin/grants?repository=local").text
    assert f"/admin/grants/{grant_id}/remove" in listed and "group:team" in listed
    other = site.get("/admin/grants?repository=pypi").text
    assert f"/admin/grants/{grant_id}/remove" not in other
    assert "Remove the grant: read for group:team on local" in \
        site.get(f"/admin/grants/{grant_id}/remove").text
    res = post(site, f"/admin/grants/{grant_id}/remove", {}, page="/admin/grants")
    assert flash(res.follow()).startswith("The grant was removed")
    assert backend(site).stored_grants() == []
    site.get(f"/admin/grants/{grant_id}/remove", status=404)


@pytest.mark.parametrize("fields,field,reason", [
    ({"repository": "nowhere"}, "repository", "No repository named 'nowhere'"),
    ({"pattern": "no/pattern"}, "pattern", ""),
    ({"principal": "group:ghosts"}, "principal", "No group named 'ghosts'."),
    ({"principal": "nobody"}, "principal", "No user named 'nobody'."),
    ({"permission": "own"}, "permission", "permission must be one of"),
])
def test_bad_grants_show_the_form_with_the_reason(site, fields, field, reason):
    wanted = {"repository": "local", "pattern": "*", "principal": "alice",
              "permission": "read", **fields}
    res = post(site, "/admin/grants", wanted, status=400)
    assert reason in field_error(res, field) and field_error(res, field)
    assert backend(site).stored_grants() == []


# --- who may --------------------------------------------------------------------------------------


def test_only_server_admins_see_the_pages_and_the_link(site):
    anonymous = type(site)(site.app)
    # /admin (no slash) is the overview's address too, as a typed one would expect.
    assert anonymous.get("/admin", status=301).location.endswith("/admin/")
    for path in ("/admin/", *PAGES):
        res = anonymous.get(path, status=401)
        assert res.headers["WWW-Authenticate"].startswith("Basic")
    browser = anonymous.get("/admin/users", headers={"Sec-Fetch-Mode": "navigate"},
                            status=401)
    assert 'href="/login?next=/admin/users"' in browser.text  # the page offers to sign in
    assert anonymous.post("/admin/users", {"name": "eve"}, status=401)

    alice = _signed_in(type(site)(site.app), "alice", "alicepw")
    home = alice.get("/").text
    assert "/admin/" not in home and ">Admin<" not in home
    alice_token = TOKEN_RE.search(home).group(1)
    for path in ("/admin/", *PAGES):
        alice.get(path, status=403)
    res = alice.get("/admin/users", headers={"Sec-Fetch-Mode": "navigate"}, status=403)
    assert "Only administrators of this server" in res.text
    for path, fields in (("/admin/users", {"name": "eve", "password": "x",
                                           "password_again": "x"}),
                         ("/admin/groups", {"name": "eves"}),
                         ("/admin/grants", {"repository": "*", "principal": "alice",
                                            "permission": "admin"}),
                         ("/admin/users/alice/admin", {"admin": "on"})):
        alice.post(path, {**fields, "csrf_token": alice_token}, status=403)
    assert "eve" not in backend(site).user_names() and not backend(site).is_admin("alice")
    assert backend(site).stored_grants() == [] and "eves" not in backend(site).groups()
    assert '<a href="/admin/"' in site.get("/").text  # the admin's header has the link


def test_an_api_token_never_administers(site):
    from pypirepo.access.model import TokenScope

    secret, _info = site.app.registry.getUtility(IAccess).tokens.create("admin", TokenScope())
    auth = {"Authorization": "Basic " + base64.b64encode(
        f"__token__:{secret}".encode()).decode()}
    fresh = type(site)(site.app)
    fresh.get("/admin/users", headers=auth, status=403)
    fresh.post("/admin/users", {"name": "eve"}, headers=auth, status=403)
    assert "eve" not in backend(site).user_names()


@pytest.mark.parametrize("forged", [None, "", "not-the-token"])
def test_a_missing_or_forged_csrf_token_changes_nothing(site, forged):
    fields = {} if forged is None else {"csrf_token": forged}
    for path, more in (("/admin/users", {"name": "eve", "password": "x",
                                         "password_again": "x"}),
                       ("/admin/groups", {"name": "eves"}),
                       ("/admin/grants", {"repository": "*", "principal": "alice",
                                          "permission": "admin"}),
                       ("/admin/users/alice/admin", {"admin": "on"})):
        res = site.post(path, {**more, **fields}, status=403)
        assert "CSRF token" in res.text
    assert "eve" not in backend(site).user_names() and not backend(site).is_admin("alice")
    assert backend(site).stored_grants() == [] and "eves" not in backend(site).groups()


def test_the_config_backend_is_shown_read_only(config_site):
    site = config_site
    for path in ("/admin/users", "/admin/groups", "/admin/grants", "/admin/users/alice"):
        page = site.get(path).text
        assert "come from the server's configuration file" in page, path
        assert 'method="post" action="/admin' not in page, path
    assert "pypi.default_read" not in site.get("/admin/grants").text
    assert re.search(r'data-label="Who">everyone<', site.get("/admin/grants").text)
    res = post(site, "/admin/users", {"name": "eve", "password": "x", "password_again": "x"},
               status=409, page="/admin/users")
    assert "auth.backend = sql" in flash(res)
    assert "eve" not in backend(site).user_names()
    post(site, "/admin/groups", {"name": "eves"}, status=409, page="/admin/groups")
    post(site, "/admin/grants", {"repository": "*", "principal": "alice",
                                 "permission": "admin"}, status=409, page="/admin/grants")
    site.get("/admin/grants/1/remove", status=409)


# --- the repositories' overview -------------------------------------------------------------------


def figures(page, repository) -> dict:
    card = re.search(rf'id="repository-{repository}">(.*?)</li>', page.text, re.S).group(1)
    return {k: html.unescape(re.sub(r"<[^>]+>", "", v)).strip() for _tag, k, v in re.findall(
        r'<(dd|span) [^>]*data-figure="([\w-]+)"[^>]*>(.*?)</\1>', card, re.S)}


def test_a_repository_admin_sees_the_overview_of_theirs_only(make_app, dists):
    app = make_app(**SECRET, **{"auth.backend": "sql",
                                "repositories": "dev release",
                                "repository.dev.kind": "hosted",
                                "repository.release.kind": "hosted",
                                "repository.dev.admin": "alice",
                                "pypirepo.default_repository": "dev"})
    upload(app, dists.wheel("one", "1.0"), "one", "1.0")  # the admin, to the default
    alice = _signed_in(app, "alice", "alicepw")
    home = alice.get("/").text
    assert '<a href="/admin/"' in home  # the link, to the overview alone
    page = alice.get("/admin/")
    assert 'id="repository-dev"' in page.text and 'id="repository-release"' not in page.text
    assert figures(page, "dev") == {"projects": "1", "files": "1", "bytes": _size(
        dists.dir.joinpath(wheel_name("one", "1.0")).stat().st_size)}
    assert 'href="/admin/users"' not in page.text
    alice.get("/admin/users", status=403)


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    index = UpstreamIndex(tmp_path_factory.mktemp("admin-upstream"))
    index.add("pubpkg", "1.0")
    server = UpstreamServer(index).start()
    yield server
    server.stop()


def test_overview_figures_of_uploads_and_upstream_fetches(make_app, up, dists):
    with fallback_apps(make_app, **SECRET, pypi__fallback="cache",
                       pypi__fallback_url=up.simple_url, pypi__cache_update="everyone",
                       pypi__upstream_ttl="0", pypi__upstream_connect_timeout="1",
                       pypi__upstream_read_timeout="1", pypi__upstream_retries="0") as build:
        app = build()
        wheels = [dists.wheel("alpha", "1.0"), dists.wheel("alpha", "2.0"),
                  dists.sdist("beta", "1.0")]
        for path, (name, version) in zip(wheels, [("alpha", "1.0"), ("alpha", "2.0"),
                                                  ("beta", "1.0")]):
            upload(app, path, name, version)
        _signed_in(app)
        page = app.get("/admin/")
        assert figures(page, "local") == {
            "projects": "2", "files": "3",
            "bytes": _size(sum(w.stat().st_size for w in wheels))}
        assert figures(page, "pypi")["hits"] == "0"

        json = {"Accept": "application/vnd.pypi.simple.v1+json"}
        listed = app.get("/simple/pubpkg/", headers=json).json["files"]
        wheel = next(f for f in listed if f["filename"].endswith(".whl"))
        body = app.get(wheel["url"]).body  # a file fetched: a second hit
        app.get("/simple/no-such-project/", status=404)  # the upstream has no such name
        up.control(fail_status=503)
        app.get("/simple/never-seen/", status=502)  # an upstream error
        up.normal()
        proxy = proxy_repo(app)
        proxy.fetcher.flush()
        proxy.pages.flush()
        gamma = dists.wheel("gamma", "1.0")
        upload(app, gamma, "gamma", "1.0")  # kept per serial: an upload shows at once
        page = app.get("/admin/")
        assert figures(page, "local")["projects"] == "3"
        assert figures(page, "local")["bytes"] == _size(
            sum(w.stat().st_size for w in [*wheels, gamma]))
        got = figures(page, "pypi")
        assert (got["hits"], got["misses"], got["errors"]) == ("2", "1", "1"), got
        assert "503" in got["last-error"] and "UTC" in got["last-error"]
        assert figures(page, "pypi")["files"] == "1"  # the fetched wheel, stored
        # Written to the database at most every few seconds; shown meanwhile from memory.
        proxy.stats.flush()
        assert proxy.stats.pending().hits == 0
        again = figures(app.get("/admin/"), "pypi")
        assert again["hits"] == "2" and again["errors"] == "1"
        assert body == up.index.file("pubpkg", wheel["filename"]).path.read_bytes()


def _size(n: int) -> str:
    from pypirepo.views import filesize

    return filesize(n)
