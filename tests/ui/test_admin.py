"""The administration pages in headless Chromium against a real pserve (auth.backend =
sql): an admin makes a user and a group and grants the group read on a private project
pattern; the new member, signed in in a browser of their own, sees the project appear.
Every page is looked at (axe-core, screenshot, no CSP report, no overflow) on a phone and
a desktop, light and dark."""

from __future__ import annotations

import pytest
from browser import LOOKS, expect, look, sign_in
from distfactory import make_wheel
from servers import Server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """team-* is the admin's alone (an ini pattern grant); everyone else signed in reads
    the rest."""
    root = tmp_path_factory.mktemp("ui-admin")
    server = Server(root / "server", app={
        "auth.backend": "sql", "pypi.default_read": "authenticated",
        "grants": "local team-* read admin"})
    server.directory.mkdir()
    server.start()
    dists = root / "dists"
    server.upload(make_wheel(dists, "team-secret", "1.0"), "team-secret", "1.0")
    server.upload(make_wheel(dists, "open-tool", "1.0"), "open-tool", "1.0")
    yield server
    server.stop()


@pytest.mark.parametrize("viewport,scheme", LOOKS)
def test_admin_grants_a_group_and_the_member_sees_the_project(site, new_page, viewport,
                                                              scheme):
    carol, team = f"carol-{viewport}-{scheme}", f"team-{viewport}-{scheme}"
    admin = new_page(viewport, scheme)
    admin.goto(site.url + "/login")
    sign_in(admin, "admin", site.password)
    admin.wait_for_url(site.url + "/")
    admin.get_by_role("link", name="Admin", exact=True).click()
    expect(admin.locator("h1")).to_have_text("Administration")
    expect(admin.locator("#repository-local [data-figure=projects]")).to_have_text("2")
    look(admin, f"admin-repositories-{viewport}-{scheme}")

    admin.get_by_role("navigation", name="Administration").get_by_role(
        "link", name="Users").click()
    admin.get_by_label("User name (required)").fill(carol)
    admin.get_by_label("Password", exact=True).fill("carol-pw-1")
    admin.get_by_label("Password, again").fill("carol-pw-1")
    admin.get_by_role("button", name="Add the user").click()
    expect(admin.get_by_role("status")).to_have_text(f"User {carol} was added.")
    look(admin, f"admin-users-{viewport}-{scheme}")

    admin.get_by_role("link", name="Groups", exact=True).click()
    admin.get_by_label("Group name (required)").fill(team)
    admin.get_by_role("button", name="Make the group").click()
    expect(admin.locator("h1")).to_have_text(f"Group {team}")
    admin.get_by_label("Add a member").select_option(carol)
    admin.get_by_role("button", name="Add to the group").click()
    expect(admin.get_by_role("status")).to_have_text(f"{carol} was added to the group.")
    look(admin, f"admin-group-{viewport}-{scheme}")

    # Before the grant the member signs in and does not see the project.
    member = new_page(viewport, scheme)
    member.goto(site.url + "/login?next=/r/local/")
    sign_in(member, carol, "carol-pw-1")
    member.wait_for_url(site.url + "/r/local/")
    expect(member.locator(".result-list")).to_contain_text("open-tool")
    expect(member.locator(".result-list")).not_to_contain_text("team-secret")
    expect(member.get_by_role("link", name="Admin", exact=True)).to_have_count(0)

    admin.get_by_role("link", name="Grants", exact=True).click()
    form = admin.locator("form", has=admin.get_by_role("button", name="Add the grant"))
    form.get_by_label("Repository").select_option("local")
    form.get_by_label("Projects (required)").fill("team-*")
    form.get_by_label("Who").select_option(f"group:{team}")
    form.get_by_label("Permission").select_option("read")
    # The keyboard sends the form as well as a click would.
    form.get_by_role("button", name="Add the grant").focus()
    admin.keyboard.press("Enter")
    expect(admin.get_by_role("status")).to_contain_text(
        f"read for group:{team} on local, projects team-*")
    look(admin, f"admin-grants-{viewport}-{scheme}")

    member.reload()
    expect(member.locator(".result-list")).to_contain_text("team-secret")
    member.get_by_role("link", name="team-secret").click()
    expect(member.locator("h1")).to_contain_text("team-secret")
    member.go_back()

    # The grant's removal asks first (a dialog with JavaScript), then the project is gone.
    row = admin.locator("tr", has_text=f"group:{team}")
    row.get_by_role("link", name="Remove").click()
    dialog = admin.get_by_role("dialog")
    expect(dialog).to_contain_text(f"Remove the grant: read for group:{team}")
    look(admin, f"admin-grant-remove-{viewport}-{scheme}")
    dialog.get_by_role("button", name="Remove").click()
    expect(admin.get_by_role("status")).to_contain_text("The grant was removed")
    member.reload()
    expect(member.locator(".result-list")).not_to_contain_text("team-secret")

