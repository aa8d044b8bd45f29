"""Fixtures of the web UI's tests: one headless Chromium per test process, a page per
viewport and colour scheme, screenshots and axe-core checks (tests/browser.py)."""

from __future__ import annotations

import pytest
from browser import Browser, sync_playwright


def pytest_collection_modifyitems(items):
    # One worker runs every browser test, so one Chromium serves them all.
    for item in items:
        if "/tests/ui/" in str(item.fspath):
            item.add_marker(pytest.mark.xdist_group("browser"))


@pytest.fixture(scope="session")
def browser():
    start = sync_playwright()
    with start() as playwright:
        b = Browser(playwright)
        yield b
        b.close()


@pytest.fixture
def new_page(browser):
    """new_page(viewport="desktop"|"phone", scheme="light"|"dark", javascript=True,
    permissions=(), credentials=None) -> a Playwright page; its context is closed after
    the test. page.log holds its console messages and uncaught errors."""
    yield browser.new_page
    browser.close_contexts()
