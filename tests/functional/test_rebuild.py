"""The cache is rebuilt from storage: reconcile at start-up and pypirepo-reindex."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

from helpers import upload
from servers import write_ini
from sqlalchemy import create_engine, text


def test_start_up_reconciles_additions_and_removals(make_app, app_settings, dists, tmp_path):
    app = make_app()
    for name in ("alpha", "beta"):
        upload(app, dists.wheel(name, "1.0"), name, "1.0")
        upload(app, dists.sdist(name, "1.0"), name, "1.0")
    app.authorization = ("Basic", ("admin", "pw"))
    app.post_json("/api/projects/alpha/versions/1.0/yank", {"reason": "old"})
    before = app.get("/simple/alpha/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
                     ).json

    # Lose the database entirely: the next start rebuilds it from storage alone.
    Path(app_settings["sqlalchemy.url"][len("sqlite:///"):]).unlink()
    app = make_app()
    after = app.get("/simple/alpha/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
                    ).json
    strip = lambda page: sorted((f["filename"], f["hashes"]["sha256"], f["yanked"], f["size"],  # noqa: E731
                                 f["upload-time"], str(f["core-metadata"])) for f in page["files"])
    assert strip(before) == strip(after)
    assert app.get("/pypi/alpha/json").json["urls"][0]["yanked_reason"] == "old"

    # A file removed from storage behind our back disappears; one added appears.
    root = tmp_path / "storage" / "packages"
    shutil.rmtree(root / "beta")
    extra = dists.wheel("gamma", "1.0")
    other = make_app(**{"storage.dir": str(tmp_path / "other"),
                        "sqlalchemy.url": f"sqlite:///{tmp_path}/other.sqlite"})
    upload(other, extra, "gamma", "1.0")
    shutil.copytree(tmp_path / "other" / "packages" / "gamma", root / "gamma")
    app = make_app()
    app.get("/simple/beta/", status=404)
    assert extra.name in app.get("/simple/gamma/").text
    index = app.get("/simple/").text
    assert "gamma" in index and "beta" not in index


def test_records_are_the_truth_not_distributions(make_app, app_settings, dists, tmp_path):
    app = make_app()
    upload(app, dists.wheel("alpha", "1.0"), "alpha", "1.0")
    record = tmp_path / "storage/packages/alpha/alpha-1.0-py3-none-any.whl.json"
    data = json.loads(record.read_text())
    assert data["sha256"] and data["project"] == "alpha" and data["metadata_sha256"]
    # an interrupted upload (distribution without record) is not listed
    (tmp_path / "storage/packages/alpha/alpha-2.0-py3-none-any.whl").write_bytes(b"partial")
    Path(app_settings["sqlalchemy.url"][len("sqlite:///"):]).unlink()
    app = make_app()
    assert "alpha-2.0" not in app.get("/simple/alpha/").text


def test_reindex_command(make_app, app_settings, dists, tmp_path):
    app = make_app()
    for i in range(5):
        upload(app, dists.wheel(f"p{i}", "1.0"), f"p{i}", "1.0")
    db = app_settings["sqlalchemy.url"]
    engine = create_engine(db)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM files WHERE filename LIKE 'p1-%' OR filename LIKE 'p2-%'"))
    # The test's settings but alice's passlib hash (the values holding a "$"); the command
    # reads [app:main] only, so the server's port is never used.
    ini = write_ini(tmp_path, {k: v for k, v in app_settings.items() if "$" not in v}, port=0)
    exe = Path(sys.executable).parent / "pypirepo-reindex"
    out = subprocess.run([str(exe), str(ini)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "added 2, removed 0, unchanged 3" in out.stdout
    assert "reading records [" in out.stderr  # the progress bar
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM files")).scalar() == 5


def test_bad_config_stops_pserve_with_one_line(server):
    server.app["pypi.fallback"] = "sometimes"
    try:
        server.start(timeout=15)
    except RuntimeError:
        pass
    lines = [line for line in server.log.splitlines() if "pypirepo" in line]
    assert server.proc.returncode not in (None, 0)
    assert lines[-1] == ("pypirepo: configuration error: pypi.fallback: expected one of none, "
                         "redirect, cache, got 'sometimes'")
    server.proc = None


def test_env_overrides_ini_in_a_real_server(server, dists):
    server.app["pypi.default_read"] = "authenticated"
    server.env["PYPIREPO_PYPI_DEFAULT_READ"] = "everyone"
    server.start()
    import requests

    assert requests.get(server.url + "/simple/").status_code == 200


def test_auto_reindex_fills_an_empty_db_first_and_a_populated_one_in_background(
        make_app, app_settings, dists, tmp_path):
    import time

    app = make_app()
    upload(app, dists.wheel("alpha", "1.0"), "alpha", "1.0")
    Path(app_settings["sqlalchemy.url"][len("sqlite:///"):]).unlink()
    # empty database: complete before the first request
    app = make_app(**{"pypirepo.reindex_on_start": "auto"})
    assert "alpha-1.0" in app.get("/simple/alpha/").text

    # populated database: a file added behind our back shows up once the walk is done
    other = make_app(**{"storage.dir": str(tmp_path / "other"),
                        "sqlalchemy.url": f"sqlite:///{tmp_path}/other.sqlite"})
    upload(other, dists.wheel("beta", "1.0"), "beta", "1.0")
    shutil.copytree(tmp_path / "other" / "packages" / "beta",
                    tmp_path / "storage" / "packages" / "beta")
    app = make_app(**{"pypirepo.reindex_on_start": "auto"})
    deadline = time.monotonic() + 10
    while "beta" not in app.get("/simple/").text:
        assert time.monotonic() < deadline, "background reconcile never finished"
        time.sleep(0.05)


def test_rebuild_keeps_two_spellings_stored_before_the_key_rule(make_app, app_settings, dists,
                                                                 tmp_path):
    """Storage written before names.filename_key may hold one distribution under two
    spellings: a rebuild lists both (one holds the key), and a third is refused."""
    app = make_app()
    wheel = dists.wheel("foo_bar", "1.0")
    upload(app, wheel, "foo_bar", "1.0")
    folder = tmp_path / "storage/packages/foo-bar"
    twin = "Foo_Bar-1.0-py3-none-any.whl"
    for ext in ("", ".metadata"):
        shutil.copy(folder / (wheel.name + ext), folder / (twin + ext))
    record = json.loads((folder / (wheel.name + ".json")).read_text())
    record["filename"] = twin
    (folder / (twin + ".json")).write_text(json.dumps(record))
    Path(app_settings["sqlalchemy.url"][len("sqlite:///"):]).unlink()
    app = make_app()
    page = app.get("/simple/foo-bar/").text
    assert wheel.name in page and twin in page
    other = dists.wheel("foo_bar", "1.0", module_source="x = 2\n")
    upload(app, other, "foo_bar", "1.0", filename="foo.bar-1.0-py3-none-any.whl", status=409)
