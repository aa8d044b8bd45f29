"""Posting uploads through WebTest the way the real clients do."""

from __future__ import annotations

import contextlib
import itertools
import re
import time
from pathlib import Path

import requests
from distfactory import make_sdist, make_wheel, upload_fields
from servers import Server

ADMIN = ("Basic", ("admin", "pw"))
# The CSRF token in a page's forms (access.session).
TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def upload(app, path: Path, name: str, version: str, status=200, auth=ADMIN, fields=None,
           drop=(), filename=None, content=None):
    params = upload_fields(path, name, version)
    params.update(fields or {})
    for key in drop:
        params.pop(key, None)
    app.authorization = auth
    try:
        return app.post(
            "/legacy/", params=params, status=status,
            upload_files=[("content", filename or path.name,
                           content if content is not None else path.read_bytes())],
        )
    finally:
        app.authorization = None


def check_processes_share_one_database(database_url: str, tmp_path: Path) -> None:
    """Two pserve processes on one database and one storage: an upload through either
    shows on the very next request to the other, page caches warmed before it."""
    storage = tmp_path / "shared-storage"
    servers = []
    try:
        for n in ("a", "b"):
            d = tmp_path / n
            d.mkdir()
            srv = Server(d, app={"sqlalchemy.url": database_url, "storage.dir": str(storage)})
            servers.append(srv.start())
        a, b = servers
        files = tmp_path / "dists"
        for i in range(5):
            wheel = make_wheel(files, "shared", f"1.{i}")
            # warm b's page cache, then upload through a, then ask b at once
            b_before = requests.get(b.url + "/simple/shared/")
            a.upload(wheel, "shared", f"1.{i}")
            page = requests.get(b.url + "/simple/shared/",
                                headers={"If-None-Match": b_before.headers.get("ETag", "")})
            assert page.status_code == 200 and wheel.name in page.text
            assert requests.get(b.url + "/packages/shared/" + wheel.name).content == \
                wheel.read_bytes()
        sdist = make_sdist(files, "second", "1.0")
        requests.get(b.url + "/simple/")
        b.upload(sdist, "second", "1.0")
        assert "second/" in requests.get(a.url + "/simple/").text
    finally:
        for s in servers:
            s.stop()


@contextlib.contextmanager
def fallback_apps(make_app, **defaults):
    """A builder of apps with the fallback's settings (`defaults`, then each call's own).
    Afterwards their fetches and page writes are waited for, so that what they still do
    counts for this test alone, and their upstream connections are closed."""
    built = []

    def build(**settings):
        app = make_app(**{**defaults, **settings})
        built.append(app)
        return app

    try:
        yield build
    finally:
        for app in built:
            fallback = proxy_repo(app)
            if fallback.fetcher is not None:
                fallback.fetcher.flush()
                fallback.pages.flush()
            fallback.close()


def numbered(prefix: Path):
    """(database URL, storage folder) pairs of their own, one per call: apps that must not
    share what they cached."""
    for n in itertools.count():
        yield f"sqlite:///{prefix}/db{n}.sqlite", str(prefix / f"storage{n}")


def service(app, interface):
    """One of the app's services (pypirepo.interfaces), for tests that look inside."""
    return app.app.registry.getUtility(interface)


def proxy_repo(app, name: str = "pypi"):
    """The app's proxy repository (the upstream fallback of a server without declared
    repositories)."""
    from pypirepo.interfaces import IRepositories

    return service(app, IRepositories)[name]


def storage(app):
    from pypirepo.interfaces import IStorage

    return service(app, IStorage)


# --- browser sessions (the login form) ---------------------------------------------------


def login_token(app) -> str:
    """The login form's CSRF token (its cookie is kept by the app's cookie jar)."""
    return TOKEN_RE.search(app.get("/login").text).group(1)


def login(app, user="alice", password="alicepw", status=303, **fields):
    """Sign the WebTest browser in with the login form."""
    token = fields.pop("csrf_token", None) or login_token(app)
    return app.post("/login", {"username": user, "password": password, "csrf_token": token,
                               **fields}, status=status)


def csrf(app) -> str:
    """The signed-in session's token, as every page's forms carry it."""
    return TOKEN_RE.search(app.get("/account").text).group(1)


def seconds_until(check, limit: float = 5.0) -> float:
    """How long until check() holds (another process following a change); fails after
    limit seconds."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < limit, "not seen"
        time.sleep(0.02)
    return time.monotonic() - started
