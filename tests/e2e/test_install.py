"""Installing from our /simple/ with pip, uv and poetry (the clients' end-to-end matrix).

One server holds a small world that exercises resolution: chain-top needs chain-base and
localver; chain-base 1.1 is yanked (so 1.0 wins unless 1.1 is pinned); localver exists only
as a local version (1.0+cpu); pyreq 2.0 wants a Python that doesn't exist yet.
"""

from __future__ import annotations

import tomllib

import pytest
import requests

import distfactory
from clients import installed, sha256, start_server, tool, venv

pytestmark = pytest.mark.e2e

WORLD = [
    ("chain-top", "1.0", {"requires_dist": ["chain-base>=1.0", "localver"]}),
    ("chain-base", "1.0", {}),
    ("chain-base", "1.1", {}),
    ("localver", "1.0+cpu", {}),
    ("pyreq", "1.0", {"requires_python": ">=3.8"}),
    ("pyreq", "2.0", {"requires_python": ">=4"}),
]
# What a resolver must pick for `chain-top pyreq` on this interpreter.
EXPECTED = {"chain-top": "1.0", "chain-base": "1.0", "localver": "1.0+cpu", "pyreq": "1.0"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("install-server"))
    dist_dir = tmp_path_factory.mktemp("install-dists")
    for name, version, kw in WORLD:
        wheel = distfactory.make_wheel(dist_dir, name, version, **kw)
        srv.upload(wheel, name, version, timeout=30)
    res = requests.post(f"{srv.url}/api/projects/chain-base/versions/1.1/yank",
                        json={"reason": "broken build"}, auth=srv.auth, timeout=10)
    assert res.status_code == 200, res.text
    srv.dist_dir = dist_dir
    yield srv
    srv.stop()


def pip(sandbox, python, server, *args):
    return sandbox.run([tool("pip"), "--python", python, "install", "--isolated",
                        "--no-cache-dir", "--index-url", f"{server.url}/simple/", *args],
                       timeout=120)


def test_pip_install_resolves_through_core_metadata(server, sandbox):
    python = venv(sandbox, sandbox.root / "venv")
    out = pip(sandbox, python, server, "-v", "chain-top", "pyreq").stdout

    # PEP 658: dependencies come from the .metadata sidecars, not from whole wheels.
    assert "Obtaining dependency information for chain-base" in out
    for filename in ("chain_top-1.0-py3-none-any.whl", "chain_base-1.0-py3-none-any.whl",
                     "localver-1.0%2Bcpu-py3-none-any.whl", "pyreq-1.0-py3-none-any.whl"):
        assert f"/{filename}.metadata" in out, filename
    assert "chain_base-1.1" not in out.split("Successfully installed")[-1]
    assert installed(sandbox, python) == EXPECTED
    # The modules themselves came across intact.
    probe = sandbox.run([python, "-c", "import chain_top, localver; print(localver.__version__)"])
    assert probe.stdout.strip() == "1.0+cpu"


def test_pip_takes_a_yanked_version_only_when_pinned(server, sandbox):
    python = venv(sandbox, sandbox.root / "venv")
    pip(sandbox, python, server, "chain-base")
    assert installed(sandbox, python) == {"chain-base": "1.0"}

    out = pip(sandbox, python, server, "chain-base==1.1").stdout
    assert "yanked" in out and "broken build" in out
    assert installed(sandbox, python) == {"chain-base": "1.1"}


def test_uv_pip_install_into_a_fresh_venv(server, sandbox):
    uv = tool("uv")
    python = venv(sandbox, sandbox.root / "venv")
    install = [uv, "pip", "install", "--python", python, "--index-url", f"{server.url}/simple/"]

    out = sandbox.run(install + ["chain-top", "pyreq"], timeout=120).stdout
    assert "+ localver==1.0+cpu" in out and "+ chain-base==1.0" in out
    assert installed(sandbox, python) == EXPECTED

    sandbox.run(install + ["chain-base==1.1"], timeout=120)
    assert installed(sandbox, python)["chain-base"] == "1.1"


def test_poetry_project_with_our_source(server, sandbox, tmp_path):
    poetry = tool("poetry")
    project = tmp_path / "consumer"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "consumer"\nversion = "0.1.0"\nrequires-python = ">=3.10"\n'
        'dependencies = []\n\n'
        '[tool.poetry]\npackage-mode = false\n\n'
        f'[[tool.poetry.source]]\nname = "pypirepo"\nurl = "{server.url}/simple/"\n'
        'priority = "primary"\n'
    )
    # Poetry builds the project's venv from its own interpreter, not whatever is on PATH.
    env = {"POETRY_VIRTUALENVS_USE_POETRY_PYTHON": "true"}

    sandbox.run([poetry, "add", "chain-top"], cwd=project, env=env, timeout=180)
    python = project / ".venv" / "bin" / "python"
    got = installed(sandbox, python)
    assert {k: got.get(k) for k in ("chain-top", "chain-base", "localver")} == {
        k: EXPECTED[k] for k in ("chain-top", "chain-base", "localver")}

    # The lock file pins our files by hash; then a plain lock + install from it.
    text = (project / "pyproject.toml").read_text()
    (project / "pyproject.toml").write_text(
        text.replace('dependencies = [', 'dependencies = [\n    "pyreq",', 1))
    sandbox.run([poetry, "lock"], cwd=project, env=env, timeout=180)
    sandbox.run([poetry, "install"], cwd=project, env=env, timeout=180)
    assert installed(sandbox, python) == EXPECTED

    lock = tomllib.loads((project / "poetry.lock").read_text())
    packages = {p["name"]: p for p in lock["package"]}
    assert {name: p["version"] for name, p in packages.items()} == EXPECTED
    for name, p in packages.items():
        assert p["source"]["url"] == f"{server.url}/simple"
        filename = p["files"][0]["file"]
        assert p["files"][0]["hash"] == "sha256:" + sha256(server.dist_dir / filename)


@pytest.fixture(scope="module")
def private_server(tmp_path_factory, server):
    """The default deployment: reading needs a login too. Holds chain-base 1.0 and 1.1."""
    srv = start_server(tmp_path_factory.mktemp("private-server"),
                       **{"pypi.default_read": "authenticated"})
    for path in sorted(server.dist_dir.glob("chain_base-*.whl")):
        name, version = path.name.split("-")[:2]
        srv.upload(path, name, version, timeout=30)
    yield srv
    srv.stop()


def test_private_index_with_credentials(private_server, server, sandbox, tmp_path):
    srv = private_server
    user, password = srv.auth
    python = venv(sandbox, sandbox.root / "venv")
    anonymous = sandbox.run([tool("pip"), "--python", python, "install", "--isolated",
                             "--no-cache-dir", "--index-url", f"{srv.url}/simple/",
                             "chain-base"], timeout=120, check=False)
    assert anonymous.returncode != 0 and "401" in anonymous.stdout

    # pip with the login in the index URL: JSON page, .metadata and file all authorized.
    with_login = srv.url.replace("http://", f"http://{user}:{password}@") + "/simple/"
    out = sandbox.run([tool("pip"), "--python", python, "install", "--isolated", "-v",
                       "--no-cache-dir", "--index-url", with_login, "chain-base"],
                      timeout=120).stdout
    assert "chain_base-1.1-py3-none-any.whl.metadata" in out
    assert installed(sandbox, python) == {"chain-base": "1.1"}

    python = venv(sandbox, sandbox.root / "venv-uv")
    sandbox.run([tool("uv"), "pip", "install", "--python", python, "--index-url", with_login,
                 "chain-base"], timeout=120)
    assert installed(sandbox, python) == {"chain-base": "1.1"}

    # poetry sends http-basic.<source> credentials for the source's URLs.
    poetry = tool("poetry")
    project = tmp_path / "consumer"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "consumer"\nversion = "0.1.0"\nrequires-python = ">=3.10"\n'
        'dependencies = ["chain-base"]\n\n[tool.poetry]\npackage-mode = false\n\n'
        f'[[tool.poetry.source]]\nname = "private"\nurl = "{srv.url}/simple/"\n'
        'priority = "primary"\n'
    )
    sandbox.run([poetry, "config", "http-basic.private", user, password], cwd=project)
    sandbox.run([poetry, "lock"], cwd=project, timeout=180)
    lock = tomllib.loads((project / "poetry.lock").read_text())
    assert [(p["name"], p["version"]) for p in lock["package"]] == [("chain-base", "1.1")]


def test_upload_time_filters(server, sandbox):
    """pip --uploaded-prior-to and uv --exclude-newer read our PEP 700 upload-time."""
    pip_download = [tool("pip"), "download", "--isolated", "--no-cache-dir", "--no-deps",
                    "-d", sandbox.root / "dl", "--index-url", f"{server.url}/simple/"]
    later, earlier = "2100-01-01T00:00:00Z", "2001-01-01T00:00:00Z"
    sandbox.run(pip_download + ["--uploaded-prior-to", later, "chain-top"], timeout=120)
    assert (sandbox.root / "dl" / "chain_top-1.0-py3-none-any.whl").exists()
    too_old = sandbox.run(pip_download + ["--uploaded-prior-to", earlier, "chain-top"],
                          timeout=120, check=False)
    assert too_old.returncode != 0 and "No matching distribution" in too_old.stdout

    python = venv(sandbox, sandbox.root / "venv")
    uv_install = [tool("uv"), "pip", "install", "--python", python,
                  "--index-url", f"{server.url}/simple/"]
    out = sandbox.run(uv_install + ["--exclude-newer", later, "chain-top"], timeout=120).stdout
    assert "upload date" not in out and "+ chain-top==1.0" in out
    too_new = sandbox.run(uv_install + ["--exclude-newer", earlier, "pyreq"], timeout=120,
                          check=False)
    assert too_new.returncode != 0
    assert "was filtered by `exclude-newer`" in too_new.stdout
