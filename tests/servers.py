"""Starting real servers as plain processes for the tests.

Every server binds 127.0.0.1 on a free port, logs to a file, is polled until it answers
(failing fast if the process dies), and is stopped by the PID we started.
"""

from __future__ import annotations

import configparser
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
from distfactory import upload_fields

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, proc=None, timeout=30.0, what="server", log=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            text = Path(log).read_text()[-3000:] if log else ""
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{text}")
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.05)
    text = Path(log).read_text()[-3000:] if log else ""
    raise RuntimeError(f"{what} did not come up in {timeout}s:\n{text}")


def stop(proc: subprocess.Popen, timeout=10.0):
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


DEFAULT_APP = {
    "pypirepo.auto_migrate": "true",
    "pypirepo.reindex_on_start": "sync",
    "pypirepo.storage": "local",
    "pypi.default_read": "everyone",
    "pypi.default_write": "authenticated",
    "auth.bootstrap_user": "admin",
    "pypi.fallback": "none",
}


def shipped_ini(ini: str) -> configparser.ConfigParser:
    """A shipped ini file (development.ini, production.ini), raw; a [DEFAULT] section
    stays a section of its own instead of being merged into the others."""
    parser = configparser.ConfigParser(interpolation=None, default_section="\0")
    parser.read(REPO / ini)
    return parser


LOGGING = textwrap.dedent("""\
    [loggers]
    keys = root

    [handlers]
    keys = console

    [formatters]
    keys = generic

    [logger_root]
    level = WARNING
    handlers = console

    [handler_console]
    class = StreamHandler
    args = (sys.stderr,)
    level = NOTSET
    formatter = generic

    [formatter_generic]
    format = %(asctime)s %(levelname)s [%(name)s] %(message)s
    """)


def _line(key: str, value) -> str:
    """key = value, a value of several lines (e.g. `grants`) as the indented continuation
    lines an ini file has."""
    return f"{key} = " + "\n    ".join(str(value).split("\n")) + "\n"


def write_ini(directory: Path, app: dict, port: int, threads: int | None = None,
              server: dict | None = None, shipped: str | None = None) -> Path:
    """An ini with these app settings and development.ini's [server:main] (the tests run
    the server that ships), on 127.0.0.1:port. `shipped` names an ini whose server and
    logging sections are taken instead (for a test of what that file does)."""
    settings = dict(shipped_ini(shipped or "development.ini")["server:main"])
    settings["listen"] = f"127.0.0.1:{port}"
    if threads:
        settings["threads"] = str(threads)
    settings.update(server or {})
    parts = ["[app:main]\nuse = egg:pypirepo\n" + "".join(_line(k, v) for k, v in app.items()),
             "[server:main]\n" + "".join(_line(k, v) for k, v in settings.items())]
    if shipped:
        parser = shipped_ini(shipped)
        for section in parser.sections():
            if section.startswith(("logger", "handler", "formatter")):
                parts.append(f"[{section}]\n" + "".join(
                    f"{k} = {v}\n" for k, v in parser[section].items()))
    else:
        parts.append(LOGGING)
    ini = directory / "server.ini"
    ini.write_text("\n".join(parts))
    return ini


@dataclass
class Server:
    """A pypirepo started with `pserve` on a free port."""

    directory: Path
    app: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)
    server: dict = field(default_factory=dict)  # [server:main] over development.ini's
    shipped: str | None = None  # an ini whose server and logging sections to run
    pserve: str = str(VENV_BIN / "pserve")
    password: str = "s3cret-for-tests"
    port: int = 0
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def storage_dir(self) -> Path:
        return Path(self.settings["storage.dir"])

    @property
    def settings(self) -> dict:
        app = dict(DEFAULT_APP)
        app.setdefault("sqlalchemy.url", f"sqlite:///{self.directory}/db.sqlite")
        app.setdefault("storage.dir", str(self.directory / "storage"))
        app.update(self.app)
        return app

    def start(self, timeout=30.0) -> Server:
        self.port = self.port or free_port()
        ini = write_ini(self.directory, self.settings, self.port, server=self.server,
                        shipped=self.shipped)
        env = dict(os.environ, PYPIREPO_AUTH_BOOTSTRAP_PASSWORD=self.password, **self.env)
        log = self.directory / "server.log"
        self.proc = subprocess.Popen(
            [self.pserve, str(ini)], cwd=self.directory, env=env,
            stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_until(lambda: requests.get(self.url + "/_health", timeout=1).ok, self.proc,
                   timeout, "pserve", log)
        return self

    def stop(self):
        if self.proc is not None:
            stop(self.proc)
            self.proc = None

    @property
    def log(self) -> str:
        path = self.directory / "server.log"
        return path.read_text() if path.exists() else ""

    @property
    def auth(self):
        return ("admin", self.password)

    def upload(self, path: Path, name: str, version: str, timeout: float | None = None):
        """Post a file to /legacy/ as the admin, with the fields twine sends; it must be
        taken (200)."""
        res = requests.post(f"{self.url}/legacy/", auth=self.auth, timeout=timeout,
                            data=upload_fields(path, name, version),
                            files={"content": (path.name, path.read_bytes())})
        assert res.status_code == 200, res.text
        return res


def pg_bin() -> Path:
    out = subprocess.run(["dpkg", "-L", "postgresql-15"], capture_output=True, text=True,
                         check=True).stdout
    initdb = next(line for line in out.splitlines() if line.endswith("bin/initdb"))
    return Path(initdb).parent


class PostgreSQL:
    """A throwaway PostgreSQL cluster of Debian's postgresql-15, trusting local logins."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="pg-", dir="/tmp"))
        self.port = free_port()
        self.bin = pg_bin()

    def start(self) -> PostgreSQL:
        shutil.chown(self.dir, "postgres", "postgres")
        run = ["runuser", "-u", "postgres", "--"]
        subprocess.run(run + [str(self.bin / "initdb"), "-D", str(self.dir / "data"), "-U",
                              "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8",
                              "--no-sync"], check=True, capture_output=True)
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        subprocess.run(run + [str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-l",
                              str(self.dir / "server.log"), "-w", "-t", "30", "-o", opts,
                              "start"], check=True, capture_output=True)
        return self

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def create_database(self, name: str) -> str:
        subprocess.run(["runuser", "-u", "postgres", "--", str(self.bin / "createdb"), "-h",
                        "127.0.0.1", "-p", str(self.port), name], check=True,
                       capture_output=True)
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def add_role_with_password(self, name: str, password: str) -> None:
        """A role that must log in with its password: the cluster trusts every other role,
        so pg_hba.conf gets a scram-sha-256 line for this one, read on a reload."""
        import psycopg

        with psycopg.connect(self.url.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
        hba = self.dir / "data" / "pg_hba.conf"
        hba.write_text(f"host all {name} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
        subprocess.run(["runuser", "-u", "postgres", "--", str(self.bin / "pg_ctl"), "-D",
                        str(self.dir / "data"), "reload"], check=True, capture_output=True)

        def refused():  # the reload is a signal: wait until the postmaster has read it
            try:
                psycopg.connect(f"postgresql://{name}:wrong@127.0.0.1:{self.port}/postgres",
                                connect_timeout=2).close()
            except psycopg.OperationalError as exc:
                return "password authentication failed" in str(exc)
            return False

        wait_until(refused, timeout=10, what="pg_hba.conf reload")

    def stop(self):
        subprocess.run(["runuser", "-u", "postgres", "--", str(self.bin / "pg_ctl"), "-D",
                        str(self.dir / "data"), "-m", "immediate", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


class ForwardProxy:
    """A real forward proxy (the `proxy.py` package) as its own process: CONNECT for
    https, absolute-form GET for http, optionally demanding Basic credentials (407)."""

    def __init__(self, directory: Path, basic_auth: str | None = None):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.basic_auth = basic_auth
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def log_path(self) -> Path:
        return self.directory / "proxy.log"

    def start(self, timeout=30.0) -> ForwardProxy:
        self.port = free_port()
        argv = [str(VENV_BIN / "proxy"), "--hostname", "127.0.0.1", "--port", str(self.port),
                "--threaded", "--num-workers", "1", "--num-acceptors", "1",
                "--log-level", "INFO", "--log-file", str(self.log_path)]
        if self.basic_auth:
            argv += ["--basic-auth", self.basic_auth]
        self.proc = subprocess.Popen(argv, cwd=self.directory, stdout=subprocess.DEVNULL,
                                     stderr=open(self.directory / "stderr.log", "ab"),
                                     start_new_session=True)

        def listening():
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True

        wait_until(listening, self.proc, timeout, "proxy.py", self.directory / "stderr.log")
        return self

    def url(self, credentials: str | None = None) -> str:
        return f"http://{credentials + '@' if credentials else ''}127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def stop(self):
        if self.proc is not None:
            stop(self.proc)
            self.proc = None
