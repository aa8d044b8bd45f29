"""Several repositories in one app (WebTest): each kind's answers, groups, promotion, the
configuration's errors, and the shape (every route has a view)."""

from __future__ import annotations

import json

import pytest
from helpers import ADMIN, storage, upload
from upstream_server import UpstreamIndex, UpstreamServer


JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


def declared(**repos) -> dict:
    """Settings that declare repositories: name -> (kind, {key: value})."""
    settings = {"repositories": " ".join(repos)}
    for name, (kind, keys) in repos.items():
        settings[f"repository.{name}.kind"] = kind
        for key, value in keys.items():
            settings[f"repository.{name}.{key}"] = value
    return settings


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    index = UpstreamIndex(tmp_path_factory.mktemp("repos-upstream"))
    index.add("pub", "1.0")
    index.add("shared-name", "9.0")
    server = UpstreamServer(index).start()
    yield server
    server.stop()


@pytest.fixture
def repos(make_app, up, tmp_path):
    return make_app(**declared(
        dev=("hosted", {}),
        release=("hosted", {}),
        pypi=("proxy", {"url": up.simple_url, "cache_update": "everyone",
                        "upstream_retries": "0", "upstream_spool_dir": str(tmp_path / "spool")}),
        all=("group", {"members": "release pypi"}),
        **{"dev-all": ("group", {"members": "dev release pypi", "upload_to": "dev"})},
    ), **{"pypirepo.default_repository": "all"})


def post(app, repo: str, path, name: str, version: str, status=200):
    """An upload to /r/<repo>/legacy/ (or the classic /legacy/ when repo is None)."""
    from distfactory import upload_fields

    app.authorization = ADMIN
    url = f"/r/{repo}/legacy/" if repo else "/legacy/"
    try:
        return app.post(url, params=upload_fields(path, name, version), status=status,
                        upload_files=[("content", path.name, path.read_bytes())])
    finally:
        app.authorization = None


def files(app, url) -> dict:
    res = app.get(url, headers=JSON, expect_errors=True)
    return {} if res.status_int == 404 else {f["filename"]: f for f in res.json["files"]}


def test_each_repository_has_its_own_files_and_urls(repos, dists):
    wheel = dists.wheel("app", "1.0")
    post(repos, "dev", wheel, "app", "1.0")
    assert set(files(repos, "/r/dev/simple/app/")) == {wheel.name}
    assert files(repos, "/r/release/simple/app/") == {}
    assert files(repos, "/simple/app/") == {}  # the default is `all`: release + pypi
    entry = files(repos, "/r/dev-all/simple/app/")[wheel.name]
    assert entry["url"] == f"/r/dev-all/packages/app/{wheel.name}"
    assert repos.get(entry["url"]).body == wheel.read_bytes()
    assert repos.get(f"/r/dev/packages/app/{wheel.name}").body == wheel.read_bytes()
    repos.get(f"/r/release/packages/app/{wheel.name}", status=404)
    # The root pages: each repository's own, a group's the union of its members'.
    assert "app" in repos.get("/r/dev/simple/").text
    assert "app" not in repos.get("/r/release/simple/").text
    assert "app" in repos.get("/r/dev-all/simple/").text
    repos.get("/r/nope/simple/", status=404)


def test_a_group_answers_from_its_first_member_that_holds_the_project(repos, dists, up):
    shadow = dists.wheel("shared-name", "1.0")
    post(repos, "release", shadow, "shared-name", "1.0")
    for url in ("/simple/shared-name/", "/r/all/simple/shared-name/",
                "/r/dev-all/simple/shared-name/"):
        assert set(files(repos, url)) == {shadow.name}, url
    assert up.page_requests("shared-name") == 0  # the upstream was never asked
    assert "shared_name-9.0-py3-none-any.whl" in files(repos, "/r/pypi/simple/shared-name/")
    # Not held privately: the proxy answers through the group, with the group's URLs.
    entry = files(repos, "/r/all/simple/pub/")["pub-1.0-py3-none-any.whl"]
    assert entry["url"] == "/r/all/packages/pub/pub-1.0-py3-none-any.whl"
    assert repos.get(entry["url"]).body == up.index.file("pub", "pub-1.0-py3-none-any.whl") \
        .path.read_bytes()
    # A file of the shadowed upstream project can't be had through the group either.
    repos.get("/r/all/packages/shared-name/shared_name-9.0-py3-none-any.whl", status=404)


def test_a_merge_list_merges_the_members_files(make_app, up, dists):
    app = make_app(**declared(
        local=("hosted", {}),
        pypi=("proxy", {"url": up.simple_url, "cache_update": "everyone"}),
        all=("group", {"members": "local pypi", "merge": "shared-name"}),
    ))
    mine = dists.wheel("shared-name", "1.0")
    post(app, "local", mine, "shared-name", "1.0")
    assert set(files(app, "/r/all/simple/shared-name/")) >= {
        mine.name, "shared_name-9.0-py3-none-any.whl"}
    assert set(files(app, "/r/all/simple/pub/")) == {"pub-1.0-py3-none-any.whl",
                                                     "pub-1.0.tar.gz"}


def test_uploads_to_a_group_go_to_its_upload_member(repos, dists):
    wheel = dists.wheel("via-group", "1.0")
    post(repos, "dev-all", wheel, "via-group", "1.0")
    assert set(files(repos, "/r/dev/simple/via-group/")) == {wheel.name}
    # The default group `all` uploads to its first hosted member, release.
    other = dists.wheel("via-default", "1.0")
    post(repos, None, other, "via-default", "1.0")
    assert set(files(repos, "/r/release/simple/via-default/")) == {other.name}
    # A proxy takes no uploads.
    res = post(repos, "pypi", dists.wheel("nope", "1.0"), "nope", "1.0", status=405)
    assert "does not take uploads" in res.text


def test_a_new_name_the_upstream_has_is_refused_unless_an_admin_uploads(repos, dists):
    """The guard asks the proxies that come after the hosted repository in a group."""
    repos.authorization = ("Basic", ("alice", "alicepw"))
    from distfactory import upload_fields

    wheel = dists.wheel("pub", "2.0")
    res = repos.post("/r/release/legacy/", params=upload_fields(wheel, "pub", "2.0"),
                     upload_files=[("content", wheel.name, wheel.read_bytes())], status=403)
    assert "exists on the upstream index" in res.text
    post(repos, "release", wheel, "pub", "2.0")  # the admin may


def test_the_same_filename_in_two_repositories(repos, dists, tmp_path):
    a = dists.wheel("twin", "1.0", payload_size=100)
    data_a = a.read_bytes()
    # dists.wheel writes to one folder: keep the first build's bytes apart.
    first = tmp_path / "first" / a.name
    first.parent.mkdir()
    first.write_bytes(data_a)
    b = dists.wheel("twin", "1.0", payload_size=200)
    post(repos, "dev", first, "twin", "1.0")
    post(repos, "release", b, "twin", "1.0")
    assert repos.get(f"/r/dev/packages/twin/{a.name}").body == data_a
    assert repos.get(f"/r/release/packages/twin/{a.name}").body == b.read_bytes()
    keys = {o.key for o in storage(repos).list("")}
    assert f"repositories/dev/twin/{a.name}" in keys
    assert f"repositories/release/twin/{a.name}" in keys


def test_promote_copies_a_release_with_its_history(repos, dists):
    wheel, sdist = dists.wheel("prom", "1.0"), dists.sdist("prom", "1.0")
    post(repos, "dev", wheel, "prom", "1.0")
    post(repos, "dev", sdist, "prom", "1.0")
    before = repos.get("/r/dev/pypi/prom/1.0/json").json["urls"]
    repos.authorization = ADMIN
    res = repos.post_json("/api/r/dev/projects/prom/versions/1.0/promote", {"to": "release"})
    assert res.json["files"] == sorted([wheel.name, sdist.name])
    after = repos.get("/r/release/pypi/prom/1.0/json").json["urls"]
    strip = {"url"}
    assert [{k: v for k, v in f.items() if k not in strip} for f in after] == \
        [{k: v for k, v in f.items() if k not in strip} for f in before]
    assert repos.get(f"/r/release/packages/prom/{wheel.name}.metadata").body == \
        repos.get(f"/r/dev/packages/prom/{wheel.name}.metadata").body
    events = repos.get("/api/r/release/projects/prom/events").json["events"]
    assert [(e["action"], e["detail"]) for e in events] == [("promote", "from dev")] * 2
    dev_events = repos.get("/api/r/dev/projects/prom/events").json["events"]
    assert ("promote", "to release") in [(e["action"], e["detail"]) for e in dev_events]
    # The record says where it came from; a rebuild keeps it.
    record = json.loads(storage(repos).read_bytes(
        f"repositories/release/prom/{wheel.name}.json"))
    assert record["provenance"]["promoted_from"] == "dev"
    assert record["provenance"]["promoted_by"] == "admin"
    assert record["uploader"] == "admin"
    # Again: nothing to do; the same name with other bytes: a 409 and nothing copied.
    assert repos.post_json("/api/r/dev/projects/prom/versions/1.0/promote",
                           {"to": "release"}).json["copied"] == []


def test_promote_refuses_a_conflict_and_copies_nothing(repos, dists, tmp_path):
    a = dists.wheel("conf", "1.0", payload_size=10)
    first = tmp_path / "a" / a.name
    first.parent.mkdir()
    first.write_bytes(a.read_bytes())
    post(repos, "dev", first, "conf", "1.0")
    post(repos, "dev", dists.sdist("conf", "1.0"), "conf", "1.0")
    post(repos, "release", dists.wheel("conf", "1.0", payload_size=20), "conf", "1.0")
    repos.authorization = ADMIN
    res = repos.post_json("/api/r/dev/projects/conf/versions/1.0/promote", {"to": "release"},
                          status=409)
    assert "nothing was promoted" in res.text
    assert set(files(repos, "/r/release/simple/conf/")) == {a.name}  # no sdist either
    assert not any(o.key.endswith(".tar.gz") for o in storage(repos).list(
        "repositories/release/conf/"))


def test_promote_with_move_and_its_refusals(repos, dists):
    wheel = dists.wheel("mover", "2.0")
    post(repos, "dev", wheel, "mover", "2.0")
    repos.authorization = ADMIN
    url = "/api/r/dev/projects/mover/versions/2.0/promote"
    for body, status, reason in (
            ({"to": "pypi"}, 405, "does not take promoted files"),
            ({"to": "nowhere"}, 404, "No repository named 'nowhere'"),
            ({"to": "dev"}, 400, "already in repository 'dev'"),
            ({}, 400, '{"to"'), ({"to": 3}, 400, '{"to"'),
            ({"to": "release", "move": "yes"}, 400, '{"to"')):
        assert reason in repos.post_json(url, body, status=status).text
    repos.post(url, "to=release", status=415)  # a form: not JSON (cross-site rule)
    repos.post_json("/api/r/dev/projects/mover/versions/9.9/promote", {"to": "release"},
                    status=404)
    res = repos.post_json(url, {"to": "release", "move": True})
    assert res.json["moved"] is True
    assert files(repos, "/r/dev/simple/mover/") == {}
    assert set(files(repos, "/r/release/simple/mover/")) == {wheel.name}
    assert repos.get(f"/r/release/packages/mover/{wheel.name}").body == wheel.read_bytes()
    repos.post_json(url, {"to": "release"}, status=404)  # gone from dev
    # Any writer may promote while every writer may write everywhere (the access rules
    # of a repository come with the accounts work).
    post(repos, "dev", dists.wheel("alices", "1.0"), "alices", "1.0")
    repos.authorization = ("Basic", ("alice", "alicepw"))
    repos.post_json("/api/r/dev/projects/alices/versions/1.0/promote", {"to": "release"})
    repos.authorization = None
    repos.post_json("/api/r/dev/projects/alices/versions/1.0/promote", {"to": "release"},
                    status=401)


def test_the_repository_list(repos):
    listed = repos.get("/api/repositories").json
    by_name = {r["name"]: r for r in listed["repositories"]}
    assert by_name["pypi"]["kind"] == "proxy" and by_name["pypi"]["mode"] == "cache"
    assert by_name["dev-all"]["upload_to"] == "dev"
    assert by_name["all"]["default"] and not by_name["dev"]["default"]
    assert by_name["dev"]["simple_url"] == "http://localhost/r/dev/simple/"


def test_an_upload_to_dev_leaves_releases_pages_cached(repos, dists):
    """Each repository has its own serial: a change to one does not touch another's
    pages (their ETags stay, and so do the page objects)."""
    post(repos, "release", dists.wheel("steady", "1.0"), "steady", "1.0")
    before = repos.get("/r/release/simple/steady/")
    root = repos.get("/r/release/simple/")
    post(repos, "dev", dists.wheel("busy", "1.0"), "busy", "1.0")
    assert repos.get("/r/release/simple/steady/").headers["ETag"] == before.headers["ETag"]
    assert repos.get("/r/release/simple/").headers["ETag"] == root.headers["ETag"]
    assert repos.get("/r/dev/simple/").headers["ETag"] != root.headers["ETag"]


@pytest.mark.parametrize("settings, key", [
    ({"repositories": "a", "repository.a.kind": "raw"}, "repository.a.kind"),
    ({"repositories": "a"}, "repository.a.kind"),
    ({"repositories": "A!"}, "repositories"),
    ({"repositories": "g", "repository.g.kind": "group", "repository.g.members": "x"},
     "repository.g.members"),
    ({"repositories": "g h", "repository.g.kind": "group", "repository.g.members": "h",
      "repository.h.kind": "group", "repository.h.members": "g"}, "repository.g.members"),
    ({"repositories": "a b", "repository.a.kind": "hosted", "repository.b.kind": "hosted",
      "repository.b.prefix": "repositories/a/x/"}, "repository.b.prefix"),
    ({"repositories": "a", "repository.a.kind": "hosted",
      "pypirepo.default_repository": "b"}, "pypirepo.default_repository"),
    ({"repositories": "a g", "repository.a.kind": "hosted", "repository.g.kind": "group",
      "repository.g.members": "a", "repository.g.upload_to": "z"}, "repository.g.upload_to"),
    ({"repositories": "p", "repository.p.kind": "proxy", "repository.p.mode": "sometimes"},
     "repository.p.mode"),
])
def test_bad_repository_settings_name_their_key(make_app, settings, key):
    with pytest.raises(SystemExit) as err:
        make_app(**settings)
    assert str(err.value).startswith(f"pypirepo: configuration error: {key}: "), err.value


def test_every_route_has_a_view(app):
    """A route without a view answers 404 for everything: a route added and forgotten."""
    from pyramid.interfaces import IRoutesMapper

    registry = app.app.registry
    routes = {r.name for r in registry.getUtility(IRoutesMapper).get_routes()}
    viewed = {v["introspectable"]["route_name"]
              for v in registry.introspector.get_category("views")}
    assert routes - viewed == set()


def test_the_default_layout_is_todays_index(app):
    listed = {r["name"]: r for r in app.get("/api/repositories").json["repositories"]}
    assert {n: r["kind"] for n, r in listed.items()} == {
        "local": "hosted", "pypi": "proxy", "default": "group"}
    assert listed["default"]["default"] and listed["default"]["members"] == ["local", "pypi"]
    assert listed["pypi"]["mode"] == "none"

