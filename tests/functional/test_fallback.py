"""The fallback modes against a real upstream index on loopback (tests/upstream_server.py).

The matrix is pypicloud's (mode x held locally x may read x may cache x logged in), each
case checked for status, body, what the upstream was asked and what ends up in storage;
then the pieces one by one: private wins, merging on the allow-list, the upload guard,
HTML-only upstreams, ETag revalidation, the TTL, restarts, outages, hash mismatches, the
cooldown and .metadata.
"""

from __future__ import annotations

import hashlib
import json
import logging

import pytest
from helpers import ADMIN, fallback_apps, proxy_repo, storage, upload
from distfactory import wheel_name
from upstream_server import UpstreamIndex, UpstreamServer

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}
ALICE = ("Basic", ("alice", "alicepw"))


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    index = UpstreamIndex(tmp_path_factory.mktemp("upstream"))
    index.add("pubpkg", "1.0", requires_python=">=3.8")
    index.add("pubpkg", "2.0")
    index.add("privpkg", "99.0")  # the dependency-confusion bait for our private name
    index.add("oldpkg", "1.0", age_days=30)
    index.add("oldpkg", "2.0", age_days=0)  # fresh: the cooldown hides it
    index.add("yankpkg", "1.0", yanked="broken build")
    index.add("badpkg", "1.0", sdist=False)
    server = UpstreamServer(index).start()
    yield server
    server.stop()


@pytest.fixture
def make_fallback_app(make_app, up):
    with fallback_apps(make_app, pypi__fallback_url=up.simple_url,
                       pypi__cache_update="everyone", pypi__upstream_connect_timeout="1",
                       pypi__upstream_read_timeout="1", pypi__upstream_retries="0") as build:
        yield lambda mode="cache", **settings: build(pypi__fallback=mode, **settings)


def stored(app) -> set[str]:
    """Every key under the storage root of the app."""
    return {o.key for o in storage(app).list("")}


def upstream_wheel(up, project, version):
    return up.index.file(project, wheel_name(project, version))


# --- the matrix ------------------------------------------------------------------------------

MODES = ["none", "redirect", "cache"]


def expected(mode, held, read, cache, user):
    """(page status, file status) as pypirepo answers each case.

    Unlike pypicloud, a caller without read permission never reaches the fallback: the
    anonymous one is asked to log in (pip only sends credentials after a 401), a user is
    refused (a 404 would let uv fall through to another index).
    """
    if not read:
        return (403, 403) if user else (401, 401)
    if held:
        return 200, 404  # only the private files; the upstream's file is never fetched
    if mode == "none":
        return 404, 404
    if mode == "redirect":
        return 302, 302
    if not cache:
        return (404, 404) if user else (401, 401)
    return 200, 200


CASES = [(m, h, r, c, u) for m in MODES for h in (False, True) for r in (True, False)
         for c in (True, False) for u in (False, True)]


@pytest.mark.parametrize("mode,held,read,cache,user", CASES, ids=[
    f"{m}-{'held' if h else 'absent'}-{'read' if r else 'noread'}-"
    f"{'cache' if c else 'nocache'}-{'alice' if u else 'anon'}" for m, h, r, c, u in CASES])
def test_matrix(make_fallback_app, up, dists, mode, held, read, cache, user):
    app = make_fallback_app(
        mode,
        pypi__default_read="everyone" if read else "admin",
        pypi__default_write="authenticated" if read else "admin",  # writers may read
        pypi__cache_update="everyone" if cache else "admin",
    )
    name = "privpkg" if held else "pubpkg"
    private = None
    if held:
        private = dists.wheel("privpkg", "1.0")
        upload(app, private, "privpkg", "1.0")  # an admin may claim an upstream name
    before = stored(app)
    up.reset_counters()
    app.authorization = ALICE if user else None
    page_status, file_status = expected(mode, held, read, cache, user)

    page = app.get(f"/simple/{name}/", headers=JSON, status=page_status)
    wheel = upstream_wheel(up, name, "99.0" if held else "1.0")
    file = app.get(f"/packages/{name}/{wheel.filename}", status=file_status)

    if page_status in (401, 403):
        assert page.headers.get("WWW-Authenticate", "").startswith("Basic") == \
            (page_status == 401)
        assert stored(app) == before
        assert up.stats() == {}  # an unauthorized caller never makes us ask the upstream
        return
    if held:
        files = [f["filename"] for f in page.json["files"]]
        assert files == [private.name]
        assert page.json["versions"] == ["1.0"]
        assert up.page_requests("privpkg") == 0  # private names never consult upstream
        assert up.file_requests(wheel.filename) == 0
        assert stored(app) == before
        return
    if mode == "none":
        assert stored(app) == before and up.stats() == {}
        return
    if mode == "redirect":
        assert page.location == up.simple_url + "pubpkg/"
        assert file.location == f"{up.url}/files/pubpkg/{wheel.filename}"
        assert up.file_requests(wheel.filename) == 0
        assert stored(app) == before
        return
    if not cache:
        assert stored(app) == before
        assert up.file_requests(wheel.filename) == 0
        assert "may fetch it from the upstream index" in page.text
        return
    # cache mode, allowed to fill the cache: our URLs, upstream's hashes, the file stored.
    entries = {f["filename"]: f for f in page.json["files"]}
    assert set(entries) == {f.filename for f in up.index.projects["pubpkg"]}
    entry = entries[wheel.filename]
    assert entry["url"] == f"/packages/pubpkg/{wheel.filename}"
    assert entry["hashes"] == {"sha256": wheel.sha256}
    assert entry["requires-python"] == ">=3.8"
    assert entry["core-metadata"] == {"sha256": wheel.metadata_sha256}
    assert entry["size"] == wheel.size and entry["upload-time"].endswith("Z")
    assert page.json["versions"] == ["1.0", "2.0"]
    assert hashlib.sha256(file.body).hexdigest() == wheel.sha256
    # Stored by the fetch once verified, right after the client got the last byte.
    _wait_stored(app, f"packages/pubpkg/{wheel.filename}.json")
    new = stored(app) - before
    assert f"packages/pubpkg/{wheel.filename}" in new
    assert f"packages/pubpkg/{wheel.filename}.json" in new
    assert up.file_requests(wheel.filename) == 1


# --- cache mode in detail ------------------------------------------------------------------------

def _wait_stored(app, key, timeout=10.0):
    import time

    fetcher = proxy_repo(app).fetcher
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # Stored, and its row committed (the fetch is done once it is no longer in flight).
        if key in stored(app) and not fetcher._flights:
            return
        time.sleep(0.02)
    raise AssertionError(f"{key} never reached storage")


def test_cached_file_is_local_and_marked_upstream(make_fallback_app, up):
    app = make_fallback_app("cache")
    wheel = upstream_wheel(up, "pubpkg", "2.0")
    first = app.get(f"/packages/pubpkg/{wheel.filename}")
    assert hashlib.sha256(first.body).hexdigest() == wheel.sha256
    _wait_stored(app, f"packages/pubpkg/{wheel.filename}.json")
    up.down()
    # Served from storage now, with ranges, while the upstream is gone.
    again = app.get(f"/packages/pubpkg/{wheel.filename}", headers={"Range": "bytes=0-9"},
                    status=206)
    assert again.body == first.body[:10]
    record = json.loads(storage(app).read_bytes(
        f"packages/pubpkg/{wheel.filename}.json"))
    assert record["origin"] == "upstream" and record["sha256"] == wheel.sha256
    api = app.get("/pypi/pubpkg/json").json
    assert [u["origin"] for u in api["urls"]] == ["upstream"]
    events = app.get("/api/projects/pubpkg/events").json["events"]
    assert [(e["action"], e["filename"], e["detail"]) for e in events] == [
        ("cache", wheel.filename, "fetched from upstream")]
    # The wheel's own METADATA became the sidecar, with the upstream's hash.
    meta = app.get(f"/packages/pubpkg/{wheel.filename}.metadata")
    assert meta.body == wheel.metadata


def test_files_waiting_to_be_stored_are_stored_when_the_server_exits(make_fallback_app, up):
    import time
    import weakref

    from pypirepo.fallback.fetcher import _store_at_exit

    app = make_fallback_app("cache")
    wheel = upstream_wheel(up, "pubpkg", "2.0")
    app.get(f"/packages/pubpkg/{wheel.filename}")
    fetcher = proxy_repo(app).fetcher
    deadline = time.monotonic() + 5
    while not fetcher._store_queue.unfinished_tasks and time.monotonic() < deadline:
        time.sleep(0.005)
    # Verified and queued; storing waits for the client to be done, an exit does not.
    assert f"packages/pubpkg/{wheel.filename}.json" not in stored(app)
    _store_at_exit(weakref.ref(fetcher))
    assert f"packages/pubpkg/{wheel.filename}.json" in stored(app)
    assert not fetcher._flights


def test_metadata_fetched_verified_and_cached(make_fallback_app, up):
    app = make_fallback_app("cache", pypi__upstream_prefetch="false")
    wheel = upstream_wheel(up, "pubpkg", "1.0")
    res = app.get(f"/packages/pubpkg/{wheel.filename}.metadata")
    assert res.body == wheel.metadata
    assert up.stats().get(f"/files/pubpkg/{wheel.filename}.metadata") == 1
    # Asked again before and after it is written to storage: never fetched twice.
    assert app.get(f"/packages/pubpkg/{wheel.filename}.metadata").body == wheel.metadata
    proxy_repo(app).fetcher.flush()
    assert f"packages/pubpkg/{wheel.filename}.metadata" in stored(app)
    assert proxy_repo(app).fetcher.sidecar(
        f"packages/pubpkg/{wheel.filename}.metadata") is None
    assert app.get(f"/packages/pubpkg/{wheel.filename}.metadata").body == wheel.metadata
    assert up.stats().get(f"/files/pubpkg/{wheel.filename}.metadata") == 1
    # An sdist has no sidecar, and the wheel itself was not fetched for it.
    sdist = next(f for f in up.index.projects["pubpkg"] if f.filename.endswith(".tar.gz"))
    app.get(f"/packages/pubpkg/{sdist.filename}.metadata", status=404)
    assert up.file_requests(wheel.filename) == 0


def test_metadata_request_prefetches_its_wheel(make_fallback_app, up):
    app = make_fallback_app("cache")
    wheel = upstream_wheel(up, "pubpkg", "2.0")
    app.get(f"/packages/pubpkg/{wheel.filename}.metadata")
    # The resolver asked for the metadata: the wheel it downloads next is fetched already.
    _wait_stored(app, f"packages/pubpkg/{wheel.filename}.json")
    assert up.file_requests(wheel.filename) == 1
    body = app.get(f"/packages/pubpkg/{wheel.filename}").body
    assert hashlib.sha256(body).hexdigest() == wheel.sha256
    assert up.file_requests(wheel.filename) == 1
    # The sidecar, written once by whichever came first, is served from storage now.
    proxy_repo(app).fetcher.flush()
    assert storage(app).read_bytes(
        f"packages/pubpkg/{wheel.filename}.metadata") == wheel.metadata
    assert app.get(f"/packages/pubpkg/{wheel.filename}.metadata").body == wheel.metadata
    assert up.stats().get(f"/files/pubpkg/{wheel.filename}.metadata") == 1
    # Not above the size limit, and never for a caller who may not fill the cache.
    small = make_fallback_app("cache", pypi__upstream_prefetch_max_size="100")
    other = upstream_wheel(up, "pubpkg", "1.0")
    small.get(f"/packages/pubpkg/{other.filename}.metadata")
    assert up.file_requests(other.filename) == 0


def test_unknown_file_and_project(make_fallback_app, up):
    app = make_fallback_app("cache")
    app.get("/packages/pubpkg/pubpkg-7.0-py3-none-any.whl", status=404)
    res = app.get("/simple/nosuchpkg/", status=404)
    assert "nosuchpkg" in res.text
    # "Not found" is an answer, remembered for the TTL: no second upstream call.
    app.get("/simple/nosuchpkg/", status=404)
    assert up.page_requests("nosuchpkg") == 1


def test_yanked_upstream_file(make_fallback_app, up):
    app = make_fallback_app("cache")
    page = app.get("/simple/yankpkg/", headers=JSON)
    assert {f["yanked"] for f in page.json["files"]} == {"broken build"}
    html = app.get("/simple/yankpkg/")
    assert 'data-yanked="broken build"' in html.text


def test_html_only_upstream(make_fallback_app, up):
    up.control(html_only=True)
    app = make_fallback_app("cache")
    page = app.get("/simple/pubpkg/", headers=JSON)
    wheel = upstream_wheel(up, "pubpkg", "1.0")
    entry = {f["filename"]: f for f in page.json["files"]}[wheel.filename]
    assert entry["hashes"] == {"sha256": wheel.sha256}
    assert entry["requires-python"] == ">=3.8"
    assert entry["core-metadata"] == {"sha256": wheel.metadata_sha256}
    assert entry["url"] == f"/packages/pubpkg/{wheel.filename}"
    body = app.get(f"/packages/pubpkg/{wheel.filename}").body
    assert hashlib.sha256(body).hexdigest() == wheel.sha256


def test_ttl_and_etag_revalidation(make_fallback_app, up):
    app = make_fallback_app("cache", pypi__upstream_ttl="10m")
    app.get("/simple/pubpkg/", headers=JSON)
    app.get("/simple/pubpkg/", headers=JSON)
    assert up.page_requests("pubpkg") == 1  # within the TTL: no upstream call at all
    proxy_repo(app).pages.flush()
    app = make_fallback_app("cache", pypi__upstream_ttl="0")  # the same database
    app.get("/simple/pubpkg/", headers=JSON)
    second = app.get("/simple/pubpkg/", headers=JSON)
    assert up.page_requests("pubpkg") == 3
    assert up.stats().get("304") == 2  # both revalidated with If-None-Match
    assert len(second.json["files"]) == 4


def test_pages_survive_a_restart(make_fallback_app, up):
    app = make_fallback_app("cache", pypi__upstream_ttl="10m")
    first = app.get("/simple/pubpkg/", headers=JSON)
    proxy_repo(app).pages.flush()  # rows are written just after the answer
    again = make_fallback_app("cache", pypi__upstream_ttl="10m")  # same database
    assert again.get("/simple/pubpkg/", headers=JSON).json["files"] == first.json["files"]
    assert up.page_requests("pubpkg") == 1


# --- outages ----------------------------------------------------------------------------------------

def test_outage_serves_stale_page_and_cached_files(make_fallback_app, up, caplog):
    app = make_fallback_app("cache", pypi__upstream_ttl="0")
    wheel = upstream_wheel(up, "pubpkg", "1.0")
    page = app.get("/simple/pubpkg/", headers=JSON)
    body = app.get(f"/packages/pubpkg/{wheel.filename}").body
    _wait_stored(app, f"packages/pubpkg/{wheel.filename}.json")
    up.down()
    with caplog.at_level(logging.WARNING, logger="pypirepo"):
        stale = app.get("/simple/pubpkg/", headers=JSON)
    assert stale.json["files"] == page.json["files"]
    assert any("stale" in r.getMessage() for r in caplog.records)
    assert app.get(f"/packages/pubpkg/{wheel.filename}").body == body
    # Never seen: a 502 that names the upstream problem, not a 500.
    res = app.get("/simple/oldpkg/", status=502)
    assert "upstream index" in res.text and "could not be reached" in res.text
    # An uncached file of a known project cannot be fetched either: 502, not a broken body.
    other = upstream_wheel(up, "pubpkg", "2.0")
    res = app.get(f"/packages/pubpkg/{other.filename}", status=502)
    assert "upstream" in res.text


@pytest.mark.parametrize("switch", [{"fail_status": 503}, {"latency": 2.5}, {"reset": True}],
                         ids=["503", "slow", "reset"])
def test_failing_upstream_never_a_500(make_fallback_app, up, switch):
    app = make_fallback_app("cache", pypi__upstream_ttl="0")
    app.get("/simple/pubpkg/", headers=JSON)
    up.control(**switch)
    assert app.get("/simple/pubpkg/", headers=JSON).status_int == 200  # stale
    res = app.get("/simple/yankpkg/", status=502)
    assert "upstream" in res.text


def test_hash_mismatch_is_never_stored_or_served(make_fallback_app, up):
    app = make_fallback_app("cache")
    wheel = upstream_wheel(up, "badpkg", "1.0")
    up.control(corrupt=[wheel.filename])
    app.get("/simple/badpkg/", headers=JSON)
    for _ in range(2):
        try:
            res = app.get(f"/packages/badpkg/{wheel.filename}", expect_errors=True)
        except Exception as exc:  # noqa: BLE001 - the body broke off mid-stream
            assert "sha256" in str(exc)
        else:
            assert res.status_int == 502, res.status
            assert "does not match the sha256" in res.text
    assert not any("badpkg" in k for k in stored(app))
    # The failure is remembered for a while: a client's retry does not refetch.
    assert up.file_requests(wheel.filename) == 1
    proxy_repo(app).fetcher._mismatched.clear()
    up.normal()  # the upstream repaired the file: the next download stores it
    assert hashlib.sha256(app.get(f"/packages/badpkg/{wheel.filename}").body).hexdigest() \
        == wheel.sha256


# --- private wins, merging, the upload guard ---------------------------------------------------------

def test_allow_list_merges_private_and_upstream(make_fallback_app, up, dists):
    for settings in ({"pypi__upstream_allow": "PrivPkg"}, {"pypi__always_show_upstream": "true"}):
        app = make_fallback_app("cache", **settings)
        mine = dists.wheel("privpkg", "1.0")
        upload(app, mine, "privpkg", "1.0")
        files = {f["filename"] for f in app.get("/simple/privpkg/", headers=JSON).json["files"]}
        assert files == {mine.name} | {f.filename for f in up.index.projects["privpkg"]}


def test_disallow_fallback(make_fallback_app, up):
    app = make_fallback_app("cache", pypi__disallow_fallback="pubpkg")
    app.get("/simple/pubpkg/", status=404)
    assert up.stats() == {}


def test_upload_of_an_upstream_name_needs_an_admin(make_fallback_app, up, dists):
    app = make_fallback_app("cache", pypi__default_write="authenticated")
    wheel = dists.wheel("pubpkg", "5.0")
    res = upload(app, wheel, "pubpkg", "5.0", status=403, auth=ALICE)
    assert "exists on the upstream index" in res.text and "pypi.upstream_allow" in res.text
    assert not any(k.startswith("packages/pubpkg/") for k in stored(app))
    upload(app, dists.wheel("brandnew", "1.0"), "brandnew", "1.0", auth=ALICE)
    upload(app, wheel, "pubpkg", "5.0", auth=ADMIN)  # an admin creates it
    # From now on it is a private project: its writers may add versions.
    upload(app, dists.wheel("pubpkg", "6.0"), "pubpkg", "6.0", auth=ALICE)
    files = {f["filename"] for f in app.get("/simple/pubpkg/", headers=JSON).json["files"]}
    assert files == {wheel.name, "pubpkg-6.0-py3-none-any.whl"}
    allowed = make_fallback_app("cache", pypi__upstream_allow="yankpkg")
    upload(allowed, dists.wheel("yankpkg", "9.0"), "yankpkg", "9.0", auth=ALICE)


def test_upload_guard_when_upstream_is_down(make_fallback_app, up, dists):
    app = make_fallback_app("cache")
    up.down()
    res = upload(app, dists.wheel("oldpkg", "9.0"), "oldpkg", "9.0", status=503, auth=ALICE)
    assert "Cannot check" in res.text


# --- the cooldown -------------------------------------------------------------------------------------

def test_cooldown_hides_fresh_upstream_releases(make_fallback_app, up):
    app = make_fallback_app("cache", pypi__upstream_min_age="3d")
    page = app.get("/simple/oldpkg/", headers=JSON).json
    assert page["versions"] == ["1.0"]
    fresh = upstream_wheel(up, "oldpkg", "2.0")
    app.get(f"/packages/oldpkg/{fresh.filename}", status=404)
    assert up.file_requests(fresh.filename) == 0
    exempt = make_fallback_app("cache", pypi__upstream_min_age="3d",
                               pypi__upstream_min_age_exempt="OldPkg")
    assert exempt.get("/simple/oldpkg/", headers=JSON).json["versions"] == ["1.0", "2.0"]


def test_settings_pypicloud_names(make_app, up):
    app = make_app(pypi__fallback="redirect", pypi__fallback_base_url=up.url)
    assert app.get("/simple/pubpkg/", status=302).location == up.simple_url + "pubpkg/"
    app = make_app(pypi__fallback="redirect")
    from pip._internal.models.index import PyPI

    assert proxy_repo(app).config.url == PyPI.simple_url.rstrip("/") + "/"


# --- PostgreSQL ---------------------------------------------------------------------------------------

@pytest.mark.postgres
def test_cache_mode_on_postgres(make_fallback_app, up, pg_url, dists):
    app = make_fallback_app("cache", sqlalchemy__url=pg_url, pypi__upstream_ttl="0")
    wheel = upstream_wheel(up, "pubpkg", "1.0")
    page = app.get("/simple/pubpkg/", headers=JSON)
    assert hashlib.sha256(app.get(f"/packages/pubpkg/{wheel.filename}").body).hexdigest() \
        == wheel.sha256
    _wait_stored(app, f"packages/pubpkg/{wheel.filename}.json")
    app.get("/simple/pubpkg/", headers=JSON)  # revalidated: the row is updated in place
    proxy_repo(app).pages.flush()
    up.down()
    again = make_fallback_app("cache", sqlalchemy__url=pg_url, pypi__upstream_ttl="0")
    assert again.get("/simple/pubpkg/", headers=JSON).json["files"] == page.json["files"]
    assert again.get("/pypi/pubpkg/json").json["urls"][0]["origin"] == "upstream"
    up.up()
    res = upload(again, dists.wheel("pubpkg", "9.0"), "pubpkg", "9.0", status=403, auth=ALICE)
    assert "exists on the upstream index" in res.text
