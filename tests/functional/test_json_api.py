"""/pypi/<name>/json in the public index's shape."""

import json
from urllib.parse import quote

import pytest
from helpers import ADMIN, upload


@pytest.fixture
def project(app, dists):
    for v in ("1.0", "2.0", "3.0rc1"):
        upload(app, dists.wheel("Demo_Pkg", v, requires_dist=["other>=1"]), "Demo_Pkg", v)
    upload(app, dists.sdist("Demo_Pkg", "2.0"), "Demo_Pkg", "2.0")
    return app


def test_project_json(project):
    data = project.get("/pypi/demo-pkg/json").json
    assert set(data) >= {"info", "last_serial", "releases", "urls", "vulnerabilities"}
    # latest = highest non-prerelease
    assert data["info"]["version"] == "2.0"
    assert data["info"]["name"] == "Demo_Pkg"
    assert data["info"]["requires_dist"] == ["other>=1"]
    assert set(data["releases"]) == {"1.0", "2.0", "3.0rc1"}
    assert {u["packagetype"] for u in data["urls"]} == {"bdist_wheel", "sdist"}
    url = data["urls"][0]
    assert set(url["digests"]) == {"md5", "sha256", "blake2b_256"}
    assert url["upload_time_iso_8601"].endswith("Z")
    assert url["url"].startswith("/packages/demo-pkg/")
    assert url["yanked"] is False and url["origin"] == "private"


def test_release_json_matches_canonically(project):
    data = project.get("/pypi/demo-pkg/1.0.0/json").json
    assert data["info"]["version"] == "1.0"
    assert "releases" not in data
    project.get("/pypi/demo-pkg/9.9/json", status=404)
    assert project.get("/pypi/demo-pkg/json/").json["info"]["version"] == "2.0"


def test_json_redirects_and_404(project):
    res = project.get("/pypi/Demo.Pkg/json", status=301)
    assert res.location.endswith("/pypi/demo-pkg/json")
    assert project.get("/pypi/nothing/json", status=404).json == {"message": "Not Found"}


def test_latest_skips_yanked(project):
    project.authorization = ADMIN
    project.post_json("/api/projects/demo-pkg/versions/2.0/yank", {"reason": "bad"})
    data = project.get("/pypi/demo-pkg/json").json
    assert data["info"]["version"] == "1.0"
    assert data["releases"]["2.0"][0]["yanked"] is True
    assert data["releases"]["2.0"][0]["yanked_reason"] == "bad"


@pytest.mark.parametrize("public_url,prefix", [
    (None, "/"),
    ("https://pypi.example.org/", "https://pypi.example.org/"),
    ("https://example.org/index", "https://example.org/index/"),
])
def test_urls_never_come_from_the_host_header(make_app, dists, public_url, prefix):
    """The Host header is the client's to choose (and a cache in front may share the
    answer): absolute URLs come from pypirepo.public_url, else they are relative."""
    app = make_app(**({"pypirepo.public_url": public_url} if public_url else {}))
    upload(app, dists.wheel("demo", "1.0"), "demo", "1.0")
    data = app.get("/pypi/demo/json", headers={"Host": "evil.example:666"}).json
    assert data["urls"][0]["url"] == prefix + "packages/demo/demo-1.0-py3-none-any.whl"
    assert data["info"]["project_url"] == prefix + "project/demo/"
    assert "evil" not in json.dumps(data)


@pytest.mark.parametrize("version", ["1.0\x00", "\ud7ff", "a b", "100%"])
def test_a_redirect_escapes_what_the_url_held(project, version):
    """The version of a non-normalized URL goes back into the Location header."""
    res = project.get("/pypi/Demo.Pkg/" + quote(version) + "/json", status=301)
    assert res.location.endswith("/pypi/demo-pkg/" + quote(version, safe="") + "/json")
