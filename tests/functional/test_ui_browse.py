"""The web UI's browsing pages through WebTest: home, a repository's projects (paging,
sorting, search), a project's page, permissions, escaping, groups and promotion, and the
simple index's answers to browsers and to clients."""

from __future__ import annotations

import json
import re

import pytest
from distfactory import make_sdist, make_wheel, metadata_text
from helpers import ADMIN, upload

from pypirepo.interfaces import IDatabase, IRepositories, IUIPages
from pypirepo.pages.ui import Viewer
from pypirepo.repositories import Work

BROWSER = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document",
           "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
PIP = {"Accept": "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;"
                 " q=0.1, text/html; q=0.01", "User-Agent": "pip/24.0"}


def wheel(dists, name, version, summary=None, readme=None, ctype="text/markdown", **kw):
    headers = [f"Description-Content-Type: {ctype}"] if readme is not None else []
    meta = metadata_text(name, version, summary=summary, extra_headers=headers)
    if readme is not None:
        meta = meta.split("\n\n", 1)[0] + "\n\n" + readme
    return make_wheel(dists.dir, name, version, metadata=meta, **kw)


def names(res) -> list[str]:
    return [a.get_text() for a in res.html.select(".result-list__name")]


# --- home ---------------------------------------------------------------------------------


def test_home_lists_repositories_with_counts_and_empty_states(app, dists):
    upload(app, wheel(dists, "alpha", "1.0"), "alpha", "1.0")
    upload(app, make_sdist(dists.dir, "alpha", "1.0"), "alpha", "1.0")
    res = app.get("/", headers=BROWSER)
    cards = res.html.select(".repo-card")
    assert [c.select_one(".repo-card__name").get_text() for c in cards] == \
        ["default", "local", "pypi"]
    assert "1 project, 2 files" in cards[0].get_text(" ", strip=True)
    assert "Nothing cached yet" in cards[2].get_text()
    # The install snippets name the default repository's URLs, and say how to use others.
    assert "pip install --index-url http://localhost/simple/ PROJECT" in res.text
    assert "http://localhost/r/&lt;name&gt;/simple/" in res.text


def test_an_empty_hosted_repository_says_how_to_publish(make_app):
    app = make_app(repositories="dev", **{"repository.dev.kind": "hosted"})
    res = app.get("/")
    assert "No packages yet" in res.text
    assert "twine upload --repository-url http://localhost/r/dev/legacy/ dist/*" in res.text
    page = app.get("/r/dev/")
    assert "No packages yet — publish one with twine like this:" in page.text


def test_a_closed_index_shows_anonymous_visitors_no_names(make_app, dists):
    app = make_app(**{"pypi.default_read": "authenticated"})
    upload(app, wheel(dists, "secret-project", "1.0"), "secret-project", "1.0")
    home = app.get("/", headers=BROWSER)
    assert "secret-project" not in home.text
    assert home.html.select(".repo-card") == []
    assert "Sign in to see the packages" in home.text
    for url in ("/projects/", "/r/local/", "/r/default/", "/project/secret-project/",
                "/project/secret-project/1.0/", "/r/local/project/secret-project/",
                "/search?q=secret", "/projects/?partial=1&q=secret"):
        res = app.get(url, headers=BROWSER, status=401)
        # The page may echo the address asked for (its sign-in link comes back to it),
        # and nothing else: it is the page a name nobody holds gets.
        absent = app.get(url.replace("secret", "nothing"), headers=BROWSER, status=401)
        assert res.text.replace("secret", "nothing") == absent.text, url
    # Signed in, the same visitor sees everything.
    app.authorization = ("Basic", ("alice", "alicepw"))
    assert "secret-project" in app.get("/projects/").text
    assert app.get("/").html.select(".repo-card")


def test_a_readable_filter_hides_names_from_pages_and_counts(app, dists):
    """The UI asks the access policy about every name it shows: a viewer who may read
    only some projects sees only those, counted and paged among themselves."""
    for name in ("aa-one", "aa-two", "aa-three", "bb-four"):
        upload(app, wheel(dists, name, "1.0", summary=f"{name} summary"), name, "1.0")
    registry = app.app.registry
    pages = registry.getUtility(IUIPages)
    repo = registry.getUtility(IRepositories).default
    hidden = {"aa-two", "bb-four"}
    viewer = Viewer(False, lambda ns: [n for n in ns if n not in hidden])
    work = Work(registry.getUtility(IDatabase))
    try:
        listing = pages.listing(work, repo, viewer, "", "name", 0, 2)
        assert listing.total == 2
        assert [e.name for e in listing.entries] == ["aa-one", "aa-three"]
        assert pages.listing(work, repo, viewer, "aa", "name", 1, 2).entries[0].name == \
            "aa-three"
        assert pages.listing(work, repo, viewer, "summary", "name", 0, 10).total == 2
        # Whoever may read the whole repository gets it from SQL a page at a time, and the
        # policy still has the last word on each name shown.
        everyone = Viewer(True, lambda ns: [n for n in ns if n != "aa-one"])
        shown = pages.listing(work, repo, everyone, "", "name", 0, 50)
        assert "aa-one" not in [e.name for e in shown.entries]
    finally:
        work.close()


# --- a repository's projects -----------------------------------------------------------------


@pytest.fixture
def many(app, dists):
    """60 projects: page 2 exists, and the last uploaded sorts first by last upload."""
    for i in range(60):
        name = f"proj-{i:02d}"
        upload(app, wheel(dists, name, "1.0", summary=f"Project number {i}"
                          + (" with <b>bold</b> & friends" if i == 7 else "")), name, "1.0")
    return app


def test_repository_page_pages_and_sorts(many):
    first = many.get("/projects/", headers=BROWSER)
    assert names(first)[:3] == ["proj-00", "proj-01", "proj-02"]
    assert len(names(first)) == 50
    assert "60 projects" in first.text
    second = many.get("/projects/?page=2")
    assert names(second) == [f"proj-{i}" for i in range(50, 60)]
    assert second.html.select_one('a[rel="prev"]')["href"] == "/projects/"
    newest = many.get("/projects/?sort=updated")
    assert names(newest)[0] == "proj-59"
    assert newest.html.select_one(".sorter__option[aria-current]").get_text().endswith(
        "Last upload")
    # The same list at /r/<name>/ for every repository, with links under it.
    local = many.get("/r/local/?page=2&sort=updated")
    assert names(local)[-1] == "proj-00"
    assert local.html.select_one(".result-list__name")["href"] == "/r/local/project/proj-09/"
    assert many.get("/r/local").location.endswith("/r/local/")
    assert many.get("/r/nope/", status=404)
    past = many.get("/projects/?page=9")
    assert "No projects on this page" in past.text


def test_search_matches_names_and_summaries_exact_first(many, dists):
    upload(many, wheel(dists, "number", "1.0", summary="the exact one"), "number", "1.0")
    res = many.get("/projects/?q=Number")
    found = names(res)
    assert found[0] == "number"  # the exact name, then summaries that match
    assert len(found) == 50 and "61 projects match" in res.text
    assert names(many.get("/projects/?q=PROJ_05")) == ["proj-05"]  # names normalized
    assert names(many.get("/search?q=friends")) == ["proj-07"]
    assert names(many.get("/projects/?q=100%25")) == []  # % is a character, not a wildcard
    partial = many.get("/projects/?q=friends&partial=1")
    assert "<html" not in partial.text and "proj-07" in partial.text


def test_summaries_and_names_are_escaped(many):
    res = many.get("/projects/?q=bold")
    assert "with &lt;b&gt;bold&lt;/b&gt; &amp; friends" in res.text
    assert "<b>bold</b>" not in res.text
    hostile = many.get('/projects/?q="><script>alert(1)</script>')
    assert "<script>alert(1)" not in hostile.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in hostile.text


def test_every_browsing_page_has_the_security_headers(many):
    for url in ("/", "/projects/", "/r/local/", "/project/proj-01/", "/search?q=x"):
        res = many.get(url)
        assert res.headers["Content-Security-Policy"].startswith("default-src 'self'")
        assert res.headers["X-Content-Type-Options"] == "nosniff"
        assert res.headers["Cache-Control"] == "private, no-cache"
        assert not re.search(r"<script(?![^>]*\ssrc=)", res.text), url


# --- a project's page ------------------------------------------------------------------------


def test_project_page_orders_versions_by_packaging_rules(app, dists):
    for version in ("0.2.0", "0.10.0", "0.9.0", "1.0.0rc1"):
        upload(app, wheel(dists, "ordered", version), "ordered", version)
    app.authorization = ADMIN
    app.post_json("/api/projects/ordered/versions/0.9.0/yank", {"reason": "bad <build>"})
    app.authorization = None
    res = app.get("/project/ordered/")
    history = [a.get_text() for a in res.html.select(".history__version")]
    assert history == ["1.0.0rc1", "0.10.0", "0.9.0", "0.2.0"]
    assert res.html.select_one(".project-head__version").get_text() == "0.10.0"
    yanked = res.html.select(".history__item")[2].get_text(" ", strip=True)
    assert "yanked" in yanked and "Yanked: bad <build>" in yanked
    assert "bad &lt;build&gt;" in res.text
    pre = res.html.select(".history__item")[0].get_text(" ", strip=True)
    assert "pre-release" in pre
    old = app.get("/project/ordered/0.2.0/")
    assert "This is not the latest release" in old.text
    assert "pip install --index-url http://localhost/simple/ ordered==0.2.0" in old.text
    assert app.get("/project/ordered/0.2/").html.select_one(
        ".project-head__version").get_text() == "0.2.0"  # PEP 440 equal spellings
    assert app.get("/project/ordered/?version=0.9.0").location.endswith(
        "/project/ordered/0.9.0/")
    assert app.get("/project/Ordered/").location.endswith("/project/ordered/")
    app.get("/project/ordered/5.0/", status=404)
    app.get("/project/never-uploaded/", status=404)
    app.get("/project/-bad-/", status=404)


def test_project_page_shows_files_metadata_and_readme(app, dists):
    readme = "# Title\n\nSome *text* and `code`.\n\n<script>alert(1)</script>\n"
    path = wheel(dists, "rich", "1.0", summary="Rich project", readme=readme,
                 tag="cp311-cp311-manylinux_2_17_x86_64")
    upload(app, path, "rich", "1.0")
    res = app.get("/project/rich/")
    body = res.html.select_one(".readme")
    assert body.select_one("h1").get_text() == "Title"
    assert body.select_one("em").get_text() == "text"
    assert "<script>" not in str(body) and "&lt;script&gt;" in str(body)
    row = res.html.select_one("tbody tr").get_text(" ", strip=True)
    for part in ("rich-1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
                 "cp311", "manylinux_2_17_x86_64", "by admin"):
        assert part in row, part
    import hashlib
    assert hashlib.sha256(path.read_bytes()).hexdigest() in row
    # The JSON API's project_url and release_url lead here.
    info = app.get("/pypi/rich/json").json["info"]
    assert app.get(info["project_url"]).status_int == 200
    assert app.get(info["release_url"]).status_int == 200
    assert info["description"] == readme


def test_the_description_is_kept_in_the_record_and_survives_a_rebuild(make_app, dists,
                                                                       tmp_path):
    app = make_app()
    readme = "Kept\n====\n\nThrough a rebuild.\n"
    upload(app, wheel(dists, "kept", "1.0", readme=readme, ctype="text/x-rst"), "kept", "1.0")
    record = next((tmp_path / "storage").rglob("kept-1.0-py3-none-any.whl.json"))
    assert json.loads(record.read_text())["info"]["description"] == readme
    (tmp_path / "db.sqlite").unlink()
    rebuilt = make_app()
    res = rebuilt.get("/project/kept/")
    assert res.html.select_one(".readme h1").get_text() == "Kept"
    assert names(rebuilt.get("/projects/?q=kept")) == ["kept"]  # the list columns too


# --- groups and promotion ----------------------------------------------------------------------


@pytest.fixture
def grouped(make_app):
    return make_app(**{
        "repositories": "dev release all",
        "repository.dev.kind": "hosted", "repository.release.kind": "hosted",
        "repository.all.kind": "group", "repository.all.members": "release dev",
        "pypirepo.default_repository": "all"})


def post(app, repo, path, name, version):
    from distfactory import upload_fields

    app.authorization = ADMIN
    try:
        app.post(f"/r/{repo}/legacy/", params=upload_fields(path, name, version),
                 upload_files=[("content", path.name, path.read_bytes())])
    finally:
        app.authorization = None


def test_a_group_lists_each_name_once_from_its_first_holder(grouped, dists):
    post(grouped, "release", wheel(dists, "shared", "1.0", summary="from release"),
         "shared", "1.0")
    post(grouped, "dev", wheel(dists, "shared", "2.0", summary="from dev"), "shared", "2.0")
    post(grouped, "dev", wheel(dists, "dev-only", "0.1"), "dev-only", "0.1")
    post(grouped, "release", wheel(dists, "zz-release", "1.0"), "zz-release", "1.0")
    for sort in ("name", "updated"):
        res = grouped.get(f"/projects/?sort={sort}")
        assert sorted(names(res)) == ["dev-only", "shared", "zz-release"], sort
    res = grouped.get("/projects/")
    assert "from release" in res.text and "from dev" not in res.text
    assert "3 projects" in res.text
    assert names(grouped.get("/projects/?q=from")) == ["shared"]
    page = grouped.get("/project/shared/")
    assert page.html.select_one(".project-head__version").get_text() == "1.0"
    assert "release (in all)" in page.html.select_one(".sidebar").get_text(" ")
    assert grouped.get("/r/dev/project/shared/").html.select_one(
        ".project-head__version").get_text() == "2.0"
    cards = grouped.get("/").html.select(".repo-card")
    assert "3 projects, 3 files" in cards[0].get_text(" ", strip=True)
    # Deep pages of a group: each member read only up to the page's end.
    assert names(grouped.get("/projects/?page=2")) == []


def test_promoted_and_cached_files_are_marked(grouped, dists):
    post(grouped, "dev", wheel(dists, "climber", "1.0"), "climber", "1.0")
    grouped.authorization = ADMIN
    grouped.post_json("/api/r/dev/projects/climber/versions/1.0/promote", {"to": "release"})
    grouped.authorization = None
    entry = grouped.get("/r/release/").html.select_one(".result-list__item")
    assert "promoted" in entry.get_text()
    assert "private" not in entry.get_text()
    page = grouped.get("/r/release/project/climber/")
    source = page.html.select_one(".sidebar").get_text(" ", strip=True)
    assert "promoted from dev by admin" in source


# --- the simple index's answers: browsers go to the pages, clients see no change -------------


def test_browsers_are_sent_to_the_pages_clients_get_the_same_bytes(app, dists, make_app):
    upload(app, wheel(dists, "negotiated", "1.0"), "negotiated", "1.0")
    other = make_app(**{"pypirepo.fast_path": "false"})  # the views alone, same storage
    for client in (app, other):
        for url in ("/simple/negotiated/", "/simple/", "/r/local/simple/negotiated/"):
            for headers in (PIP, {"Accept": "text/html"}, {}, {"Accept": "*/*"},
                            {"Accept": "application/vnd.pypi.simple.v1+json"}):
                res = client.get(url, headers=headers)
                assert res.status_int == 200
                assert res.headers["Vary"] == "Accept"
                assert "Content-Security-Policy" not in res.headers
                assert res.content_type != "text/html" or "<!DOCTYPE html>" in res.text
    a = app.get("/simple/negotiated/", headers=PIP)
    b = other.get("/simple/negotiated/", headers=PIP)
    assert a.body == b.body and dict(a.headers) == dict(b.headers)
    res = app.get("/simple/negotiated/", headers=BROWSER, status=303)
    assert res.location == "http://localhost/project/negotiated/"
    assert res.headers["Cache-Control"] == "private, no-store"
    assert app.get("/simple/", headers=BROWSER, status=303).location.endswith("/projects/")
    assert app.get("/r/local/simple/negotiated/", headers=BROWSER, status=303).location \
        .endswith("/r/local/project/negotiated/")
    assert app.get("/r/local/simple/", headers=BROWSER, status=303).location.endswith(
        "/r/local/")
    raw = app.get("/simple/negotiated/?format=text/html", headers=BROWSER)
    assert raw.status_int == 200 and "negotiated-1.0-py3-none-any.whl" in raw.text
    # A name the index does not hold: the browser gets the site's 404 page, pip its text.
    app.get("/simple/nothing-here/", headers=PIP, status=404)


# --- the same SQL on PostgreSQL -------------------------------------------------------------


@pytest.mark.postgres
def test_the_pages_on_postgresql(make_app, pg_url, dists):
    app = make_app(**{
        "sqlalchemy.url": pg_url, "repositories": "dev release all",
        "repository.dev.kind": "hosted", "repository.release.kind": "hosted",
        "repository.all.kind": "group", "repository.all.members": "release dev",
        "pypirepo.default_repository": "all"})
    post(app, "release", wheel(dists, "Shared_Name", "1.0", summary="From RELEASE",
                               readme="# Hi\n"), "Shared_Name", "1.0")
    post(app, "dev", wheel(dists, "shared-name", "2.0", summary="from dev"), "shared-name",
         "2.0")
    post(app, "dev", wheel(dists, "dev-only", "0.1", summary="Only here"), "dev-only", "0.1")
    for sort in ("name", "updated"):
        assert sorted(names(app.get(f"/projects/?sort={sort}"))) == ["Shared_Name", "dev-only"]
    assert names(app.get("/projects/?q=release")) == ["Shared_Name"]  # any case
    assert names(app.get("/projects/?q=SHARED.name")) == ["Shared_Name"]
    assert names(app.get("/projects/?q=only&sort=updated")) == ["dev-only"]
    assert "2 projects, 2 files" in app.get("/").html.select(".repo-card")[0].get_text(
        " ", strip=True)
    page = app.get("/project/shared-name/")
    assert page.html.select_one(".readme h1").get_text() == "Hi"
    assert page.html.select_one(".project-head__version").get_text() == "1.0"
    app.authorization = ADMIN
    app.post_json("/api/r/dev/projects/dev-only/versions/0.1/promote", {"to": "release"})
    app.authorization = None
    assert "promoted" in app.get("/r/release/").html.select_one(".result-list__item").get_text()
