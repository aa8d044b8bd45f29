"""A start that cannot go on stops with one line that names the setting, never a traceback.

Run as an operator would: the real `pserve` and console scripts, on the shipped
production.ini (blank keys) or a small ini, against a real PostgreSQL that refuses, asks
for a password or lacks the database, and SQLite paths that are not a database.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
import uuid

import pytest

from servers import REPO, VENV_BIN, free_port

pytestmark = pytest.mark.e2e


def run(command: str, ini, env: dict | None = None, *args) -> tuple[int, list[str]]:
    """Run a console script; (exit status, the lines it printed on stdout and stderr)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PYPIREPO_")}
    proc = subprocess.run([str(VENV_BIN / command), str(ini), *args], env={**clean, **(env or {})},
                          cwd=ini.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=60)
    return proc.returncode, proc.stdout.splitlines()


def small_ini(directory, url: str):
    ini = directory / "site.ini"
    ini.write_text(textwrap.dedent(f"""\
        [app:main]
        use = egg:pypirepo
        sqlalchemy.url = {url}
        pypirepo.storage = local
        storage.dir = %(here)s/storage

        [server:main]
        use = egg:waitress#main
        listen = 127.0.0.1:{free_port()}
        """))
    return ini


# --- production.ini's blanks -------------------------------------------------------------

@pytest.fixture
def production_ini(tmp_path):
    ini = tmp_path / "production.ini"
    shutil.copy(REPO / "production.ini", ini)
    return ini


REQUIRED_URL = ("pypirepo: configuration error: sqlalchemy.url: is required (set it in the ini "
                "or as PYPIREPO_SQLALCHEMY_URL)")


@pytest.mark.parametrize("command", ["pserve", "pypirepo-migrate", "pypirepo-reindex"])
def test_blank_database_url_is_one_line(production_ini, command):
    status, lines = run(command, production_ini)
    assert (status, lines) == (1, [REQUIRED_URL])


@pytest.mark.parametrize("backend, key", [("s3", "storage.bucket"), ("gcs", "storage.bucket"),
                                          ("azure", "storage.container")])
@pytest.mark.parametrize("command", ["pserve", "pypirepo-reindex"])
def test_blank_bucket_names_its_key(production_ini, tmp_path, backend, key, command):
    env = {"PYPIREPO_SQLALCHEMY_URL": f"sqlite:///{tmp_path}/db.sqlite",
           "PYPIREPO_PYPIREPO_AUTO_MIGRATE": "true", "PYPIREPO_PYPIREPO_STORAGE": backend,
           "PYPIREPO_AUTH_SESSION_SECRET": "a-session-secret-for-this-test-only-0123"}
    status, lines = run(command, production_ini, env)
    variable = "PYPIREPO_" + key.replace(".", "_").upper()
    assert (status, lines) == (1, [f"pypirepo: configuration error: {key}: is required "
                                   f"(set it in the ini or as {variable})"])


# --- a database that cannot be used -----------------------------------------------------

def _pg_cases(postgres):
    role, secret = "r" + uuid.uuid4().hex[:10], uuid.uuid4().hex
    postgres.add_role_with_password(role, secret)
    host = f"127.0.0.1:{postgres.port}"
    return {
        "refused": (f"postgresql+psycopg://pypirepo:{secret}@127.0.0.1:{free_port()}/pypirepo",
                    "Connection refused"),
        "wrong password": (f"postgresql+psycopg://{role}:{secret}-wrong@{host}/postgres",
                           f'password authentication failed for user "{role}"'),
        "missing database": (f"postgresql+psycopg://{role}:{secret}@{host}/nosuchdb",
                             'database "nosuchdb" does not exist'),
    }


@pytest.mark.postgres
@pytest.mark.parametrize("case", ["refused", "wrong password", "missing database"])
@pytest.mark.parametrize("command", ["pserve", "pypirepo-migrate"])
def test_unusable_postgres_says_what_failed(postgres, tmp_path, case, command):
    url, reason = _pg_cases(postgres)[case]
    status, lines = run(command, small_ini(tmp_path, "ignored"), {"PYPIREPO_SQLALCHEMY_URL": url})
    assert status == 1 and len(lines) == 1, lines
    (line,) = lines
    password = url.split(":")[2].split("@")[0]
    assert password not in line  # masked
    shown = url.replace(password, "***")
    assert line.startswith(f"pypirepo: cannot use the database of sqlalchemy.url ({shown}): ")
    assert reason in line
    assert "schema is not current" not in line


@pytest.mark.postgres
def test_empty_postgres_database_still_asks_for_a_migration(pg_url, tmp_path):
    """The one case that really is "no schema" keeps its advice."""
    status, lines = run("pserve", small_ini(tmp_path, pg_url))
    assert (status, lines) == (1, ["pypirepo: the database schema is not current; run "
                                   "`pypirepo-migrate <your ini>` first"])


@pytest.mark.parametrize("case", ["folder", "not a database", "under a file"])
@pytest.mark.parametrize("command", ["pserve", "pypirepo-migrate"])
def test_unusable_sqlite_says_what_failed(tmp_path, case, command):
    path = tmp_path / "db.sqlite"
    if case == "folder":
        path.mkdir()
        reason = "unable to open database file"
    elif case == "not a database":
        path.write_bytes(b"not a database " * 400)
        reason = "file is not a database"
    else:
        (tmp_path / "file").write_text("x")
        path = tmp_path / "file" / "db.sqlite"
        reason = f"cannot create the folder {tmp_path / 'file'}: "
    status, lines = run(command, small_ini(tmp_path, f"sqlite:///{path}"))
    assert status == 1 and len(lines) == 1, lines
    assert lines[0].startswith(f"pypirepo: cannot use the database of sqlalchemy.url "
                               f"(sqlite:///{path}): {reason}")


@pytest.mark.parametrize("url, reason", [
    ("postgres://u:p@h/d", "Can't load plugin: sqlalchemy.dialects:postgres"),
    ("not a url", "Could not parse SQLAlchemy URL"),
])
def test_url_sqlalchemy_cannot_use_names_the_key(tmp_path, url, reason):
    status, lines = run("pypirepo-migrate", small_ini(tmp_path, url))
    assert status == 1 and len(lines) == 1, lines
    assert lines[0].startswith(f"pypirepo: configuration error: sqlalchemy.url: {reason}")
