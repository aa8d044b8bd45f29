"""The upstream client, its page parsers, its settings and its page store, against the
loopback upstream index (tests/upstream_server.py), no mocks."""

from __future__ import annotations

import threading

import pytest
from upstream_server import UpstreamIndex, UpstreamServer

from pypirepo.db import migrate
from pypirepo.db.engine import make_engine
from pypirepo.server import tell_threads
from pypirepo.settings import ConfigError, Settings
from pypirepo.fallback.background import max_waiting_for
from pypirepo.upstream.client import UpstreamClient, UpstreamNotFound, UpstreamUnavailable
from pypirepo.fallback.config import UpstreamConfig, default_index_url
from pypirepo.fallback.pages import FetchDenied, UpstreamPages
from pypirepo.upstream.parse import PageFormatError, parse_page

SHA = "ab" * 32
META = "cd" * 32


# --- parsing -------------------------------------------------------------------------------------

def test_parse_json_resolves_urls_and_keeps_pep_700_fields():
    body = (
        '{"meta": {"api-version": "1.1"}, "name": "demo", "files": ['
        '{"filename": "demo-1.0-py3-none-any.whl", "url": "../../f/demo-1.0-py3-none-any.whl",'
        f' "hashes": {{"sha256": "{SHA.upper()}"}}, "requires-python": ">=3.8",'
        f' "core-metadata": {{"sha256": "{META}"}}, "size": 12, "yanked": "bad",'
        ' "upload-time": "2024-01-02T03:04:05.123456Z"},'
        '{"filename": "demo-1.0.tar.gz", "url": "https://files.example/demo-1.0.tar.gz",'
        f' "hashes": {{"sha256": "{SHA}"}}, "dist-info-metadata": true, "yanked": false}},'
        '{"filename": "other-1.0.tar.gz", "url": "x", "hashes": {"sha256": "' + SHA + '"}},'
        '{"filename": "demo-1.0.egg", "url": "y", "hashes": {"sha256": "' + SHA + '"}},'
        '{"filename": "demo-2.0.tar.gz", "url": "z", "hashes": {"md5": "00"}}'
        ']}'
    ).encode()
    files = parse_page(body, "application/vnd.pypi.simple.v1+json",
                       "http://up.example/simple/demo/", "demo")
    assert [f["filename"] for f in files] == ["demo-1.0-py3-none-any.whl", "demo-1.0.tar.gz"]
    wheel, sdist = files
    assert wheel["url"] == "http://up.example/f/demo-1.0-py3-none-any.whl"
    assert wheel["sha256"] == SHA and wheel["core_metadata"] == META
    assert wheel["requires_python"] == ">=3.8" and wheel["size"] == 12
    assert wheel["yanked"] == "bad" and wheel["upload_time"] == "2024-01-02T03:04:05Z"
    assert sdist["core_metadata"] is None  # never advertised for an sdist
    assert sdist["size"] is None and sdist["upload_time"] is None and sdist["yanked"] is False


def test_parse_html_with_base_bare_yanked_and_escaping():
    body = (
        '<html><head><base href="http://cdn.example/pkgs/"></head><body>'
        f'<a href="demo-1.0-py3-none-any.whl#sha256={SHA}" data-requires-python="&gt;=3.8,&lt;4"'
        f' data-dist-info-metadata="sha256={META}" data-yanked>demo-1.0-py3-none-any.whl</a>'
        f'<a href="demo-1.1.tar.gz#md5=00&sha256={SHA}" data-yanked="old">demo-1.1.tar.gz</a>'
        f'<a href="demo-1.2-py3-none-any.whl#sha256={SHA}" data-core-metadata="true">x</a>'
        '<a href="demo-1.3.tar.gz">no hash</a>'
        "</body></html>"
    ).encode()
    files = parse_page(body, "text/html; charset=utf-8", "http://up.example/simple/demo/",
                       "demo")
    assert [f["filename"] for f in files] == [
        "demo-1.0-py3-none-any.whl", "demo-1.1.tar.gz", "demo-1.2-py3-none-any.whl"]
    first, second, third = files
    assert first["url"] == "http://cdn.example/pkgs/demo-1.0-py3-none-any.whl"
    assert first["requires_python"] == ">=3.8,<4"
    assert first["yanked"] is True and first["core_metadata"] == META
    assert second["yanked"] == "old" and second["sha256"] == SHA
    assert third["core_metadata"] is True


def test_parse_rejects_what_is_not_a_page():
    with pytest.raises(PageFormatError):
        parse_page(b"{}", "application/vnd.pypi.simple.v1+json", "http://x/", "demo")
    with pytest.raises(PageFormatError):
        parse_page(b"GIF89a", "image/gif", "http://x/", "demo")


# --- settings ------------------------------------------------------------------------------------

def config(**ini):
    return UpstreamConfig.from_settings(Settings({k.replace("__", "."): v
                                                  for k, v in ini.items()}, environ={}))


def test_config_defaults_and_pypicloud_names():
    c = config()
    assert c.mode == "none" and not c.enabled
    assert c.url == default_index_url().rstrip("/") + "/"
    assert c.cache_update == ["authenticated"]
    c = config(pypi__fallback="cache", pypi__fallback_base_url="http://up.example:8080/")
    assert c.url == "http://up.example:8080/simple/"
    c = config(pypi__fallback="redirect", pypi__use_fallback="false")
    assert c.mode == "none"
    c = config(pypi__always_show_upstream="true", pypi__disallow_fallback="Foo_Bar baz")
    assert c.may_merge("anything") and c.disallow == {"foo-bar", "baz"}
    c = config(pypi__upstream_allow="Acme.Utils", pypi__upstream_min_age="3d",
               pypi__upstream_min_age_exempt="Urgent_Fix", pypi__upstream_ttl="2m",
               pypi__upstream_read_timeout="7s", pypi__cache_update="alice group:ci")
    assert c.may_merge("acme-utils") and not c.may_merge("other")
    assert c.cooldown("other") == 3 * 86400 and c.cooldown("urgent-fix") == 0
    assert c.ttl == 120 and c.not_found_ttl == 120 and c.read_timeout == 7
    assert c.cache_update == ["alice", "group:ci"]


def test_config_environment_overrides():
    c = UpstreamConfig.from_settings(Settings({"pypi.fallback": "none"}, environ={
        "PYPIREPO_PYPI_FALLBACK": "cache",
        "PYPIREPO_PYPI_FALLBACK_URL": "http://mirror.example/simple",
    }))
    assert c.mode == "cache" and c.url == "http://mirror.example/simple/"


def test_limits_default_and_come_from_the_environment():
    c = config(pypi__fallback="cache", pypi__max_upload_size="200MB")
    assert (c.page_timeout, c.max_page_size, c.max_page_files) == (30, 64_000_000, 100_000)
    assert c.max_file_size == 200_000_000  # like an upload's
    assert (c.min_rate, c.rate_window, c.max_waiting) == (10_000, 30, None)
    env = {"PYPIREPO_PYPI_UPSTREAM_PAGE_TIMEOUT": "5s",
           "PYPIREPO_PYPI_UPSTREAM_MAX_PAGE_SIZE": "1MB",
           "PYPIREPO_PYPI_UPSTREAM_MAX_PAGE_FILES": "10",
           "PYPIREPO_PYPI_UPSTREAM_MAX_FILE_SIZE": "2MB",
           "PYPIREPO_PYPI_UPSTREAM_MIN_RATE": "0",
           "PYPIREPO_PYPI_UPSTREAM_RATE_WINDOW": "1m",
           "PYPIREPO_PYPI_UPSTREAM_MAX_WAITING": "3"}
    c = UpstreamConfig.from_settings(Settings({"pypi.fallback": "cache"}, environ=env))
    assert (c.page_timeout, c.max_page_size, c.max_page_files, c.max_file_size) == \
        (5, 1_000_000, 10, 2_000_000)
    assert (c.min_rate, c.rate_window, c.max_waiting) == (0, 60, 3)


def test_wait_slots_keep_a_quarter_of_the_threads_back(make_app):
    assert [max_waiting_for(n) for n in (1, 2, 4, 8, 16, 32)] == [1, 1, 2, 6, 12, 24]
    # pypirepo's waitress tells the app how many threads it has, unless the ini says.
    for given, threads, slots in ((None, 16, 12), ("3", 16, 3)):
        extra = {"pypi__upstream_max_waiting": given} if given else {}
        app = make_app(pypi__fallback="cache", **extra).app
        tell_threads(app, threads)
        proxy = app.repositories["pypi"]
        assert proxy.slots.size == slots
        proxy.close()


@pytest.mark.parametrize("key,value", [
    ("pypi.fallback", "proxy"), ("pypi.fallback_url", "ftp://x/"),
    ("pypi.upstream_ttl", "soon"), ("pypi.upstream_retries", "99"),
    ("pypi.cache_update", "bad name!"),
    ("pypi.upstream_page_timeout", "0"), ("pypi.upstream_max_page_size", "lots"),
    ("pypi.upstream_max_page_files", "0"), ("pypi.upstream_max_file_size", "0"),
    ("pypi.upstream_min_rate", "-1"), ("pypi.upstream_rate_window", "0"),
    ("pypi.upstream_max_waiting", "0"),
])
def test_config_errors_name_the_key(key, value):
    with pytest.raises(ConfigError) as err:
        UpstreamConfig.from_settings(Settings({key: value}, environ={}))
    assert err.value.key == key


# --- the client against a real upstream ------------------------------------------------------------

@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    index = UpstreamIndex(tmp_path_factory.mktemp("unit-upstream"))
    index.add("alpha", "1.0")
    server = UpstreamServer(index).start()
    yield server
    server.stop()


def test_client_json_then_304(up):
    client = UpstreamClient(up.simple_url, 1, 1, retries=0)
    page = client.fetch_page("alpha")
    assert {f["filename"] for f in page.files} == {"alpha-1.0-py3-none-any.whl",
                                                   "alpha-1.0.tar.gz"}
    again = client.fetch_page("alpha", page.etag)
    assert again.not_modified and again.etag == page.etag
    assert up.stats()["304"] == 1


def test_client_html_fallback(up):
    up.control(html_only=True)
    page = UpstreamClient(up.simple_url, 1, 1, retries=0).fetch_page("alpha")
    wheel = next(f for f in page.files if f["filename"].endswith(".whl"))
    assert wheel["url"] == f"{up.url}/files/alpha/alpha-1.0-py3-none-any.whl"
    assert wheel["core_metadata"] and wheel["size"] is None


def test_client_not_found_is_not_retried_unavailable_is(up):
    client = UpstreamClient(up.simple_url, 1, 1, retries=2, backoff=0.01)
    with pytest.raises(UpstreamNotFound):
        client.fetch_page("nothing-here")
    assert up.page_requests("nothing-here") == 1
    up.control(fail_status=503)
    with pytest.raises(UpstreamUnavailable, match="HTTP 503"):
        client.fetch_page("alpha")
    assert up.page_requests("alpha") == 3  # bounded: the first try and two retries


def test_client_timeouts_and_refused(up):
    up.control(latency=1.0)
    client = UpstreamClient(up.simple_url, 1, 0.2, retries=2, backoff=0.01)
    with pytest.raises(UpstreamUnavailable, match="timed out"):
        client.fetch_page("alpha")
    assert up.page_requests("alpha") == 1  # a slow upstream is not asked again
    up.normal()
    up.down()
    with pytest.raises(UpstreamUnavailable, match="could not be reached"):
        client.fetch_page("alpha")


def test_client_streams_files_raw(up):
    client = UpstreamClient(up.simple_url, 1, 1, retries=0)
    f = up.index.projects["alpha"][1]
    response = client.open_file(f"{up.url}/files/alpha/{f.filename}")
    data = b"".join(client.read_file(response, f.size, "its page advertises", 100))
    assert data == f.path.read_bytes()  # a .tar.gz arrives as is, not gunzipped
    response.close()
    # A download broken off half-way does not leave its rest in a pooled connection: the
    # next call on the same client gets a clean answer.
    response = client.open_file(f"{up.url}/files/alpha/{f.filename}")
    next(client.read_file(response, f.size, "its page advertises", 10))
    response.close()
    assert client.fetch_page("alpha").files


def test_client_reset_connections_are_retried_then_unavailable(up):
    up.control(reset=True)
    client = UpstreamClient(up.simple_url, 1, 1, retries=2, backoff=0.01)
    with pytest.raises(UpstreamUnavailable, match="could not be reached"):
        client.fetch_page("alpha")
    assert up.page_requests("alpha") == 3


def test_client_follows_redirects_and_resolves_links_against_the_final_url(up):
    """An index that moved answers 301; the page's relative links are relative to where
    the page was finally found, not to the URL we asked."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    page = (f'<a href="../../files/alpha/alpha-1.0.tar.gz#sha256={SHA}">x</a>').encode()

    class Moved(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/simple/alpha/":
                self.send_response(301)
                self.send_header("Location", "/mirror/simple/alpha/")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Moved)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{httpd.server_port}"
        files = UpstreamClient(base + "/simple/", 1, 1, retries=0).fetch_page("alpha").files
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert [f["url"] for f in files] == [f"{base}/mirror/files/alpha/alpha-1.0.tar.gz"]


# --- the page store --------------------------------------------------------------------------------

@pytest.fixture
def store(tmp_path, up):
    engine = make_engine(f"sqlite:///{tmp_path}/db.sqlite")
    migrate.upgrade(engine)
    cfg = config(pypi__fallback="cache", pypi__fallback_url=up.simple_url,
                 pypi__upstream_ttl="0")
    client = UpstreamClient(cfg.url, 1, 1, retries=0)
    return UpstreamPages(client, engine, cfg, repository_id=2)  # the migration's `pypi`


def test_one_upstream_call_for_concurrent_requests(store, up):
    up.control(latency=0.3)
    results = []
    threads = [threading.Thread(target=lambda: results.append(store.get("alpha", True)))
               for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(results) == 10 and all(r.found for r in results)
    # TTL 0 makes every request want a fresh page, yet those who waited on the lock took
    # the answer the first one got.
    assert up.page_requests("alpha") == 1


def test_denied_stale_and_not_found(store, up):
    with pytest.raises(FetchDenied):
        store.get("alpha", may_fetch=False)
    first = store.get("alpha", may_fetch=True)
    assert first.found and not first.stale
    up.down()
    stale = store.get("alpha", may_fetch=True)
    assert stale.stale and "could not be reached" in stale.problem
    assert [f["filename"] for f in stale.files] == [f["filename"] for f in first.files]
    assert store.get("alpha", may_fetch=False).files == first.files
    up.up()
    gone = store.get("nothing-here", may_fetch=True)
    assert not gone.found
    with pytest.raises(UpstreamUnavailable):
        up.down()
        store.get("never-seen", may_fetch=True)


# --- the fallback's threads ------------------------------------------------------------------------

def test_workers_reuse_idle_threads_and_let_them_go():
    import time

    from pypirepo.fallback.background import Workers

    workers = Workers("test workers", idle_timeout=0.3)
    done, threads = [], set()

    def job(n):
        threads.add(threading.current_thread().name + str(threading.get_ident()))
        done.append(n)

    for n in range(5):
        workers.submit(job, n)
        # Each job over, and its worker idle again, before the next: one thread serves
        # them all (waited for, not slept: a loaded machine may take its time).
        deadline = time.monotonic() + 5
        while (len(done) <= n or not workers._idle._value) and time.monotonic() < deadline:
            time.sleep(0.001)
    assert sorted(done) == list(range(5)) and len(threads) == 1
    time.sleep(0.6)  # idle past the timeout: the worker is gone
    assert not [t for t in threading.enumerate() if t.name == "test workers"]
    gate = threading.Event()
    for n in range(3):  # busy workers: each job gets a thread of its own at once
        workers.submit(gate.wait)
    time.sleep(0.05)
    assert len([t for t in threading.enumerate() if t.name == "test workers"]) == 3
    gate.set()


def test_lull_waits_while_the_process_is_busy_at_most_max_delay():
    import time

    from pypirepo.fallback.background import Lull

    # A low threshold: a loaded CI machine may give the spinner below half a core.
    lull = Lull(window=0.01, busy=0.05, max_delay=0.3)
    started = time.monotonic()
    lull.wait()
    assert time.monotonic() - started < 0.25  # idle: one window (a loaded machine's)
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            sum(range(1000))

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    try:
        started = time.monotonic()
        lull.wait()
        assert 0.29 <= time.monotonic() - started < 2.0  # busy: waits, but not for ever
    finally:
        stop.set()
        spinner.join()


def test_gather_waits_for_quiet_bounded_and_hurried():
    import queue
    import time

    from pypirepo.fallback.background import gather

    jobs, hurry = queue.Queue(), threading.Event()

    def feed(n, every):
        for i in range(n):
            time.sleep(every)
            jobs.put(i)

    feeder = threading.Thread(target=feed, args=(5, 0.05))
    feeder.start()
    started = time.monotonic()
    batch = gather(jobs, "first", settle=0.2, max_delay=5.0, hurry=hurry)
    feeder.join()
    # Jobs kept coming every 50 ms: all of them joined the batch, then 200 ms of quiet.
    assert batch == ["first", 0, 1, 2, 3, 4]
    assert 0.4 <= time.monotonic() - started < 2.0
    feeder = threading.Thread(target=feed, args=(40, 0.02))
    feeder.start()
    started = time.monotonic()
    batch = gather(jobs, "first", settle=0.2, max_delay=0.3, hurry=hurry)
    assert time.monotonic() - started < 0.5 and len(batch) < 41  # never past max_delay
    feeder.join()
    hurry.set()
    started = time.monotonic()
    assert gather(jobs, "first", settle=10, max_delay=10, hurry=hurry)[0] == "first"
    assert time.monotonic() - started < 0.1  # a flush does not wait


def test_spool_files_of_dead_fetches_are_swept_live_ones_kept(tmp_path):
    """A fetch holds a lock on its spool file; a server starting later removes the files
    nobody holds (their process died mid-fetch), never a live one, a young one, or
    anything that is not ours."""
    import fcntl
    import os
    import time

    from pypirepo.fallback.fetcher import SPOOL_PREFIX, Flight, sweep_orphans

    old = time.time() - 3600

    def spool(name, age=old):
        path = tmp_path / name
        path.write_bytes(b"partial")
        os.utime(path, (age, age))
        return path

    orphan = spool(SPOOL_PREFIX + "dead")
    young = spool(SPOOL_PREFIX + "young", age=time.time())
    foreign = spool("someone-elses-file")
    held = spool(SPOOL_PREFIX + "held")
    fd = os.open(held, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as a live server holds its files
    flight = Flight("demo", {"filename": "demo-1.0-py3-none-any.whl"}, str(tmp_path))
    os.utime(flight.path, (old, old))
    try:
        assert sweep_orphans(str(tmp_path)) == 1
        assert not orphan.exists()
        assert young.exists() and foreign.exists() and held.exists()
        assert os.path.exists(flight.path)  # its own lock keeps it
    finally:
        os.close(fd)
        flight.release()
    assert sweep_orphans(str(tmp_path)) == 2  # both let go: now nobody's
    assert os.path.exists(flight.path) is False and not held.exists()


# --- how the upstream is reached (pypirepo.upstream.network) ---------------------------------

def network(environ=None, **ini):
    from pypirepo.upstream.network import Proxies

    return Proxies.from_settings(Settings({k.replace("__", "."): v for k, v in ini.items()},
                                          environ=environ or {}))


def test_proxies_from_the_environment_as_requests_reads_them():
    p = network({"HTTPS_PROXY": "http://u:p%40ss@proxy.corp:3128", "http_proxy": "proxy:8080",
                 "HTTP_PROXY": "http://ignored:1", "NO_PROXY": ".internal, 10.0.0.0/8, "
                 "files.example:8443, localhost"})
    https = p.for_url("https", "pypi.example", 443)
    assert https.url == "http://proxy.corp:3128" and https.source == "HTTPS_PROXY"
    assert https.auth == "Basic dTpwQHNz"  # u:p@ss, unquoted as requests does
    assert https.shown == "http://u:***@proxy.corp:3128"
    assert p.for_url("http", "pypi.example", 80).url == "http://proxy:8080"  # lower case wins
    for host, port in [("a.internal", 443), ("internal", 443), ("10.1.2.3", 443),
                       ("files.example", 8443), ("localhost", 80)]:
        assert p.for_url("https", host, port) is None, host
    assert p.for_url("https", "files.example", 443) is not None  # another port
    assert p.for_url("https", "notinternal", 443) is not None  # a name, not a suffix
    # An empty lower-case variable switches the upper-case one off; ALL_PROXY for the rest.
    p = network({"https_proxy": "", "HTTPS_PROXY": "http://x:1", "ALL_PROXY": "http://all:2"})
    assert p.for_url("https", "h", 443).url == "http://all:2"
    assert network({"HTTPS_PROXY": "http://x:1", "no_proxy": "*"}).for_url("https", "h", 443) \
        is None


def test_the_proxy_setting_overrides_the_environment():
    env = {"HTTPS_PROXY": "http://env:1", "NO_PROXY": "pypi.example"}
    assert network(env, pypi__upstream_proxy="direct").for_url("https", "h", 443) is None
    chosen = network(env, pypi__upstream_proxy="http://mine:3128")
    assert chosen.for_url("https", "pypi.example", 443).source == "pypi.upstream_proxy"
    with pytest.raises(ConfigError) as err:
        network(pypi__upstream_proxy="ftp://u:secret@x/")
    assert err.value.key == "pypi.upstream_proxy" and "secret" not in str(err.value)


def test_masking_and_retry_after():
    import email.utils
    import time

    from pypirepo.upstream.client import UpstreamError, _retry_after
    from pypirepo.upstream.network import mask_url, scrub

    assert mask_url("https://u:pw@h/simple/") == "https://u:***@h/simple/"
    assert mask_url("https://token@h/") == "https://token@h/"  # no password to hide
    assert scrub("a https://u:pw@h/x and http://v:w@k/") == "a https://u:***@h/x and " \
        "http://v:***@k/"
    assert "pw" not in str(UpstreamError("failed for https://u:pw@h/x"))
    assert _retry_after("30") == 30
    later = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert 55 <= _retry_after(later) <= 61
    assert _retry_after("soon") is None and _retry_after(None) is None


def test_credentials_sources_and_config(tmp_path):
    c = config(pypi__fallback="cache", pypi__fallback_url="https://me:s%3Acret@up.example/simple")
    assert c.url == "https://up.example/simple/"
    assert (c.credentials.username, c.credentials.password) == ("me", "s:cret")
    netrc = tmp_path / "netrc"
    netrc.write_text("machine up.example login bob password hunter2\n")
    c = UpstreamConfig.from_settings(Settings(
        {"pypi.fallback": "cache", "pypi.fallback_url": "https://up.example/simple"},
        environ={"NETRC": str(netrc)}))
    assert c.credentials.username == "bob" and c.credentials.source == f"netrc ({netrc})"
    c = UpstreamConfig.from_settings(Settings(
        {"pypi.fallback": "cache", "pypi.fallback_url": "https://other.example/simple"},
        environ={"NETRC": str(netrc)}))
    assert c.credentials is None
    with pytest.raises(ConfigError) as err:
        config(pypi__fallback="cache", pypi__upstream_password="x")
    assert err.value.key == "pypi.upstream_password"


def test_credentials_only_for_the_upstreams_own_host():
    from pypirepo.upstream.network import Credentials

    creds = Credentials("u", "p", "test")
    client = UpstreamClient("http://up.example/simple/", credentials=creds)
    assert client._credentials_for(("http", "up.example", 80)) == creds.header
    assert client._credentials_for(("https", "up.example", 443)) == creds.header  # upgrade
    for other in [("http", "up.example", 8080), ("http", "cdn.example", 80),
                  ("https", "up.example.evil", 443)]:
        assert client._credentials_for(other) is None
