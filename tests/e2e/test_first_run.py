"""The README's first run, as a new user meets it: `pserve development.ini` (what `make run`
starts) on a port of their choosing, a line that says where the index is and how to log
in, and a production ini without users that says how to add one.

Each test starts the real pserve on a copy of the shipped ini in a temporary folder, so
`var/` and the generated password are the test's own.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time

import pytest
import requests

from servers import REPO, VENV_BIN, free_port, stop, wait_until

pytestmark = pytest.mark.e2e

READY = re.compile(r"^pypirepo: ready at (?P<url>\S+) \((?P<who>.*)\)$", re.M)
# A hash of "alicepw" made with pypirepo-hash-password.
ALICE_HASH = "$pbkdf2-sha256$29000$mBOC8D6HsDaGUApB6J3Tug$kVuo4xgW9oKkBaZlqq.ZBKENn5oq8PiMmksNI7mbhpw"


class Pserve:
    """`pserve <ini> <args>` in the ini's folder, its output (stdout and stderr) in a file."""

    def __init__(self, ini, *args, env=None):
        self.log_path = ini.parent / f"pserve-{time.monotonic_ns()}.log"
        clean = {k: v for k, v in os.environ.items() if not k.startswith("PYPIREPO_")}
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "pserve"), str(ini), *args], cwd=ini.parent,
            env={**clean, **(env or {})}, stdout=open(self.log_path, "wb"),
            stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def ready(self, timeout=60.0) -> re.Match:
        """Wait for the ready line; it must be the last line printed so far."""
        wait_until(lambda: READY.search(self.log), self.proc, timeout, "pserve", self.log_path)
        self.seconds = time.monotonic() - self.started
        match = READY.search(self.log)
        assert self.log.rstrip().endswith(match.group(0)), self.log
        return match

    def exit(self, timeout=60.0) -> int:
        return self.proc.wait(timeout)

    def stop(self):
        stop(self.proc)


@pytest.fixture
def site(tmp_path):
    """A folder holding copies of the shipped ini files, as a checkout would."""
    for name in ("development.ini", "production.ini"):
        shutil.copy(REPO / name, tmp_path / name)
    return tmp_path


@pytest.fixture
def pserve():
    started = []

    def run(ini, *args, env=None):
        started.append(Pserve(ini, *args, env=env))
        return started[-1]

    yield run
    for server in started:
        server.stop()


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_development_ini_says_where_and_how_to_log_in(site, pserve):
    port = free_port()
    first = pserve(site / "development.ini", f"http_port={port}")
    ready = first.ready()
    assert first.seconds < 60
    password_file = site / "var" / "admin-password"
    assert ready.group("url") == f"http://localhost:{port}/simple/"
    assert ready.group("who") == f"user admin, password in {password_file}"
    password = password_file.read_text().strip()
    assert first.log.count(password) == 1  # printed once, when it was made
    assert "pkg_resources" not in first.log and "Warning" not in first.log, first.log

    index = requests.get(ready.group("url"), timeout=10)
    assert index.status_code == 200 and "pypi:repository-version" in index.text
    # The credentials the line points at are the ones the server takes: a writer's request
    # on a file that does not exist is a 404 for them, a 401 for a wrong password.
    missing = f"http://localhost:{port}/api/projects/nothing/files/nothing-1.0.tar.gz"
    assert requests.delete(missing, auth=("admin", password), timeout=10).status_code == 404
    assert requests.delete(missing, auth=("admin", "wrong"), timeout=10).status_code == 401
    first.stop()

    again = pserve(site / "development.ini", f"http_port={port}")
    assert again.ready().group("who") == f"user admin, password in {password_file}"
    assert password not in again.log  # never printed again


def test_bootstrap_password_from_the_environment_is_not_printed(site, pserve):
    server = pserve(site / "development.ini", f"http_port={free_port()}",
                    env={"PYPIREPO_AUTH_BOOTSTRAP_PASSWORD": "env-secret-123"})
    ready = server.ready()
    assert ready.group("who") == ("user admin, password from PYPIREPO_AUTH_BOOTSTRAP_PASSWORD "
                                  "or auth.bootstrap_password")
    assert "env-secret-123" not in server.log
    assert not (site / "var" / "admin-password").exists()


def test_port_from_pserve_argument_or_environment(site, pserve):
    by_argument, by_env, both = free_port(), free_port(), free_port()
    ini = site / "development.ini"
    a = pserve(ini, f"http_port={by_argument}")
    assert a.ready().group("url") == f"http://localhost:{by_argument}/simple/"
    assert listening(by_argument)
    a.stop()

    b = pserve(ini, env={"PYPIREPO_HTTP_PORT": str(by_env)})
    assert b.ready().group("url") == f"http://localhost:{by_env}/simple/"
    assert requests.get(f"http://127.0.0.1:{by_env}/simple/", timeout=10).ok
    b.stop()

    # The command line wins over the environment.
    c = pserve(ini, f"http_port={both}", env={"PYPIREPO_HTTP_PORT": str(by_env)})
    assert c.ready().group("url") == f"http://localhost:{both}/simple/"
    assert not listening(by_env)


@pytest.mark.parametrize("args, env", [(["http_port=web"], {}),
                                       ([], {"PYPIREPO_HTTP_PORT": "70000"})])
def test_a_bad_port_is_one_line(site, pserve, args, env):
    server = pserve(site / "development.ini", *args, env=env)
    assert server.exit() == 1
    bad = args[0].split("=")[1] if args else env["PYPIREPO_HTTP_PORT"]
    assert server.log.splitlines() == [
        f"pypirepo: configuration error: http_port: expected a port number from 0 to 65535, "
        f"got {bad!r}"]
    assert not (site / "var").exists()  # stopped before the app was built


def production_env(site, **extra) -> dict:
    """production.ini's blanks filled as its README section says, with SQLite and local
    storage standing in for PostgreSQL and S3."""
    return {"PYPIREPO_SQLALCHEMY_URL": f"sqlite:///{site}/db.sqlite",
            "PYPIREPO_PYPIREPO_AUTO_MIGRATE": "true", "PYPIREPO_PYPIREPO_STORAGE": "local",
            "PYPIREPO_STORAGE_DIR": str(site / "storage"), "PYPIREPO_PYPI_FALLBACK": "none",
            "PYPIREPO_AUTH_SESSION_SECRET": "a-session-secret-for-this-test-only-0123",
            **extra}


def test_production_without_users_says_how_to_add_one(site, pserve):
    port = free_port()
    server = pserve(site / "production.ini", f"http_port={port}", env=production_env(site))
    ready = server.ready()
    assert ready.group("who") == "no user can log in yet"
    assert ready.group("url") == f"http://localhost:{port}/simple/"  # listens on 0.0.0.0
    (warning,) = [line for line in server.log.splitlines() if "WARN" in line]
    assert ("no user is defined: nobody can log in, so every request is refused (401). To add "
            "one, make a password hash with `pypirepo-hash-password` and add `user.<name> = "
            "<hash>` to [app:main] (or set PYPIREPO_USER_<NAME>=<hash>)") in warning
    assert requests.get(ready.group("url"), timeout=10).status_code == 401


def test_a_user_declared_in_the_environment_alone_can_log_in(site, pserve):
    server = pserve(site / "production.ini", f"http_port={free_port()}",
                    env=production_env(site, PYPIREPO_USER_ALICE=ALICE_HASH))
    ready = server.ready()
    assert ready.group("who") == "users alice"
    assert "WARN" not in server.log, server.log
    url = ready.group("url")
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, auth=("alice", "alicepw"), timeout=10).status_code == 200
    assert requests.get(url, auth=("alice", "nope"), timeout=10).status_code == 401


def test_production_without_a_session_secret_is_one_line(site, pserve):
    env = production_env(site)
    del env["PYPIREPO_AUTH_SESSION_SECRET"]
    server = pserve(site / "production.ini", f"http_port={free_port()}", env=env)
    assert server.exit() == 1
    (line,) = server.log.splitlines()
    assert line.startswith("pypirepo: configuration error: auth.session_secret: is required "
                           "in production (pypirepo.environment = production): set it in the "
                           "ini or as PYPIREPO_AUTH_SESSION_SECRET"), line


def test_development_keeps_its_session_secret_across_restarts(site, pserve):
    port = free_port()
    first = pserve(site / "development.ini", f"http_port={port}")
    url = first.ready().group("url").replace("/simple/", "")
    secret = site / "var" / "session-secret"
    assert secret.stat().st_mode & 0o777 == 0o600
    assert len(secret.read_text().strip()) >= 32
    password = (site / "var" / "admin-password").read_text().strip()
    browser = requests.Session()
    token = re.search(r'name="csrf_token" value="([^"]+)"',
                      browser.get(url + "/login", timeout=10).text).group(1)
    signed_in = browser.post(url + "/login", data={"username": "admin", "password": password,
                                                   "csrf_token": token}, timeout=10)
    assert "Signed in as" in signed_in.text
    first.stop()

    # A restart keeps the secret, so the browser stays signed in.
    again = pserve(site / "development.ini", f"http_port={port}")
    again.ready()
    assert "Signed in as" in browser.get(url + "/account", timeout=10).text
