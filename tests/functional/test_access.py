"""Access through the HTTP surface, with the config backend: grants per repository and
project pattern, groups, owners; a project the caller may not read answers exactly as a
missing one; groups ask the member that holds a project; listings show what may be read;
the fast path serves the public projects of a repository that also has private ones."""

from __future__ import annotations

import base64

import pytest
from distfactory import upload_fields

from pypirepo.access import PASSWORDS

HASH = PASSWORDS.hash("pw")
JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


def basic(user, password="pw"):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


ADMIN = basic("admin")  # the bootstrap user (conftest): a server admin


@pytest.fixture
def site(make_app, tmp_path):
    settings = {
        "repositories": "dev release all",
        "repository.dev.kind": "hosted",
        "repository.release.kind": "hosted",
        "repository.all.kind": "group",
        "repository.all.members": "dev release",
        "user.carol": HASH, "user.tom": HASH, "user.ivy": HASH, "user.olga": HASH,
        "group.team": "tom",
        # release: anyone reads; team-* only the team; carol uploads team-*.
        "repository.release.read": "everyone",
        "repository.release.upload": "olga",
        "repository.dev.read": "authenticated",
        "repository.dev.upload": "carol olga",
        "repository.all.read": "everyone",
        "grants": "release team-* read group:team\nrelease team-* upload carol\n"
                  "all team-* read group:team",
    }
    app = make_app(**settings)
    return app


def post(app, repo, path, name, version, headers, status=200):
    return app.post(f"/r/{repo}/legacy/", params=upload_fields(path, name, version),
                    upload_files=[("content", path.name, path.read_bytes())],
                    headers=headers, status=status)


@pytest.fixture
def held(site, dists):
    """release: pkg (public) and team-tools (the team's); dev: devpkg."""
    post(site, "release", dists.wheel("pkg", "1.0"), "pkg", "1.0", ADMIN)
    post(site, "release", dists.wheel("team-tools", "1.0"), "team-tools", "1.0", ADMIN)
    post(site, "dev", dists.wheel("devpkg", "1.0"), "devpkg", "1.0", ADMIN)
    return site


def names(res) -> set[str]:
    return {p["name"] for p in res.json["projects"]}


def test_a_private_project_is_as_good_as_missing(held):
    # Anonymous: a 401 with the challenge for the private one and for a missing one of
    # the same family alike (pip then sends credentials); a public one is served.
    for url in ("/r/release/simple/team-tools/", "/r/release/simple/team-nothing/"):
        res = held.get(url, status=401)
        assert res.headers["WWW-Authenticate"].startswith("Basic")
    held.get("/r/release/simple/pkg/")
    held.get("/r/release/simple/nothing/", status=404)
    # A user who may not read it: exactly the answer of a project that does not exist.
    hidden = held.get("/r/release/simple/team-tools/", headers=basic("ivy"), status=404)
    absent = held.get("/r/release/simple/team-nothing/", headers=basic("ivy"), status=404)
    assert hidden.body.replace(b"team-tools", b"X") == absent.body.replace(b"team-nothing",
                                                                              b"X")
    for url in ("/r/release/packages/team-tools/team_tools-1.0-py3-none-any.whl",
                "/r/release/packages/team-tools/team_tools-1.0-py3-none-any.whl.metadata",
                "/r/release/pypi/team-tools/json", "/api/r/release/projects/team-tools/events"):
        held.get(url, headers=basic("ivy"), status=404)
        held.get(url, status=401)
    # The team reads it.
    assert held.get("/r/release/simple/team-tools/", headers=basic("tom")).status_int == 200


def test_listings_show_what_may_be_read(held):
    assert names(held.get("/r/release/simple/", headers=JSON)) == {"pkg"}
    assert names(held.get("/r/release/simple/", headers={**JSON, **basic("tom")})) == \
        {"pkg", "team-tools"}
    assert names(held.get("/r/release/simple/", headers={**JSON, **ADMIN})) == \
        {"pkg", "team-tools"}
    # dev: logged-in users only; the group shows of each member what may be read there.
    held.get("/r/dev/simple/", status=401)
    assert names(held.get("/r/all/simple/", headers=JSON)) == {"pkg"}
    assert names(held.get("/r/all/simple/", headers={**JSON, **basic("ivy")})) == \
        {"pkg", "devpkg"}
    assert names(held.get("/r/all/simple/", headers={**JSON, **basic("tom")})) == \
        {"pkg", "devpkg", "team-tools"}


def test_a_group_asks_the_member_that_holds_the_project(held):
    # devpkg is dev's, which anonymous callers may not read: the group does not serve it
    # to them (nor anything a later member holds under that name).
    held.get("/r/all/simple/devpkg/", status=401)
    assert held.get("/r/all/simple/devpkg/", headers=basic("ivy")).status_int == 200
    held.get("/r/all/packages/devpkg/devpkg-1.0-py3-none-any.whl", status=401)


def test_writes(held, dists):
    # carol may upload team-* to release, nothing else there.
    post(held, "release", dists.wheel("team-new", "1.0"), "team-new", "1.0", basic("carol"))
    res = post(held, "release", dists.wheel("other", "1.0"), "other", "1.0", basic("carol"),
               status=403)
    assert "may not upload 'other'" in res.text
    # tom may read team-tools but not delete it: a 403; ivy may delete in release (the
    # defaults: pypi.default_write) but not even read team-tools: as if it did not exist.
    res = held.delete("/api/r/release/projects/team-tools/versions/1.0",
                      headers=basic("tom"), status=403)
    assert "may not delete 'team-tools'" in res.text
    held.delete("/api/r/release/projects/team-tools/versions/1.0", headers=basic("ivy"),
                status=404)
    held.delete("/api/r/release/projects/team-nothing/versions/1.0", headers=basic("ivy"),
                status=404)
    # Anonymous callers may not write: asked to log in.
    post(held, "release", dists.wheel("anon", "1.0"), "anon", "1.0", {}, status=401)


def test_an_upload_through_a_group_takes_upload_on_the_group_and_its_member(make_app,
                                                                           dists):
    # all's uploads go to dev. carol may upload to dev but not to all; olga to both;
    # ivy to all but not to dev. Only olga gets through the group.
    app = make_app(**{"repositories": "dev all", "repository.dev.kind": "hosted",
                      "repository.all.kind": "group", "repository.all.members": "dev",
                      "user.carol": HASH, "user.olga": HASH, "user.ivy": HASH,
                      "repository.dev.upload": "carol olga",
                      "repository.all.upload": "olga ivy"})
    wheel = dists.wheel("grouped", "1.0")
    res = post(app, "all", wheel, "grouped", "1.0", basic("carol"), status=403)
    assert "all" in res.text
    post(app, "all", wheel, "grouped", "1.0", basic("ivy"), status=403)
    post(app, "all", wheel, "grouped", "1.0", basic("olga"))
    assert app.get("/r/dev/simple/grouped/", headers=basic("olga")).status_int == 200
    post(app, "dev", dists.wheel("grouped", "1.1"), "grouped", "1.1", basic("carol"))


def test_the_creator_of_a_project_owns_it(held, dists):
    post(held, "release", dists.wheel("olgas", "1.0"), "olgas", "1.0", basic("olga"))
    # olga has no delete grant in release, but owns olgas.
    held.post_json("/api/r/release/projects/olgas/versions/1.0/yank", {"reason": "x"},
                   headers=basic("olga"))
    held.delete("/api/r/release/projects/olgas/versions/1.0", headers=basic("olga"))
    held.get("/r/release/simple/olgas/", status=404)


def test_promote_needs_delete_at_the_source_and_upload_at_the_target(held, dists):
    post(held, "dev", dists.wheel("promo", "1.0"), "promo", "1.0", basic("carol"))
    url = "/api/r/dev/projects/promo/versions/1.0/promote"
    # carol owns promo in dev (she created it), but may not upload to release.
    res = held.post_json(url, {"to": "release"}, headers=basic("carol"), status=403)
    assert "release" in res.text
    held.post_json(url, {"to": "release"}, headers=ADMIN)
    assert held.get("/r/release/simple/promo/").status_int == 200


def test_the_fast_path_serves_public_projects_of_a_repository_with_private_ones(held):
    fast = held.app
    before = fast.answered
    held.get("/r/release/simple/pkg/")
    held.get("/r/release/simple/")
    assert fast.answered == before + 2
    # The private one goes to the router (which asks for credentials), never answered here.
    held.get("/r/release/simple/team-tools/", status=401)
    held.get("/r/dev/simple/devpkg/", status=401)
    assert fast.answered == before + 2


def test_bad_grants_stop_the_start_naming_the_key(make_app):
    for settings, key in (
            ({"grants": "nowhere * read everyone"}, "grants"),
            ({"grants": "default * fly everyone"}, "grants"),
            ({"grants": "default bad/pattern read everyone"}, "grants"),
            ({"grants": "default *"}, "grants"),
            ({"repository.default.read": "group:"}, "repository.default.read"),
            ({"repository.default.upload": "nobody alice"}, "repository.default.upload"),
            ({"group.team": "a b!"}, "group.team")):
        with pytest.raises(SystemExit) as err:
            make_app(**settings)
        assert str(err.value).startswith(f"pypirepo: configuration error: {key}: "), err.value


def test_the_fast_path_serves_logged_in_readers_once_their_credentials_are_checked(held):
    fast = held.app
    held.get("/r/release/simple/team-tools/", headers=basic("tom"))  # checked: the router
    before = fast.answered
    page = held.get("/r/release/simple/team-tools/", headers=basic("tom"))
    assert fast.answered == before + 1
    assert "private" in page.headers["Cache-Control"]
    # Not for a user who may not read it, nor for a wrong password, nor a bad header.
    held.get("/r/release/simple/team-tools/", headers=basic("ivy"), status=404)
    held.get("/r/release/simple/team-tools/", headers=basic("ivy"), status=404)
    held.get("/r/release/simple/team-tools/", headers=basic("tom", "no"), status=401)
    held.get("/r/release/simple/team-tools/", headers={"Authorization": "Basic !!"},
             status=401)
    assert fast.answered == before + 1
    # A public page for a logged-in reader: the same headers as anonymous readers get.
    held.get("/r/release/simple/pkg/", headers=basic("tom"))
    anonymous = held.get("/r/release/simple/pkg/")
    logged_in = held.get("/r/release/simple/pkg/", headers=basic("tom"))
    assert logged_in.headers["Cache-Control"] == anonymous.headers["Cache-Control"]
    assert logged_in.body == anonymous.body
