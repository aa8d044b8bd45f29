"""Signing in and out, and the account page, in headless Chromium against a real pserve:
on a phone and a desktop, light and dark, checked with axe-core and saved as screenshots;
and all of it without JavaScript too."""

from __future__ import annotations

import re

import pytest
from browser import LOOKS, VIEWPORTS, expect, look, screenshot, sign_in
from servers import Server

pytestmark = pytest.mark.e2e

ALICE_HASH = ("$pbkdf2-sha256$29000$mBOC8D6HsDaGUApB6J3Tug$"
              "kVuo4xgW9oKkBaZlqq.ZBKENn5oq8PiMmksNI7mbhpw")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A private index: alice may read once signed in."""
    root = tmp_path_factory.mktemp("ui-sessions")
    server = Server(root / "server", app={"user.alice": ALICE_HASH,
                                          "pypi.default_read": "authenticated"})
    server.directory.mkdir()
    server.start()
    yield server
    server.stop()


def fill_password_form(page, current, new):
    # Each label says "(required)" after its name.
    page.get_by_label("Current password (required)", exact=True).fill(current)
    page.get_by_label("New password (required)", exact=True).fill(new)
    page.get_by_label("New password, again (required)", exact=True).fill(new)


@pytest.mark.parametrize("viewport,scheme", LOOKS)
def test_sign_in_look_around_and_sign_out(site, new_page, viewport, scheme):
    page = new_page(viewport, scheme)
    page.goto(site.url + "/")
    page.locator(".user-slot").get_by_role("link", name="Sign in").click()
    expect(page.locator("h1")).to_have_text("Sign in")
    look(page, f"login-{viewport}-{scheme}")

    sign_in(page, "alice", "not-it")
    expect(page.get_by_role("alert")).to_have_text("Invalid username or password.")
    assert page.get_by_label("User name").input_value() == "alice"
    look(page, f"login-failed-{viewport}-{scheme}")

    sign_in(page, "alice", "alicepw")
    page.wait_for_url(site.url + "/")
    slot = page.locator(".user-slot")
    expect(slot).to_contain_text("Signed in as alice")
    cookie, = [c for c in page.context.cookies() if c["name"] == "pypirepo_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and not cookie["secure"]
    assert page.evaluate("document.cookie") == ""  # no script can read it

    slot.get_by_role("link", name="alice").click()
    expect(page.locator("h1")).to_have_text("Your account")
    look(page, f"account-{viewport}-{scheme}")
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORTS[viewport]["width"]

    page.locator(".user-slot").get_by_role("button", name="Sign out").click()
    page.wait_for_url(site.url + "/")
    expect(page.locator(".user-slot")).to_contain_text("Sign in")
    assert not [c for c in page.context.cookies() if c["name"] == "pypirepo_session"]
    assert page.goto(site.url + "/search?q=x").status == 401  # private again


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_everything_works_without_javascript(site, new_page, viewport):
    page = new_page(viewport, javascript=False)
    page.goto(site.url + "/login?next=/account")
    sign_in(page, "alice", "alicepw")
    page.wait_for_url(site.url + "/account")
    expect(page.locator(".facts")).to_contain_text("this browser's sign-in")
    screenshot(page, f"account-nojs-{viewport}")

    fill_password_form(page, "alicepw", "a-better-password")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator(".card").first).to_contain_text("has not changed yet")
    line = page.locator(".snippet code").first.inner_text()
    assert re.fullmatch(r"user\.alice = \$pbkdf2-sha256\$\S+", line), line
    screenshot(page, f"account-password-nojs-{viewport}")

    page.goto(site.url + "/logout")  # typed in: a page with the button
    page.locator("main").get_by_role("button", name="Sign out").click()
    page.wait_for_url(site.url + "/")
    expect(page.locator(".user-slot")).to_contain_text("Sign in")


def test_password_change_mistakes_are_shown_by_their_fields(site, new_page):
    page = new_page()
    page.goto(site.url + "/login?next=/account")
    sign_in(page, "alice", "alicepw")
    page.wait_for_url(site.url + "/account")
    fill_password_form(page, "wrong-one", "a-better-password")
    page.get_by_role("button", name="Change password").click()
    field = page.get_by_label("Current password (required)", exact=True)
    expect(field).to_have_attribute("aria-invalid", "true")
    assert "That is not your current password." in page.locator(
        "#field-current_password-error").inner_text()
    look(page, "account-password-error")
