"""The permission matrix: backend x principal x route x project -> the exact status, and
every denied read answered exactly as a missing project is.

The site: repository `release` (hosted) holds `pub` (anyone reads) and `team-priv`
(private to group `team`), `stage` (hosted) is where promotions go, group `all` = release.
The same users, groups and grants are declared twice: in the ini (`auth.backend =
config`) and, with an ini that grants nothing, through the admin API into the database
(`auth.backend = sql`); one truth table holds for both.

Principals: anonymous; a wrong password; `ivy` (a user with no grant of her own); `tom`
(in group `team`); `olga` (the project's owner: she created team-priv with an upload grant
that was withdrawn since, so ownership alone lets her at it); `carol` (may upload and
delete team-*); `admin` (a server admin); API tokens used as the password with user
`__token__`: tom's read token for release, carol's upload token for team-*, and tokens
that are expired, revoked, or whose user was deleted (bad credentials: answered as a wrong
password is, never 403 nor 5xx).
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass

import distfactory
import pytest
from distfactory import upload_fields

from pypirepo.access import PASSWORDS

HASH = PASSWORDS.hash("pw")
JSON = "application/vnd.pypi.simple.v1+json"
PRIVATE, PUBLIC = "team-priv", "pub"
# For each project, a name nobody holds that the same grants govern: a refusal must be
# word for word the answer for it (the missing name of another class may be readable
# where the project is not, and be answered otherwise: an empty list of events).
MISSING = {PRIVATE: "team-nothing", PUBLIC: "nothing"}

REPOSITORIES = {
    "repositories": "release stage all",
    "repository.release.kind": "hosted",
    "repository.stage.kind": "hosted",
    "repository.all.kind": "group",
    "repository.all.members": "release",
}
# The grants, as (repository, pattern, permission, principals): the ini writes the
# repository-wide ones as repository.<name>.<permission> lines, the rest as `grants`.
GRANTS = [
    ("release", "*", "read", ["everyone"]),
    ("stage", "*", "read", ["authenticated"]),
    ("stage", "*", "upload", ["carol", "olga"]),
    ("all", "*", "read", ["everyone"]),
    ("release", "team-*", "read", ["group:team"]),
    ("release", "team-*", "upload", ["carol"]),
    ("release", "team-*", "delete", ["carol"]),
    ("all", "team-*", "read", ["group:team", "olga", "carol"]),
]
# What let olga create team-priv (and so own it); withdrawn before the matrix runs.
OLGAS_GRANT = ("release", "team-*", "upload", ["olga"])
USERS = ("ivy", "tom", "olga", "carol")
GROUPS = {"team": ["tom"]}
DELETED_USER = "dan"  # makes a token, then is deleted (or no longer declared)


def ini_settings(grants, users, groups) -> dict:
    settings = {f"user.{u}": HASH for u in users}
    settings.update({f"group.{g}": " ".join(m) for g, m in groups.items()})
    for repo in ("release", "stage", "all"):
        for permission in ("read", "upload", "delete"):
            settings[f"repository.{repo}.{permission}"] = " ".join(next(
                (who for r, pattern, p, who in grants
                 if (r, pattern, p) == (repo, "*", permission)), ["nobody"]))
    settings["grants"] = "\n".join(f"{r} {pattern} {p} {' '.join(who)}"
                                   for r, pattern, p, who in grants if pattern != "*")
    return settings


# What each principal may read: (repository, project) pairs. A token reads at most its
# scope: tom's only in release, carol's only team-*.
EVERYONE_READS = {("release", PUBLIC), ("all", PUBLIC)}
ALL_READS = EVERYONE_READS | {("release", PRIVATE), ("all", PRIVATE)}
READS_OF = {
    "anonymous": EVERYONE_READS,
    "ivy": EVERYONE_READS,
    "tom": ALL_READS,
    "olga": ALL_READS,  # release: as its owner; all: by a grant
    "carol": ALL_READS,
    "admin": ALL_READS,
    "tom-read-token": {("release", PUBLIC), ("release", PRIVATE)},
    "carol-upload-token": {("release", PRIVATE), ("all", PRIVATE)},
}
# Credentials that are no good: answered as if nobody had logged in.
BAD = ("wrong-password", "expired-token", "revoked-token", "deleted-user-token")
PRINCIPALS = ["anonymous", "wrong-password", "ivy", "tom", "olga", "carol", "admin",
              "tom-read-token", "carol-upload-token", "expired-token", "revoked-token",
              "deleted-user-token"]
TOKENS = ("tom-read-token", "carol-upload-token", *BAD[1:])
# Repositories where a principal may read nothing at all: the route refuses (403) before
# any project is looked at, for a missing one alike.
NO_READ_AT_ALL = {("tom-read-token", "all")}
# What each may write to each project of release.
WRITES_OF = {
    "olga": {PRIVATE: {"upload", "delete"}},  # her own project
    "carol": {PRIVATE: {"upload", "delete"}},
    "admin": {PUBLIC: {"upload", "delete"}, PRIVATE: {"upload", "delete"}},
    "carol-upload-token": {PRIVATE: {"upload"}},
}
# Who may write somewhere in release: the routes of the others refuse (403) up front.
UPLOADS_SOMEWHERE = {"olga", "carol", "admin", "carol-upload-token"}
DELETES_SOMEWHERE = {"olga", "carol", "admin"}


def acts_as(principal: str) -> str:
    """Bad credentials act as nobody logged in."""
    return "anonymous" if principal in BAD else principal


def basic(user, password="pw"):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@dataclass
class Site:
    app: object
    backend: str
    secrets: dict

    def headers(self, principal: str) -> dict:
        if principal == "anonymous":
            return {}
        if principal == "wrong-password":
            return basic("ivy", "not-her-password")
        if principal in self.secrets:
            return basic("__token__", self.secrets[principal])
        return basic(principal)

    def request(self, method, url, principal, headers=None, **kw):
        return self.app.request(url, method=method, expect_errors=True,
                                headers={**(headers or {}), **self.headers(principal)}, **kw)


def post_file(app, path, project, version, headers, repo="release"):
    return app.post(f"/r/{repo}/legacy/", params=upload_fields(path, project, version),
                    upload_files=[("content", path.name, path.read_bytes())],
                    headers=headers, expect_errors=True)


def make_token(app, user, **scope) -> tuple[str, int]:
    made = app.post_json("/api/tokens", scope, headers=basic(user), status=201).json
    return made["token"], made["id"]


def fill_database(app, grants, users) -> dict:
    """The users, groups and grants, made through the admin API; grant -> its ids."""
    admin = basic("admin")
    for user in users:
        app.post_json("/api/admin/users", {"name": user, "password": "pw"}, headers=admin,
                      status=201)
    for group, members in GROUPS.items():
        app.post_json("/api/admin/groups", {"name": group, "members": members},
                      headers=admin, status=201)
    ids = {}
    for repo, pattern, permission, who in grants:
        ids[(repo, pattern, permission, tuple(who))] = [app.post_json(
            "/api/admin/grants", {"repository": repo, "pattern": pattern,
                                  "permission": permission, "principal": principal},
            headers=admin, status=201).json["id"] for principal in who]
    return ids


def build_site(backend: str, tmp, db_url: str) -> Site:
    """The site as the module docstring says, with its history: olga creates team-priv
    while a grant lets her, then loses the grant; dan makes a token, then is deleted."""
    from webtest import TestApp

    from pypirepo import close, main

    common = {"sqlalchemy.url": db_url, "pypirepo.auto_migrate": "true",
              "pypirepo.reindex_on_start": "sync", "storage.dir": str(tmp / "storage"),
              "auth.bootstrap_user": "admin", "auth.bootstrap_password": "pw",
              "auth.backend": backend, **REPOSITORIES}
    users = (*USERS, DELETED_USER)
    then = [*GRANTS, OLGAS_GRANT]
    if backend == "config":
        app = TestApp(main({}, **common, **ini_settings(then, users, GROUPS)))
    else:  # an ini that grants nothing: the database says it all
        app = TestApp(main({}, **common, **ini_settings([], (), {})))
        grant_ids = fill_database(app, then, users)
    secrets = {}
    # Expires in a second: by the time the site is built, it has.
    secrets["expired-token"], _ = make_token(app, "tom", expires_in=1)
    made = time.monotonic()
    dists = tmp / "dists"
    for user, name in (("olga", PRIVATE), ("admin", PUBLIC)):
        path = distfactory.make_wheel(dists, name, "1.0")
        assert post_file(app, path, name, "1.0", basic(user)).status_int == 200
    secrets["tom-read-token"], _ = make_token(app, "tom", permission="read",
                                              repositories=["release"])
    secrets["carol-upload-token"], _ = make_token(app, "carol", permission="upload",
                                                  projects=["team-*"])
    secrets["revoked-token"], revoked = make_token(app, "tom")
    app.delete(f"/api/tokens/{revoked}", headers=basic("tom"), status=204)
    secrets["deleted-user-token"], _ = make_token(app, DELETED_USER)
    if backend == "config":  # the ini changed: olga's grant and dan's line are gone
        close(app.app)
        app = TestApp(main({}, **common, **ini_settings(GRANTS, USERS, GROUPS)))
    else:
        for grant_id in grant_ids[(*OLGAS_GRANT[:3], tuple(OLGAS_GRANT[3]))]:
            app.delete(f"/api/admin/grants/{grant_id}", headers=basic("admin"), status=204)
        app.delete(f"/api/admin/users/{DELETED_USER}", headers=basic("admin"), status=204)
    time.sleep(max(0.0, made + 1.1 - time.monotonic()))
    return Site(app, backend, secrets)


@pytest.fixture(scope="module", params=["config", "sql"])
def site(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"matrix-{request.param}")
    return build_site(request.param, tmp, f"sqlite:///{tmp}/db.sqlite")


def wheel(project: str, version: str = "1.0") -> str:
    return f"{project.replace('-', '_')}-{version}-py3-none-any.whl"


def sdist(project: str, version: str) -> str:
    return f"{project.replace('-', '_')}-{version}.tar.gz"


# route -> (repository, request for a project)
READS = {
    "simple html": ("release", lambda p: ("GET", f"/r/release/simple/{p}/", {})),
    "simple json": ("release", lambda p: ("GET", f"/r/release/simple/{p}/", {"Accept": JSON})),
    "simple via group": ("all", lambda p: ("GET", f"/r/all/simple/{p}/", {})),
    "file": ("release", lambda p: ("GET", f"/r/release/packages/{p}/{wheel(p)}", {})),
    "file via group": ("all", lambda p: ("GET", f"/r/all/packages/{p}/{wheel(p)}", {})),
    "metadata": ("release",
                 lambda p: ("GET", f"/r/release/packages/{p}/{wheel(p)}.metadata", {})),
    "json api": ("release", lambda p: ("GET", f"/r/release/pypi/{p}/json", {})),
    "json api release": ("release", lambda p: ("GET", f"/r/release/pypi/{p}/1.0/json", {})),
    "json api via group": ("all", lambda p: ("GET", f"/r/all/pypi/{p}/json", {})),
    "events": ("release", lambda p: ("GET", f"/api/r/release/projects/{p}/events", {})),
    "project page": ("release", lambda p: ("GET", f"/r/release/project/{p}/", {})),
    "project page via group": ("all", lambda p: ("GET", f"/r/all/project/{p}/", {})),
    "release page": ("release", lambda p: ("GET", f"/r/release/project/{p}/1.0/", {})),
}


def expected_read(principal, repo, project) -> int:
    who = acts_as(principal)
    if (who, repo) in NO_READ_AT_ALL:
        return 403
    if (repo, project) in READS_OF[who]:
        return 200
    return 401 if who == "anonymous" else 404


def without(body: bytes, project: str) -> bytes:
    """The body with the project's name (as the URL and a filename spell it) blotted out."""
    return body.replace(project.encode(), b"X").replace(project.replace("-", "_").encode(),
                                                        b"X")


def assert_as_missing(site, res, principal, project, request_of):
    """A refusal said exactly as it is said of a project nobody holds."""
    method, url, extra = request_of(MISSING[project])
    absent = site.request(method, url, principal, extra)
    assert absent.status_int == res.status_int, (url, absent.status)
    assert res.headers.get("WWW-Authenticate") == absent.headers.get("WWW-Authenticate")
    assert without(res.body, project) == without(absent.body, MISSING[project])


@pytest.mark.parametrize("route", list(READS))
@pytest.mark.parametrize("principal", PRINCIPALS)
@pytest.mark.parametrize("project", [PUBLIC, PRIVATE])
def test_reads(site, route, principal, project):
    repo, request_of = READS[route]
    method, url, extra = request_of(project)
    res = site.request(method, url, principal, extra)
    want = expected_read(principal, repo, project)
    assert res.status_int == want, (route, principal, project, res.status)
    if want == 401:
        assert res.headers["WWW-Authenticate"].startswith("Basic")
    if want != 200:
        assert_as_missing(site, res, principal, project, request_of)


def expected_write(principal, project, permission, route_checks: bool = True) -> int:
    """route_checks: the route refuses up front who may do nothing of the kind anywhere
    in the repository (the API's); the web UI's forms ask about the project first."""
    who = acts_as(principal)
    if permission in WRITES_OF.get(who, {}).get(project, ()):
        return 200
    if who == "anonymous":
        return 401
    somewhere = UPLOADS_SOMEWHERE if permission == "upload" else DELETES_SOMEWHERE
    if route_checks and who not in somewhere:
        return 403  # the route: nothing of the kind anywhere in release
    if permission == "upload":
        return 403  # a name is created when it does not exist: nothing to hide
    return 403 if ("release", project) in READS_OF[who] else 404


@pytest.mark.parametrize("principal", PRINCIPALS)
@pytest.mark.parametrize("project", [PUBLIC, PRIVATE])
def test_uploads(site, tmp_path, principal, project):
    path = distfactory.make_wheel(tmp_path, project, "2.0")
    res = post_file(site.app, path, project, "2.0", site.headers(principal))
    want = expected_write(principal, project, "upload")
    assert res.status_int == want, (principal, project, res.status)
    if want == 401:
        assert res.headers["WWW-Authenticate"].startswith("Basic")
    shown = site.app.get(f"/r/release/simple/{project}/", headers=basic("admin")).text
    assert (path.name in shown) == (want == 200)  # nothing stored when refused
    if want == 200:  # undo, for the next case
        site.app.delete(f"/api/r/release/projects/{project}/files/{path.name}",
                        headers=basic("admin"), status=200)


# Writes that take the right to delete: route -> request for a project. Each case gets
# its own release 3.0 (an sdist) to act on, put there by the admin.
DELETES = {
    "yank": lambda p: ("POST", f"/api/r/release/projects/{p}/versions/3.0/yank"),
    "unyank": lambda p: ("POST", f"/api/r/release/projects/{p}/versions/3.0/unyank"),
    "delete file": lambda p: ("DELETE", f"/api/r/release/projects/{p}/files/{sdist(p, '3.0')}"),
    "delete version": lambda p: ("DELETE", f"/api/r/release/projects/{p}/versions/3.0"),
    # The web UI's forms (views/ui/manage.py): the same services, a redirect when done.
    "ui yank": lambda p: ("POST", f"/r/release/project/{p}/3.0/yank"),
    "ui unyank": lambda p: ("POST", f"/r/release/project/{p}/3.0/unyank"),
    "ui delete version": lambda p: ("POST", f"/r/release/project/{p}/3.0/delete"),
    "ui delete file": lambda p: ("POST", f"/r/release/project/{p}/files/{sdist(p, '3.0')}"
                                         "/delete"),
}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def release_3(site, tmp_path, project):
    """Release 3.0 of the case's project, removed again after the case."""
    path = distfactory.make_sdist(tmp_path, project, "3.0")
    assert post_file(site.app, path, project, "3.0", basic("admin")).status_int == 200
    yield
    site.app.delete(f"/api/r/release/projects/{project}/versions/3.0", headers=basic("admin"),
                    expect_errors=True)


@pytest.mark.parametrize("route", list(DELETES))
@pytest.mark.parametrize("principal", PRINCIPALS)
@pytest.mark.parametrize("project", [PUBLIC, PRIVATE])
def test_deletes(site, release_3, route, principal, project):
    method, url = DELETES[route](project)
    ui = route.startswith("ui ")
    if ui:
        res = site.request(method, url, principal, FORM, body=b"reason=matrix")
    else:
        res = site.request(method, url, principal, {"Content-Type": "application/json"},
                           body=b"{}" if method == "POST" else b"")
    want = expected_write(principal, project, "delete", route_checks=not ui)
    assert res.status_int == (303 if ui and want == 200 else want), \
        (route, principal, project, res.status)
    if want == 401:
        assert res.headers["WWW-Authenticate"].startswith("Basic")
    if want == 404:
        assert_as_missing(site, res, principal, project, lambda p: (*DELETES[route](p), {}))
    shown = site.app.get(f"/r/release/simple/{project}/", headers=basic("admin")).text
    if "delete" in route:
        assert (sdist(project, "3.0") in shown) == (want != 200)
    elif route.endswith(" yank") or route == "yank":
        assert ("data-yanked" in shown) == (want == 200)


@pytest.mark.parametrize("principal", PRINCIPALS)
@pytest.mark.parametrize("project", [PUBLIC, PRIVATE])
def test_promote(site, principal, project):
    res = site.request("POST", f"/api/r/release/projects/{project}/versions/1.0/promote",
                       principal, {"Content-Type": "application/json"},
                       body=b'{"to": "stage"}')
    # Out of release takes delete there; into stage, upload there (carol, olga, admin).
    want = expected_write(principal, project, "delete")
    assert res.status_int == want, (principal, project, res.status)
    if want == 200:
        site.app.delete(f"/api/r/stage/projects/{project}/versions/1.0",
                        headers=basic("admin"), status=200)


def test_the_bad_tokens_are_no_good(site):
    """Each bad token is refused as a wrong password is: with the challenge, and the same
    words, where a good token of the same user is taken."""
    site.app.get("/api/tokens", headers=basic("tom"), status=200)
    wrong = site.request("GET", "/r/stage/simple/", "wrong-password")
    assert wrong.status_int == 401
    for principal in BAD[1:]:
        res = site.request("GET", "/r/stage/simple/", principal)
        assert (res.status_int, res.headers["WWW-Authenticate"], res.body) == (
            401, wrong.headers["WWW-Authenticate"], wrong.body), principal
    assert site.request("GET", "/r/stage/simple/", "tom-read-token").status_int == 403
    assert site.request("GET", "/r/stage/simple/", "carol-upload-token").status_int == 200


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_the_admin_api(site, principal):
    res = site.request("GET", "/api/admin/users", principal)
    who = acts_as(principal)
    want = 401 if who == "anonymous" else 200 if who == "admin" else 403
    assert res.status_int == want, (principal, res.status)
    if want == 401:
        assert res.headers["WWW-Authenticate"].startswith("Basic")
    if want == 200:
        assert {u["name"] for u in res.json["users"]} == {"admin", *USERS}
    if principal in TOKENS and who != "anonymous":
        assert "API token" in res.text  # a token never administers, whoever's it is


def test_an_admins_token_does_not_administer(site):
    """A token never administers, an admin's neither: its holder could make themselves
    more tokens or users."""
    token, _ = make_token(site.app, "admin", permission="upload")
    res = site.app.get("/api/admin/users", headers=basic("__token__", token), status=403)
    assert "API token" in res.text
    site.app.post_json("/api/admin/groups", {"name": "x", "members": []},
                       headers=basic("__token__", token), status=403)
    site.app.get(f"/r/release/simple/{PRIVATE}/", headers=basic("__token__", token),
                 status=200)


# The repositories each may read something of.
LISTED = {
    "anonymous": {"release", "all"},
    "tom-read-token": {"release"},
}


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_listings(site, principal):
    who = acts_as(principal)
    for repo in ("release", "all"):
        res = site.request("GET", f"/r/{repo}/simple/", principal, {"Accept": JSON})
        if (who, repo) in NO_READ_AT_ALL:
            assert res.status_int == 403, (repo, res.status)
            continue
        shown = {p["name"] for p in res.json["projects"]}
        assert shown == {p for r, p in READS_OF[who] if r == repo}, repo
        # The web UI's page of the repository and its search list the same.
        for url in (f"/r/{repo}/", f"/r/{repo}/?q=p"):
            page = site.request("GET", url, principal).text
            linked = {p for p in (PUBLIC, PRIVATE) if f'/r/{repo}/project/{p}/"' in page}
            assert linked == shown, (url, linked)
    listed = site.request("GET", "/api/repositories", principal).json["repositories"]
    names = {r["name"] for r in listed}
    assert names == LISTED.get(who, {"release", "stage", "all"})


@pytest.mark.postgres
def test_rows_of_the_matrix_on_postgresql(pg_url, tmp_path):
    """The sql backend's site on PostgreSQL: every principal's reads of both projects,
    directly and through the group, their uploads and the admin API, as the table says."""
    pg = build_site("sql", tmp_path, pg_url)
    for principal in PRINCIPALS:
        for route in ("simple json", "file", "simple via group"):
            repo, request_of = READS[route]
            for project in (PUBLIC, PRIVATE):
                res = pg.request(*request_of(project)[:2], principal, request_of(project)[2])
                assert res.status_int == expected_read(principal, repo, project), (
                    route, principal, project, res.status)
        res = pg.request("GET", "/api/admin/users", principal)
        assert res.status_int == {"anonymous": 401, "admin": 200}.get(acts_as(principal), 403)
        path = distfactory.make_wheel(tmp_path / principal, PRIVATE, "2.0")
        res = post_file(pg.app, path, PRIVATE, "2.0", pg.headers(principal))
        assert res.status_int == expected_write(principal, PRIVATE, "upload"), principal
        if res.status_int == 200:
            pg.app.delete(f"/api/r/release/projects/{PRIVATE}/files/{path.name}",
                          headers=basic("admin"), status=200)
