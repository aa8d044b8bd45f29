"""The permission matrix: principal x route x project -> the exact status, and every
denied read answered exactly as a missing project is.

The site: repository `release` (hosted) holds `pub` (anyone reads) and `team-priv`
(private to group `team`; `olga` uploaded it, so she owns it), `stage` (hosted) is where
promotions go, group `all` = release. Principals: anonymous, `ivy` (a user with no grant of
her own), `tom` (in `team`), `olga` (the owner), `carol` (may upload and delete team-*
projects), `admin` (a server admin).
"""

from __future__ import annotations

import base64

import pytest
from distfactory import upload_fields

from pypirepo.access import PASSWORDS

HASH = PASSWORDS.hash("pw")
JSON = "application/vnd.pypi.simple.v1+json"
PRIVATE, PUBLIC, MISSING = "team-priv", "pub", "team-nothing"

SETTINGS = {
    "repositories": "release stage all",
    "repository.release.kind": "hosted",
    "repository.stage.kind": "hosted",
    "repository.all.kind": "group",
    "repository.all.members": "release",
    "user.ivy": HASH, "user.tom": HASH, "user.olga": HASH, "user.carol": HASH,
    "group.team": "tom",
    "repository.release.read": "everyone",
    "repository.release.upload": "nobody",
    "repository.release.delete": "nobody",
    "repository.stage.read": "authenticated",
    "repository.stage.upload": "carol olga",
    "repository.stage.delete": "nobody",
    "repository.all.read": "everyone",
    "repository.all.upload": "nobody",
    "repository.all.delete": "nobody",
    "grants": "\n".join([
        "release team-* read group:team",
        "release team-* upload olga carol",
        "release team-* delete carol",
        "all team-* read group:team olga carol",
    ]),
}

# What each principal may do to each project of release (the truth the table follows).
MAY = {
    None: {PUBLIC: {"read"}, PRIVATE: set()},
    "ivy": {PUBLIC: {"read"}, PRIVATE: set()},
    "tom": {PUBLIC: {"read"}, PRIVATE: {"read"}},
    "olga": {PUBLIC: {"read"}, PRIVATE: {"read", "upload", "delete"}},  # the owner
    "carol": {PUBLIC: {"read"}, PRIVATE: {"read", "upload", "delete"}},
    "admin": {PUBLIC: {"read", "upload", "delete"}, PRIVATE: {"read", "upload", "delete"}},
}
PRINCIPALS = list(MAY)


def headers_of(user):
    if user is None:
        return {}
    password = "pw"
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from webtest import TestApp

    from pypirepo import main

    tmp = tmp_path_factory.mktemp("matrix")
    app = TestApp(main({}, **{
        "sqlalchemy.url": f"sqlite:///{tmp}/db.sqlite", "pypirepo.auto_migrate": "true",
        "pypirepo.reindex_on_start": "sync", "storage.dir": str(tmp / "storage"),
        "auth.bootstrap_user": "admin", "auth.bootstrap_password": "pw", **SETTINGS}))
    dists = tmp / "dists"
    import distfactory

    for user, name in (("olga", PRIVATE), ("admin", PUBLIC)):
        wheel = distfactory.make_wheel(dists, name, "1.0")
        app.post("/r/release/legacy/", params=upload_fields(wheel, name, "1.0"),
                 upload_files=[("content", wheel.name, wheel.read_bytes())],
                 headers=headers_of(user))
    return app


def wheel(project: str) -> str:
    return f"{project.replace('-', '_')}-1.0-py3-none-any.whl"


READS = {
    "simple html": lambda p: ("GET", f"/r/release/simple/{p}/", {}),
    "simple json": lambda p: ("GET", f"/r/release/simple/{p}/", {"Accept": JSON}),
    "simple via group": lambda p: ("GET", f"/r/all/simple/{p}/", {}),
    "file": lambda p: ("GET", f"/r/release/packages/{p}/{wheel(p)}", {}),
    "metadata": lambda p: ("GET", f"/r/release/packages/{p}/{wheel(p)}.metadata", {}),
    "json api": lambda p: ("GET", f"/r/release/pypi/{p}/json", {}),
    "events": lambda p: ("GET", f"/api/r/release/projects/{p}/events", {}),
    "project page": lambda p: ("GET", f"/r/release/project/{p}/", {}),
    "project page via group": lambda p: ("GET", f"/r/all/project/{p}/", {}),
}


def expected_read(user, project) -> int:
    if project == MISSING:
        return 401 if user is None else 404
    if "read" in MAY[user][project]:
        return 200
    return 401 if user is None else 404


@pytest.mark.parametrize("route", list(READS))
@pytest.mark.parametrize("user", PRINCIPALS)
@pytest.mark.parametrize("project", [PUBLIC, PRIVATE])
def test_reads(site, route, user, project):
    method, url, extra = READS[route](project)
    res = site.request(url, method=method, headers={**extra, **headers_of(user)},
                       expect_errors=True)
    want = expected_read(user, project)
    assert res.status_int == want, (route, user, project, res.status)
    if want == 401:
        assert res.headers["WWW-Authenticate"].startswith("Basic")
    if want in (401, 404):
        # Denied or missing: the same answer, word for word, as for a name nobody holds.
        method, url, extra = READS[route](MISSING)
        absent = site.request(url, method=method, headers={**extra, **headers_of(user)},
                              expect_errors=True)
        assert absent.status_int == want
        assert res.body.replace(PRIVATE.encode(), b"X").replace(
            PRIVATE.replace("-", "_").encode(), b"X") == absent.body.replace(
            MISSING.encode(), b"X").replace(MISSING.replace("-", "_").encode(), b"X")


@pytest.mark.parametrize("user", PRINCIPALS)
@pytest.mark.parametrize("project", [PUBLIC, PRIVATE])
def test_uploads(site, tmp_path, user, project):
    import distfactory

    version = "2.0"
    path = distfactory.make_wheel(tmp_path, project, version)
    res = site.post("/r/release/legacy/", params=upload_fields(path, project, version),
                    upload_files=[("content", path.name, path.read_bytes())],
                    headers=headers_of(user), expect_errors=True)
    if "upload" in MAY[user][project]:
        want = 200
    else:
        want = 401 if user is None else 403
    assert res.status_int == want, (user, project, res.status)
    if want == 200:  # undo, for the next case
        site.delete(f"/api/r/release/projects/{project}/files/{path.name}",
                    headers=headers_of("admin"))


WRITES = {
    "yank": lambda p: ("POST", f"/api/r/release/projects/{p}/versions/1.0/yank"),
    "unyank": lambda p: ("POST", f"/api/r/release/projects/{p}/versions/1.0/unyank"),
}


def expected_write(user, project, permission) -> int:
    if permission in MAY[user][project]:
        return 200
    if user is None:
        return 401
    return 403 if "read" in MAY[user][project] else 404


@pytest.mark.parametrize("route", list(WRITES))
@pytest.mark.parametrize("user", PRINCIPALS)
@pytest.mark.parametrize("project", [PUBLIC, PRIVATE])
def test_yank(site, route, user, project):
    method, url = WRITES[route](project)
    res = site.request(url, method=method, headers={"Content-Type": "application/json",
                                                    **headers_of(user)},
                       body=b"{}", expect_errors=True)
    want = expected_write(user, project, "delete")
    # The route asks first whether the caller may delete anything in release: those who
    # may not get a 401 / 403 before the project is looked at.
    if user in ("ivy", "tom") and want != 200:
        want = 403
    assert res.status_int == want, (route, user, project, res.status)


@pytest.mark.parametrize("user", PRINCIPALS)
@pytest.mark.parametrize("project", [PUBLIC, PRIVATE])
def test_promote(site, user, project):
    res = site.post_json(f"/api/r/release/projects/{project}/versions/1.0/promote",
                         {"to": "stage"}, headers=headers_of(user), expect_errors=True)
    source = expected_write(user, project, "delete")
    if user in ("ivy", "tom") and source != 200:
        source = 403  # no delete anywhere in release: the route says no
    if source != 200:
        assert res.status_int == source, (user, project, res.status)
        return
    # May promote out of release; into stage only carol, olga (upload) and admin.
    assert res.status_int == 200, (user, project, res.status)
    site.delete(f"/api/r/stage/projects/{project}/versions/1.0", headers=headers_of("admin"))


@pytest.mark.parametrize("user", PRINCIPALS)
def test_listings(site, user):
    res = site.get("/r/release/simple/", headers={"Accept": JSON, **headers_of(user)})
    shown = {p["name"] for p in res.json["projects"]}
    assert shown == {p for p in (PUBLIC, PRIVATE) if "read" in MAY[user][p]}
    listed = site.get("/api/repositories", headers=headers_of(user)).json["repositories"]
    names = {r["name"] for r in listed}
    assert names == ({"release", "all", "stage"} if user is not None else {"release", "all"})
