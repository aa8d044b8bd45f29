"""pypirepo's own wheel works outside the checkout (issue 2, layout).

The wheel is built from a copy of the working tree, installed into a fresh venv in a temp
dir (its dependencies come from the public index, as for any user), and started with
pserve from an ini written there. If templates, migrations or the web UI's static files
were left out of the wheel, the start-up migration, a page or an asset fails.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import sys
import zipfile

import pytest
import requests

from clients import Sandbox, tool, venv
from servers import REPO, Server

pytestmark = pytest.mark.e2e

# Top-level entries of the checkout that are not part of the source of the wheel.
NOT_SOURCE = {".git", ".venv", ".tools", "node_modules", "var", "build", "dist", "benchmarks",
              "tests", ".pytest_cache", "__pycache__"}


def _ignore(directory, names):
    return [n for n in names if n in NOT_SOURCE or n.endswith(".egg-info")]


def build_wheel(sandbox: Sandbox, out):
    # Built from a copy so that build/ and *.egg-info never land in the shared checkout.
    src = sandbox.root / "src"
    shutil.copytree(REPO, src, ignore=_ignore)
    sandbox.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", out,
                 src], timeout=180)
    (wheel,) = out.glob("pypirepo-*.whl")
    return wheel


def test_wheel_installed_outside_the_checkout_serves_simple(tmp_path):
    sandbox = Sandbox(tmp_path / "sandbox")
    wheel = build_wheel(sandbox, tmp_path / "wheel")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    for name in ("static/app.css", "static/app.js", "static/favicon.svg",
                 "templates/ui/base.html", "templates/errors/error.html"):
        assert "pypirepo/" + name in shipped, name
    python = venv(sandbox, tmp_path / "venv")
    sandbox.run([tool("uv"), "pip", "install", "--python", python, wheel], timeout=300)

    where = sandbox.run([python, "-c", "import pypirepo; print(pypirepo.__file__)"],
                        cwd=tmp_path).stdout.strip()
    assert where.startswith(str(tmp_path / "venv")), where
    assert not where.startswith(str(REPO))

    site = tmp_path / "site"
    site.mkdir()
    server = Server(site, pserve=str(python.parent / "pserve"))
    assert str(REPO) not in str(server.settings)  # storage and SQLite live in the temp dir
    try:
        server.start(timeout=60)
        res = requests.get(f"{server.url}/simple/", timeout=10)
        assert res.status_code == 200
        assert res.headers["Content-Type"].startswith("text/html")
        assert '<meta name="pypi:repository-version"' in res.text
        home = requests.get(f"{server.url}/", timeout=10)
        assert home.status_code == 200
        assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', home.text)
        assert len(set(assets)) == 3, assets
        for url in assets:
            assert requests.get(server.url + url, timeout=10).status_code == 200, url
    finally:
        server.stop()

    # The schema came from the wheel's alembic migrations.
    with sqlite3.connect(site / "db.sqlite") as db:
        (head,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
    shipped = {p.stem.split("_")[0] for p in (REPO / "migrations" / "versions").glob("*.py")}
    assert head.split("_")[0] in shipped
