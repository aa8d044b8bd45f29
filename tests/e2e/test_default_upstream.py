"""Cache mode against the real default upstream (pip's own index), reached the way this
machine reaches it: the server gets the machine's environment (its CA bundle and proxy
variables, if any), as `make run` would. One small pure-Python project, installed with pip
and uv through a pserve running development.ini's settings; then again with the upstream
pointed at a closed port, from the cache.

This is the one test that uses the network pip itself uses.
"""

from __future__ import annotations

import configparser
import socket
import time
from pathlib import Path

import pytest
import requests

from clients import installed, tool, venv
from servers import REPO, Server

pytestmark = pytest.mark.e2e

PROJECT = "six"


def development_settings(directory: Path) -> dict:
    """development.ini's [app:main], its paths under `directory`."""
    ini = configparser.ConfigParser(defaults={"here": str(directory)})
    ini.read(REPO / "development.ini")
    return {k: v for k, v in ini.items("app:main") if k not in ("use", "here")}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _settle(spool: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while any(spool.glob("pypirepo-fetch-*")):
        assert time.monotonic() < deadline, "a fetch never finished"
        time.sleep(0.05)


def _install(sandbox, srv, name: str) -> None:
    index = f"{srv.url}/simple/"
    pip_python = venv(sandbox, sandbox.root / f"pip-{name}")
    sandbox.run([tool("pip"), "--python", pip_python, "install", "--isolated", "--no-cache-dir",
                 "--index-url", index, PROJECT], timeout=180)
    uv_python = venv(sandbox, sandbox.root / f"uv-{name}")
    sandbox.run([tool("uv"), "pip", "install", "--no-cache", "--python", uv_python,
                 "--index-url", index, PROJECT], timeout=180)
    for python in (pip_python, uv_python):
        assert set(installed(sandbox, python)) == {PROJECT}


def test_pip_and_uv_through_the_default_upstream_then_from_the_cache(tmp_path, sandbox):
    settings = development_settings(tmp_path)
    assert settings["pypi.fallback"] == "cache" and "pypi.fallback_url" not in settings
    settings["pypi.upstream_spool_dir"] = str(tmp_path / "spool")
    srv = Server(tmp_path, app=settings).start()
    try:
        health = requests.get(srv.url + "/_health", timeout=10).json()["upstream"]
        assert health["mode"] == "cache" and health["url"].startswith("https://")
        _install(sandbox, srv, "online")
        assert requests.get(srv.url + "/_health", timeout=10).json()["upstream"]["state"] \
            == "up"
        _settle(tmp_path / "spool")
    finally:
        srv.stop()
    stored = list((tmp_path / "var" / "storage" / "packages" / PROJECT).glob("*.whl"))
    assert len(stored) == 1
    # The upstream gone: the same installs come from what is cached.
    settings["pypi.fallback_url"] = f"http://127.0.0.1:{_closed_port()}/simple/"
    srv = Server(tmp_path, app=settings).start()
    try:
        _install(sandbox, srv, "offline")
        upstream = requests.get(srv.url + "/_health", timeout=10).json()["upstream"]
        assert upstream["state"] == "down" and "could not be reached" in upstream["last_error"]
    finally:
        srv.stop()
    assert "six: serving the stale upstream page" in srv.log
