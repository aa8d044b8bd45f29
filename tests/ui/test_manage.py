"""A writer's forms in a real browser, against a real pserve: sign in, upload a wheel
through the form, yank it with a reason, unyank it, promote it to a second repository and
delete it; on a phone and a desktop, light and dark, each page checked with axe-core and
saved as a screenshot (`look`); the same without JavaScript; and a reader who sees none of
the forms."""

from __future__ import annotations

import pytest
from browser import LOOKS, VIEWPORTS, expect, look, screenshot, sign_in
from distfactory import make_wheel
from servers import Server

pytestmark = pytest.mark.e2e

ALICE_HASH = ("$pbkdf2-sha256$29000$mBOC8D6HsDaGUApB6J3Tug$"
              "kVuo4xgW9oKkBaZlqq.ZBKENn5oq8PiMmksNI7mbhpw")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """dev and release (hosted) in the group all: alice may write, bob only read."""
    from pypirepo.passwords import PASSWORDS

    root = tmp_path_factory.mktemp("ui-manage")
    server = Server(root / "server", app={
        "user.alice": ALICE_HASH, "user.bob": PASSWORDS.hash("bobpw"),
        "repositories": "dev release all",
        "repository.dev.kind": "hosted", "repository.release.kind": "hosted",
        "repository.all.kind": "group", "repository.all.members": "release dev",
        "pypirepo.default_repository": "all",
        "pypi.default_read": "everyone", "pypi.default_write": "alice"})
    server.directory.mkdir()
    server.start()
    server.dists = root / "dists"
    yield server
    server.stop()


def flash(page):
    return page.locator(".flashes .flash")


def publish_yank_promote_delete(site, page, project: str, check) -> None:
    """The whole round through the forms; check(page, step) looks at each page."""
    wheel = make_wheel(site.dists, project, "1.0")
    page.goto(f"{site.url}/login?next=/r/dev/upload")
    sign_in(page, "alice", "alicepw")
    page.wait_for_url(f"{site.url}/r/dev/upload")
    expect(page.locator("h1")).to_have_text("Upload to dev")
    check(page, "upload")

    page.get_by_label("Distribution file").set_input_files(str(wheel))
    page.get_by_role("button", name="Upload", exact=True).click()
    release = f"{site.url}/r/dev/project/{project}/1.0/"
    page.wait_for_url(release)
    expect(flash(page)).to_have_text(f"Uploaded {wheel.name}.")
    expect(page.locator(".table")).to_contain_text(wheel.name)
    check(page, "uploaded")

    # Yank, with a reason: typed on the project page, confirmed on the next.
    page.get_by_label("Reason to yank 1.0").fill("broken build, use 1.1")
    page.get_by_role("button", name="Yank 1.0…").click()
    expect(page.locator("h1")).to_have_text(f"Yank {project} 1.0")
    expect(page.get_by_label("Reason")).to_have_value("broken build, use 1.1")
    check(page, "yank-confirm")
    page.get_by_role("button", name="Yank 1.0", exact=True).click()
    page.wait_for_url(release)
    expect(flash(page)).to_have_text(f"Yanked {project} 1.0: broken build, use 1.1")
    expect(page.locator(".notice").first).to_contain_text(
        "This release is yanked: broken build, use 1.1.")
    expect(page.locator(".history__reason")).to_have_text("Yanked: broken build, use 1.1")
    check(page, "yanked")

    page.get_by_role("button", name="Unyank 1.0…").click()
    page.get_by_role("button", name="Unyank 1.0", exact=True).click()
    page.wait_for_url(release)
    expect(flash(page)).to_have_text(f"{project} 1.0 is no longer yanked.")
    expect(page.locator(".history__reason")).to_have_count(0)

    # Promote to release.
    page.get_by_label("Promote to the repository").select_option("release")
    page.get_by_role("button", name="Promote 1.0…").click()
    expect(page.locator("h1")).to_have_text(f"Promote {project} 1.0")
    expect(page.get_by_label("To the repository")).to_have_value("release")
    check(page, "promote-confirm")
    page.get_by_role("button", name="Promote 1.0", exact=True).click()
    page.wait_for_url(release)
    expect(flash(page)).to_have_text(f"Promoted {project} 1.0 to release: 1 file copied.")

    # Delete it from dev: the promoted copy stays in release.
    page.get_by_role("link", name="Delete 1.0…").click()
    expect(page.locator(".confirm__question")).to_contain_text(
        f"Delete {project} 1.0 and its 1 file from dev?")
    check(page, "delete-confirm")
    page.get_by_role("button", name="Delete 1.0", exact=True).click()
    page.wait_for_url(f"{site.url}/r/dev/")
    expect(flash(page)).to_have_text(f"Deleted {project} 1.0 (1 file).")
    check(page, "deleted")
    assert page.goto(release).status == 404
    page.goto(f"{site.url}/r/release/project/{project}/")
    expect(page.locator(".sidebar")).to_contain_text("promoted from dev by alice")


@pytest.mark.parametrize("viewport,scheme", LOOKS)
def test_upload_yank_unyank_promote_delete(site, new_page, viewport, scheme):
    page = new_page(viewport, scheme)
    publish_yank_promote_delete(
        site, page, f"flow-{viewport}-{scheme}",
        lambda page, step: look(page, f"manage-{step}-{viewport}-{scheme}"))


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_the_same_without_javascript(site, new_page, viewport):
    page = new_page(viewport, javascript=False)
    publish_yank_promote_delete(
        site, page, f"nojs-{viewport}",
        lambda page, step: screenshot(page, f"manage-{step}-nojs-{viewport}"))


def test_a_reader_sees_none_of_the_forms(site, new_page):
    site.upload(make_wheel(site.dists, "shown", "1.0"), "shown", "1.0")
    page = new_page()
    page.goto(f"{site.url}/login?next=/r/release/project/shown/")
    sign_in(page, "bob", "bobpw")
    page.wait_for_url(f"{site.url}/r/release/project/shown/")
    expect(page.locator(".project-head__title")).to_contain_text("shown")
    expect(page.locator("#manage")).to_have_count(0)
    expect(page.locator("form.upload-form, input[type=file]")).to_have_count(0)
    for name in ("Yank", "Promote", "Delete", "Upload"):
        expect(page.get_by_role("button", name=name)).to_have_count(0)
        expect(page.get_by_role("link", name=name)).to_have_count(0)
    look(page, "manage-reader")
    assert page.goto(f"{site.url}/r/release/upload").status == 403
    assert page.goto(f"{site.url}/r/release/project/shown/1.0/delete").status == 403
    expect(page.locator("h1")).to_have_text("Not allowed")


def test_yank_with_the_keyboard_alone(site, new_page):
    site.upload(make_wheel(site.dists, "keys", "1.0"), "keys", "1.0")  # into release
    page = new_page()
    page.goto(f"{site.url}/login?next=/r/release/project/keys/")
    sign_in(page, "alice", "alicepw")
    page.wait_for_url(f"{site.url}/r/release/project/keys/")
    page.get_by_label("Reason to yank 1.0").focus()
    page.keyboard.type("superseded")
    page.keyboard.press("Enter")  # sends the field's form: the confirmation page
    expect(page.locator("h1")).to_have_text("Yank keys 1.0")
    page.get_by_label("Reason").focus()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Yank 1.0", exact=True)).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_url(f"{site.url}/r/release/project/keys/1.0/")
    expect(flash(page)).to_have_text("Yanked keys 1.0: superseded")
