"""The web UI's writers' forms through WebTest: upload a file, yank and unyank a release
with a reason, delete a release or a file, promote a release; each one's confirmation
page, its CSRF check, its permission check (a reader gets a 403, someone who can't read
the project the missing-project answer) and its bad input (the form again with the
reason, nothing changed)."""

from __future__ import annotations

import re

import pytest
from distfactory import make_wheel
from helpers import csrf, login

from pypirepo.passwords import PASSWORDS
from pypirepo.views.ui import CONTENT_SECURITY_POLICY

BOB_HASH = PASSWORDS.hash("bobpw")
SIMPLE_JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}
BROWSER = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document",
           "Accept": "text/html,application/xhtml+xml"}
FORGED = "Cm6K4XZR_DrfaSehtOf48ZUjCDa7JGj-TT8cUxnPHNg"
ACTION_RE = re.compile(r'<form class="form upload-form" method="post" action="([^"]+)"')
FLASH_RE = re.compile(r'<p class="flash flash--(\w+)" role="\w+">([^<]*)</p>')


@pytest.fixture
def make_site(make_app):
    """dev and release (hosted) in the group all (the default): alice may write, bob may
    only read; projects secret-* are alice's alone, and only in dev may she change them."""

    def build(**settings):
        app = make_app(**{
            "auth.session_secret": "s" * 40,
            "repositories": "dev release all",
            "repository.dev.kind": "hosted", "repository.release.kind": "hosted",
            "repository.all.kind": "group", "repository.all.members": "release dev",
            "pypirepo.default_repository": "all",
            "pypi.default_write": "alice",
            "user.bob": BOB_HASH,
            "grants": "dev secret-* read alice\ndev secret-* upload alice\n"
                      "dev secret-* delete alice\nrelease secret-* read alice",
            **settings})
        app.extra_environ = {"REMOTE_ADDR": "10.0.0.1"}
        return app

    return build


@pytest.fixture
def site(make_site):
    app = make_site()
    login(app)
    return app


@pytest.fixture
def bob(site):
    """Another browser on the same server, signed in as the reader."""
    from webtest import TestApp

    app = TestApp(site.app, extra_environ={"REMOTE_ADDR": "10.0.0.2"})
    login(app, "bob", "bobpw")
    return app


def upload_action(app, url="/r/dev/upload") -> str:
    """The upload form's action on the page at url (its CSRF token in the query)."""
    return ACTION_RE.search(app.get(url).text).group(1).replace("&amp;", "&")


def send(app, action, wheel, status=303, filename=None, content=None):
    return app.post(action, status=status, upload_files=[
        ("content", filename if filename is not None else wheel.name,
         content if content is not None else wheel.read_bytes())])


def files(app, project="demo", repo="dev") -> dict:
    """filename -> yanked (False or the reason) of what the repository serves."""
    res = app.get(f"/r/{repo}/simple/{project}/", headers=SIMPLE_JSON, expect_errors=True)
    if res.status_int == 404:
        return {}
    return {f["filename"]: f.get("yanked", False) for f in res.json["files"]}


def flashes(res) -> list[tuple[str, str]]:
    return FLASH_RE.findall(res.text)


@pytest.fixture
def demo(site, dists):
    """demo 1.0 (a wheel and an sdist) uploaded to dev through the form."""
    action = upload_action(site)
    for path in (dists.wheel("demo", "1.0"), dists.sdist("demo", "1.0")):
        send(site, action, path)
    return site


# --- upload ------------------------------------------------------------------------------------


def test_upload_a_wheel_through_the_form(site, dists):
    wheel = dists.wheel("demo", "1.0")
    # A repository's page links the form for a writer (a new project's first file).
    link = site.get("/r/dev/").html.select_one(".sidebar a[href='/r/dev/upload']")
    assert link.get_text() == "Upload a file…"
    page = site.get("/r/dev/upload")
    assert page.html.select_one("label[for=upload-file]").get_text(" ", strip=True) == \
        "Distribution file (required)"
    assert "twine upload --repository-url http://localhost/r/dev/legacy/ dist/*" in page.text
    assert page.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    res = send(site, upload_action(site), wheel)
    assert res.location == "http://localhost/r/dev/project/demo/1.0/"
    shown = res.follow()
    assert flashes(shown) == [("success", f"Uploaded {wheel.name}.")]
    assert flashes(site.get("/r/dev/project/demo/1.0/")) == []  # said once
    assert files(site) == {wheel.name: False}
    assert "by alice" in shown.html.select_one(".table").get_text(" ")
    # The same bytes again: nothing to do, and said so.
    again = send(site, upload_action(site), wheel).follow()
    assert "already exists with the same content" in flashes(again)[0][1]


def test_the_project_page_offers_the_forms_to_a_writer(demo, dists):
    page = demo.get("/r/dev/project/demo/")
    manage = page.html.select_one("#manage")
    action = manage.select_one("form.upload-form")["action"]
    assert action.startswith("/r/dev/upload?csrf_token=") and action.endswith("&project=demo")
    assert manage.select_one("form[action='/r/dev/project/demo/1.0/yank'] #yank-reason")
    assert [o["value"] for o in manage.select("#promote-to option")] == ["release"]
    assert manage.select_one("a[href='/r/dev/project/demo/1.0/delete']")
    assert len(manage.select(".manage__files a")) == 2
    for inp in manage.select("input:not([type=hidden]), select"):
        assert manage.select_one(f"label[for={inp['id']}]"), inp  # every input labelled
    # From the group's page the actions act on the group, which finds the holder.
    wheel = dists.wheel("demo", "1.1")
    send(demo, ACTION_RE.search(demo.get("/project/demo/").text).group(1)
         .replace("&amp;", "&"), wheel)
    # The group's upload target: its first hosted member.
    assert list(files(demo, repo="release")) == [wheel.name]


def test_upload_bad_input_shows_the_form_again(make_site, dists):
    site = make_site(**{"pypi.max_upload_size": "2000"})
    login(site)
    action = upload_action(site)
    wheel = dists.wheel("demo", "1.0")
    cases = [
        (400, "Choose a file to upload.", "", b""),
        (400, "Invalid file extension", "notes.txt", b"hello"),
        (400, "Invalid filename", "../demo-1.0.tar.gz", b"x"),
        (400, "Invalid distribution file. Not a zip archive", "demo-1.0-py3-none-any.whl",
         b"not a zip"),
        (413, "File too large. Limit is 2000 bytes.", "demo-1.0-py3-none-any.whl",
         b"PK" + b"\0" * 4000),
    ]
    for status, reason, filename, content in cases:
        res = send(site, action, wheel, status=status, filename=filename, content=content)
        assert reason in res.html.select_one(".form-alert").get_text(), filename
        assert res.html.select_one("#upload-file-error").get_text().startswith(reason[:10])
        assert res.html.select_one("form.upload-form")  # the form, to try again
    res = site.post("/r/dev/upload", {"csrf_token": csrf(site)}, status=400)
    assert "Send the file with the upload form." in res.html.select_one(".form-alert").get_text()
    assert files(site) == {}
    # A file of another project, from that project's page.
    other = dists.wheel("other", "1.0")
    res = send(site, upload_action(site, "/r/dev/upload?project=demo"), other, status=400)
    assert "is a file of project 'other', not of 'demo'" in \
        res.html.select_one(".form-alert").get_text()
    assert files(site, "other") == {}
    # The same filename with other bytes: 409, and the first file stays.
    send(site, action, wheel)
    changed = make_wheel(dists.dir / "changed", "demo", "1.0", requires_dist=["requests"])
    res = send(site, action, changed, status=409)
    assert "File already exists" in res.text
    assert files(site) == {wheel.name: False}
    stored = site.get(f"/r/dev/packages/demo/{wheel.name}").body
    assert stored == wheel.read_bytes()


def test_upload_needs_the_csrf_token_of_this_session(site, make_site, dists):
    wheel = dists.wheel("demo", "1.0")
    other = make_site()
    login(other)  # alice again, in another browser: another session, another token
    theirs = upload_action(other).split("csrf_token=")[1].split("&")[0]
    for url, message in (("/r/dev/upload", "CSRF token missing"),
                         ("/r/dev/upload?csrf_token=" + FORGED, "CSRF token invalid"),
                         ("/r/dev/upload?csrf_token=" + theirs, "CSRF token invalid")):
        res = send(site, url, wheel, status=403)
        assert message in res.text
    assert files(site) == {}


def test_upload_permission(site, bob, dists, make_site):
    wheel = dists.wheel("demo", "1.0")
    assert "/upload" not in bob.get("/r/dev/").text
    bob.get("/r/dev/upload", status=403)
    res = bob.post("/r/dev/upload?csrf_token=" + csrf(bob), status=403,
                   upload_files=[("content", wheel.name, wheel.read_bytes())])
    assert "isn't allowed" in res.text
    anonymous = make_site()
    anonymous.get("/r/dev/upload", status=401)
    assert anonymous.post("/r/dev/upload", status=401, upload_files=[
        ("content", wheel.name, wheel.read_bytes())]).headers["WWW-Authenticate"]
    # Alice may not upload secret-* to release (only the grants on dev name it).
    secret = dists.wheel("secret-x", "1.0")
    res = send(site, upload_action(site, "/r/release/upload"), secret, status=403)
    assert "may not upload 'secret-x'" in res.text
    assert files(site) == {} and files(site, "secret-x", "release") == {}


# --- a release's actions ----------------------------------------------------------------------


def test_yank_with_a_reason_then_unyank(demo):
    confirm = demo.get("/r/dev/project/demo/1.0/yank?reason=broken+on+Windows")
    assert confirm.html.select_one("h1").get_text() == "Yank demo 1.0"
    assert confirm.html.select_one("#confirm-reason")["value"] == "broken on Windows"
    assert confirm.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert all(v is False for v in files(demo).values())  # a GET changes nothing
    res = demo.post("/r/dev/project/demo/1.0/yank", {"csrf_token": csrf(demo),
                                                     "reason": "  broken on\nWindows "},
                    status=303)
    assert res.location == "http://localhost/r/dev/project/demo/1.0/"
    page = res.follow()
    assert flashes(page)[0] == ("success", "Yanked demo 1.0: broken on Windows")
    assert "This release is yanked: broken on Windows." in page.text
    assert "Yanked: broken on Windows" in page.html.select_one(".history").get_text()
    assert set(files(demo).values()) == {"broken on Windows"}
    # The page now offers to unyank, not to yank.
    manage = page.html.select_one("#manage")
    assert manage.select_one("form[action='/r/dev/project/demo/1.0/unyank']")
    assert not manage.select_one("#yank-reason")
    confirm = demo.get("/r/dev/project/demo/1.0/unyank")
    assert "it was yanked because: broken on Windows" in confirm.text
    page = demo.post("/r/dev/project/demo/1.0/unyank", {"csrf_token": csrf(demo)},
                     status=303).follow()
    assert flashes(page)[0] == ("success", "demo 1.0 is no longer yanked.")
    assert set(files(demo).values()) == {False}


def test_yank_reason_mistakes(demo):
    for reason, message in (("x" * 1001, "The reason is too long: at most 1000"),
                            ("bad\x00byte", "contains a NUL")):
        res = demo.post("/r/dev/project/demo/1.0/yank", {"csrf_token": csrf(demo),
                                                         "reason": reason}, status=400)
        assert message in res.html.select_one(".form-alert").get_text()
        assert res.html.select_one("#confirm-reason")  # the form again
    assert set(files(demo).values()) == {False}


def test_delete_a_file_then_the_release(demo, dists):
    send(demo, upload_action(demo), dists.wheel("demo", "2.0"))
    wheel, sdist = sorted(files(demo))[:2]
    assert sdist.endswith(".tar.gz")
    url = f"/r/dev/project/demo/files/{sdist}/delete"
    confirm = demo.get(url)
    assert f"Delete {sdist} from dev?" in confirm.text
    res = demo.post(url, {"csrf_token": csrf(demo)}, status=303)
    assert res.location == "http://localhost/r/dev/project/demo/1.0/"  # 1.0 has a file left
    assert flashes(res.follow())[0] == ("success", f"Deleted {sdist}.")
    assert sdist not in files(demo)
    demo.get(url, status=404)  # gone

    confirm = demo.get("/r/dev/project/demo/1.0/delete")
    assert "Delete demo 1.0 and its 1 file from dev?" in confirm.text
    res = demo.post("/r/dev/project/demo/1.0/delete", {"csrf_token": csrf(demo)}, status=303)
    assert res.location == "http://localhost/r/dev/project/demo/"  # 2.0 is left
    assert flashes(res.follow())[0] == ("success", "Deleted demo 1.0 (1 file).")
    assert sorted(files(demo)) == ["demo-2.0-py3-none-any.whl"]
    res = demo.post("/r/dev/project/demo/2.0/delete", {"csrf_token": csrf(demo)}, status=303)
    assert res.location == "http://localhost/r/dev/"  # nothing left of the project
    assert files(demo) == {}
    demo.get("/r/dev/project/demo/2.0/delete", status=404)


def test_promote_copy_and_move(demo, dists):
    confirm = demo.get("/r/dev/project/demo/1.0/promote?to=release")
    assert [(o["value"], o.has_attr("selected")) for o in
            confirm.html.select("#confirm-to option")] == [("release", True)]
    assert confirm.html.select_one("label[for=confirm-move]")
    res = demo.post("/r/dev/project/demo/1.0/promote", {"csrf_token": csrf(demo),
                                                        "to": "release"}, status=303)
    assert res.location == "http://localhost/r/dev/project/demo/1.0/"
    assert flashes(res.follow())[0] == ("success", "Promoted demo 1.0 to release: 2 files "
                                                   "copied.")
    assert files(demo, repo="release") == files(demo)
    # Again: nothing to copy, said so.
    res = demo.post("/r/dev/project/demo/1.0/promote", {"csrf_token": csrf(demo),
                                                        "to": "release"}, status=303)
    assert "it was there already" in flashes(res.follow())[0][1]

    send(demo, upload_action(demo), dists.wheel("demo", "2.0"))
    res = demo.post("/r/dev/project/demo/2.0/promote", {"csrf_token": csrf(demo),
                                                        "to": "release", "move": "yes"},
                    status=303)
    assert res.location == "http://localhost/r/release/project/demo/2.0/"
    assert flashes(res.follow())[0] == ("success", "Moved demo 2.0 to release: 1 file "
                                                   "copied.")
    assert "demo-2.0-py3-none-any.whl" in files(demo, repo="release")
    assert "demo-2.0-py3-none-any.whl" not in files(demo)


def test_promote_mistakes(demo, dists):
    for to in ("", "nowhere", "dev", "all"):  # not a hosted repository other than the holder
        res = demo.post("/r/dev/project/demo/1.0/promote", {"csrf_token": csrf(demo),
                                                            "to": to}, status=400)
        assert "Choose a repository you may upload to." in res.text
    # Other bytes under the name in the target: 409, nothing promoted.
    other = make_wheel(dists.dir / "other", "demo", "1.0", requires_dist=["requests"])
    send(demo, upload_action(demo, "/r/release/upload"), other)
    res = demo.post("/r/dev/project/demo/1.0/promote", {"csrf_token": csrf(demo),
                                                        "to": "release"}, status=409)
    assert "nothing was promoted" in res.html.select_one(".form-alert").get_text()
    assert list(files(demo, repo="release")) == [other.name]
    # From release, dev is the target.
    page = demo.get("/r/release/project/demo/1.0/promote")
    assert [o["value"] for o in page.html.select("#confirm-to option")] == ["dev"]


ACTIONS = [
    ("/r/dev/project/demo/1.0/yank", {"reason": "x"}),
    ("/r/dev/project/demo/1.0/unyank", {}),
    ("/r/dev/project/demo/1.0/delete", {}),
    ("/r/dev/project/demo/1.0/promote", {"to": "release"}),
    ("/r/dev/project/demo/files/demo-1.0-py3-none-any.whl/delete", {}),
]


@pytest.mark.parametrize("url,form", ACTIONS)
def test_every_action_needs_this_sessions_csrf_token(demo, make_site, url, form):
    before = files(demo), files(demo, repo="release")
    other = make_site()
    login(other)
    for token, message in ((None, "CSRF token missing"), (FORGED, "CSRF token invalid"),
                           (csrf(other), "CSRF token invalid")):
        data = dict(form, **({"csrf_token": token} if token else {}))
        res = demo.post(url, data, status=403, headers=BROWSER)
        assert message in res.html.select_one(".error-page__message").get_text()
    assert (files(demo), files(demo, repo="release")) == before


@pytest.mark.parametrize("url,form", ACTIONS)
def test_every_action_is_the_services_decision(demo, bob, make_site, url, form):
    before = files(demo), files(demo, repo="release")
    # A reader: a 403, for the confirmation page and for a forged POST.
    assert "The user 'bob' may not delete 'demo'" in bob.get(url, status=403).text
    res = bob.post(url, dict(form, csrf_token=csrf(bob)), status=403)
    assert "The user 'bob' may not delete 'demo'" in res.text
    # Nobody signed in: asked to sign in (and no CSRF token to have).
    anonymous = make_site()
    anonymous.get(url, status=401)
    anonymous.post(url, form, status=401)
    assert (files(demo), files(demo, repo="release")) == before


def test_a_project_the_viewer_cant_read_is_missing(site, bob, dists):
    send(site, upload_action(site), dists.wheel("secret-x", "1.0"))
    secret = "/r/dev/project/secret-x/1.0/"
    assert site.get(secret).status_int == 200

    def message(res) -> str:
        return res.html.select_one(".error-page__message").get_text()

    for action in ("yank", "delete", "promote"):
        # What alice, who may write, hears of a project that does not exist.
        nothing = site.get(f"/r/dev/project/nothing-here/1.0/{action}", status=404,
                           headers=BROWSER)
        hidden = bob.get(secret + action, status=404, headers=BROWSER)
        assert message(hidden).replace("secret-x", "X") == \
            message(nothing).replace("nothing-here", "X")
        bob.post(secret + action, {"csrf_token": csrf(bob), "to": "release"}, status=404)
    bob.post("/r/dev/project/secret-x/files/secret_x-1.0-py3-none-any.whl/delete",
             {"csrf_token": csrf(bob)}, status=404)
    assert list(files(site, "secret-x")) == ["secret_x-1.0-py3-none-any.whl"]


def test_readers_and_anonymous_visitors_see_no_forms(demo, bob, make_site):
    for app in (bob, make_site()):
        page = app.get("/r/dev/project/demo/")
        assert not page.html.select_one("#manage")
        assert "upload-form" not in page.text and "/yank" not in page.text
        assert "/upload" not in app.get("/r/dev/").text


def test_a_writer_of_one_repository_sees_only_its_promotion_targets(site, dists):
    # Alice may only read secret-* in release: it is no target.
    send(site, upload_action(site), dists.wheel("secret-x", "1.0"))
    manage = site.get("/r/dev/project/secret-x/").html.select_one("#manage")
    assert not manage.select_one("#promote-to")
    assert manage.select_one("#yank-reason")
    # The confirmation page says so, with nothing to press but Cancel.
    page = site.get("/r/dev/project/secret-x/1.0/promote")
    assert "There is no other repository you may upload secret-x to." in page.text
    assert [b.get_text() for b in page.html.select("main button")] == []
    res = site.post("/r/dev/project/secret-x/1.0/promote", {"csrf_token": csrf(site),
                                                            "to": "release"}, status=400)
    assert "Choose a repository you may upload to." in res.text
    assert files(site, "secret-x", "release") == {}


def test_a_forged_flash_cookie_says_nothing(site):
    site.set_cookie("pypirepo_flash", "eyJrIjoic3VjY2VzcyJ9.forged")
    assert flashes(site.get("/r/dev/")) == []


def test_odd_addresses_are_missing_not_errors(demo):
    for url in ("/r/dev/project/demo/not%20a%20version/yank",
                "/r/dev/project/demo/%00/delete",
                "/r/dev/project/demo/9.9/promote",
                "/r/dev/project/-bad-/1.0/yank",
                "/r/dev/project/demo/files/%00.whl/delete",
                "/r/dev/project/demo/files/readme.txt/delete",
                "/r/dev/project/demo/files/demo-9.9.tar.gz/delete",
                "/r/nowhere/project/demo/1.0/yank"):
        demo.get(url, status=404)
        demo.post(url, {"csrf_token": csrf(demo)}, status=404)
    assert len(files(demo)) == 2
