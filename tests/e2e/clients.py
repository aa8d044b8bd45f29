"""Running the real packaging clients (twine, uv, pip, poetry, pdm, hatch) for the e2e tests.

Each tool runs with a throw-away HOME, XDG and cache dirs, and an environment stripped of
the machine's own pip/uv/poetry settings, so a test sees only our server and leaves
nothing behind. Every run has a timeout and fails with the tool's full output.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from servers import REPO, VENV_BIN, Server

IN_CI = os.environ.get("CI") == "true"
TOOLS_DIR = REPO / ".tools"

# Variables the tools may read from the machine; anything else (PIP_*, UV_*, POETRY_*,
# TWINE_*, VIRTUAL_ENV, ...) is dropped. The CA bundle stays for the one test that fetches
# pypirepo's dependencies from the public index.
KEPT = {
    "PATH", "LANG", "LC_ALL", "TERM", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
    "http_proxy", "https_proxy", "no_proxy",
}


def tool(name: str) -> Path:
    """The path of a client tool; skips when missing, except in CI where it fails."""
    candidates = [TOOLS_DIR / name / "bin" / name, VENV_BIN / name]
    for path in candidates:
        if path.exists():
            return path
    message = f"{name} is not installed (run `make client-tools`)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class Sandbox:
    """A private HOME with its own config and cache dirs for the client tools."""

    root: Path

    def __post_init__(self):
        for sub in ("home", "config", "cache", "data", "state", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def env(self, **extra) -> dict:
        env = {k: v for k, v in os.environ.items() if k in KEPT}
        home, config, cache = self.root / "home", self.root / "config", self.root / "cache"
        env.update({
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(config),
            "XDG_CACHE_HOME": str(cache),
            "XDG_DATA_HOME": str(self.root / "data"),
            "XDG_STATE_HOME": str(self.root / "state"),
            "TMPDIR": str(self.root / "tmp"),
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_NO_INPUT": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_CACHE_DIR": str(cache / "pip"),
            "UV_CACHE_DIR": str(cache / "uv"),
            "UV_NO_CONFIG": "1",
            "UV_PYTHON_DOWNLOADS": "never",
            "POETRY_CONFIG_DIR": str(config / "poetry"),
            "POETRY_CACHE_DIR": str(cache / "poetry"),
            "POETRY_DATA_DIR": str(self.root / "data" / "poetry"),
            "POETRY_VIRTUALENVS_IN_PROJECT": "true",
            "POETRY_NO_INTERACTION": "1",
            "PDM_HOME": str(self.root / "data" / "pdm"),
            "PDM_CACHE_DIR": str(cache / "pdm"),
            "PDM_CHECK_UPDATE": "false",
            "HATCH_DATA_DIR": str(self.root / "data" / "hatch"),
            "HATCH_CACHE_DIR": str(cache / "hatch"),
            # No desktop keyring: credentials come only from what the test passes.
            "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
            "NO_COLOR": "1",
        })
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def run(self, cmd, *, cwd=None, env=None, timeout=180, check=True,
            input=None) -> subprocess.CompletedProcess:
        """Run cmd; stdout and stderr are merged into .stdout (what a user would see)."""
        cmd = [str(c) for c in cmd]
        try:
            proc = subprocess.run(
                cmd, cwd=cwd or self.root, env=self.env(**(env or {})), input=input,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout
            if isinstance(out, bytes):
                out = out.decode(errors="replace")
            raise AssertionError(f"timed out after {timeout}s: {shlex.join(cmd)}\n{out}") from None
        if check and proc.returncode != 0:
            raise AssertionError(
                f"exit {proc.returncode}: {shlex.join(cmd)}\n{proc.stdout[-6000:]}")
        return proc


def start_server(directory: Path, **app) -> Server:
    """A pserve process for one test module (module-scoped fixtures call this)."""
    directory.mkdir(parents=True, exist_ok=True)
    srv = Server(directory, app=dict(app))
    return srv.start()


# What virtualenv puts into a new venv on its own.
SEEDS = {"pip", "setuptools", "wheel"}


def installed(sandbox: Sandbox, python) -> dict:
    """name -> version of what a venv holds (its seeds left out), read by the venv's own
    interpreter."""
    out = sandbox.run([python, "-c", (
        "import importlib.metadata as m\n"
        "for d in m.distributions(): print(d.metadata['Name'], d.version)"
    )], timeout=30).stdout
    found = dict(line.split() for line in out.splitlines() if line.strip())
    return {k: v for k, v in found.items() if k not in SEEDS}


def venv(sandbox: Sandbox, path: Path) -> Path:
    """A fresh, empty virtualenv (uv is quick at this); returns its python."""
    sandbox.run([tool("uv"), "venv", "-q", "--python", sys.executable, path], timeout=60)
    return path / "bin" / "python"


def pypirc(sandbox: Sandbox, server: Server, name: str = "pypirepo") -> Path:
    user, password = server.auth
    path = sandbox.root / "home" / ".pypirc"
    path.write_text(
        f"[distutils]\nindex-servers = {name}\n\n[{name}]\n"
        f"repository = {server.url}/legacy/\nusername = {user}\npassword = {password}\n"
    )
    return path


def simple_files(server: Server, project: str) -> dict[str, str]:
    """filename -> sha256 as the server's PEP 691 page lists them ({} when unknown)."""
    res = requests.get(f"{server.url}/simple/{project}/", timeout=10,
                       headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    if res.status_code == 404:
        return {}
    res.raise_for_status()
    return {f["filename"]: f["hashes"]["sha256"] for f in res.json()["files"]}


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
