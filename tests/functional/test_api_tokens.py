"""API tokens through the app, with either access backend, on SQLite and PostgreSQL: the
scope holds (repository, project, permission), expired, revoked and orphaned tokens get
401, and last use is recorded without a write per request."""

from __future__ import annotations

import base64
import time

import pytest
from distfactory import upload_fields
from sqlalchemy import create_engine, event, select

from pypirepo import main

PRIVATE = {
    "pypi.default_read": "authenticated",
    "pypi.default_write": "authenticated",
    "repositories": "a b",
    "repository.a.kind": "hosted",
    "repository.b.kind": "hosted",
}


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


ADMIN = basic("admin", "pw")


@pytest.fixture(params=["config", "sql"])
def backend(request):
    return request.param


@pytest.fixture
def settings(app_settings, db_url, backend):
    return {**app_settings, **PRIVATE, "sqlalchemy.url": db_url, "auth.backend": backend}


@pytest.fixture
def app(settings):
    from webtest import TestApp

    return TestApp(main({}, **settings))


@pytest.fixture
def owner(app, backend):
    """A user who may upload everywhere and owns the tokens: alice of the ini with the
    config backend, bob made through the admin API with the sql one. (name, password)"""
    if backend == "config":
        return "alice", "alicepw"
    app.post_json("/api/admin/users", {"name": "bob", "password": "bobpw"}, headers=ADMIN,
                  status=201)
    return "bob", "bobpw"


def make_token(app, who, status=201, **payload) -> str:
    res = app.post_json("/api/tokens", payload, headers=basic(*who), status=status)
    return res.json.get("token")


def post_file(app, repo, path, name, version, headers, status):
    return app.post(f"/r/{repo}/legacy/", params=upload_fields(path, name, version),
                    upload_files=[("content", path.name, path.read_bytes())],
                    headers=headers, status=status)


def test_a_token_acts_as_its_owner_within_its_scope(app, owner, dists):
    token = make_token(app, owner, permission="upload", repositories=["a"],
                       projects=["team-*"])
    as_token, as_owner_name = basic("__token__", token), basic(owner[0], token)
    wheel, other = dists.wheel("team-x", "1.0"), dists.wheel("other", "1.0")
    post_file(app, "a", wheel, "team-x", "1.0", as_token, 200)
    post_file(app, "a", dists.sdist("team-x", "1.0"), "team-x", "1.0", as_owner_name, 200)
    # Its owner owns what it made.
    events = app.get("/api/r/a/projects/team-x/events", headers=as_token).json["events"]
    assert {e["user"] for e in events} == {owner[0]}
    assert "team-x" in app.get("/r/a/simple/team-x/", headers=as_token).text
    app.get(f"/r/a/packages/team-x/{wheel.name}", headers=as_token, status=200)

    # Past its scope: another project, another repository. The owner may; the token not.
    post_file(app, "a", other, "other", "1.0", basic(*owner), 200)
    post_file(app, "b", wheel, "team-x", "1.0", basic(*owner), 200)
    app.get("/r/a/simple/other/", headers=basic(*owner), status=200)
    app.get("/r/b/simple/team-x/", headers=basic(*owner), status=200)
    # Refused, and nothing stored: a 404 while a project the caller may not read is one
    # it cannot see (Work.require), a 403 where uploads say so whatever the caller sees.
    res = post_file(app, "a", dists.wheel("other", "1.1"), "other", "1.1", as_token,
                    [403, 404])
    assert "other" in res.text
    assert "other-1.1" not in app.get("/r/a/simple/other/", headers=basic(*owner)).text
    app.get("/r/a/simple/other/", headers=as_token, status=404)  # as if it did not exist
    app.get(f"/r/a/packages/other/{other.name}", headers=as_token, status=404)
    post_file(app, "b", dists.wheel("team-x", "1.1"), "team-x", "1.1", as_token, 403)
    assert "team_x-1.1" not in app.get("/r/b/simple/team-x/", headers=basic(*owner)).text
    app.get("/r/b/simple/team-x/", headers=as_token, status=403)
    # Listings show what the token may read, nothing else.
    root = app.get("/r/a/simple/", headers=as_token).text
    assert "team-x" in root and "other" not in root
    # Deleting is beyond an upload token.
    app.delete(f"/api/r/a/projects/team-x/files/{wheel.name}", headers=as_token, status=403)


def test_a_read_token_never_uploads(app, owner, dists):
    token = make_token(app, owner)
    wheel = dists.wheel("demo", "1.0")
    res = post_file(app, "a", wheel, "demo", "1.0", basic("__token__", token), 403)
    assert owner[0] in res.text
    post_file(app, "a", wheel, "demo", "1.0", basic(*owner), 200)
    app.get("/r/a/simple/demo/", headers=basic("__token__", token), status=200)


def test_a_token_with_someone_elses_name_is_refused(app, owner):
    token = make_token(app, owner)
    app.get("/r/a/simple/", headers=basic("admin", token), status=401)
    app.get("/r/a/simple/", headers=basic("__token__", token), status=200)
    # A token is not a password for __token__ otherwise, nor a password a token.
    app.get("/r/a/simple/", headers=basic("__token__", owner[1]), status=401)


def test_expired_and_revoked_tokens_get_401(app, owner):
    # Long enough to be used once on a loaded machine; then wait until it has expired.
    made = time.monotonic()
    soon = make_token(app, owner, expires_in=3)
    app.get("/r/a/simple/", headers=basic("__token__", soon), status=200)
    time.sleep(max(0.0, made + 3.2 - time.monotonic()))
    res = app.get("/r/a/simple/", headers=basic("__token__", soon), status=401)
    assert res.headers["WWW-Authenticate"].startswith("Basic")
    token = make_token(app, owner)
    app.get("/r/a/simple/", headers=basic("__token__", token), status=200)
    token_id = app.get("/api/tokens", headers=basic(*owner)).json["tokens"][-1]["id"]
    app.delete(f"/api/tokens/{token_id}", headers=basic(*owner), status=204)
    app.get("/r/a/simple/", headers=basic("__token__", token), status=401)


def test_the_token_of_a_deleted_user_gets_401(settings, app, owner, backend):
    from webtest import TestApp

    token = make_token(app, owner)
    app.get("/r/a/simple/", headers=basic("__token__", token), status=200)
    if backend == "sql":
        app.delete(f"/api/admin/users/{owner[0]}", headers=ADMIN, status=204)
        after = app
    else:  # the ini no longer declares alice
        after = TestApp(main({}, **{k: v for k, v in settings.items() if k != "user.alice"}))
    after.get("/r/a/simple/", headers=basic("__token__", token), status=401)
    after.get("/r/a/simple/", headers=basic(owner[0], token), status=401)


def test_last_use_is_recorded_but_not_per_request(settings, app, owner):
    token = make_token(app, owner)
    engine = create_engine(settings["sqlalchemy.url"])
    writes = []
    # The app's own engine: every statement it runs on api_tokens.
    app_engine = app.app.registry.getUtility(
        __import__("pypirepo.interfaces", fromlist=["IDatabase"]).IDatabase).engine

    @event.listens_for(app_engine, "before_cursor_execute")
    def spy(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("UPDATE API_TOKENS"):
            writes.append(statement)

    for _ in range(30):
        app.get("/r/a/simple/", headers=basic("__token__", token), status=200)
    from pypirepo.models.access import ApiToken

    deadline = time.monotonic() + 5
    used = None
    while used is None and time.monotonic() < deadline:
        with engine.connect() as conn:
            used = conn.execute(select(ApiToken.last_used)).scalar()
        time.sleep(0.05)
    assert used is not None
    listed = app.get("/api/tokens", headers=basic(*owner)).json["tokens"][0]
    assert listed["last_used"] is not None
    assert len(writes) == 1  # thirty requests, one write
    engine.dispose()


def test_tokens_can_not_make_tokens_nor_administer(app, owner):
    token = make_token(app, owner, permission="upload")
    for method, url in (("get", "/api/tokens"), ("post_json", "/api/tokens"),
                        ("get", "/api/admin/users")):
        res = getattr(app, method)(url, headers=basic("__token__", token), status=403)
        assert "API token" in res.text
