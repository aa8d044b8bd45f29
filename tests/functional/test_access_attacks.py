"""The attacks on access, through the HTTP surface: a private project's file asked for
through a public project's URL, another repository's URL, a group whose first member
hides it, other spellings of its name; tokens used past their scope or expiry; listings,
search, the JSON API and events probed for private names. (CSRF, session fixation and
repeated wrong passwords: test_sessions.py and test_throttle.py.)

The site: `release` (hosted, the default repository) holds `pub` (anyone reads; `pat`
may upload to and delete from it) and `team-secret` (group `team` only: `tom`); `vault`
(hosted, the team's only) holds `vaulted` and `shared` 2.0; `open` (hosted, anyone)
holds `shared` 1.0; the group `all` = vault, open. `ivy` may read what anyone may.
"""

from __future__ import annotations

import base64
import time

import distfactory
import pytest
from distfactory import metadata_text, upload_fields

from pypirepo.access import PASSWORDS

HASH = PASSWORDS.hash("pw")
JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}
SECRET, PUBLIC = "team-secret", "pub"
SAUCE = "sauce-xq7"  # in the private projects' summaries: what a search may find

SETTINGS = {
    "repositories": "release vault open all",
    "pypirepo.default_repository": "release",
    "repository.release.kind": "hosted",
    "repository.vault.kind": "hosted",
    "repository.open.kind": "hosted",
    "repository.all.kind": "group",
    "repository.all.members": "vault open",
    "user.ivy": HASH, "user.tom": HASH, "user.pat": HASH,
    "group.team": "tom",
    "repository.release.read": "everyone",
    "repository.release.upload": "pat",
    "repository.release.delete": "pat",
    "repository.vault.read": "group:team",
    "repository.vault.upload": "nobody",
    "repository.vault.delete": "nobody",
    "repository.open.read": "everyone",
    "repository.open.upload": "nobody",
    "repository.open.delete": "nobody",
    "repository.all.read": "everyone",
    "repository.all.upload": "nobody",
    "repository.all.delete": "nobody",
    "grants": "release team-* read group:team",
}
# (repository, project, version, private?): what the site holds, each a wheel.
HELD = [
    ("release", PUBLIC, "1.0", False),
    ("release", SECRET, "1.0", True),
    ("release", SECRET, "7.7", True),  # a version pub does not have
    ("vault", "vaulted", "1.0", True),
    ("vault", "shared", "2.0", True),
    ("open", "shared", "1.0", False),
]
# What must never show to someone who may not read them.
PRIVATE_WORDS = ("team-secret", "team_secret", "vaulted", "shared-2.0", "shared_2.0", SAUCE)


def basic(user, password="pw"):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def wheel_name(project, version):
    return distfactory.wheel_name(project, version)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from webtest import TestApp

    from pypirepo import main

    tmp = tmp_path_factory.mktemp("attacks")
    app = TestApp(main({}, **{
        "sqlalchemy.url": f"sqlite:///{tmp}/db.sqlite", "pypirepo.auto_migrate": "true",
        "pypirepo.reindex_on_start": "sync", "storage.dir": str(tmp / "storage"),
        "auth.bootstrap_user": "admin", "auth.bootstrap_password": "pw", **SETTINGS}))
    app.bytes = {}
    for repo, project, version, private in HELD:
        summary = f"{SAUCE} {project}" if private else None
        path = distfactory.make_wheel(tmp / repo, project, version, metadata=metadata_text(
            project, version, summary=summary))
        app.post(f"/r/{repo}/legacy/", params=upload_fields(path, project, version),
                 upload_files=[("content", path.name, path.read_bytes())],
                 headers=basic("admin"), status=200)
        app.bytes[(repo, path.name)] = path.read_bytes()
    return app


def never_the_bytes(site, res):
    assert res.status_int != 200, res.status
    for data in site.bytes.values():
        assert data not in res.body


def same_answer(res, absent):
    assert (res.status_int, res.headers.get("WWW-Authenticate"), res.body) == (
        absent.status_int, absent.headers.get("WWW-Authenticate"), absent.body)


# --- a private file through a public project's URL ----------------------------------------

SECRET_WHEEL = wheel_name(SECRET, "1.0")
NOBODYS_WHEEL = wheel_name("nobody-holds", "1.0")


@pytest.mark.parametrize("user", [None, "ivy", "pat"])
@pytest.mark.parametrize("form", [
    "/packages/pub/{f}", "/packages/pub/{f}.metadata", "/r/release/packages/pub/{f}",
    "/r/release/packages/pub/{f}.metadata", "/packages/Pub/{f}", "/packages/pub/{f}#x",
])
def test_a_private_file_through_a_public_projects_url(site, user, form):
    """The URL's project is the public one, the filename the private project's: what
    answers is the public project's (no such file), word for word as for a filename
    nobody holds."""
    headers = basic(user) if user else {}
    res = site.get(form.format(f=SECRET_WHEEL), headers=headers, expect_errors=True)
    never_the_bytes(site, res)
    absent = site.get(form.format(f=NOBODYS_WHEEL), headers=headers, expect_errors=True)
    assert res.status_int == absent.status_int in (301, 404)
    assert res.body.replace(SECRET_WHEEL.encode(), b"X") == \
        absent.body.replace(NOBODYS_WHEEL.encode(), b"X")


@pytest.mark.parametrize("user", [None, "ivy"])
@pytest.mark.parametrize("url", [
    # The private project's own file, its name spelled as a URL may spell it.
    "/packages/team-secret/{f}", "/packages/Team_Secret/{f}", "/packages/TEAM.SECRET/{f}",
    "/packages/team--secret/{f}", "/r/release/packages/team_secret/{f}",
    "/r/release/packages/team-secret/{f}.metadata",
    # Path tricks: the filename carrying another project's directory.
    "/packages/pub/..%2Fteam-secret%2F{f}", "/packages/pub/%2E%2E/team-secret/{f}",
    "/r/release/packages/pub/..%2f..%2frelease%2fteam-secret%2f{f}",
])
def test_other_spellings_of_a_private_file(site, user, url):
    headers = basic(user) if user else {}
    res = site.get(url.format(f=SECRET_WHEEL), headers=headers, expect_errors=True)
    never_the_bytes(site, res)
    assert res.status_int in ((401, 404, 301) if user is None else (404, 301))
    if res.status_int == 301:  # a spelling of the name: to its URL, answered as above
        res = site.get(res.location, headers=headers, expect_errors=True)
        never_the_bytes(site, res)


@pytest.mark.parametrize("user", [None, "ivy"])
@pytest.mark.parametrize("url", [
    "/pypi/pub/7.7/json", "/r/release/pypi/pub/7.7/json", "/pypi/pub/7.7/json/",
])
def test_a_private_version_through_a_public_projects_json(site, user, url):
    headers = basic(user) if user else {}
    res = site.get(url, headers=headers, expect_errors=True)
    absent = site.get(url.replace("7.7", "9.9"), headers=headers, expect_errors=True)
    assert res.status_int == 404
    same_answer(res, absent)
    assert not any(w.encode() in res.body for w in PRIVATE_WORDS)


def test_a_writer_of_the_public_project_cannot_reach_the_private_one_through_it(site, tmp_path):
    """pat may upload to and delete from pub, not read team-secret: its file and release
    named under pub's URLs are no such thing, and an upload of its distribution sent
    as pub's is refused; nothing changes."""
    pat = basic("pat")
    for url in (f"/api/projects/pub/files/{SECRET_WHEEL}",
                f"/api/r/release/projects/pub/files/{SECRET_WHEEL}",
                "/api/projects/pub/versions/7.7"):
        res = site.delete(url, headers=pat, expect_errors=True)
        assert res.status_int == 404, (url, res.status)
        assert SECRET.encode() not in res.body and b"team_secret" not in res.body
    for url in ("/api/projects/pub/versions/7.7/yank", "/api/projects/pub/versions/7.7/promote"):
        res = site.post_json(url, {"to": "open"}, headers=pat, expect_errors=True)
        assert res.status_int == 404, (url, res.status)
    # The private project itself: pat can't see it, so it is missing to him.
    res = site.delete(f"/api/projects/{SECRET}/files/{SECRET_WHEEL}", headers=pat,
                      expect_errors=True)
    absent = site.delete(f"/api/projects/team-nothing/files/{NOBODYS_WHEEL}", headers=pat,
                         expect_errors=True)
    assert res.status_int == absent.status_int == 404
    # An upload of team-secret 8.0 with the form saying it is pub's.
    path = distfactory.make_wheel(tmp_path, SECRET, "8.0")
    res = site.post("/legacy/", params=upload_fields(path, PUBLIC, "8.0"),
                    upload_files=[("content", path.name, path.read_bytes())], headers=pat,
                    expect_errors=True)
    assert res.status_int in (400, 403), res.status
    shown = site.get(f"/simple/{SECRET}/", headers=basic("admin")).text
    assert SECRET_WHEEL in shown and "8.0" not in shown
    assert "8.0" not in site.get("/simple/pub/", headers=basic("admin")).text


# --- a file of a repository through another one's URL, and through a group ----------------

VAULTED = wheel_name("vaulted", "1.0")
SHARED_2 = wheel_name("shared", "2.0")


@pytest.mark.parametrize("user", [None, "ivy"])
@pytest.mark.parametrize("url", [
    f"/r/open/packages/vaulted/{VAULTED}",  # held in vault, asked of open
    f"/r/open/packages/shared/{SHARED_2}",  # open holds shared, but not this file
    f"/r/open/packages/shared/{SHARED_2}.metadata",
    f"/r/release/packages/vaulted/{VAULTED}",
    f"/packages/vaulted/{VAULTED}",
    "/r/open/pypi/shared/2.0/json",
])
def test_a_file_of_a_repository_through_another_ones_url(site, user, url):
    """What vault holds, asked of a repository the caller may read: that one's answer
    for a name or a file it does not hold, word for word."""
    headers = basic(user) if user else {}
    res = site.get(url, headers=headers, expect_errors=True)
    never_the_bytes(site, res)
    absent_url = url.replace("vaulted", "nothing").replace("2.0", "9.9")
    absent = site.get(absent_url, headers=headers, expect_errors=True)
    assert res.status_int == absent.status_int
    assert res.body.replace(b"vaulted", b"nothing").replace(b"2.0", b"9.9") == absent.body


@pytest.mark.parametrize("user", [None, "ivy"])
@pytest.mark.parametrize("url", [
    f"/r/all/packages/vaulted/{VAULTED}",  # the group: vault hides it
    f"/r/all/packages/shared/{SHARED_2}",  # the group's first holder hides shared
    f"/r/all/packages/shared/{SHARED_2}.metadata",
    f"/r/all/packages/shared/{wheel_name('shared', '1.0')}",  # never a later look-alike
    "/r/all/simple/shared/", "/r/all/simple/vaulted/", "/r/all/pypi/shared/json",
    "/r/all/pypi/shared/2.0/json", "/r/all/project/shared/", "/r/all/project/vaulted/",
])
def test_a_file_through_a_group_whose_first_holder_hides_it(site, user, url):
    """Anyone reads the group, only the team its first member: what that member holds is
    missing through the group, and a later member's look-alike is not served instead."""
    headers = basic(user) if user else {}
    res = site.get(url, headers=headers, expect_errors=True)
    never_the_bytes(site, res)
    assert res.status_int == (401 if user is None else 404), res.status
    assert not any(w.encode() in res.body for w in PRIVATE_WORDS if w not in url)
    if "/packages/" in url and "1.0" not in url:  # tom may read vault: he gets the file
        site.get(url, headers=basic("tom"), status=200)


def test_group_events_come_from_the_members_the_caller_may_read(site):
    """shared's events through the group: open's for ivy (its upload of 1.0), vault's
    too for tom."""
    def events(user):
        return site.get("/api/r/all/projects/shared/events", headers=basic(user)).json[
            "events"]

    assert {(e["repository"], e["version"]) for e in events("ivy")} == {("open", "1.0")}
    assert {(e["repository"], e["version"]) for e in events("tom")} == {
        ("open", "1.0"), ("vault", "2.0")}


def test_vault_itself_refuses_who_may_not_read_it(site):
    for user, want in ((None, 401), ("ivy", 403)):
        headers = basic(user) if user else {}
        for url in ("/r/vault/simple/", f"/r/vault/packages/vaulted/{VAULTED}",
                    "/r/vault/simple/vaulted/", "/r/vault/pypi/vaulted/json"):
            res = site.get(url, headers=headers, expect_errors=True)
            assert res.status_int == want, (url, user, res.status)
            never_the_bytes(site, res)
            missing = site.get(url.replace("vaulted", "nothing"), headers=headers,
                               expect_errors=True)
            assert res.status_int == missing.status_int


# --- tokens past their scope and their expiry ---------------------------------------------


def make_token(site, user, **scope):
    return site.post_json("/api/tokens", scope, headers=basic(user), status=201).json["token"]


def test_a_token_past_its_repository(site):
    """tom reads vault; his token for release does not."""
    token = basic("__token__", make_token(site, "tom", repositories=["release"]))
    site.get(f"/r/release/packages/{SECRET}/{SECRET_WHEEL}", headers=token, status=200)
    site.get(f"/r/vault/packages/vaulted/{VAULTED}", headers=basic("tom"), status=200)
    for url in (f"/r/vault/packages/vaulted/{VAULTED}", "/r/vault/simple/vaulted/",
                "/r/vault/simple/"):
        res = site.get(url, headers=token, expect_errors=True)
        assert res.status_int == 403, (url, res.status)
        never_the_bytes(site, res)
    # Through the group, nothing of vault either: shared is hidden by vault, not served
    # from open.
    for url in (f"/r/all/packages/vaulted/{VAULTED}", f"/r/all/packages/shared/{SHARED_2}"):
        never_the_bytes(site, site.get(url, headers=token, expect_errors=True))
    listed = {r["name"] for r in site.get("/api/repositories", headers=token).json[
        "repositories"]}
    assert listed == {"release"}


def test_a_token_past_its_projects(site):
    """tom's token for pub alone: team-secret is missing to it, and shows nowhere."""
    token = basic("__token__", make_token(site, "tom", projects=["pub"]))
    site.get(f"/packages/pub/{wheel_name(PUBLIC, '1.0')}", headers=token, status=200)
    for url in (f"/packages/{SECRET}/{SECRET_WHEEL}", f"/simple/{SECRET}/",
                f"/pypi/{SECRET}/json", f"/api/projects/{SECRET}/events",
                f"/project/{SECRET}/"):
        res = site.get(url, headers=token, expect_errors=True)
        absent = site.get(url.replace(SECRET, "team-nothing").replace("team_secret",
                                                                      "team_nothing"),
                          headers=token, expect_errors=True)
        assert res.status_int == absent.status_int == 404, (url, res.status)
        never_the_bytes(site, res)
    for url in ("/simple/", "/", "/projects/", "/search?q=team"):
        body = site.get(url, headers={**token, **JSON}).text
        assert not any(w in body for w in PRIVATE_WORDS), url


def test_an_upload_token_past_its_projects_and_a_read_token(site, tmp_path):
    """pat may upload pub; his token for pub-tools may not, nor his read token."""
    path = distfactory.make_wheel(tmp_path, PUBLIC, "5.0")
    for token in (make_token(site, "pat", permission="upload", projects=["pub-tools"]),
                  make_token(site, "pat", permission="read")):
        res = site.post("/legacy/", params=upload_fields(path, PUBLIC, "5.0"),
                        upload_files=[("content", path.name, path.read_bytes())],
                        headers=basic("__token__", token), expect_errors=True)
        assert res.status_int == 403, res.status
    assert "5.0" not in site.get("/simple/pub/").text


def test_a_token_past_its_expiry(site):
    """Taken until it expires, then answered as a wrong password: 401 and the challenge,
    on what it could read a moment ago and on what anyone may read alike."""
    token = basic("__token__", make_token(site, "tom", expires_in=1))
    made = time.monotonic()
    site.get(f"/packages/{SECRET}/{SECRET_WHEEL}", headers=token, status=200)
    time.sleep(max(0.0, made + 1.1 - time.monotonic()))
    wrong = site.get(f"/packages/{SECRET}/{SECRET_WHEEL}", headers=basic("tom", "wrong"),
                     expect_errors=True)
    for url in (f"/packages/{SECRET}/{SECRET_WHEEL}", f"/simple/{SECRET}/",
                "/r/vault/simple/"):
        res = site.get(url, headers=token, expect_errors=True)
        assert res.status_int == 401 and res.headers["WWW-Authenticate"].startswith("Basic")
        never_the_bytes(site, res)
    res = site.get(f"/packages/{SECRET}/{SECRET_WHEEL}", headers=token, expect_errors=True)
    same_answer(res, wrong)
    # A public read goes on as anonymous (as with a wrong password): no 403, no 5xx.
    site.get("/simple/pub/", headers=token, status=200)
    site.get("/api/tokens", headers=token, status=401)


# --- listings, search, the JSON API and events probed for private names -------------------

PROBES = [
    "/", "/simple/", "/r/release/simple/", "/r/all/simple/", "/r/open/simple/",
    "/projects/", "/r/release/", "/r/all/", "/r/open/",
    "/projects/?q=team", f"/projects/?q={SAUCE}", "/r/all/?q=shared", "/r/all/?q=vault",
    "/search?q=team", "/search?q=secret", f"/search?q={SAUCE}", "/search?q=vaulted",
    "/search?q=team&partial=1", f"/search?q={SAUCE}&sort=updated",
    "/api/repositories", "/pypi/pub/json", "/r/open/pypi/shared/json",
    "/r/open/project/shared/", "/project/pub/", "/api/projects/pub/events",
    "/api/r/open/projects/shared/events", "/simple/pub/", "/r/open/simple/shared/",
]


@pytest.mark.parametrize("accept", ["html", "json"])
@pytest.mark.parametrize("user", [None, "ivy", "pat"])
def test_private_names_show_nowhere(site, user, accept):
    headers = {**(basic(user) if user else {}), **(JSON if accept == "json" else {})}
    for url in PROBES:
        res = site.get(url, headers=headers, expect_errors=True)
        assert res.status_int < 500, (url, res.status)
        # (A search says what it was asked for: a word of the query is no finding.)
        shown = [w for w in PRIVATE_WORDS if w.encode() in res.body and w not in url]
        assert not shown, (url, shown)


@pytest.mark.parametrize("user", [None, "ivy", "pat"])
@pytest.mark.parametrize("url", ["/search?q={}", "/search?q={}&partial=1", "/r/all/?q={}",
                                 "/projects/?q={}&sort=updated"])
@pytest.mark.parametrize("word", ["team-secret", "secret", "vaulted", SAUCE])
def test_a_search_for_a_private_word_finds_what_a_search_for_nonsense_does(site, user,
                                                                           url, word):
    headers = basic(user) if user else {}
    res = site.get(url.format(word), headers=headers, expect_errors=True)
    nonsense = "zq" * (len(word) // 2) + "z" * (len(word) % 2)
    absent = site.get(url.format(nonsense), headers=headers, expect_errors=True)
    assert res.status_int == absent.status_int
    assert res.body.replace(word.encode(), b"X") == absent.body.replace(nonsense.encode(),
                                                                          b"X")


def test_the_probes_find_the_names_for_who_may_read_them(site):
    """The probes are not blind: tom finds what ivy may not."""
    found = set()
    for url in PROBES:
        body = site.get(url, headers=basic("tom"), expect_errors=True).body
        found |= {w for w in PRIVATE_WORDS if w.encode() in body}
    assert {"team-secret", "vaulted", SAUCE} <= found


def test_a_closed_index_lists_no_repository_to_strangers(make_app):
    app = make_app(**{"pypi.default_read": "admin", "pypi.default_write": "admin"})
    res = app.get("/api/repositories", status=401)
    assert res.headers["WWW-Authenticate"].startswith("Basic")
    app.get("/api/repositories", headers=basic("alice", "alicepw"), status=403)
    assert app.get("/api/repositories", headers=basic("admin")).json["repositories"]


def card_counts(site, user) -> dict:
    """repository -> the counts its card on the home page shows."""
    import re

    page = site.get("/", headers=basic(user) if user else {}).text
    return {m.group(1): re.sub(r"<[^>]+>", "", m.group(2)).strip() for m in re.finditer(
        r'repo-card__name"><a href="[^"]*">([^<]+)</a>.*?repo-card__counts">(.*?)</p>',
        page, re.S)}


def test_the_home_pages_counts_count_what_the_viewer_may_read(site):
    """A count of projects the viewer can't see tells them those exist: each card counts
    what its viewer may list."""
    assert card_counts(site, "ivy") == card_counts(site, None) == {
        "release": "1 project, 1 file", "open": "1 project, 1 file",
        "all": "No packages yet in its members."}
    assert card_counts(site, "tom") == {
        "release": "2 projects, 3 files", "vault": "2 projects, 2 files",
        "open": "1 project, 1 file", "all": "2 projects, 2 files"}


# --- what a reader leaves behind: caches, validators ----------------------------------------

WARM = [f"/simple/{SECRET}/", f"/r/release/simple/{SECRET}/",
        f"/packages/{SECRET}/{SECRET_WHEEL}",
        f"/packages/{SECRET}/{SECRET_WHEEL}.metadata", f"/pypi/{SECRET}/json",
        f"/pypi/{SECRET}/7.7/json", "/r/vault/simple/vaulted/",
        f"/r/all/packages/vaulted/{VAULTED}", "/r/all/simple/vaulted/"]


@pytest.mark.parametrize("url", WARM)
@pytest.mark.parametrize("user", [None, "ivy"])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_what_a_reader_fetched_is_not_served_to_others(site, url, user, method):
    """tom fetches it first (a page is kept, a validator is known); then a caller who may
    not read it asks, with tom's validator and a range: no 200, 206 nor 304, no bytes."""
    accept = JSON if "/simple/" in url else {}
    seen = site.get(url, headers={**basic("tom"), **accept})
    validators = {}
    if seen.etag:
        validators["If-None-Match"] = f'"{seen.etag}"'
    if seen.last_modified:
        validators["If-Modified-Since"] = seen.headers["Last-Modified"]
    headers = {**accept, **validators, "Range": "bytes=0-10",
               **(basic(user) if user else {})}
    res = site.request(url, method=method, headers=headers, expect_errors=True)
    assert res.status_int in (401, 403, 404), (url, res.status)
    never_the_bytes(site, res)
    assert seen.body[:11] not in res.body
    assert not any(w.encode() in res.body for w in PRIVATE_WORDS if w not in url)


@pytest.mark.parametrize("user", [None, "ivy", "pat"])
@pytest.mark.parametrize("form", [
    # Every route that names a project, in both its classic and its /r/ form.
    "/simple/{p}/", "/simple/{p}", "/legacy/+simple/{p}/", "/pypi/{p}/json",
    "/pypi/{p}/json/", "/pypi/{p}/1.0/json", "/pypi/{p}/1.0/json/", "/project/{p}/",
    "/project/{p}/1.0/", "/api/projects/{p}/events", "/r/release/simple/{p}",
    "/r/release/legacy/+simple/{p}/", "/r/release/project/{p}/1.0/",
    "/api/r/release/projects/{p}/events", "/simple/{P}/", "/pypi/{P}/json",
    "/api/projects/{p}/owners", "/api/r/release/projects/{p}/grants",
    "/api/r/release/projects/{p}/owners/olga", "/api/projects/{p}/grants/1",
])
def test_every_route_that_names_the_private_project_answers_as_for_a_missing_one(
        site, user, form):
    headers = basic(user) if user else {}
    res = site.get(form.format(p=SECRET, P="Team_Secret"), headers=headers,
                   expect_errors=True)
    absent = site.get(form.format(p="team-nothing", P="Team_Nothing"), headers=headers,
                      expect_errors=True)
    assert res.status_int == absent.status_int, (res.status, absent.status)
    assert res.headers.get("WWW-Authenticate") == absent.headers.get("WWW-Authenticate")
    assert res.headers.get("Location", "").replace("team-secret", "X").replace(
        "Team_Secret", "X") == absent.headers.get("Location", "").replace(
        "team-nothing", "X").replace("Team_Nothing", "X")
    assert res.body.replace(b"team-secret", b"X").replace(b"Team_Secret", b"X") == \
        absent.body.replace(b"team-nothing", b"X").replace(b"Team_Nothing", b"X")
    # tom, who may read it, is answered otherwise where the URL names it (told that he
    # may not manage its owners and grants).
    if res.status_int != 301:
        manage = "/owners" in form or "/grants" in form
        assert site.get(form.format(p=SECRET, P="Team_Secret"), headers=basic("tom"),
                        expect_errors=True).status_int in ((403, 405) if manage else
                                                           (200, 301, 308))
