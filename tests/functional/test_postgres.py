"""PostgreSQL as production runs it: migrations, the cache, and several processes."""

import subprocess
import sys
from pathlib import Path

import pytest
import requests
from helpers import check_processes_share_one_database, upload
from servers import Server

pytestmark = pytest.mark.postgres


def test_app_on_postgres(make_app, pg_url, dists):
    app = make_app(**{"sqlalchemy.url": pg_url})
    upload(app, dists.wheel("demo", "1.0"), "demo", "1.0")
    upload(app, dists.sdist("demo", "1.0"), "demo", "1.0")
    assert app.get("/pypi/demo/json").json["info"]["version"] == "1.0"
    # Served from the project's files as read on the freshness connection (types included).
    wheel = app.get("/packages/demo/demo-1.0-py3-none-any.whl")
    assert wheel.headers["Last-Modified"] and wheel.content_length == len(wheel.body)
    assert app.get("/packages/demo/demo-1.0-py3-none-any.whl.metadata").body
    app.authorization = ("Basic", ("admin", "pw"))
    app.post_json("/api/projects/demo/versions/1.0/yank", {"reason": "x"})
    app.delete("/api/projects/demo/files/demo-1.0.tar.gz")
    assert "data-yanked" in app.get("/simple/demo/").text


def test_migrate_command_on_postgres(pg_url, tmp_path):
    ini = tmp_path / "prod.ini"
    ini.write_text("[app:main]\nuse = egg:pypirepo\nsqlalchemy.url =\n")
    exe = Path(sys.executable).parent / "pypirepo-migrate"
    out = subprocess.run([str(exe), str(ini)], capture_output=True, text=True, timeout=60,
                         env={"PYPIREPO_SQLALCHEMY_URL": pg_url, "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    from sqlalchemy import create_engine, inspect

    assert {"projects", "files", "events", "alembic_version"} <= set(
        inspect(create_engine(pg_url)).get_table_names())


def test_two_processes_share_one_database(pg_url, tmp_path):
    """A new upload shows on the very next request to either process (no stale caches)."""
    check_processes_share_one_database(pg_url, tmp_path)


def test_concurrent_start_up_reconcile(make_app, app_settings, pg_url, tmp_path, dists):
    """Several instances starting at once on one bucket and one database all come up."""
    storage = app_settings["storage.dir"]
    seed = make_app()  # on SQLite, filling the storage the instances share
    for i in range(30):
        upload(seed, dists.wheel(f"p{i}", "1.0"), f"p{i}", "1.0")
    servers = []
    for n in ("a", "b", "c"):
        d = tmp_path / n
        d.mkdir()
        srv = Server(d, app={"sqlalchemy.url": pg_url, "storage.dir": storage})
        servers.append(srv)
    try:
        import threading

        threads = [threading.Thread(target=s.start) for s in servers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for s in servers:
            page = requests.get(s.url + "/simple/", headers={
                "Accept": "application/vnd.pypi.simple.v1+json"}).json()
            assert len(page["projects"]) == 30
    finally:
        for s in servers:
            s.stop()
