"""The web UI's small parts: which requests get pages, paging."""

from __future__ import annotations


import pytest
from pyramid.request import Request

from pypirepo.views.ui import is_browser_navigation
from pypirepo.views.ui.paging import Pager

CHROME_ACCEPT = ("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
                 "image/webp,*/*;q=0.8")


@pytest.mark.parametrize("headers,browser", [
    ({"Sec-Fetch-Mode": "navigate", "Accept": CHROME_ACCEPT}, True),
    ({"Sec-Fetch-Dest": "document"}, True),
    ({"Accept": CHROME_ACCEPT}, True),  # a browser without Sec-Fetch-*
    # The packaging clients: pip (new and old), uv, twine's requests, curl, nothing.
    ({"Accept": "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;"
                " q=0.1, text/html; q=0.01"}, False),
    ({"Accept": "text/html"}, False),
    ({"Accept": "application/vnd.pypi.simple.v1+json"}, False),
    ({"Accept": "*/*"}, False),
    ({}, False),
    # A fetch() from a page, and a script that names xhtml but prefers JSON.
    ({"Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty", "Accept": "text/html"}, False),
    ({"Accept": "application/json, application/xhtml+xml;q=0.5, text/html;q=0.5"}, False),
])
def test_browser_navigation(headers, browser):
    assert is_browser_navigation(Request.blank("/x", headers=headers)) is browser


def pager(number, total, per_page=10):
    return Pager(number, per_page, total, "/l", (("q", "a b"),))


def test_pager_links_name_the_ends_and_a_window():
    assert pager(1, 10).links() == [1]
    assert pager(1, 10).pages == 1
    assert pager(1, 0).pages == 1
    assert pager(1, 61).links() == [1, 2, 3, None, 7]
    assert pager(4, 70).links() == [1, 2, 3, 4, 5, 6, 7]
    assert pager(10, 200).links() == [1, None, 8, 9, 10, 11, 12, None, 20]


def test_pager_urls_keep_the_other_parameters():
    p = pager(2, 30)
    assert p.offset == 10
    assert p.previous_url == "/l?q=a+b"  # page 1 has no page parameter
    assert p.next_url == "/l?q=a+b&page=3"
    assert pager(3, 30).next_url is None
    assert pager(1, 30).previous_url is None


@pytest.mark.parametrize("query,number", [("2", 2), ("0", 1), ("-3", 1), ("x", 1), ("", 1)])
def test_pager_from_request(query, number):
    request = Request.blank(f"/search?q=demo&page={query}")
    p = Pager.from_request(request, per_page=5, keep=("q", "missing"))
    assert p.number == number
    assert p.with_total(100).url(4) == "/search?q=demo&page=4"
