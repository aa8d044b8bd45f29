"""The simple repository API against STANDARDS.md section 1 (S-xx items)."""

import hashlib
import html.parser
import json

import pytest
from helpers import upload

JSON = "application/vnd.pypi.simple.v1+json"
V1_HTML = "application/vnd.pypi.simple.v1+html"


@pytest.fixture
def loaded(app, dists):
    """A project with a wheel (requires-python), an sdist, and a local-version wheel."""
    w = dists.wheel("Foo.Bar_baz", "1.0", requires_python=">=3.8,<4")
    s = dists.sdist("Foo.Bar_baz", "1.0")
    local = dists.wheel("Foo.Bar_baz", "2.0+cpu")
    for path, version in ((w, "1.0"), (s, "1.0"), (local, "2.0+cpu")):
        upload(app, path, "Foo.Bar_baz", version)
    return app, {"wheel": w, "sdist": s, "local": local}


class Anchors(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.anchors, self.meta, self._open = [], {}, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a":
            self._open = attrs
        if tag == "meta":
            self.meta[attrs.get("name")] = attrs.get("content")

    def handle_data(self, data):
        if self._open is not None:
            self._open["text"] = self._open.get("text", "") + data

    def handle_endtag(self, tag):
        if tag == "a" and self._open is not None:
            self.anchors.append(self._open)
            self._open = None


def parse(text):
    p = Anchors()
    p.feed(text)
    return p


def test_root_lists_projects_html_and_json(loaded):
    app, _ = loaded
    res = app.get("/simple/")
    assert res.content_type == "text/html"
    page = parse(res.text)
    assert page.meta["pypi:repository-version"].startswith("1.")
    assert [(a["href"], a["text"]) for a in page.anchors] == [("foo-bar-baz/", "Foo.Bar_baz")]
    res = app.get("/simple/", headers={"Accept": JSON})
    assert res.headers["Content-Type"] == JSON
    data = json.loads(res.body)
    assert data["meta"]["api-version"].startswith("1.")
    assert [p["name"] for p in data["projects"]] == ["Foo.Bar_baz"]


@pytest.mark.parametrize("path,location", [
    ("/simple", "/simple/"),
    ("/simple/foo-bar-baz", "/simple/foo-bar-baz/"),
    ("/simple/Foo.Bar_baz/", "/simple/foo-bar-baz/"),
    ("/simple/Foo.Bar_baz", "/simple/foo-bar-baz/"),
    ("/simple/Foo.Bar_baz/?x=1", "/simple/foo-bar-baz/?x=1"),
])
def test_redirects_to_normalized_url_in_one_hop(loaded, path, location):
    app, _ = loaded
    res = app.get(path, status=301)
    assert res.location.endswith(location)
    assert "Accept" in res.headers["Vary"]


def test_unknown_and_invalid_names_are_404(app):
    app.get("/simple/nothing-here/", status=404)
    app.get("/simple/-bad-/", status=404)
    app.get("/simple/..%2F..%2Fetc/", status=404)


@pytest.mark.parametrize("accept,expected", [
    (None, "text/html"),
    ("*/*", "text/html"),
    ("text/plain", "text/html"),
    ("text/html", "text/html"),
    (V1_HTML, V1_HTML),
    (JSON, JSON),
    ("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
     "text/html; q=0.01", JSON),
    ("application/vnd.pypi.simple.v1+json, */*;q=0.1", JSON),
    ("text/html, application/vnd.pypi.simple.v1+html, application/vnd.pypi.simple.v1+json",
     "text/html"),
    ("text/html;q=0.01, application/vnd.pypi.simple.v1+html;q=0.2, "
     "application/vnd.pypi.simple.v1+json", JSON),
    ("application/vnd.pypi.simple.v1+json;q=0, text/html", "text/html"),
    ("application/vnd.pypi.simple.latest+json", JSON),
])
def test_content_negotiation(loaded, accept, expected):
    app, _ = loaded
    headers = {"Accept": accept} if accept else {}
    res = app.get("/simple/foo-bar-baz/", headers=headers)
    assert res.headers["Content-Type"].split(";")[0] == expected
    assert res.headers["Vary"] == "Accept"


def test_format_parameter_overrides_accept(loaded):
    app, _ = loaded
    res = app.get("/simple/foo-bar-baz/", params={"format": JSON},
                  headers={"Accept": "text/html"})
    assert res.headers["Content-Type"] == JSON


def test_html_detail_page(loaded):
    app, files = loaded
    page = parse(app.get("/simple/foo-bar-baz/").text)
    assert page.meta["pypi:repository-version"].startswith("1.")
    by_text = {a["text"]: a for a in page.anchors}
    assert set(by_text) == {p.name for p in files.values()}
    for path in files.values():
        a = by_text[path.name]
        url, _, fragment = a["href"].partition("#")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert fragment == f"sha256={digest}"
        # Anchor text is the last path segment (percent-decoded), S-10/S-11.
        assert url.rsplit("/", 1)[1].replace("%2B", "+") == path.name
        assert "data-yanked" not in a
    wheel = by_text[files["wheel"].name]
    assert wheel["data-requires-python"] == ">=3.8,<4"
    meta = app.get(wheel["href"].split("#")[0] + ".metadata").body
    expected = "sha256=" + hashlib.sha256(meta).hexdigest()
    assert wheel["data-core-metadata"] == expected == wheel["data-dist-info-metadata"]
    # sdists don't advertise metadata (S-42); never data-core-metadata="false" (S-15).
    assert "data-core-metadata" not in by_text[files["sdist"].name]
    assert 'data-core-metadata="false"' not in app.get("/simple/foo-bar-baz/").text
    # local versions are percent-encoded in hrefs (S-56)
    assert "%2B" in by_text[files["local"].name]["href"]


def test_html_escapes_requires_python(loaded):
    app, _ = loaded
    assert 'data-requires-python="&gt;=3.8,&lt;4"' in app.get("/simple/foo-bar-baz/").text


def test_json_detail_page(loaded):
    app, files = loaded
    res = app.get("/simple/foo-bar-baz/", headers={"Accept": JSON})
    data = json.loads(res.body)
    assert data["name"] == "foo-bar-baz"
    assert data["meta"]["api-version"] >= "1.1"
    assert set(data["versions"]) == {"1.0", "2.0+cpu"}
    by_name = {f["filename"]: f for f in data["files"]}
    for key, path in files.items():
        f = by_name[path.name]
        assert f["hashes"] == {"sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
        assert f["size"] == path.stat().st_size and isinstance(f["size"], int)
        assert f["upload-time"].endswith("Z") and "+00:00" not in f["upload-time"]
        assert f["yanked"] is False
        assert "dist-info-metadata" not in f  # S-24
        assert f["url"].startswith("/packages/foo-bar-baz/")
    assert by_name[files["sdist"].name]["core-metadata"] is False
    assert by_name[files["wheel"].name]["requires-python"] == ">=3.8,<4"
    assert set(by_name[files["wheel"].name]["core-metadata"]) == {"sha256"}


def test_etag_304_and_cache_headers(loaded):
    app, _ = loaded
    res = app.get("/simple/foo-bar-baz/")
    assert res.headers["Cache-Control"] == "max-age=0, must-revalidate"
    etag = res.headers["ETag"]
    again = app.get("/simple/foo-bar-baz/", headers={"If-None-Match": etag}, status=304)
    assert again.headers["ETag"] == etag
    assert again.headers["Vary"] == "Accept"
    # The JSON representation has its own ETag.
    js = app.get("/simple/foo-bar-baz/", headers={"Accept": JSON})
    assert js.headers["ETag"] != etag


def test_new_upload_changes_page_and_etag_at_once(loaded, dists):
    app, _ = loaded
    before = app.get("/simple/foo-bar-baz/")
    root_before = app.get("/simple/")
    w = dists.wheel("Foo.Bar_baz", "3.0")
    upload(app, w, "Foo.Bar_baz", "3.0")
    after = app.get("/simple/foo-bar-baz/", headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_int == 200 and w.name in after.text
    other = dists.wheel("other", "1.0")
    upload(app, other, "other", "1.0")
    assert "other/" in app.get("/simple/").text
    assert app.get("/simple/").headers["ETag"] != root_before.headers["ETag"]


def test_head_works(loaded):
    app, files = loaded
    res = app.head("/simple/foo-bar-baz/")
    assert res.status_int == 200 and res.body == b""
    res = app.head(f"/packages/foo-bar-baz/{files['sdist'].name}")
    assert res.status_int == 200
    assert res.headers["Content-Length"] == str(files["sdist"].stat().st_size)


def test_yanked_rendering(loaded):
    app, files = loaded
    app.authorization = ("Basic", ("admin", "pw"))
    app.post_json("/api/projects/foo-bar-baz/versions/1.0/yank", {"reason": "broken <b>"})
    app.authorization = None
    page = parse(app.get("/simple/foo-bar-baz/").text)
    by_text = {a["text"]: a for a in page.anchors}
    assert by_text[files["wheel"].name]["data-yanked"] == "broken <b>"
    assert 'data-yanked="broken &lt;b&gt;"' in app.get("/simple/foo-bar-baz/").text
    data = json.loads(app.get("/simple/foo-bar-baz/", headers={"Accept": JSON}).body)
    by_name = {f["filename"]: f for f in data["files"]}
    assert by_name[files["wheel"].name]["yanked"] == "broken <b>"
    assert by_name[files["local"].name]["yanked"] is False


class _Counting:
    """Wraps the Pyramid app behind CachedPages to count what reaches the router."""

    def __init__(self, app):
        self.app, self.calls = app, 0

    def __call__(self, environ, start_response):
        self.calls += 1
        return self.app(environ, start_response)


@pytest.fixture
def counted(loaded):
    app, files = loaded
    router = app.app.app = _Counting(app.app.app)
    return app, router


SAME = ("ETag", "Cache-Control", "Vary", "Content-Type", "Content-Length")


@pytest.mark.parametrize("path", ["/simple/", "/simple/foo-bar-baz/"])
@pytest.mark.parametrize("accept", [None, JSON, "*/*"])
def test_cached_pages_answer_as_the_views_do(counted, path, accept):
    """CachedPages answers anonymous reads without the router, byte for byte and header
    for header as the view (reached here through a query string it ignores)."""
    app, router = counted
    headers = {"Accept": accept} if accept else {}
    slow = app.get(path + "?via=router", headers=headers)
    calls = router.calls
    fast = app.get(path, headers=headers)
    assert router.calls == calls  # answered in front of the router
    assert fast.body == slow.body and fast.status == slow.status
    assert [fast.headers.get(h) for h in SAME] == [slow.headers.get(h) for h in SAME]
    app.get(path, headers=dict(headers, **{"If-None-Match": fast.headers["ETag"]}),
            status=304)
    head = app.head(path, headers=headers)
    assert head.body == b"" and head.headers["Content-Length"] == fast.headers["Content-Length"]
    assert router.calls == calls


@pytest.mark.parametrize("path,status", [
    ("/simple/Foo.Bar_baz/", 301), ("/simple/nope/", 404), ("/simple/foo-bar-baz", 301),
    ("/simple/a/b/", 404), ("/simple/foo-bar-baz/?format=" + JSON, 200),
])
def test_cached_pages_leave_the_rest_to_the_views(counted, path, status):
    app, router = counted
    calls = router.calls
    app.get(path, status=status)
    assert router.calls == calls + 1


def test_cached_pages_never_answer_a_login_or_a_closed_index(make_app, dists):
    from helpers import ADMIN

    app = make_app(pypi__default_read="authenticated")
    upload(app, dists.wheel("demo", "1.0"), "demo", "1.0")
    app.get("/simple/demo/", status=401)
    app.get("/simple/", status=401)
    app.authorization = ADMIN
    assert "demo-1.0" in app.get("/simple/demo/").text
    app.authorization = ("Basic", ("admin", "wrong"))
    app.get("/simple/demo/", status=401)
