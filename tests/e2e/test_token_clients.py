"""API tokens with the real clients: twine, uv, poetry, pdm and hatch publish with the user
name `__token__` and a token; pip and uv install from a private index with a token in the
URL. The server keeps its users in the database (auth.backend = sql) and reads need a login."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import requests

import distfactory
from clients import installed, sha256, start_server, tool, venv
from servers import VENV_BIN

pytestmark = pytest.mark.e2e

TOKEN_USER = "__token__"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("token-server"), **{
        "auth.backend": "sql", "pypi.default_read": "authenticated",
        "pypi.default_write": "authenticated"})
    res = requests.post(f"{srv.url}/api/admin/users", auth=srv.auth,
                        json={"name": "publisher", "password": "publisher-pw"})
    assert res.status_code == 201, res.text
    yield srv
    srv.stop()


def make_token(server, **scope) -> str:
    res = requests.post(f"{server.url}/api/tokens", auth=("publisher", "publisher-pw"),
                        json=scope)
    assert res.status_code == 201, res.text
    return res.json()["token"]


@pytest.fixture(scope="module")
def upload_token(server):
    return make_token(server, permission="upload", note="e2e publishing")


def stored(server, project) -> dict:
    res = requests.get(f"{server.url}/simple/{project}/", auth=server.auth, timeout=10,
                       headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    if res.status_code == 404:
        return {}
    res.raise_for_status()
    return {f["filename"]: f["hashes"]["sha256"] for f in res.json()["files"]}


def dists(directory, name):
    return [distfactory.make_wheel(directory, name, "1.0"),
            distfactory.make_sdist(directory, name, "1.0")]


def hashes(paths):
    return {p.name: sha256(p) for p in paths}


def project_dir(tmp_path, name, extra=""):
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        f'[project]\nname = "{name}"\nversion = "1.0"\n{extra}')
    return project


def owner_of(server, project) -> set:
    res = requests.get(f"{server.url}/api/projects/{project}/events", auth=server.auth)
    return {e["user"] for e in res.json()["events"]}


def test_twine_uploads_with_a_token(server, sandbox, tmp_path, upload_token):
    files = dists(tmp_path / "dist", "tok-twine")
    out = sandbox.run([tool("twine"), "upload", "--non-interactive", "--disable-progress-bar",
                       "--repository-url", f"{server.url}/legacy/", "-u", TOKEN_USER,
                       "-p", upload_token, *files], timeout=60).stdout
    assert "Uploading tok_twine-1.0-py3-none-any.whl" in out
    assert stored(server, "tok-twine") == hashes(files)
    assert owner_of(server, "tok-twine") == {"publisher"}


def test_twine_with_a_read_token_is_refused(server, sandbox, tmp_path):
    read = make_token(server)
    files = dists(tmp_path / "dist", "tok-read")
    proc = sandbox.run([tool("twine"), "upload", "--non-interactive",
                        "--disable-progress-bar", "--repository-url",
                        f"{server.url}/legacy/", "-u", TOKEN_USER, "-p", read, *files],
                       timeout=60, check=False)
    assert proc.returncode != 0 and "403" in proc.stdout
    assert read not in proc.stdout
    assert stored(server, "tok-read") == {}


def test_uv_publishes_with_a_token(server, sandbox, tmp_path, upload_token):
    files = dists(tmp_path / "dist", "tok-uv")
    out = sandbox.run([tool("uv"), "publish", "--publish-url", f"{server.url}/legacy/",
                       "--check-url", f"{server.url}/simple/", *files], timeout=60,
                      env={"UV_PUBLISH_TOKEN": upload_token}).stdout
    assert "Uploading tok_uv-1.0-py3-none-any.whl" in out
    assert stored(server, "tok-uv") == hashes(files)


def test_poetry_publishes_with_a_token(server, sandbox, tmp_path, upload_token):
    poetry = tool("poetry")
    project = project_dir(tmp_path, "tok-poetry", (
        'description = "e2e"\nrequires-python = ">=3.8"\n\n[build-system]\n'
        'requires = ["poetry-core>=2.0"]\nbuild-backend = "poetry.core.masonry.api"\n'))
    files = dists(project / "dist", "tok-poetry")
    sandbox.run([poetry, "config", "repositories.pypirepo", f"{server.url}/legacy/"])
    # `poetry config pypi-token.<repo>` sends the token with the user name __token__.
    sandbox.run([poetry, "config", "pypi-token.pypirepo", upload_token])
    out = sandbox.run([poetry, "publish", "-r", "pypirepo", "-n"], cwd=project,
                      timeout=120).stdout
    assert "Publishing tok-poetry (1.0) to pypirepo" in out
    assert stored(server, "tok-poetry") == hashes(files)


def test_pdm_publishes_with_a_token(server, sandbox, tmp_path, upload_token):
    project = project_dir(tmp_path, "tok-pdm")
    files = dists(project / "dist", "tok-pdm")
    out = sandbox.run([tool("pdm"), "publish", "--no-build", "-r", f"{server.url}/legacy/",
                       "-u", TOKEN_USER, "-P", upload_token], cwd=project, timeout=120,
                      env={"PDM_USE_VENV": "false"}).stdout
    assert "Uploading tok_pdm-1.0-py3-none-any.whl" in out
    assert stored(server, "tok-pdm") == hashes(files)


def test_hatch_publishes_with_a_token(server, sandbox, tmp_path, upload_token):
    project = project_dir(tmp_path, "tok-hatch", (
        '\n[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'))
    files = dists(project / "dist", "tok-hatch")
    out = sandbox.run([tool("hatch"), "publish", "-r", f"{server.url}/legacy/",
                       "-u", TOKEN_USER, "-a", upload_token, "-n", *files], cwd=project,
                      timeout=120).stdout
    assert f"{files[0].name} ... success" in out
    assert stored(server, "tok-hatch") == hashes(files)


@pytest.fixture(scope="module")
def installable(server, tmp_path_factory):
    """A project on the private index, for the installers."""
    wheel = distfactory.make_wheel(tmp_path_factory.mktemp("inst"), "tok-install", "2.0")
    server.upload(wheel, "tok-install", "2.0")
    return wheel


def index_url(server, token) -> str:
    host = server.url.removeprefix("http://")
    return f"http://{TOKEN_USER}:{token}@{host}/simple/"


def test_pip_installs_with_a_token_in_the_url(server, sandbox, tmp_path, installable):
    read = make_token(server, projects=["tok-*"], note="pip")
    python = venv(sandbox, tmp_path / "venv")
    assert requests.get(f"{server.url}/simple/", timeout=10).status_code == 401
    out = sandbox.run([tool("pip"), "--python", python, "install", "--isolated",
                       "--index-url", index_url(server, read), "tok-install"],
                      timeout=120).stdout
    assert read not in out  # pip masks the password it prints
    assert installed(sandbox, python) == {"tok-install": "2.0"}


def test_uv_installs_with_a_token_in_the_url(server, sandbox, tmp_path, installable):
    read = make_token(server, projects=["tok-install"])
    python = venv(sandbox, tmp_path / "venv")
    sandbox.run([tool("uv"), "pip", "install", "--python", python, "--index-url",
                 index_url(server, read), "tok-install"], timeout=120)
    assert installed(sandbox, python) == {"tok-install": "2.0"}
    # A token for other projects does not find it (as if it did not exist).
    other = make_token(server, projects=["something-else"])
    proc = sandbox.run([tool("uv"), "pip", "install", "--python", python, "--reinstall",
                        "--no-cache", "--index-url", index_url(server, other), "tok-install"],
                       timeout=120, check=False)
    assert proc.returncode != 0 and other not in proc.stdout


# A keyring backend that answers from a JSON file and writes down what it was asked: the
# store is not what is tested here, the clients' 401 -> keyring -> retry flow is.
KEYRING_BACKEND = '''
import json, os
from keyring.backend import KeyringBackend
from keyring.credentials import SimpleCredential

class FileKeyring(KeyringBackend):
    priority = 1

    def _load(self):
        with open(os.environ["TEST_KEYRING_FILE"]) as f:
            return json.load(f)

    def _asked(self, *what):
        with open(os.environ["TEST_KEYRING_FILE"] + ".log", "a") as f:
            f.write(" ".join(str(w) for w in what) + "\\n")

    def get_password(self, service, username):
        self._asked("password", service, username)
        found = self._load()
        return found["password"] if username == found["username"] else None

    def get_credential(self, service, username):
        self._asked("credential", service, username)
        found = self._load()
        if username in (None, found["username"]):
            return SimpleCredential(found["username"], found["password"])
        return None

    def set_password(self, service, username, password):
        raise NotImplementedError

    def delete_password(self, service, username):
        raise NotImplementedError
'''


def keyring_env(tmp_path, username, password) -> tuple[dict, Path]:
    """The environment that makes the `keyring` command answer (username, password)."""
    module_dir = tmp_path / "keyring-backend"
    module_dir.mkdir()
    (module_dir / "filekeyring.py").write_text(KEYRING_BACKEND)
    store = tmp_path / "keyring.json"
    store.write_text(json.dumps({"username": username, "password": password}))
    env = {"PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": str(module_dir),
           "PYTHON_KEYRING_BACKEND": "filekeyring.FileKeyring",
           "TEST_KEYRING_FILE": str(store)}
    return env, store.with_name("keyring.json.log")


@pytest.mark.parametrize("secret", ["password", "token"])
def test_pip_asks_the_keyring_after_a_401(server, sandbox, tmp_path, installable, secret):
    # No credentials in the URL: the index answers 401 with `WWW-Authenticate: Basic`,
    # pip asks the keyring (the `keyring` command, as `--keyring-provider subprocess`
    # does), retries with what it got, and installs.
    user, password = ("publisher", "publisher-pw") if secret == "password" else \
        (TOKEN_USER, make_token(server, projects=["tok-*"], note="keyring"))
    env, asked = keyring_env(tmp_path, user, password)
    python = venv(sandbox, tmp_path / "venv")
    out = sandbox.run([tool("pip"), "--python", python, "install", "--isolated",
                       "--keyring-provider", "subprocess", "--index-url",
                       f"{server.url}/simple/", "tok-install"], env=env, timeout=120).stdout
    assert password not in out
    assert installed(sandbox, python) == {"tok-install": "2.0"}
    assert server.url.removeprefix("http://") in asked.read_text()


def test_uv_asks_the_keyring_for_the_token_of_the_user_in_the_url(server, sandbox, tmp_path,
                                                                   installable):
    # uv asks the keyring for the password of the user the URL names.
    token = make_token(server, projects=["tok-*"], note="uv keyring")
    env, asked = keyring_env(tmp_path, TOKEN_USER, token)
    python = venv(sandbox, tmp_path / "venv")
    host = server.url.removeprefix("http://")
    sandbox.run([tool("uv"), "pip", "install", "--python", python, "--keyring-provider",
                 "subprocess", "--index-url", f"http://{TOKEN_USER}@{host}/simple/",
                 "tok-install"], env=env, timeout=120)
    assert installed(sandbox, python) == {"tok-install": "2.0"}
    assert TOKEN_USER in asked.read_text()


@pytest.mark.parametrize("secret", ["password", "token"])
def test_pip_and_uv_read_credentials_from_netrc(server, sandbox, tmp_path, installable,
                                                 secret):
    user, password = ("publisher", "publisher-pw") if secret == "password" else \
        (TOKEN_USER, make_token(server, projects=["tok-*"], note="netrc"))
    host = server.url.removeprefix("http://").rsplit(":", 1)[0]
    netrc = sandbox.root / "home" / ".netrc"
    netrc.write_text(f"machine {host}\nlogin {user}\npassword {password}\n")
    netrc.chmod(0o600)
    try:
        for installer in ("pip", "uv"):
            python = venv(sandbox, tmp_path / f"venv-{installer}")
            cmd = [tool("pip"), "--python", python, "install", "--index-url",
                   f"{server.url}/simple/", "tok-install"] if installer == "pip" else \
                [tool("uv"), "pip", "install", "--python", python, "--no-cache",
                 "--index-url", f"{server.url}/simple/", "tok-install"]
            out = sandbox.run(cmd, timeout=120).stdout
            assert password not in out
            assert installed(sandbox, python) == {"tok-install": "2.0"}, installer
    finally:
        netrc.unlink()
