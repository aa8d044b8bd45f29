"""pypirepo's own wheel works outside the checkout, and building it is quiet.

The README's production install: a wheel (and sdist) built from a copy of the working tree
with `python -m build`, installed into a fresh venv in a temp dir (its dependencies come
from the package index, through the machine's uv cache), and started with pserve from an
ini written there. If templates or migrations were left out of the wheel, the start-up
migration, the /simple/ page or the web UI's assets fail.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
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


def build_dists(sandbox: Sandbox, out):
    """`python -m build`: the sdist, then the wheel built from it (so MANIFEST.in counts).
    Returns the wheel and what the build printed."""
    # Built from a copy so that build/ and *.egg-info never land in the shared checkout.
    src = sandbox.root / "src"
    shutil.copytree(REPO, src, ignore=_ignore)
    log = sandbox.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", out, src],
                      timeout=180).stdout
    (wheel,) = out.glob("pypirepo-*.whl")
    assert len(list(out.glob("pypirepo-*.tar.gz"))) == 1
    return wheel, log


def shipped_files(folder: str) -> set[str]:
    """Every file of templates/ or migrations/, as its path inside the installed package."""
    root = REPO / folder
    return {f"pypirepo/{folder}/{p.relative_to(root)}" for p in root.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


def machine_uv_cache() -> str:
    """The uv cache the machine already has, so the dependencies are not fetched again."""
    return subprocess.run([str(tool("uv")), "cache", "dir"], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_building_the_wheel_is_quiet_and_ships_every_template(tmp_path):
    wheel, log = build_dists(Sandbox(tmp_path / "sandbox"), tmp_path / "dist")
    # setuptools' warning about data folders missing from `packages` (some 40 lines), and
    # MANIFEST.in lines that match nothing.
    assert "absent from the `packages` configuration" not in log, log
    assert "no files found matching" not in log, log
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    for folder in ("templates", "migrations"):
        expected = shipped_files(folder)
        assert expected and expected <= names, expected - names


def test_wheel_installed_outside_the_checkout_serves_simple(tmp_path):
    sandbox = Sandbox(tmp_path / "sandbox")
    wheel, _log = build_dists(sandbox, tmp_path / "dist")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    for name in ("static/app.css", "static/app.js", "static/favicon.svg",
                 "templates/ui/base.html", "templates/errors/error.html"):
        assert "pypirepo/" + name in shipped, name
    python = venv(sandbox, tmp_path / "venv")
    sandbox.run([tool("uv"), "pip", "install", "--python", python, wheel], timeout=300,
                env={"UV_CACHE_DIR": machine_uv_cache()})

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
    # Pyramid imports pkg_resources; with the setuptools it gets it must not warn at start.
    assert "pkg_resources" not in server.log, server.log

    # The schema came from the wheel's alembic migrations.
    with sqlite3.connect(site / "db.sqlite") as db:
        (head,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
    shipped = {p.stem.split("_")[0] for p in (REPO / "migrations" / "versions").glob("*.py")}
    assert head.split("_")[0] in shipped
