"""The whole round a team goes through in the browser, in one go against one real pserve
(auth.backend = sql, a private index): alice signs in, searches, opens a project, copies the
pip command, uploads a wheel through the form, yanks it, makes a token and installs with it
through pip; an admin grants a group read on a private project and its member sees it
appear; alice promotes a release and signs out. On a phone and a desktop; every main page
is looked at (axe-core, screenshot, no CSP report, no overflow)."""

from __future__ import annotations

import pytest
import requests
from browser import VIEWPORTS, expect, look, sign_in
from distfactory import make_wheel, upload_fields
from e2e.clients import Sandbox, installed, tool, venv
from servers import Server

pytestmark = pytest.mark.e2e

ALICE_PW, BOB_PW = "alice-journey-pw", "bob-journey-pw"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """dev and release (hosted) in the group all, the default; signed-in users read,
    alice writes; ops-* is the admin's alone until a grant says otherwise; bob is in team."""
    root = tmp_path_factory.mktemp("ui-journey")
    server = Server(root / "server", app={
        "auth.backend": "sql",
        "repositories": "dev release all",
        "repository.dev.kind": "hosted", "repository.release.kind": "hosted",
        "repository.all.kind": "group", "repository.all.members": "dev release",
        "pypirepo.default_repository": "all",
        "pypi.default_read": "authenticated", "pypi.default_write": "alice",
        "grants": "dev ops-* read admin\nall ops-* read admin"})
    server.directory.mkdir()
    server.start()
    for name, password in (("alice", ALICE_PW), ("bob", BOB_PW)):
        res = requests.post(f"{server.url}/api/admin/users", auth=server.auth, timeout=30,
                            json={"name": name, "password": password})
        assert res.status_code == 201, res.text
    res = requests.put(f"{server.url}/api/admin/groups/team", auth=server.auth, timeout=30,
                       json={"members": ["bob"]})
    assert res.status_code in (200, 201), res.text
    server.dists = root / "dists"
    yield server
    server.stop()


def upload_as_alice(site, wheel, name, version):
    res = requests.post(f"{site.url}/r/dev/legacy/", auth=("alice", ALICE_PW), timeout=30,
                        data=upload_fields(wheel, name, version),
                        files={"content": (wheel.name, wheel.read_bytes())})
    assert res.status_code == 200, res.text


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_a_teams_round_in_the_browser(site, new_page, viewport, tmp_path):
    project, secret = f"journey-{viewport}", f"ops-{viewport}"
    upload_as_alice(site, make_wheel(site.dists, project, "1.0"), project, "1.0")
    site.upload(make_wheel(site.dists, secret, "1.0"), secret, "1.0")  # the admin's, in dev

    # alice signs in from the home page.
    alice = new_page(viewport, permissions=["clipboard-read", "clipboard-write"])
    alice.goto(site.url + "/")
    alice.locator(".user-slot").get_by_role("link", name="Sign in").click()
    sign_in(alice, "alice", ALICE_PW)
    alice.wait_for_url(site.url + "/")
    expect(alice.locator(".user-slot")).to_contain_text("Signed in as alice")
    look(alice, f"journey-home-{viewport}")

    # Search, open the project, copy the pip command.
    search = alice.get_by_role("searchbox").first
    search.fill(project)
    search.press("Enter")
    alice.wait_for_url(f"**/search?q={project}*")
    look(alice, f"journey-search-{viewport}")
    alice.get_by_role("link", name=project, exact=True).first.click()
    expect(alice.locator("h1")).to_contain_text(project)
    copy = alice.get_by_role("button", name="Copy pip", exact=True)
    copy.click()
    expect(copy).to_have_text("Copied")
    assert alice.evaluate("navigator.clipboard.readText()") == \
        f"pip install --index-url {site.url}/simple/ {project}"
    look(alice, f"journey-project-{viewport}")

    # Upload 1.1 through the form, then yank it with a reason.
    wheel = make_wheel(site.dists, project, "1.1")
    alice.goto(f"{site.url}/r/dev/upload")
    alice.get_by_label("Distribution file").set_input_files(str(wheel))
    alice.get_by_role("button", name="Upload", exact=True).click()
    alice.wait_for_url(f"{site.url}/r/dev/project/{project}/1.1/")
    expect(alice.locator(".flashes .flash")).to_have_text(f"Uploaded {wheel.name}.")
    alice.get_by_label("Reason to yank 1.1").fill("wrong build")
    alice.get_by_role("button", name="Yank 1.1…").click()
    alice.get_by_role("button", name="Yank 1.1", exact=True).click()
    expect(alice.locator(".history__reason")).to_have_text("Yanked: wrong build")
    look(alice, f"journey-yanked-{viewport}")

    # A read token for the project, shown once; pip installs with it (the yanked 1.1 is
    # passed over).
    alice.locator(".user-slot").get_by_role("link", name="alice").click()
    alice.get_by_label("Note", exact=True).fill(f"pip on {viewport}")
    alice.get_by_label("Projects", exact=True).fill(project)
    alice.get_by_role("button", name="Make the token").click()
    shown = alice.locator(".new-token .snippet code").first
    token = shown.inner_text().strip()
    assert token and " " not in token
    look(alice, f"journey-token-{viewport}")
    sandbox = Sandbox(tmp_path / "sandbox")
    python = venv(sandbox, tmp_path / "venv")
    host = site.url.removeprefix("http://")
    out = sandbox.run([tool("pip"), "--python", python, "install", "--isolated",
                       "--index-url", f"http://__token__:{token}@{host}/simple/", project],
                      timeout=120).stdout
    assert token not in out
    assert installed(sandbox, python) == {project: "1.0"}
    alice.goto(site.url + "/account")
    expect(alice.locator(".new-token")).to_have_count(0)  # shown only that once
    expect(alice.locator("#tokens tbody")).to_contain_text(f"pip on {viewport}")

    # The admin lets team read ops-*; bob, signed in elsewhere, sees it appear.
    bob = new_page(viewport)
    bob.goto(site.url + "/login?next=/r/dev/")
    sign_in(bob, "bob", BOB_PW)
    bob.wait_for_url(site.url + "/r/dev/")
    expect(bob.locator(".result-list")).to_contain_text(project)
    expect(bob.locator(".result-list")).not_to_contain_text(secret)
    admin = new_page(viewport)
    admin.goto(site.url + "/login?next=/admin/grants")
    sign_in(admin, "admin", site.password)
    admin.wait_for_url(site.url + "/admin/grants")
    form = admin.locator("form", has=admin.get_by_role("button", name="Add the grant"))
    form.get_by_label("Repository").select_option("dev")
    form.get_by_label("Projects (required)").fill(secret)
    form.get_by_label("Who").select_option("group:team")
    form.get_by_label("Permission").select_option("read")
    form.get_by_role("button", name="Add the grant").click()
    expect(admin.get_by_role("status")).to_contain_text("read for group:team on dev")
    look(admin, f"journey-grant-{viewport}")
    bob.reload()
    expect(bob.locator(".result-list")).to_contain_text(secret)
    bob.get_by_role("link", name=secret).click()
    expect(bob.locator("h1")).to_contain_text(secret)

    # alice promotes 1.0 to release, then signs out: the index is closed to her again.
    alice.goto(f"{site.url}/r/dev/project/{project}/1.0/")
    alice.get_by_label("Promote to the repository").select_option("release")
    alice.get_by_role("button", name="Promote 1.0…").click()
    alice.get_by_role("button", name="Promote 1.0", exact=True).click()
    expect(alice.locator(".flashes .flash")).to_have_text(
        f"Promoted {project} 1.0 to release: 1 file copied.")
    alice.goto(f"{site.url}/r/release/project/{project}/")
    expect(alice.locator(".sidebar")).to_contain_text("promoted from dev by alice")
    look(alice, f"journey-promoted-{viewport}")
    alice.locator(".user-slot").get_by_role("button", name="Sign out").click()
    alice.wait_for_url(site.url + "/")
    expect(alice.locator(".user-slot")).to_contain_text("Sign in")
    assert alice.goto(f"{site.url}/r/release/project/{project}/").status == 401
