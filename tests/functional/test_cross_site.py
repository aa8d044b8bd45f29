"""Cross-site writes (issue 9): a browser showing another site's page can't upload, delete
or yank here with the credentials it holds; the publishing clients, which send neither
Origin nor Sec-Fetch-Site, and this site's own pages can."""

from pathlib import Path

import pytest
from distfactory import upload_fields
from helpers import ADMIN, upload

# WebTest's requests say Host: localhost:80.
CROSS_SITE = {
    "fetch": {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    "old browser": {"Origin": "https://evil.example"},
    "sibling host": {"Origin": "http://other.localhost", "Sec-Fetch-Site": "same-site"},
    "same host, other port": {"Origin": "http://localhost:8080"},
    "sandboxed": {"Origin": "null"},
    "sandboxed fetch": {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
    "fetch metadata only": {"Sec-Fetch-Site": "cross-site"},
    "lying origin": {"Origin": "http://localhost", "Sec-Fetch-Site": "cross-site"},
    "not a url": {"Origin": "http://[bad"},
}
OWN_SITE = {
    "client": {},  # twine, uv, poetry, pdm, hatch, curl
    "fetch": {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"},
    "old browser": {"Origin": "http://localhost"},
    "default port spelled out": {"Origin": "http://LOCALHOST:80"},
    "fetch metadata only": {"Sec-Fetch-Site": "same-origin"},
    "typed in": {"Sec-Fetch-Site": "none"},
}


def stored(tmp_path) -> list[str]:
    root = Path(tmp_path) / "storage"
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


def post_upload(app, path, headers, status):
    app.authorization = ADMIN
    return app.post("/legacy/", params=upload_fields(path, "demo", "1.0"), headers=headers,
                    upload_files=[("content", path.name, path.read_bytes())], status=status)


@pytest.fixture
def project(app, dists):
    upload(app, dists.wheel("demo", "1.0"), "demo", "1.0")
    app.authorization = ADMIN
    return app


@pytest.mark.parametrize("headers", CROSS_SITE.values(), ids=CROSS_SITE.keys())
def test_cross_site_upload_is_refused_and_nothing_stored(app, dists, tmp_path, headers):
    res = post_upload(app, dists.wheel("demo", "1.0"), headers, status=403)
    assert res.status.startswith("403 Cross-site request refused")
    assert "writes must come from this site" in res.text
    assert stored(tmp_path) == []
    app.get("/simple/demo/", status=404)


@pytest.mark.parametrize("headers", OWN_SITE.values(), ids=OWN_SITE.keys())
def test_own_site_and_client_uploads_are_taken(app, dists, headers):
    wheel = dists.wheel("demo", "1.0")
    post_upload(app, wheel, headers, status=200)
    assert wheel.name in app.get("/simple/demo/").text


@pytest.mark.parametrize("headers", CROSS_SITE.values(), ids=CROSS_SITE.keys())
def test_cross_site_delete_and_yank_are_refused(project, tmp_path, headers):
    before = stored(tmp_path)
    project.delete("/api/projects/demo/versions/1.0", headers=headers, status=403)
    project.delete("/api/projects/demo/files/demo-1.0-py3-none-any.whl", headers=headers,
                   status=403)
    project.post_json("/api/projects/demo/versions/1.0/yank", {"reason": "pwned"},
                      headers=headers, status=403)
    assert stored(tmp_path) == before
    page = project.get("/simple/demo/").text
    assert "demo-1.0-py3-none-any.whl" in page and "data-yanked" not in page
    assert [e["action"] for e in project.get("/api/projects/demo/events").json["events"]] \
        == ["upload"]


@pytest.mark.parametrize("headers", OWN_SITE.values(), ids=OWN_SITE.keys())
def test_own_site_yank_and_delete_are_taken(project, headers):
    project.post_json("/api/projects/demo/versions/1.0/yank", {"reason": "bad"},
                      headers=headers)
    assert 'data-yanked="bad"' in project.get("/simple/demo/").text
    project.delete("/api/projects/demo/versions/1.0", headers=headers)
    project.get("/simple/demo/", status=404)


@pytest.mark.parametrize("ctype, body", [
    ("application/x-www-form-urlencoded", b"reason=pwned"),
    ("text/plain", b'{"reason": "pwned"}'),
    ("multipart/form-data; boundary=x", b'--x\r\nContent-Disposition: form-data; '
                                        b'name="reason"\r\n\r\npwned\r\n--x--\r\n'),
    ("application/x-www-form-urlencoded", b""),
    ("", b'{"reason": "pwned"}'),
])
def test_json_api_writes_take_json_only(project, ctype, body):
    # What a form, or fetch() without a CORS preflight, can send is never enough.
    res = project.post("/api/projects/demo/versions/1.0/yank", params=body,
                       headers={"Content-Type": ctype} if ctype else {}, status=415)
    assert "application/json" in res.status
    assert "data-yanked" not in project.get("/simple/demo/").text


def test_json_api_write_with_json_or_without_a_body(project):
    project.post("/api/projects/demo/versions/1.0/yank", params=b'{"reason": "x"}',
                 headers={"Content-Type": "application/json; charset=utf-8"})
    assert 'data-yanked="x"' in project.get("/simple/demo/").text
    # `curl -X POST .../unyank`: no body, no type; no browser sends that without Origin.
    project.post("/api/projects/demo/versions/1.0/unyank")
    assert "data-yanked" not in project.get("/simple/demo/").text


def test_cross_site_refusal_comes_before_authentication(app, dists):
    # A cross-site write gets the same answer with or without credentials: the page
    # that sent it learns nothing about them.
    headers = CROSS_SITE["fetch"]
    wheel = dists.wheel("demo", "1.0")
    for auth in (None, ("Basic", ("admin", "wrong")), ADMIN):
        app.authorization = auth
        res = app.post("/legacy/", params=upload_fields(wheel, "demo", "1.0"), headers=headers,
                       upload_files=[("content", wheel.name, wheel.read_bytes())], status=403)
        assert "Cross-site" in res.text


def test_cross_site_reads_are_answered(project):
    # Links from other sites to pages and files are how an index is used.
    headers = {**CROSS_SITE["fetch"], "Sec-Fetch-Mode": "navigate"}
    project.authorization = None
    # A browser following a link to the index page is sent to the project's page.
    assert project.get("/simple/demo/", headers=headers).follow(headers=headers) \
        .status_int == 200
    assert project.get("/packages/demo/demo-1.0-py3-none-any.whl", headers=headers).body
    project.head("/simple/", headers=headers)


def test_same_origin_is_the_host_the_app_builds_its_urls_from(project):
    # Behind a trusted proxy waitress sets Host from X-Forwarded-Host; the check follows
    # what the request carries by the time it reaches the app.
    headers = {"Host": "pypi.example.org", "Origin": "https://pypi.example.org"}
    project.post_json("/api/projects/demo/versions/1.0/yank", {}, headers=headers)
    headers["Host"] = "pypi.example.org:8443"
    project.post_json("/api/projects/demo/versions/1.0/unyank", {}, headers=headers,
                      status=403)


def test_the_public_url_is_this_site_too(make_app, dists):
    # A proxy that forwards neither Host nor X-Forwarded-Host: the app sees its own
    # address, the browser the public one.
    app = make_app(**{"pypirepo.public_url": "https://pypi.example.org/index"})
    upload(app, dists.wheel("demo", "1.0"), "demo", "1.0")
    app.authorization = ADMIN
    app.post_json("/api/projects/demo/versions/1.0/yank", {},
                  headers={"Origin": "https://pypi.example.org",
                           "Sec-Fetch-Site": "same-origin"})
    app.post_json("/api/projects/demo/versions/1.0/unyank", {},
                  headers={"Origin": "https://pypi.example.org"})
    app.post_json("/api/projects/demo/versions/1.0/yank", {},
                  headers={"Origin": "http://pypi.example.org"}, status=403)
