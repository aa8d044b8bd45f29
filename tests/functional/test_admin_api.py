"""The access API (/api/tokens, /api/admin/...) and its OpenAPI document: who may, what it
changes, how it refuses; on SQLite and PostgreSQL; the document held to the routes, and
fuzzed from the document against a real server."""

from __future__ import annotations

import base64
import re

import pytest

from pypirepo import main
from pypirepo.access.openapi import PATHS, document
from pypirepo.routes import ACCESS_API_ROUTES, PROJECT_ACCESS_ROUTES


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


ADMIN, ALICE = basic("admin", "pw"), basic("alice", "alicepw")
JSON_ACCEPT = {"Accept": "application/json"}


@pytest.fixture
def sql_app(app_settings, db_url):
    from webtest import TestApp

    return TestApp(main({}, **{**app_settings, "sqlalchemy.url": db_url,
                               "auth.backend": "sql", "pypi.default_read": "authenticated",
                               "pypi.default_write": "admin"}))


@pytest.fixture
def config_app(make_app):
    return make_app()


def test_users_groups_and_grants_change_who_may_at_once(sql_app, dists):
    app = sql_app
    made = app.post_json("/api/admin/users", {"name": "bob", "password": "bobpw"},
                         headers=ADMIN, status=201).json
    assert made == {"name": "bob", "admin": False, "groups": [], "source": "database",
                    "password": True}
    bob = basic("bob", "bobpw")
    app.get("/simple/", headers=bob, status=200)  # authenticated may read
    from helpers import upload

    wheel = dists.wheel("team-a", "1.0")
    upload(app, wheel, "team-a", "1.0", auth=("Basic", ("bob", "bobpw")), status=403)
    app.post_json("/api/admin/groups", {"name": "team", "members": ["bob"]}, headers=ADMIN,
                  status=201)
    grant = app.post_json("/api/admin/grants", {"repository": "*", "pattern": "team-*",
                                                "permission": "upload",
                                                "principal": "group:team"},
                          headers=ADMIN, status=201).json
    assert grant["id"] and grant["source"] == "database"
    upload(app, wheel, "team-a", "1.0", auth=("Basic", ("bob", "bobpw")))
    assert app.get(f"/api/admin/grants/{grant['id']}", headers=ADMIN).json == grant
    # The grant made team-* the group's alone: alice (of the ini) can't see it now.
    app.get("/simple/team-a/", headers=ALICE, status=404)
    assert "team-a" not in app.get("/simple/", headers=ALICE).text
    app.put_json("/api/admin/groups/team", {"members": ["bob", "alice"]}, headers=ADMIN)
    app.get("/simple/team-a/", headers=ALICE, status=200)

    app.patch_json("/api/admin/users/bob", {"password": "newpw"}, headers=ADMIN)
    app.get("/simple/", headers=bob, status=401)
    bob = basic("bob", "newpw")
    app.get("/simple/", headers=bob, status=200)
    app.get("/api/admin/users", headers=bob, status=403)
    assert app.patch_json("/api/admin/users/bob", {"admin": True}, headers=ADMIN).json["admin"]
    assert "bob" in [u["name"] for u in app.get("/api/admin/users", headers=bob).json["users"]]

    app.delete(f"/api/admin/grants/{grant['id']}", headers=ADMIN, status=204)
    app.delete("/api/admin/groups/team", headers=ADMIN, status=204)
    app.get("/api/admin/groups/team", headers=ADMIN, status=404)
    app.delete("/api/admin/users/bob", headers=ADMIN, status=204)
    app.get("/simple/", headers=bob, status=401)
    app.get("/api/admin/users/bob", headers=ADMIN, status=404)


def test_who_may_use_the_admin_api(sql_app):
    app = sql_app
    for path in ("/api/admin/users", "/api/admin/groups", "/api/admin/grants",
                 "/api/admin/tokens", "/api/tokens", "/api/admin/users/x", "/api/tokens/1"):
        res = app.get(path, status=401)
        assert res.headers["WWW-Authenticate"].startswith("Basic")
        res = app.get(path, headers=basic("admin", "wrong"), status=401)
        assert "Invalid username or password" in res.text
    for path in ("/api/admin/users", "/api/admin/groups", "/api/admin/grants",
                 "/api/admin/tokens"):
        res = app.get(path, headers=ALICE, status=403)
        assert "alice" in res.text and "admin" in res.text
    res = app.post_json("/api/admin/users", {"name": "eve", "password": "x"}, headers=ALICE,
                        status=403)
    app.get("/api/admin/users/eve", headers=ADMIN, status=404)


def test_the_ini_keeps_its_own(sql_app):
    app = sql_app
    listed = app.get("/api/admin/users", headers=ADMIN).json["users"]
    assert {u["name"]: u["source"] for u in listed} == {"admin": "ini", "alice": "ini"}
    for bad in ("x\x00y", "%00"):
        app.delete(f"/api/admin/users/{bad}", headers=ADMIN, status=404)
        app.delete(f"/api/admin/groups/{bad}", headers=ADMIN, status=404)
        app.patch_json(f"/api/admin/users/{bad}", {"admin": True}, headers=ADMIN, status=404)
    for call in (lambda: app.post_json("/api/admin/users", {"name": "alice", "password": "x"},
                                       headers=ADMIN, status=409),
                 lambda: app.patch_json("/api/admin/users/alice", {"password": "x"},
                                        headers=ADMIN, status=409),
                 lambda: app.delete("/api/admin/users/admin", headers=ADMIN, status=409)):
        assert "ini" in call().text
    grants = app.get("/api/admin/grants", headers=ADMIN).json["grants"]
    assert all(g["source"] == "ini" and g["id"] is None for g in grants) and grants


def test_the_config_backend_lists_and_refuses_changes(config_app):
    app = config_app
    users = app.get("/api/admin/users", headers=ADMIN).json["users"]
    assert {u["name"] for u in users} == {"admin", "alice"}
    assert app.get("/api/admin/grants", headers=ADMIN).json["grants"]
    for method, path, body in (("post_json", "/api/admin/users", {"name": "bob"}),
                               ("post_json", "/api/admin/groups", {"name": "g"}),
                               ("post_json", "/api/admin/grants", {
                                   "repository": "*", "permission": "read",
                                   "principal": "alice"}),
                               ("patch_json", "/api/admin/users/alice", {"admin": True})):
        res = getattr(app, method)(path, body, headers=ADMIN, status=409)
        assert "auth.backend = config" in res.text
    # Tokens work with either backend.
    token = app.post_json("/api/tokens", {}, headers=ALICE, status=201).json["token"]
    app.get("/simple/", headers=basic("__token__", token), status=200)


def test_bad_requests_say_what_is_wrong(sql_app):
    app = sql_app
    cases = [
        ({"name": "bob", "pasword": "x"}, "Unknown field"),
        ({"password": "x"}, "'name' is required"),
        ({"name": "bob", "admin": "yes"}, "'admin' must be true or false"),
        ({"name": "b o b"}, "not a user name"),
        ({"name": "__token__"}, "not a user name"),
        ({"name": "everyone"}, "principal"),
        ({"name": "bob", "password": ""}, "password"),
        ([1, 2], "must be JSON (an object)"),
    ]
    for body, words in cases:
        res = app.post_json("/api/admin/users", body, headers={**ADMIN, **JSON_ACCEPT},
                            status=400)
        assert words in res.json["message"], (body, res.json)
        assert res.status.startswith("400")
    res = app.post("/api/admin/users", "{not json", headers={**ADMIN, "Content-Type":
                                                             "application/json"}, status=400)
    res = app.post("/api/admin/users", "name=bob", headers=ADMIN, status=415)
    assert "application/json" in res.text
    for body in ({"repository": "nope", "permission": "read", "principal": "alice"},
                 {"repository": "*", "permission": "own", "principal": "alice"},
                 {"repository": "*", "permission": "read", "principal": "nobody"},
                 {"repository": "*", "permission": "read", "principal": "group:none"},
                 {"repository": "*", "pattern": "a b", "permission": "read",
                  "principal": "alice"}):
        app.post_json("/api/admin/grants", body, headers=ADMIN, status=400)
    res = app.put("/api/admin/users/alice", headers=ADMIN, status=405)
    assert res.headers["Allow"] == "DELETE, GET, HEAD, PATCH"
    for bad in ("abc", "2147483648", "99999999999999999999", "%C2%B2", "-1"):
        app.get(f"/api/admin/grants/{bad}", headers=ADMIN, status=404)
        app.delete(f"/api/tokens/{bad}", headers=ADMIN, status=404)
    app.get("/api/admin/grants/999", headers=ADMIN, status=404)


def test_tokens_are_their_owners(sql_app):
    app = sql_app
    app.post_json("/api/admin/users", {"name": "bob", "password": "bobpw"}, headers=ADMIN)
    bob = basic("bob", "bobpw")
    made = app.post_json("/api/tokens", {"permission": "upload", "repositories": ["local"],
                                         "projects": ["Team_*"], "note": "ci",
                                         "expires": "2099-01-01T00:00:00+02:00"},
                         headers=bob, status=201)
    assert made.headers["Cache-Control"] == "no-store"
    token = made.json
    assert token["token"].startswith("pypirepo_") and token["projects"] == ["team-*"]
    assert token["expires"] == "2098-12-31T22:00:00Z" and token["user"] == "bob"
    listed = app.get("/api/tokens", headers=bob).json["tokens"]
    assert [t["id"] for t in listed] == [token["id"]] and "token" not in listed[0]
    assert token["token"] not in app.get("/api/tokens", headers=bob).text
    # Someone else's token is none of alice's business: as if it did not exist.
    app.get(f"/api/tokens/{token['id']}", headers=ALICE, status=404)
    app.delete(f"/api/tokens/{token['id']}", headers=ALICE, status=404)
    assert app.get("/api/tokens", headers=ALICE).json["tokens"] == []
    # An admin sees and manages everyone's, and makes tokens for others.
    assert [t["id"] for t in app.get("/api/admin/tokens", headers=ADMIN).json["tokens"]] == \
        [token["id"]]
    assert app.get("/api/admin/tokens?user=alice", headers=ADMIN).json["tokens"] == []
    app.get("/api/admin/tokens?user=a%00b", headers=ADMIN, status=400)
    for_alice = app.post_json("/api/tokens", {"user": "alice"}, headers=ADMIN, status=201)
    assert for_alice.json["user"] == "alice"
    app.post_json("/api/tokens", {"user": "alice"}, headers=bob, status=403)
    app.post_json("/api/tokens", {"user": "nobody"}, headers=ADMIN, status=404)
    changed = app.patch_json(f"/api/tokens/{token['id']}", {"note": "ci 2",
                                                            "expires_in": "30d"},
                             headers=bob).json
    assert changed["note"] == "ci 2" and changed["expires"] < token["expires"]
    for bad in ({"permission": "delete"}, {"repositories": ["nope"]}, {"projects": []},
                {"expires": "yesterday"}, {"expires": "2001-01-01"}, {"expires_in": "-1d"},
                {"expires": "2099-01-01", "expires_in": "1d"}, {"note": "x" * 1001},
                {"scope": "all"}):
        app.post_json("/api/tokens", bad, headers=bob, status=400)
    app.delete(f"/api/tokens/{token['id']}", headers=ADMIN, status=204)
    app.patch_json(f"/api/tokens/{token['id']}", {"note": "x"}, headers=bob, status=409)
    assert app.get("/api/tokens", headers=bob).json["tokens"] == []
    assert app.get("/api/tokens?revoked=true", headers=bob).json["tokens"][0]["revoked"]


# --- the OpenAPI document ---------------------------------------------------------------


def test_the_document_is_valid_openapi_3_1(config_app):
    from openapi_spec_validator import validate

    doc = config_app.get("/api/openapi.json").json
    assert doc["openapi"] == "3.1.0"
    validate(doc)
    assert doc == document()  # no servers entry at the root of a server without a prefix


def _route_path(path: str) -> str:
    return re.sub(r"\{(\w+)[^}]*\}", r"{\1}", path)


def test_every_route_is_documented_with_the_methods_it_takes(sql_app):
    """Every access API route is in the document, with exactly the methods its view
    takes (its 405 says which); and every documented path is a route."""
    routes = {_route_path(path) for _name, path in ACCESS_API_ROUTES} | {
        prefix + _route_path(path) for _name, path in PROJECT_ACCESS_ROUTES
        for prefix in ("/api", "/api/r/{repo}")}
    assert routes == set(PATHS)
    for path in routes:
        url = (path.replace("{id}", "1").replace("{name}", "alice").replace("{repo}", "local")
               .replace("{project}", "x").replace("{user}", "alice"))
        res = sql_app.request(url, method="OPTIONS", headers=ADMIN, status=405)
        allowed = set(res.headers["Allow"].split(", ")) - {"HEAD"}
        assert {m.upper() for m in PATHS[path]} == allowed, path


def test_every_documented_operation_answers(sql_app, dists):
    """Each operation called as the document describes it, as an admin, answers with one of
    the statuses it documents."""
    from helpers import upload

    app = sql_app
    app.post_json("/api/admin/users", {"name": "bob", "password": "bobpw"}, headers=ADMIN)
    # A project per form of the project URLs (/api/r/local/..., /api/... the default
    # repository's), with an owner and a grant of its own to remove.
    projects = {}
    for form, name in (("/api/r/local", "proj-r"), ("/api", "proj-d")):
        upload(app, dists.wheel(name, "1.0"), name, "1.0")
        base = f"{form}/projects/{name}"
        app.post_json(f"{base}/owners", {"user": "bob"}, headers=ADMIN, status=201)
        projects[form] = (name, app.post_json(f"{base}/grants", {
            "principal": "bob", "permission": "read"}, headers=ADMIN, status=201).json["id"])
    token = app.post_json("/api/tokens", {}, headers=ADMIN).json
    grant = app.post_json("/api/admin/grants", {"repository": "*", "permission": "read",
                                                "principal": "bob"}, headers=ADMIN).json
    app.post_json("/api/admin/groups", {"name": "g1", "members": ["bob"]}, headers=ADMIN)
    bodies = {
        "createToken": {"permission": "read"}, "changeToken": {"note": "n"},
        "createUser": {"name": "carol", "password": "pw"}, "changeUser": {"admin": True},
        "createGroup": {"name": "g2"}, "setGroupMembers": {"members": ["bob"]},
        "createGrant": {"repository": "*", "permission": "upload", "principal": "bob"},
        "addOwner": {"user": "alice"}, "addOwnerDefault": {"user": "alice"},
        "createProjectGrant": {"principal": "bob", "permission": "upload"},
        "createProjectGrantDefault": {"principal": "bob", "permission": "upload"},
    }
    # Deletions last, so that what they remove was there for the others; the user last of
    # all (removing a user takes their grants along).
    order = sorted(((p, m, op) for p, ops in PATHS.items() for m, op in ops.items()),
                   key=lambda x: (x[1] == "delete", "users" in x[0]))
    for path, method, op in order:
        if "{project}" in path:
            form = "/api/r/local" if path.startswith("/api/r/") else "/api"
            project, project_grant = projects[form]
            url = (path.replace("{repo}", "local").replace("{project}", project)
                   .replace("{user}", "bob").replace("{id}", str(project_grant)))
        else:
            url = (path.replace("{id}", str(grant["id"] if "grants" in path else token["id"]))
                   .replace("{name}", "g1" if "groups" in path else "bob"))
        body = bodies.get(op["operationId"])
        res = app.request(url, method=method.upper(), headers={**ADMIN, **JSON_ACCEPT},
                          body=None if body is None else __import__("json").dumps(body).encode(),
                          content_type="application/json" if body is not None else None,
                          status="*")
        assert str(res.status_int) in op["responses"], (method, url, res.status)
        assert res.status_int < 300, (method, url, res.status, res.text)


# --- fuzzed from the document, against a real server --------------------------------------


def test_no_input_makes_a_server_error(tmp_path, db_url):
    """Whatever the document allows (and what it does not: schemathesis sends both), sent
    as an admin to a real server, a few hundred requests in all: never a 5xx, never a
    traceback in its log."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from servers import Server

    srv = Server(tmp_path / "fuzzed", app={"auth.backend": "sql", "sqlalchemy.url": db_url})
    srv.directory.mkdir()
    srv.start()
    try:
        schema = schemathesis.openapi.from_url(f"{srv.url}/api/openapi.json")
        auth = basic(*srv.auth)
        calls = []
        for found in schema.get_all_operations():
            operation = found.ok()

            @given(case=operation.as_strategy())
            @settings(max_examples=25, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            def fuzz(case):
                response = case.call(headers=auth, timeout=10)
                calls.append(response.status_code)
                assert response.status_code < 500, (case.method, case.formatted_path,
                                                     response.text)

            fuzz()
        assert len(calls) >= 200
        assert {200, 201, 400, 404} <= set(calls)
    finally:
        srv.stop()
    assert "Traceback" not in srv.log and " ERROR " not in srv.log


def test_users_of_the_environment_work_with_the_sql_backend(app_settings, monkeypatch,
                                                           tmp_path):
    """PYPIREPO_USER_<NAME> declares a user whatever the backend (it was ignored once)."""
    from webtest import TestApp

    from pypirepo.passwords import PASSWORDS

    monkeypatch.setenv("PYPIREPO_USER_CAROL", PASSWORDS.hash("carolpw"))
    app = TestApp(main({}, **{**app_settings, "auth.backend": "sql",
                              "pypi.default_read": "authenticated"}))
    app.get("/simple/", headers=basic("carol", "carolpw"), status=200)
    app.get("/simple/", headers=basic("carol", "wrong"), status=401)
    users = {u["name"]: u for u in app.get("/api/admin/users", headers=ADMIN).json["users"]}
    assert users["carol"]["source"] == "ini"


def test_the_start_says_who_can_log_in_from_the_database(app_settings):
    from pypirepo.access import login_summary
    from pypirepo.settings import AppConfig, Settings

    bare = {k: v for k, v in app_settings.items() if k not in (
        "auth.bootstrap_user", "auth.bootstrap_password", "user.alice")}
    settings = Settings(bare, environ={})
    config = AppConfig.from_settings(settings)
    summary, warning = login_summary(config, settings, None, stored_users=2)
    assert summary == "2 users in the database" and warning is None
    summary, warning = login_summary(config, settings, None, stored_users=0)
    assert "pypirepo-user <ini> add <name> --admin" in warning


def test_every_change_is_logged_without_secrets(sql_app, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="pypirepo.access.admin")
    app = sql_app
    app.post_json("/api/admin/users", {"name": "bob", "password": "bob-s3cret"},
                  headers=ADMIN)
    app.patch_json("/api/admin/users/bob", {"password": "bob-n3w"}, headers=ADMIN)
    secret = app.post_json("/api/tokens", {"user": "bob"}, headers=ADMIN).json["token"]
    grant = app.post_json("/api/admin/grants", {"repository": "*", "permission": "read",
                                                "principal": "bob"}, headers=ADMIN).json
    app.delete(f"/api/admin/grants/{grant['id']}", headers=ADMIN)
    text = caplog.text
    for line in ("admin added user 'bob'", "admin changed user 'bob': password",
                 "admin made API token 1 (", "admin granted * * read bob (grant 1)",
                 "admin revoked grant 1: * * read bob"):
        assert line in text
    assert "bob-s3cret" not in text and "bob-n3w" not in text and secret not in text
