"""The components of templates/ui/macros.html in a real browser, before pages use them.

A gallery page (tests/ui/templates/gallery.html) is rendered here with the product's
templates and answered by the browser's request routing under the real server's origin,
with the headers the server gives its pages: its CSS and JavaScript come from the
running pserve, under the same Content-Security-Policy.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from browser import LOOKS, VIEWPORTS, assert_accessible, expect, screenshot
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from servers import REPO

from pypirepo.views.ui import SECURITY_HEADERS
from pypirepo.views.ui.assets import StaticAssets
from pypirepo.views.ui.paging import Pager

pytestmark = pytest.mark.e2e

HERE = Path(__file__).resolve().parent


def render(template: str, **data) -> str:
    env = Environment(
        loader=ChoiceLoader([FileSystemLoader(str(HERE / "templates")),
                             FileSystemLoader(str(REPO / "templates"))]),
        autoescape=select_autoescape(["html"]),
    )
    assets = StaticAssets.load(REPO / "pypirepo" / "static")
    context = {
        "site_name": "pypirepo", "home_url": "/", "search_url": "/search",
        "login_url": "/login", "user": None,
        "static_url": lambda name: assets.url("", name),
        "pager": Pager(5, 10, 200, "/gallery", (("q", "demo"),)),
    }
    return env.get_template(template).render(**{**context, **data})


@pytest.fixture
def gallery(server):
    """The real server's origin, with /gallery and /gallery/confirm answered by the test
    and the POSTs of the gallery's forms recorded."""
    server.start()
    posted = []

    def serve(route):
        request = route.request
        if request.method == "POST":
            posted.append((request.url, request.post_data))
            html = render("ui/confirm.html", title="Done", question="Done.", action="/",
                          button="OK", hidden=(), cancel_url="/")
        elif request.url.endswith("/gallery/confirm"):
            html = render("ui/confirm.html", title="Delete release",
                          question="Delete demo-pkg 1.0 and its 2 files?",
                          action="/gallery/delete", button="Delete release",
                          hidden=[("version", "1.0")], cancel_url="/gallery")
        else:
            html = render("gallery.html")
        route.fulfill(status=200, body=html, headers={
            "Content-Type": "text/html; charset=utf-8", **dict(SECURITY_HEADERS)})

    def open_gallery(page):
        page.route("**/gallery**", serve)
        page.goto(server.url + "/gallery")
        return page

    open_gallery.posted = posted
    open_gallery.url = server.url
    return open_gallery


def test_the_gallery_is_served_under_the_servers_own_headers(server):
    server.start()
    home = requests.get(server.url + "/", timeout=10)
    for name, value in SECURITY_HEADERS:
        assert home.headers[name] == value


@pytest.mark.parametrize("viewport,scheme", LOOKS)
def test_components_look_right(gallery, new_page, viewport, scheme):
    page = gallery(new_page(viewport, scheme))
    assert page.locator("link[rel=stylesheet]").evaluate("l => l.sheet !== null")
    assert page.locator(".copy-button").count() == 2  # app.js ran under the CSP
    assert_accessible(page)
    screenshot(page, f"components-{viewport}-{scheme}")
    assert not page.log.problems(), page.log.problems()
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORTS[viewport]["width"]
    if viewport == "phone":
        # Table rows become cards, each cell named by its column.
        label = page.locator("td[data-label=Size]").first.evaluate(
            "td => getComputedStyle(td, '::before').content")
        assert label == '"Size"'


def test_field_error_and_help_are_tied_to_the_input(gallery, new_page):
    page = gallery(new_page())
    expires = page.get_by_label("Expires")
    assert expires.get_attribute("aria-invalid") == "true"
    assert page.get_by_label("Token name").get_attribute("aria-describedby") == "field-name-help"
    expect(expires).to_have_accessible_description("The date must be in the future.")


def test_pager_links_keep_the_query(gallery, new_page):
    page = gallery(new_page())
    pager = page.get_by_role("navigation", name="Pages")
    assert pager.get_by_role("link", name="Page 5").get_attribute("aria-current") == "page"
    assert pager.get_by_role("link", name="Next").get_attribute("href") == \
        "/gallery?q=demo&page=6"
    assert pager.get_by_role("link", name="Page 1").get_attribute("href") == "/gallery?q=demo"
    texts = [t.strip() for t in pager.locator("li").all_inner_texts()]
    assert texts == ["← Previous", "1", "…", "3", "4", "5", "6", "7", "…", "20", "Next →"]


def test_confirmation_opens_in_a_dialog(gallery, new_page):
    page = gallery(new_page())
    dialog = page.locator("dialog#delete-release")
    assert not dialog.is_visible()
    page.get_by_role("link", name="Delete release").click()
    expect(dialog).to_be_visible()
    cancel = dialog.get_by_role("button", name="Cancel")
    expect(cancel).to_be_focused()  # Enter does not delete
    assert_accessible(page)
    screenshot(page, "components-dialog")
    cancel.click()
    expect(dialog).to_be_hidden()
    assert page.url == gallery.url + "/gallery" and not gallery.posted

    page.get_by_role("link", name="Delete release").click()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    page.get_by_role("link", name="Delete release").click()
    dialog.get_by_role("button", name="Delete release").click()
    page.wait_for_url(gallery.url + "/gallery/delete")
    assert gallery.posted == [(gallery.url + "/gallery/delete", "version=1.0")]


def test_confirmation_without_javascript_is_a_page(gallery, new_page):
    page = gallery(new_page(javascript=False))
    assert not page.locator("dialog#delete-release").is_visible()
    page.get_by_role("link", name="Delete release").click()
    page.wait_for_url(gallery.url + "/gallery/confirm")
    assert page.locator("h1").inner_text() == "Delete release"
    screenshot(page, "components-confirm-page")
    page.get_by_role("button", name="Delete release").click()
    page.wait_for_url(gallery.url + "/gallery/delete")
    assert gallery.posted == [(gallery.url + "/gallery/delete", "version=1.0")]


def test_confirmation_page_is_accessible(gallery, new_page):
    page = gallery(new_page("phone", "dark"))
    page.goto(gallery.url + "/gallery/confirm")
    cancel = page.get_by_role("link", name="Cancel")
    assert cancel.get_attribute("href") == "/gallery"
    assert_accessible(page)


def test_assert_accessible_fails_on_a_serious_violation(new_page):
    # The check itself can fail: a button without a name is a critical violation.
    page = new_page()
    page.set_content('<html lang="en"><title>t</title><main><button></button></main></html>')
    with pytest.raises(AssertionError, match=r"\[critical\] button-name"):
        assert_accessible(page)
