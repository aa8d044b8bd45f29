"""The web UI's pages in a real browser: a pserve process and headless Chromium.

Each page is loaded on a phone and a desktop viewport, light and dark, checked with
axe-core and saved as a screenshot (var/test-artifacts/ or $PYPIREPO_TEST_ARTIFACTS).
"""

from __future__ import annotations

import re
import sqlite3

import pytest
import requests
from browser import LOOKS, VIEWPORTS, expect, look, screenshot, sign_in
from distfactory import make_wheel
from servers import Server

pytestmark = pytest.mark.e2e

PROJECTS = ("demo-pkg", "demo-tools", "other-thing")
# pip's Accept header for the simple pages, and what an older pip or a script sends.
PIP_ACCEPT = ("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; "
              "q=0.1, text/html; q=0.01")
PIP_HEADERS = {"Accept": PIP_ACCEPT, "User-Agent": "pip/24.0 {}"}
# Chromium's own headers for loading a page from the address bar.
NAVIGATION_HEADERS = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
              "image/webp,image/apng,*/*;q=0.8",
    "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document", "Sec-Fetch-Site": "none",
}
# alice's password hash (of "alicepw"), as tests/conftest.py's app_settings has it.
ALICE_HASH = ("$pbkdf2-sha256$29000$mBOC8D6HsDaGUApB6J3Tug$"
              "kVuo4xgW9oKkBaZlqq.ZBKENn5oq8PiMmksNI7mbhpw")


def start_server(directory, **app) -> Server:
    server = Server(directory, app=app)
    directory.mkdir()
    return server.start()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """An open index holding a few projects."""
    root = tmp_path_factory.mktemp("ui-site")
    server = start_server(root / "server")
    for name in PROJECTS:
        server.upload(make_wheel(root / "dists", name, "1.0"), name, "1.0")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def private_site(tmp_path_factory):
    """An index only the admin may read; alice may sign in but read nothing."""
    root = tmp_path_factory.mktemp("ui-private")
    server = start_server(root / "server", **{"pypi.default_read": "admin",
                                              "pypi.default_write": "admin",
                                              "user.alice": ALICE_HASH})
    yield server
    server.stop()


@pytest.fixture
def broken_site(tmp_path):
    """A server whose database lost its tables behind its back: reads fail unexpectedly."""
    server = start_server(tmp_path / "server")
    with sqlite3.connect(tmp_path / "server" / "db.sqlite") as db:
        db.execute("DROP TABLE repositories")
        db.execute("DROP TABLE files")
        db.execute("DROP TABLE projects")
    yield server
    server.stop()


# --- the home page ------------------------------------------------------------------------


@pytest.mark.parametrize("viewport,scheme", LOOKS)
def test_home_page(site, new_page, viewport, scheme):
    page = new_page(viewport, scheme)
    response = page.goto(site.url + "/")
    assert response.status == 200
    assert page.title() == "pypirepo"
    assert page.locator("h1").inner_text() == "pypirepo"
    snippets = page.locator(".snippet code").all_inner_texts()
    assert f"pip install --index-url {site.url}/simple/ PROJECT" in snippets
    assert f"twine upload --repository-url {site.url}/legacy/ dist/*" in snippets
    # app.js ran: each snippet got its copy button.
    assert page.locator(".copy-button").count() == len(snippets)
    look(page, f"home-{viewport}-{scheme}")
    assert not page.log.problems(), page.log.problems()
    # Nothing wider than the screen: no sideways scrolling on a phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORTS[viewport]["width"]


def test_copy_button_copies_the_command(site, new_page):
    page = new_page(permissions=["clipboard-read", "clipboard-write"])
    page.goto(site.url + "/")
    button = page.get_by_role("button", name="Copy pip", exact=True)
    button.click()
    # The clipboard answers asynchronously: wait for the button to say so (it says it for
    # two seconds), rather than read it at once.
    expect(button).to_have_text("Copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == f"pip install --index-url {site.url}/simple/ PROJECT"


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_works_without_javascript(site, new_page, viewport):
    page = new_page(viewport, javascript=False)
    page.goto(site.url + "/")
    snippet = page.locator(".snippet code").first
    assert snippet.is_visible()
    assert page.locator(".copy-button").count() == 0  # only JavaScript adds them
    width = VIEWPORTS[viewport]["width"]
    for box in (page.locator("main").bounding_box(), snippet.bounding_box()):
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, box
    screenshot(page, f"home-nojs-{viewport}")

    # The search form is a plain GET form.
    page.get_by_role("searchbox", name="Search projects").fill("demo")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/search\?q=demo$"))
    names = page.locator(".result-list a").all_inner_texts()
    assert names == ["demo-pkg", "demo-tools"]
    assert page.locator(".result-list a").first.get_attribute("href") == "/project/demo-pkg/"
    screenshot(page, f"search-nojs-{viewport}")


def test_keyboard_reaches_search_and_sign_in_with_visible_focus(site, new_page):
    page = new_page()
    page.goto(site.url + "/")
    reached = {}
    for _ in range(12):
        page.keyboard.press("Tab")
        focused = page.evaluate("""() => {
            const el = document.activeElement, style = getComputedStyle(el);
            return {id: el.id, text: el.textContent.trim(), tag: el.tagName,
                    outline: style.outlineStyle, width: parseFloat(style.outlineWidth)};
        }""")
        if focused["id"] == "home-search":
            reached["search"] = focused
        if focused["tag"] == "A" and focused["text"] == "Sign in":
            reached["sign in"] = focused
    assert set(reached) == {"search", "sign in"}, reached
    for what, focused in reached.items():
        assert focused["outline"] != "none" and focused["width"] >= 2, (what, focused)


def test_skip_link_is_first_and_moves_to_the_content(site, new_page):
    page = new_page()
    page.goto(site.url + "/")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    assert skip.evaluate("el => el === document.activeElement")
    assert skip.is_visible()
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"


# --- search -------------------------------------------------------------------------------


@pytest.mark.parametrize("viewport,scheme", LOOKS)
def test_search_page(site, new_page, viewport, scheme):
    page = new_page(viewport, scheme)
    assert page.goto(site.url + "/search?q=Demo_").status == 200
    assert page.locator(".result-list a").all_inner_texts() == ["demo-pkg", "demo-tools"]
    assert page.locator(".results-summary").inner_text() == "2 projects match “Demo_”"
    look(page, f"search-{viewport}-{scheme}")
    assert not page.log.problems(), page.log.problems()


def test_search_with_no_match_explains(site, new_page):
    page = new_page()
    page.goto(site.url + "/search?q=nothing-like-this")
    assert "No project matches" in page.locator(".empty").inner_text()
    look(page, "search-no-match")


def test_search_as_you_type_on_the_home_page(site, new_page):
    page = new_page()
    partials = []
    page.on("request", lambda r: "partial=1" in r.url and partials.append(r.url))
    page.goto(site.url + "/")
    box = page.get_by_role("searchbox", name="Search projects")
    box.press_sequentially("other", delay=20)
    expect(page.locator("[data-live-status]")).to_have_text("1 project matches “other”")
    expect(page.locator("#home-results .result-list a")).to_have_text(["other-thing"])
    assert page.url == site.url + "/"  # no page load: the results came in place
    assert 1 <= len(partials) < len("other"), partials  # debounced, not one per key
    box.fill("")  # an empty box on the home page shows nothing, not every project
    expect(page.locator("#home-results")).to_be_empty()
    look(page, "home-live-search")


def test_search_as_you_type_keeps_the_address(site, new_page):
    page = new_page()
    page.goto(site.url + "/search")
    assert page.locator(".result-list a").count() == len(PROJECTS)  # all, by name
    page.get_by_role("searchbox", name="Search projects").press_sequentially("tools")
    expect(page.locator("#search-results .result-list a")).to_have_text(["demo-tools"])
    page.wait_for_url(re.compile(r"/search\?q=tools$"))
    page.reload()
    assert page.locator(".result-list a").all_inner_texts() == ["demo-tools"]


# --- error pages --------------------------------------------------------------------------


def error_page(page, url: str, status: int, title: str, look_name: str):
    """The page at url is the site's error page for status, and looks right."""
    response = page.goto(url)
    assert response.status == status
    assert page.locator("h1").inner_text() == title
    look(page, f"error-{status}-{look_name}")
    return page


@pytest.mark.parametrize("viewport,scheme", LOOKS)
def test_not_found_page(site, new_page, viewport, scheme):
    page = error_page(new_page(viewport, scheme), site.url + "/no/such/page", 404,
                      "Page not found", f"{viewport}-{scheme}")
    assert page.get_by_role("searchbox", name="Search projects").is_visible()


def test_unauthorized_page_offers_the_sign_in_form(private_site):
    # A browser is sent to the sign-in form, not the browser's own password prompt: the
    # challenge names the cookie scheme, which no browser prompts for. Clients keep Basic
    # (test_clients_keep_plain_errors_browsers_get_pages).
    res = requests.get(private_site.url + "/search?q=x", headers=NAVIGATION_HEADERS,
                       timeout=10)
    assert res.status_code == 401
    assert res.headers["Content-Type"] == "text/html; charset=utf-8"
    assert res.headers["WWW-Authenticate"] == ('Cookie realm="pypirepo", form-action="/login", '
                                               'cookie-name="pypirepo_session"')
    assert 'href="/login?next=/search%3Fq%3Dx"' in res.text


@pytest.mark.parametrize("viewport,scheme", LOOKS)
def test_unauthorized_page(private_site, new_page, viewport, scheme):
    page = new_page(viewport, scheme)
    error_page(page, private_site.url + "/search?q=x", 401, "Sign in required",
               f"{viewport}-{scheme}")
    page.locator("main").get_by_role("link", name="Sign in").click()
    sign_in(page, "admin", private_site.password)
    page.wait_for_url(private_site.url + "/search?q=x")  # back where the visitor was
    assert page.locator("h1").inner_text() != "Sign in required"


@pytest.mark.parametrize("viewport,scheme", LOOKS)
def test_forbidden_page(private_site, new_page, viewport, scheme):
    page = new_page(viewport, scheme)
    page.goto(private_site.url + "/login")
    sign_in(page, "alice", "alicepw")
    page.wait_for_url(private_site.url + "/")
    error_page(page, private_site.url + "/search?q=x", 403, "Not allowed",
               f"{viewport}-{scheme}")
    assert "Signed in as alice" in page.locator(".user-slot").inner_text()


@pytest.mark.parametrize("viewport,scheme", LOOKS)
def test_server_error_page(broken_site, new_page, viewport, scheme):
    error_page(new_page(viewport, scheme), broken_site.url + "/search?q=x", 500,
               "Something went wrong", f"{viewport}-{scheme}")
    assert broken_site.log.count("error serving GET") == 1, broken_site.log  # logged once


# --- what clients see stays as it was -----------------------------------------------------


def test_clients_keep_plain_errors_browsers_get_pages(site, private_site):
    # pip asking for a missing project: today's plain-text 404, byte for byte.
    res = requests.get(site.url + "/simple/no-such-project/", headers=PIP_HEADERS, timeout=10)
    assert res.status_code == 404
    assert res.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert res.text == "No project named 'no-such-project'.\n"
    assert "Content-Security-Policy" not in res.headers
    for accept in ("text/html", "*/*", "application/json"):  # old pip, curl, uv's JSON
        other = requests.get(site.url + "/no-such-page", headers={"Accept": accept},
                             timeout=10)
        assert other.status_code == 404
        assert not other.headers["Content-Type"].startswith("text/html"), accept

    # A browser loading the same URL gets the site's page.
    page = requests.get(site.url + "/simple/no-such-project/", headers=NAVIGATION_HEADERS,
                        timeout=10)
    assert page.status_code == 404
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "No project named &#39;no-such-project&#39;." in page.text  # escaped
    # Older browsers say it with Accept alone.
    accept_only = requests.get(site.url + "/nope", timeout=10,
                               headers={"Accept": NAVIGATION_HEADERS["Accept"]})
    assert accept_only.headers["Content-Type"] == "text/html; charset=utf-8"

    # A client without credentials on a closed index: plain 401 and the Basic challenge.
    res = requests.get(private_site.url + "/simple/", headers=PIP_HEADERS, timeout=10)
    assert res.status_code == 401
    assert res.text == "Authentication required.\n"
    assert res.headers["WWW-Authenticate"] == 'Basic realm="pypirepo"'


def test_unexpected_error_for_a_client_is_the_servers_plain_500(broken_site):
    res = requests.get(broken_site.url + "/search?q=x", headers={"Accept": "text/html"},
                       timeout=10)
    assert res.status_code == 500
    assert res.headers["Content-Type"].startswith("text/plain")


# --- headers, assets and the no-inline rule -----------------------------------------------

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
INLINE = [
    (re.compile(r"\sstyle\s*=", re.I), "a style= attribute"),
    (re.compile(r"<style", re.I), "a <style> element"),
    (re.compile(r"<script(?![^>]*\ssrc=)[^>]*>", re.I), "an inline <script>"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "an event handler attribute"),
    (re.compile(r"javascript:", re.I), "a javascript: URL"),
]


def inline_code(text: str) -> list[str]:
    return [what for pattern, what in INLINE if pattern.search(text)]


def ui_pages(server) -> dict[str, requests.Response]:
    urls = {"home": "/", "search": "/search?q=demo", "fragment": "/search?q=demo&partial=1",
            "empty search": "/search?q=zzz", "404": "/nope"}
    return {name: requests.get(server.url + url, headers=NAVIGATION_HEADERS, timeout=10)
            for name, url in urls.items()}


def test_every_ui_page_has_the_security_headers_and_no_inline_code(site):
    for name, res in ui_pages(site).items():
        assert res.headers["Content-Type"] == "text/html; charset=utf-8", name
        for header, value in SECURITY_HEADERS.items():
            assert res.headers.get(header) == value, (name, header)
        assert not inline_code(res.text), (name, inline_code(res.text))


def test_templates_have_no_inline_code():
    from servers import REPO

    templates = sorted((REPO / "templates" / "ui").glob("*.html")) \
        + sorted((REPO / "templates" / "errors").glob("*.html"))
    assert len(templates) >= 6
    for path in templates:
        text = re.sub(r"\{#.*?#\}", "", path.read_text(), flags=re.S)  # not the comments
        assert not inline_code(text), (path.name, inline_code(text))


def test_the_simple_pages_keep_their_headers(site):
    # Clients get the index's own answer, whatever they send; the UI adds nothing to it.
    # A browser loading the page is sent to the UI's page for it instead.
    def answer(headers, status=200):
        res = requests.get(site.url + url, headers=headers, timeout=10,
                           allow_redirects=False)
        assert res.status_code == status
        return res.content, {k: v for k, v in res.headers.items() if k != "Date"}

    for url, page in (("/simple/", "/projects/"), ("/simple/demo-pkg/", "/project/demo-pkg/")):
        client = answer({"Accept": "text/html"})
        assert client == answer(PIP_HEADERS | {"Accept": "text/html"}), url
        assert "Content-Security-Policy" not in client[1]
        assert client[1]["Vary"] == "Accept"
        browser = answer(NAVIGATION_HEADERS, status=303)
        assert browser[1]["Location"] == site.url + page


def test_static_files_are_cached_for_long_under_their_digest(site):
    home = requests.get(site.url + "/", timeout=10).text
    urls = re.findall(r'(?:href|src)="(/static/[^"]+)"', home)
    assert {u.rsplit("/", 1)[1] for u in urls} == {"app.css", "app.js", "favicon.svg"}
    for url in set(urls):
        res = requests.get(site.url + url, timeout=10)
        assert res.status_code == 200
        assert res.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert res.headers["X-Content-Type-Options"] == "nosniff"
        token = url.split("/")[2]
        assert res.headers["ETag"] == f'"{token}"'
        again = requests.get(site.url + url, headers={"If-None-Match": res.headers["ETag"]},
                             timeout=10)
        assert again.status_code == 304
    css = requests.get(site.url + "/static/0123456789ab/app.css", timeout=10)
    assert css.status_code == 200 and css.headers["Cache-Control"] == "public, no-cache"
    assert css.headers["Content-Type"] == "text/css; charset=utf-8"
    assert requests.get(site.url + "/static/x/missing.css", timeout=10).status_code == 404
    assert requests.get(site.url + "/static/x/../setup.cfg", timeout=10).status_code == 404
