"""Driving Debian's Chromium with Playwright for the web UI's tests (BACKENDS.md, Chromium).

Never `playwright install`: it downloads browser builds of its own. The browser is the
system's `chromium` (the Makefile's system-deps installs it), launched headless with the
flags that keep it from calling out to the network. Missing pieces skip a test locally
and fail it in CI, like the client tools (tests/e2e/clients.py tool()).
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from servers import REPO

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture says what to install
    expect = None

IN_CI = os.environ.get("CI") == "true"

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
VIEWPORTS = {
    "phone": {"width": 390, "height": 844},
    "desktop": {"width": 1366, "height": 900},
}
SCHEMES = ("light", "dark")
# Every page is looked at in each of these: (viewport, colour scheme).
LOOKS = [(v, s) for v in VIEWPORTS for s in SCHEMES]
# axe-core impacts that fail a test; "minor" and "moderate" ones are printed, not fatal.
FATAL_IMPACTS = ("serious", "critical")


def missing(message: str):
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        missing("chromium is not installed (run `make system-deps`, or "
                "`apt-get install -y chromium`)")
    return path


def sync_playwright():
    try:
        from playwright.sync_api import sync_playwright as start
    except ImportError:
        missing("playwright is not installed (run `make install-test`, or "
                "`.venv/bin/pip install -e '.[testing]'`)")
    return start


def artifacts_dir() -> Path:
    """Where screenshots go: var/test-artifacts/ unless PYPIREPO_TEST_ARTIFACTS says."""
    path = Path(os.environ.get("PYPIREPO_TEST_ARTIFACTS") or REPO / "var" / "test-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


def screenshot(page, name: str) -> Path:
    """A full-page PNG of what the page shows now, kept as a test artifact."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")
    path = artifacts_dir() / f"{safe}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def axe_violations(page) -> list[dict]:
    from axe_playwright_python.sync_playwright import Axe

    return Axe().run(page).response["violations"]


def describe_violations(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        lines.append(f"[{v['impact']}] {v['id']}: {v['help']} ({v['helpUrl']})")
        for node in v["nodes"]:
            lines.append(f"    at {' '.join(map(str, node['target']))}: {node['html'][:200]}")
            summary = (node.get("failureSummary") or "").replace("\n", "\n        ")
            lines.append(f"        {summary}")
    return "\n".join(lines)


def assert_accessible(page) -> None:
    """axe-core finds nothing serious or critical on the page as it is now."""
    # axe runs in the page: without JavaScript page.evaluate() would wait forever.
    assert page.javascript, "assert_accessible needs a page with JavaScript enabled"
    violations = axe_violations(page)
    if violations:
        print(f"axe on {page.url}:\n{describe_violations(violations)}")
    fatal = [v for v in violations if v["impact"] in FATAL_IMPACTS]
    assert not fatal, f"accessibility violations on {page.url}:\n" + describe_violations(fatal)


def look(page, name: str):
    """The page is accessible, saved as a screenshot, said nothing wrong, and is no
    wider than the screen."""
    assert_accessible(page)
    screenshot(page, name)
    assert not page.log.csp_violations(), page.log.csp_violations()
    assert not page.log.errors, page.log.errors
    width = page.viewport_size["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def sign_in(page, user: str, password: str):
    """Fill in and send the sign-in form the page shows (/login)."""
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


@dataclass
class PageLog:
    """What a page said while the test ran: console messages and uncaught errors."""

    console: list = field(default_factory=list)  # (type, text)
    errors: list = field(default_factory=list)

    def problems(self) -> list[str]:
        return [f"console {t}: {text}" for t, text in self.console if t in ("error", "warning")] \
            + [f"page error: {e}" for e in self.errors]

    def csp_violations(self) -> list[str]:
        return [text for _, text in self.console if "Content Security Policy" in text]


class Browser:
    """One headless Chromium; each page gets a context of its own (its own cookies,
    storage and permissions) that is closed with the test."""

    def __init__(self, playwright):
        self.browser = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS)
        self.contexts = []

    def new_page(self, viewport: str = "desktop", scheme: str = "light", *,
                 javascript: bool = True, permissions=(), credentials=None):
        context = self.browser.new_context(
            viewport=VIEWPORTS[viewport], color_scheme=scheme,
            java_script_enabled=javascript, http_credentials=credentials,
            reduced_motion="reduce",
        )
        if permissions:
            context.grant_permissions(list(permissions))
        self.contexts.append(context)
        page = context.new_page()
        page.log = PageLog()
        page.javascript = javascript
        page.on("console", lambda msg: page.log.console.append((msg.type, msg.text)))
        page.on("pageerror", lambda exc: page.log.errors.append(str(exc)))
        return page

    def close_contexts(self):
        for context in self.contexts:
            context.close()
        self.contexts.clear()

    def close(self):
        self.close_contexts()
        self.browser.close()
