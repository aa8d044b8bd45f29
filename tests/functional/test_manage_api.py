"""Writers delete files and versions and yank/unyank; who and when is recorded."""

import json
from pathlib import Path

import pytest
from helpers import ADMIN, upload


@pytest.fixture
def project(app, dists):
    for v in ("1.0", "2.0"):
        upload(app, dists.wheel("demo", v), "demo", v)
        upload(app, dists.sdist("demo", v), "demo", v)
    return app


def keys(tmp_path):
    root = Path(tmp_path) / "storage"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_delete_file(project, tmp_path):
    project.authorization = ADMIN
    # Served once first, so the process holds the project's files when the delete comes.
    project.get("/packages/demo/demo-1.0.tar.gz")
    project.get("/packages/demo/demo-1.0-py3-none-any.whl.metadata")
    res = project.delete("/api/projects/demo/files/demo-1.0.tar.gz")
    assert res.json == {"deleted": ["demo-1.0.tar.gz"]}
    assert "demo-1.0.tar.gz" not in project.get("/simple/demo/").text
    assert not any("demo-1.0.tar.gz" in k for k in keys(tmp_path))
    project.get("/packages/demo/demo-1.0.tar.gz", status=404)
    project.delete("/api/projects/demo/files/demo-1.0.tar.gz", status=404)


def test_delete_version_then_project_disappears(project, tmp_path):
    project.authorization = ADMIN
    assert len(project.delete("/api/projects/demo/versions/1.0").json["deleted"]) == 2
    assert "1.0" not in project.get("/pypi/demo/json").json["releases"]
    project.delete("/api/projects/demo/versions/2.0")
    project.get("/simple/demo/", status=404)
    assert "demo" not in project.get("/simple/").text
    assert keys(tmp_path) == []
    events = project.get("/api/projects/demo/events").json["events"]
    assert [e["action"] for e in events].count("delete") == 4
    assert all(e["user"] == "admin" for e in events)


def test_yank_unyank_is_kept_in_storage(project, tmp_path):
    project.authorization = ADMIN
    res = project.post_json("/api/projects/demo/versions/1.0/yank", {"reason": "CVE"})
    assert res.json["yanked"] is True and len(res.json["files"]) == 2
    record = json.loads((Path(tmp_path) / "storage/packages/demo/demo-1.0.tar.gz.json")
                        .read_text())
    assert record["yanked"] is True and record["yanked_reason"] == "CVE"
    assert 'data-yanked="CVE"' in project.get("/simple/demo/").text
    project.post("/api/projects/demo/versions/1.0/unyank")
    assert "data-yanked" not in project.get("/simple/demo/").text
    events = project.get("/api/projects/demo/events").json["events"]
    assert [e["action"] for e in events][-2:] == ["yank", "unyank"]
    assert events[-2]["detail"] == "CVE"


def test_yank_bad_body(project):
    project.authorization = ADMIN
    res = project.post("/api/projects/demo/versions/1.0/yank", params=b"{nope",
                       content_type="application/json", status=400)
    assert "JSON" in res.text
    project.post_json("/api/projects/demo/versions/1.0/yank", {"reason": 5}, status=400)
    project.post_json("/api/projects/demo/versions/9.0/yank", {}, status=404)


def test_anonymous_and_readers_cannot_manage(project):
    project.authorization = None
    res = project.delete("/api/projects/demo/versions/1.0", status=401)
    assert res.headers["WWW-Authenticate"].startswith("Basic")
    project.post_json("/api/projects/demo/versions/1.0/yank", {}, status=401)


@pytest.mark.parametrize("body,message", [
    (b'{"reason": "bad\\u0000"}', "'reason' contains a NUL"),
    (b'{"reason": "\\udcff"}', "'reason' contains a NUL or an invalid character"),
    (b"[" * 100000 + b"]" * 100000, "must be JSON"),
    (b'{"reason": "caf\xe9"}', "must be JSON"),
])
def test_yank_reasons_no_database_could_hold_are_400s(project, body, message):
    project.authorization = ADMIN
    res = project.post("/api/projects/demo/versions/1.0/yank", params=body,
                       content_type="application/json", status=400)
    assert message in res.text
    assert not project.get("/pypi/demo/1.0/json").json["urls"][0]["yanked"]


def test_yank_event_names_the_stored_version(project):
    project.authorization = ADMIN
    project.post_json("/api/projects/demo/versions/1.0.0.0.0/yank", {"reason": "x"})
    assert project.get("/api/projects/demo/events").json["events"][-1]["version"] == "1.0"


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_names_no_file_could_have_are_404_on_every_database(request, make_app, dists, db):
    """A NUL in a name is a 404, not a query PostgreSQL refuses with an error."""
    app = make_app(**({"sqlalchemy.url": request.getfixturevalue("pg_url")}
                      if db == "postgresql" else {}))
    upload(app, dists.wheel("demo", "1.0"), "demo", "1.0")
    app.authorization = ADMIN
    app.get("/api/projects/%00/events", status=404)
    app.delete("/api/projects/demo/files/demo%00.whl", status=404)
    app.delete("/api/projects/%00/files/demo-1.0-py3-none-any.whl", status=404)
    app.delete("/api/projects/%00/versions/1.0", status=404)
    app.post_json("/api/projects/%00/versions/1.0/yank", {"reason": "x"}, status=404)
    assert app.get("/simple/demo/").status_int == 200
