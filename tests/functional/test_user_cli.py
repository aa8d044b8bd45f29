"""pypirepo-user, the real console script, against the database a real server reads."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import requests
from distfactory import make_wheel, upload_fields
from servers import VENV_BIN, Server

EXE = str(VENV_BIN / "pypirepo-user")


def run(ini, *args, stdin=None, ok=True, env=None):
    proc = subprocess.run([EXE, str(ini), *args], input=stdin, capture_output=True, text=True,
                          timeout=60, env=env)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture
def sql_server(tmp_path, db_url):
    srv = Server(tmp_path / "server", app={"auth.backend": "sql", "sqlalchemy.url": db_url,
                                           "pypi.default_read": "authenticated",
                                           "pypi.default_write": "admin"})
    srv.directory.mkdir()
    srv.start()
    yield srv
    srv.stop()


def eventually(check, seconds=3.0):
    """A running server follows the database within a second."""
    deadline = time.monotonic() + seconds
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def test_the_command_manages_what_a_running_server_sees(sql_server):
    srv, ini = sql_server, sql_server.directory / "server.ini"
    url = srv.url + "/simple/"
    out = run(ini, "add", "bob", "--password-stdin", stdin="b0b-secret\n")
    assert "b0b-secret" not in out.stdout + out.stderr
    assert eventually(lambda: requests.get(url, auth=("bob", "b0b-secret")).ok)
    run(ini, "passwd", "bob", "--password-stdin", stdin="new-secret\n")
    assert eventually(lambda: requests.get(url, auth=("bob", "new-secret")).ok)
    assert requests.get(url, auth=("bob", "b0b-secret")).status_code == 401

    # A grant lets bob upload to team-* projects; a group carries it.
    run(ini, "group", "team", "--add", "bob")
    out = run(ini, "grant", "local", "team-*", "upload", "group:team")
    assert out.stdout.startswith("grant ")
    listed = json.loads(run(ini, "list", "grants", "--json").stdout)["grants"]
    assert {"repository": "local", "pattern": "team-*", "permission": "upload",
            "principal": "group:team", "source": "database"}.items() <= listed[-1].items()
    assert "bob" in run(ini, "list", "groups").stdout
    assert "team" in run(ini, "list", "users").stdout

    # A token, printed once, alone on stdout; it works with __token__ at once.
    out = run(ini, "token", "bob", "--upload", "--project", "team-*", "--note", "ci",
              "--expires-in", "30d")
    token = out.stdout.strip()
    assert token.startswith("pypirepo_") and "\n" not in token
    assert "__token__" in out.stderr and token not in out.stderr
    assert requests.get(url, auth=("__token__", token)).ok
    wheel = make_wheel(srv.directory / "dists", "team-x", "1.0")
    posted = requests.post(srv.url + "/r/local/legacy/", auth=("__token__", token),
                           data=upload_fields(wheel, "team-x", "1.0"),
                           files={"content": (wheel.name, wheel.read_bytes())})
    assert posted.status_code == 200, posted.text
    listed = run(ini, "list", "tokens").stdout
    assert "bob" in listed and token[:15] in listed and token not in listed

    run(ini, "revoke", "local", "team-*", "upload", "group:team")
    assert json.loads(run(ini, "list", "grants", "--json").stdout)["grants"][-1][
        "source"] == "ini"
    token_id = json.loads(run(ini, "list", "tokens", "--json").stdout)["tokens"][0]["id"]
    run(ini, "token", "--revoke", str(token_id))
    assert eventually(lambda: requests.get(url, auth=("__token__", token)).status_code == 401)

    run(ini, "admin", "bob")
    assert eventually(lambda: requests.get(srv.url + "/api/admin/users",
                                           auth=("bob", "new-secret")).ok)
    run(ini, "remove", "bob")
    assert eventually(lambda: requests.get(url, auth=("bob", "new-secret")).status_code == 401)
    assert "Traceback" not in srv.log


def test_refusals_are_one_line_with_the_reason(sql_server):
    ini = sql_server.directory / "server.ini"
    for args, stdin, words in [
        (("add", "admin", "--password-stdin"), "x\n", "declared in the ini"),
        (("add", "bob"), None, "--password-stdin"),  # no terminal, no flag
        (("add", "b o b", "--no-password"), None, "not a user name"),
        (("passwd", "nobody", "--password-stdin"), "x\n", "No user named 'nobody'"),
        (("grant", "nope", "*", "read", "admin"), None, "No repository named 'nope'"),
        (("grant", "local", "*", "read"), None, "takes <repository"),
        (("revoke", "local", "*", "read", "admin"), None, "No such grant"),
        (("token", "nobody"), None, "No user named 'nobody'"),
        (("token", "admin", "--expires", "soon"), None, "ISO 8601"),
        (("group", "team", "--add", "nobody"), None, "No user named 'nobody'"),
    ]:
        proc = run(ini, *args, stdin=stdin, ok=False)
        assert proc.returncode == 1, args
        assert proc.stderr.startswith("pypirepo-user: ") and words in proc.stderr, \
            (args, proc.stderr)
        assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


def test_with_the_config_backend_only_tokens_are_made(tmp_path):
    srv = Server(tmp_path / "server", app={"pypi.default_read": "authenticated"})
    srv.directory.mkdir()
    srv.start()
    try:
        ini = srv.directory / "server.ini"
        proc = run(ini, "add", "bob", "--password-stdin", stdin="x\n", ok=False)
        assert proc.returncode == 1
        assert "kept in the ini" in proc.stderr and "pypirepo-hash-password" in proc.stderr
        for args in (("group", "g", "--add", "admin"), ("grant", "*", "*", "read", "admin"),
                     ("remove", "admin"), ("admin", "admin")):
            assert "kept in the ini" in run(ini, *args, ok=False).stderr
        assert "admin (admin, ini)" in run(ini, "list").stdout
        token = run(ini, "token", "admin").stdout.strip()
        assert requests.get(srv.url + "/simple/", auth=("__token__", token)).ok
    finally:
        srv.stop()


def test_a_database_not_migrated_is_one_line(tmp_path):
    ini = tmp_path / "x.ini"
    ini.write_text(f"[app:main]\nuse = egg:pypirepo\nsqlalchemy.url = sqlite:///{tmp_path}/"
                   "x.sqlite\nstorage.dir = x\nauth.backend = sql\n")
    proc = run(ini, "list", ok=False)
    assert proc.returncode == 1 and "pypirepo-migrate" in proc.stderr
    assert "Traceback" not in proc.stderr
