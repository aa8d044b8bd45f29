"""A project's owners manage its owners and its own grants (/api/[r/<name>/]projects/<p>/
owners|grants): who may (owners unless repository.<name>.owners_manage = false, the
repository's admins, server admins), what a caller who may not read the project hears
(what a missing project answers), the last owner, the config backend, a removed user
leaving nothing behind for a later user of the same name."""

from __future__ import annotations

import base64

import pytest
from distfactory import upload_fields
from helpers import seconds_until

from pypirepo.access import PASSWORDS

HASH = PASSWORDS.hash("pw")


def basic(user, password="pw"):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


ADMIN = basic("admin")  # the bootstrap user (conftest): a server admin
CAROL, TOM, IVY, OLGA = basic("carol"), basic("tom"), basic("ivy"), basic("olga")
OWNERS, GRANTS = "/api/r/dev/projects/carols/owners", "/api/r/dev/projects/carols/grants"

# dev: private (nobody reads it by a grant); carol may upload (so read) there, olga
# administers it. release: everyone reads, olga uploads. tom is of group:team.
SITE = {
    "repositories": "dev release all",
    "repository.dev.kind": "hosted",
    "repository.release.kind": "hosted",
    "repository.all.kind": "group",
    "repository.all.members": "dev release",
    "user.carol": HASH, "user.tom": HASH, "user.ivy": HASH, "user.olga": HASH,
    "group.team": "tom",
    "repository.dev.read": "nobody",
    "repository.dev.upload": "carol",
    "repository.dev.delete": "nobody",
    "repository.dev.admin": "olga",
    "repository.release.read": "everyone",
    "repository.release.upload": "olga",
    "repository.all.read": "everyone",
}


def post(app, repo, path, name, version, headers, status=200):
    return app.post(f"/r/{repo}/legacy/", params=upload_fields(path, name, version),
                    upload_files=[("content", path.name, path.read_bytes())],
                    headers=headers, status=status)


def make_site(make_app, dists, db_url=None, **more):
    settings = {**SITE, **more}
    if db_url is not None:
        settings.update({"auth.backend": "sql", "sqlalchemy.url": db_url})
    app = make_app(**{k.replace(".", "__"): v for k, v in settings.items()})
    post(app, "dev", dists.wheel("carols", "1.0"), "carols", "1.0", CAROL)
    post(app, "release", dists.wheel("olgas", "1.0"), "olgas", "1.0", OLGA)
    return app


@pytest.fixture
def site(make_app, dists, db_url):
    """The sql backend (SQLite and PostgreSQL): grants can be changed."""
    return make_site(make_app, dists, db_url)


@pytest.fixture
def config_site(make_app, dists):
    """The config backend; tom may read dev's `toms` by a grant of the ini."""
    app = make_site(make_app, dists, grants="dev toms read tom")
    post(app, "dev", dists.wheel("toms", "1.0"), "toms", "1.0", ADMIN)
    return app


def as_missing(app, url, headers, method="get", body=None, name="carols"):
    """The answer for url, and for the same url naming a project that does not exist."""
    assert name in url
    answers = []
    for path in (url, url.replace(name, "nothing-here")):
        call = getattr(app, method) if body is None else getattr(app, method + "_json")
        args = (path,) if body is None else (path, body)
        res = call(*args, headers=headers, status="*")
        answers.append((res.status_int, res.text.replace("nothing-here", name)))
    return answers


def hidden(app, url, headers, name="carols") -> None:
    """url answers headers' caller exactly as it answers for a project that does not
    exist (a 404; or a 403 where nothing in the repository is theirs to read)."""
    first, second = as_missing(app, url, headers, name=name)
    assert first == second and first[0] in (403, 404), (url, first, second)


def test_an_owner_lets_a_group_read_her_private_project(site):
    app = site
    for who in (TOM, IVY):
        hidden(app, "/r/dev/simple/carols/", who)
    assert app.get(OWNERS, headers=CAROL).json == {
        "repository": "dev", "project": "carols", "owners": ["carol"], "owners_manage": True}
    before = app.get(GRANTS, headers=CAROL).json
    assert before["own_grants"] is False
    assert {(g["permission"], g["principal"], g["applies"]) for g in before["grants"]} == {
        ("upload", "carol", True), ("admin", "olga", True)}

    made = app.post_json(GRANTS, {"principal": "group:team", "permission": "read"},
                         headers=CAROL, status=201).json
    assert made["repository"] == "dev" and made["pattern"] == "carols" and made["id"]
    assert made["source"] == "database"
    assert "carols" in app.get("/r/dev/simple/carols/", headers=TOM).text
    assert ">carols<" in app.get("/r/dev/simple/", headers=TOM, status=200).text
    # ivy, not of the team, hears what a missing project answers.
    hidden(app, "/r/dev/simple/carols/", IVY)

    # The project is governed by its own grants now: carol's repository-wide upload grant
    # no longer decides for it (she owns it: still everything), and GET says so.
    after = app.get(GRANTS, headers=CAROL).json
    assert after["own_grants"] is True
    applies = {(g["permission"], g["principal"]): g["applies"] for g in after["grants"]}
    assert applies == {("upload", "carol"): False, ("admin", "olga"): True,
                       ("read", "group:team"): True}

    app.delete(f"{GRANTS}/{made['id']}", headers=CAROL, status=204)
    hidden(app, "/r/dev/simple/carols/", TOM)
    app.delete(f"{GRANTS}/{made['id']}", headers=CAROL, status=404)


def test_who_may_not_hears_what_they_may_hear(site):
    app = site
    for url in (OWNERS, GRANTS, OWNERS + "/carol", GRANTS + "/1"):
        for method in ("get", "post", "delete"):
            res = app.request(url, method=method.upper(), status="*")
            if res.status_int != 405:
                assert res.status_int == 401, (method, url)
                assert res.headers["WWW-Authenticate"].startswith("Basic")
    # May not read it: exactly the answer for a project that does not exist, whatever
    # the method and the body.
    for headers in (IVY, TOM, {**IVY, "Accept": "application/json"}):
        for url in (OWNERS, GRANTS):
            first, second = as_missing(app, url, headers)
            assert first == second and first[0] == 404
            first, second = as_missing(app, url, headers, "post",
                                       {"user": "ivy", "principal": "ivy",
                                        "permission": "read"})
            assert first == second and first[0] == 404
        first, second = as_missing(app, OWNERS + "/carol", headers, "delete")
        assert first == second and first[0] == 404
    # May read it but not manage it: 403.
    for url in ("/api/r/release/projects/olgas/owners", "/api/r/release/projects/olgas/grants"):
        res = app.get(url, headers=IVY, status=403)
        assert "ivy" in res.text
        app.post_json(url, {"user": "ivy"}, headers=IVY, status=403)
    # The owner's API token may read the project, but not manage it.
    token = app.post_json("/api/tokens", {"permission": "upload"}, headers=CAROL).json["token"]
    res = app.get(OWNERS, headers=basic("__token__", token), status=403)
    assert "token" in res.text
    res = app.get("/api/r/nosuch/projects/carols/owners", headers=CAROL, status=404)
    assert "No repository named 'nosuch'" in res.text


def test_bad_requests_say_what_is_wrong(site):
    app = site
    for body, words in (({"usr": "tom"}, "Unknown field"), ({}, "'user' is required"),
                        ({"user": 3}, "'user' must be a string"),
                        ({"user": "nobody-such"}, "No user named 'nobody-such'"),
                        ({"user": "x\x00y"}, "No user named")):
        assert words in app.post_json(OWNERS, body, headers=CAROL, status=400).text
    for raw in (b"{", b"[1]", b"\xff"):
        res = app.post(OWNERS, raw, headers={**CAROL, "Content-Type": "application/json"},
                       status=400)
        assert "JSON" in res.text
    for body, words in (({"principal": "tom"}, "'permission' is required"),
                        ({"principal": "tom", "permission": "fly"}, "permission must be"),
                        ({"principal": "nobody-such", "permission": "read"}, "No user named"),
                        ({"principal": "group:nope", "permission": "read"}, "No group"),
                        ({"principal": "tom", "permission": "read", "pattern": "*"},
                         "Unknown field")):
        assert words in app.post_json(GRANTS, body, headers=CAROL, status=400).text
    for bad in ("x", "0", "99999999999", "-1"):
        app.delete(f"{GRANTS}/{bad}", headers=CAROL, status=404)
    app.delete(f"{OWNERS}/nobody-such", headers=CAROL, status=404)
    app.put_json(OWNERS, {}, headers=CAROL, status=405)


def test_a_co_owner_uploads_and_manages(site, dists):
    app = site
    post(app, "dev", dists.wheel("carols", "1.1"), "carols", "1.1", TOM, status=403)
    res = app.post_json(OWNERS, {"user": "tom"}, headers=CAROL, status=201)
    assert res.json["owners"] == ["carol", "tom"]
    app.post_json(OWNERS, {"user": "tom"}, headers=CAROL, status=200)  # one already
    post(app, "dev", dists.wheel("carols", "1.1"), "carols", "1.1", TOM)
    assert "carols-1.1" in app.get("/r/dev/simple/carols/", headers=TOM).text
    # tom manages it too: adds a grant and an owner, and removes carol.
    app.post_json(GRANTS, {"principal": "ivy", "permission": "read"}, headers=TOM, status=201)
    app.get("/r/dev/simple/carols/", headers=IVY, status=200)
    app.post_json(OWNERS, {"user": "ivy"}, headers=TOM, status=201)
    app.delete(OWNERS + "/carol", headers=TOM, status=204)
    assert app.get(OWNERS, headers=TOM).json["owners"] == ["ivy", "tom"]
    app.get(OWNERS, headers=CAROL, status=404)  # no grant lets carol read it any more


def test_the_last_owner_stays_unless_an_admin_removes_them(site):
    app = site
    res = app.delete(OWNERS + "/carol", headers=CAROL, status=409)
    assert "last owner" in res.text
    app.post_json(OWNERS, {"user": "tom"}, headers=CAROL, status=201)
    app.delete(OWNERS + "/carol", headers=CAROL, status=204)  # herself, not the last
    app.delete(OWNERS + "/tom", headers=TOM, status=409)
    app.delete(OWNERS + "/tom", headers=OLGA, status=204)  # the repository's admin
    assert app.get(OWNERS, headers=ADMIN).json["owners"] == []
    app.get(OWNERS, headers=TOM, status=404)


def test_the_repository_may_forbid_its_owners_to_manage(make_app, dists, db_url):
    app = make_site(make_app, dists, db_url, **{"repository.dev.owners_manage": "false"})
    res = app.get(OWNERS, headers=CAROL, status=403)
    assert "repository.dev.owners_manage = false" in res.text
    app.post_json(GRANTS, {"principal": "tom", "permission": "read"}, headers=CAROL,
                  status=403)
    app.post_json(OWNERS, {"user": "tom"}, headers=CAROL, status=403)
    for admin in (OLGA, ADMIN):
        assert app.get(OWNERS, headers=admin).json["owners_manage"] is False
        app.post_json(GRANTS, {"principal": "tom", "permission": "read"}, headers=admin)
    app.post_json(OWNERS, {"user": "tom"}, headers=OLGA, status=201)
    app.delete(OWNERS + "/carol", headers=ADMIN, status=204)
    # She still owns what she owns elsewhere: release lets its owners manage.
    app.get("/api/r/release/projects/olgas/owners", headers=OLGA, status=200)


def test_a_bad_owners_manage_stops_the_start_naming_the_key(make_app):
    with pytest.raises(SystemExit) as err:
        make_app(**{k.replace(".", "__"): v for k, v in SITE.items()},
                 repository__dev__owners_manage="sometimes")
    assert str(err.value).startswith(
        "pypirepo: configuration error: repository.dev.owners_manage: "), err.value


def test_with_the_config_backend_grants_stay_in_the_ini(config_site):
    app = config_site
    for call in (lambda: app.post_json(GRANTS, {"principal": "tom", "permission": "read"},
                                       headers=CAROL, status=409),
                 lambda: app.delete(GRANTS + "/1", headers=CAROL, status=409)):
        assert "auth.backend = config" in call().text
    assert app.get(GRANTS, headers=CAROL).json["own_grants"] is False
    # Owners are the database's with either backend; tom's listing (filtered for him, and
    # kept) follows at once.
    assert ">carols<" not in app.get("/r/dev/simple/", headers=TOM).text
    app.post_json(OWNERS, {"user": "tom"}, headers=CAROL, status=201)
    app.get("/r/dev/simple/carols/", headers=TOM, status=200)
    assert ">carols<" in app.get("/r/dev/simple/", headers=TOM).text
    app.delete(OWNERS + "/tom", headers=CAROL, status=204)
    hidden(app, "/r/dev/simple/carols/", TOM)
    listing = app.get("/r/dev/simple/", headers=TOM).text
    assert ">carols<" not in listing and ">toms<" in listing


def test_a_group_and_the_default_repository_manage_where_the_project_is_held(make_app, dists):
    app = make_app()  # the classic layout: default = local + pypi
    from helpers import upload

    upload(app, dists.wheel("alices", "1.0"), "alices", "1.0",
           auth=("Basic", ("alice", "alicepw")))
    alice = basic("alice", "alicepw")
    found = app.get("/api/projects/alices/owners", headers=alice).json
    assert found["repository"] == "local" and found["owners"] == ["alice"]
    assert app.get("/api/r/local/projects/alices/owners", headers=alice).json == found
    app.get("/api/projects/nothing-here/owners", headers=alice, status=404)
    # A proxy's projects have no owners (said whatever the name).
    for name in ("alices", "nothing-here"):
        res = app.get(f"/api/r/pypi/projects/{name}/grants", headers=alice, status=404)
        assert "proxy repository" in res.text


def test_a_removed_user_leaves_nothing_to_a_later_one_of_the_name(site, dists):
    app = site
    app.post_json("/api/admin/users", {"name": "dave", "password": "davepw"}, headers=ADMIN)
    dave = basic("dave", "davepw")
    app.post_json("/api/admin/grants", {"repository": "dev", "pattern": "daves",
                                        "permission": "upload", "principal": "dave"},
                  headers=ADMIN)
    post(app, "dev", dists.wheel("daves", "1.0"), "daves", "1.0", dave)
    app.post_json(OWNERS, {"user": "dave"}, headers=CAROL, status=201)
    app.post_json(GRANTS, {"principal": "dave", "permission": "read"}, headers=CAROL)
    app.put_json("/api/admin/groups/crew", {"members": ["dave"]}, headers=ADMIN)
    token = app.post_json("/api/tokens", {}, headers=dave).json["token"]

    app.delete("/api/admin/users/dave", headers=ADMIN, status=204)
    assert app.get("/api/r/dev/projects/daves/owners", headers=ADMIN).json["owners"] == []
    assert app.get(OWNERS, headers=ADMIN).json["owners"] == ["carol"]
    assert "dave" not in str(app.get(GRANTS, headers=ADMIN).json)
    app.post_json("/api/admin/users", {"name": "dave", "password": "other"}, headers=ADMIN)
    dave = basic("dave", "other")
    for url in ("/r/dev/simple/carols/", OWNERS):
        hidden(app, url, dave)
    app.get("/r/dev/simple/daves/", headers=dave, status=403)  # nothing in dev is theirs
    app.get("/api/r/dev/projects/daves/owners", headers=dave, status=404)
    app.get("/r/dev/simple/", headers=basic("__token__", token), status=401)
    assert app.get("/api/admin/users/dave", headers=ADMIN).json["groups"] == []


def test_a_user_the_ini_gives_something_is_not_removed_from_the_database(make_app, dists,
                                                                        db_url):
    app = make_site(make_app, dists, db_url, **{"group.crew": "dave",
                                                "grants": "dev daves read erin"})
    for name in ("dave", "erin"):
        app.post_json("/api/admin/users", {"name": name, "password": "pw"}, headers=ADMIN)
        res = app.delete(f"/api/admin/users/{name}", headers=ADMIN, status=409)
        assert "ini" in res.text and name in res.text


@pytest.mark.postgres
def test_an_owners_change_through_one_process_holds_in_the_other(tmp_path, pg_url, dists):
    """Two pserve processes on one PostgreSQL database: a grant an owner makes through one
    decides in the other within a second (access_state.version), and an owner added
    through one manages through the other."""
    import requests
    from servers import Server

    a, b = (Server(tmp_path / n, app={
        "auth.backend": "sql", "sqlalchemy.url": pg_url,
        "storage.dir": str(tmp_path / "shared-storage"),
        "pypi.default_read": "admin", "pypi.default_write": "admin"}) for n in ("a", "b"))
    try:
        for srv in (a, b):
            srv.directory.mkdir()
            srv.start()
        for name in ("carol", "tom"):
            requests.post(f"{a.url}/api/admin/users", json={"name": name, "password": "pw"},
                          auth=a.auth).raise_for_status()
        requests.post(f"{a.url}/api/admin/grants", auth=a.auth, json={
            "repository": "*", "permission": "upload", "principal": "carol"}
        ).raise_for_status()
        wheel = dists.wheel("carols", "1.0")
        requests.post(f"{a.url}/legacy/", auth=("carol", "pw"),
                      data=upload_fields(wheel, "carols", "1.0"),
                      files={"content": (wheel.name, wheel.read_bytes())}).raise_for_status()
        page, api = f"{b.url}/r/local/simple/carols/", "/api/r/local/projects/carols"
        # (b knows tom within a second: then he may read nothing there.)
        seconds_until(lambda: requests.get(page, auth=("tom", "pw")).status_code in (403, 404))

        made = requests.post(f"{a.url}{api}/grants", auth=("carol", "pw"),
                             json={"principal": "tom", "permission": "read"})
        assert made.status_code == 201, made.text
        assert seconds_until(lambda: requests.get(page, auth=("tom", "pw")).ok) < 3
        res = requests.post(f"{a.url}{api}/owners", auth=("carol", "pw"), json={"user": "tom"})
        assert res.status_code == 201, res.text
        res = requests.delete(f"{b.url}{api}/grants/{made.json()['id']}", auth=("tom", "pw"))
        assert res.status_code == 204, res.text
        # tom reads it still (he owns it now) through a, which follows b's change.
        assert requests.get(f"{a.url}/r/local/simple/carols/", auth=("tom", "pw")).ok
        assert seconds_until(lambda: requests.get(f"{a.url}{api}/grants", auth=(
            "carol", "pw")).json()["own_grants"] is False) < 3
    finally:
        for srv in (a, b):
            srv.stop()
    assert "Traceback" not in a.log + b.log


def test_pypirepo_user_remove_takes_their_projects_along(tmp_path, dists):
    """The console script removes a user's project_owners rows too."""
    import subprocess

    import requests
    from servers import VENV_BIN, Server

    srv = Server(tmp_path / "server", app={"auth.backend": "sql",
                                           "pypi.default_read": "authenticated"})
    srv.directory.mkdir()
    srv.start()
    try:
        requests.post(f"{srv.url}/api/admin/users", json={"name": "bob", "password": "pw"},
                      auth=srv.auth).raise_for_status()
        wheel = dists.wheel("bobs", "1.0")
        seconds_until(lambda: requests.post(
            f"{srv.url}/r/local/legacy/", auth=("bob", "pw"),
            data=upload_fields(wheel, "bobs", "1.0"),
            files={"content": (wheel.name, wheel.read_bytes())}).ok)
        owners = f"{srv.url}/api/r/local/projects/bobs/owners"
        assert requests.get(owners, auth=srv.auth).json()["owners"] == ["bob"]
        proc = subprocess.run([str(VENV_BIN / "pypirepo-user"), str(srv.directory / "server.ini"),
                               "remove", "bob"], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert requests.get(owners, auth=srv.auth).json()["owners"] == []
    finally:
        srv.stop()


def test_a_grant_of_its_own_makes_a_public_project_its_grants_alone(site, dists):
    """The policy's rule, made visible: olga gives ivy upload on her public project; it is
    then readable by its own grants' principals (and its owners and admins) only, until
    she adds read for everyone too."""
    app = site
    url = "/api/r/release/projects/olgas/grants"
    app.get("/r/release/simple/olgas/", status=200)
    app.post_json(url, {"principal": "ivy", "permission": "upload"}, headers=OLGA, status=201)
    assert app.get(url, headers=OLGA).json["own_grants"] is True
    post(app, "release", dists.wheel("olgas", "1.1"), "olgas", "1.1", IVY)
    app.get("/r/release/simple/olgas/", status=401)  # anonymous: asked to log in
    hidden(app, "/r/release/simple/olgas/", TOM, name="olgas")
    app.post_json(url, {"principal": "everyone", "permission": "read"}, headers=OLGA,
                  status=201)
    assert "olgas-1.1" in app.get("/r/release/simple/olgas/").text
    app.get("/r/release/simple/olgas/", headers=TOM, status=200)
