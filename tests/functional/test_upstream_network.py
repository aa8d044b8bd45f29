"""Reaching the upstream on a real network: whom we trust, proxies, upstream credentials,
the circuit breaker, and errors that say what to change (issue 8).

Everything here is real: an https upstream whose certificate a throwaway CA signed
(trustme), a forward proxy as its own process (proxy.py), another pypirepo process that
wants a login, and the app under test built with the environment each case sets (the
machine's own CA and proxy variables are cleared first, HOME points at an empty folder).
"""

from __future__ import annotations

import configparser
import hashlib
import json
import logging
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest
import trustme
from distfactory import make_wheel, wheel_name
from helpers import fallback_apps, numbered, proxy_repo, storage, upload
from servers import REPO, ForwardProxy, Server
from upstream_server import UpstreamIndex, UpstreamServer, healthy

from pypirepo.upstream.client import UpstreamClient, UpstreamUnavailable
from pypirepo.upstream.network import resolve_trust

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}
ALICE = ("Basic", ("alice", "alicepw"))
NETWORK_VARIABLES = (
    "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "NETRC",
    "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
    "no_proxy", "NO_PROXY",
)


@pytest.fixture
def environ(monkeypatch, tmp_path):
    """The process environment, without the machine's CA, proxy and netrc settings."""
    for name in NETWORK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return monkeypatch


@pytest.fixture
def fallback_app(make_app, environ, tmp_path):
    """An app with the fallback to `url`; each one with its own database and storage."""
    places = numbered(tmp_path)
    with fallback_apps(make_app, pypi__fallback="cache", pypi__cache_update="everyone",
                       pypi__upstream_connect_timeout="2", pypi__upstream_read_timeout="5",
                       pypi__upstream_retries="0") as build:
        def build_for(url, **settings):
            database, storage = next(places)
            return build(pypi__fallback_url=url, sqlalchemy__url=database,
                         storage__dir=storage, **settings)

        yield build_for


def check_install(app, server, project="netpkg", version="1.0"):
    """The page lists the upstream's file with its hash, and its download matches it."""
    wheel = server.index.file(project, wheel_name(project, version))
    page = app.get(f"/simple/{project}/", headers=JSON)
    entries = {f["filename"]: f for f in page.json["files"]}
    assert entries[wheel.filename]["hashes"] == {"sha256": wheel.sha256}
    body = app.get(f"/packages/{project}/{wheel.filename}").body
    assert hashlib.sha256(body).hexdigest() == wheel.sha256


def upstream_state(app) -> dict:
    health = app.get("/_health").json
    assert health["status"] == "ok"
    return health["upstream"]


# --- the servers -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_files(ca, tmp_path_factory):
    """The throwaway CA as a PEM file, and as a hashed folder (what SSL_CERT_DIR and the
    system's /etc/ssl/certs are)."""
    root = tmp_path_factory.mktemp("ca")
    pem = root / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    folder = root / "certs"
    folder.mkdir()
    digest = subprocess.run(["openssl", "x509", "-hash", "-noout", "-in", str(pem)],
                            capture_output=True, text=True, check=True).stdout.strip()
    shutil.copy(pem, folder / f"{digest}.0")
    return pem, folder


def _index(directory):
    index = UpstreamIndex(directory)
    index.add("netpkg", "1.0", sdist=False)
    return index


@pytest.fixture(scope="module")
def tls_upstream(tmp_path_factory, ca):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
    server = UpstreamServer(_index(tmp_path_factory.mktemp("tls")), tls=ctx).start()
    yield server
    server.stop()


@pytest.fixture
def tls_up(tls_upstream):
    with healthy(tls_upstream) as server:
        yield server


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    """A plain http upstream (conftest's `up` gives it healthy, with fresh counters)."""
    server = UpstreamServer(_index(tmp_path_factory.mktemp("plain"))).start()
    yield server
    server.stop()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- trust -------------------------------------------------------------------------------------

def test_untrusted_certificate_fails_clearly(fallback_app, tls_up, caplog):
    app = fallback_app(tls_up.simple_url)
    with caplog.at_level(logging.WARNING, logger="pypirepo"):
        res = app.get("/simple/netpkg/", status=502)
    text = res.text
    assert "could not be verified" in text and "CERTIFICATE_VERIFY_FAILED" in text
    # Which CAs were used, and what to change.
    assert "the system trust store" in text and "pypi.upstream_ca_bundle" in text
    assert tls_up.page_requests("netpkg") == 0  # the handshake failed: nothing was asked
    state = upstream_state(app)
    assert state["state"] == "down" and "could not be verified" in state["last_error"]
    assert any("netpkg" in r.getMessage() and "502" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("source", ["setting-file", "setting-folder", "REQUESTS_CA_BUNDLE",
                                    "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"])
def test_trusted_through_each_ca_source(fallback_app, tls_up, ca_files, environ, source):
    pem, folder = ca_files
    settings = {}
    if source == "setting-file":
        settings["pypi__upstream_ca_bundle"] = str(pem)
    elif source == "setting-folder":
        settings["pypi__upstream_ca_bundle"] = str(folder)
    elif source == "SSL_CERT_DIR":
        environ.setenv("SSL_CERT_DIR", str(folder))  # a hashed folder, as a system store is
    else:
        environ.setenv(source, str(pem))
    app = fallback_app(tls_up.simple_url, **settings)
    check_install(app, tls_up)
    assert upstream_state(app)["state"] == "up"


def test_ca_sources_are_taken_in_order(fallback_app, tls_up, ca_files, environ):
    pem, _ = ca_files
    system = ssl.get_default_verify_paths().openssl_cafile  # the machine's own bundle
    if not system:
        pytest.fail("no system CA file to compare with")
    # The setting beats REQUESTS_CA_BUNDLE, which beats SSL_CERT_FILE.
    environ.setenv("REQUESTS_CA_BUNDLE", system)
    check_install(fallback_app(tls_up.simple_url, pypi__upstream_ca_bundle=str(pem)), tls_up)
    environ.setenv("SSL_CERT_FILE", str(pem))
    res = fallback_app(tls_up.simple_url).get("/simple/netpkg/", status=502)
    assert "REQUESTS_CA_BUNDLE" in res.text and "could not be verified" in res.text
    environ.setenv("REQUESTS_CA_BUNDLE", str(pem))
    environ.setenv("SSL_CERT_FILE", system)
    check_install(fallback_app(tls_up.simple_url), tls_up)


def test_system_store_paths_then_certifi(tls_up, ca_files, tmp_path):
    """With nothing set, OpenSSL's own default paths are the system store (pointed at the
    throwaway CA here, not at the machine's store); with none, certifi's bundle."""
    pem, folder = ca_files

    class Paths:
        openssl_cafile = str(pem)
        openssl_capath = str(tmp_path / "nothing")

    trust = resolve_trust(None, {}.get, defaults=Paths, platform="linux")
    assert trust.source == f"the system trust store ({pem})"
    client = UpstreamClient(tls_up.simple_url, 2, 5, retries=0, trust=trust)
    assert client.fetch_page("netpkg").files

    class Folder:
        openssl_cafile = str(tmp_path / "missing.pem")
        openssl_capath = str(folder)

    trust = resolve_trust(None, {}.get, defaults=Folder, platform="linux")
    assert trust.capath == str(folder)
    assert UpstreamClient(tls_up.simple_url, 2, 5, retries=0, trust=trust).fetch_page(
        "netpkg").files

    class Empty:
        openssl_cafile = None
        openssl_capath = None

    last = resolve_trust(None, {}.get, defaults=Empty, platform="linux")
    assert "certifi" in last.source
    with pytest.raises(UpstreamUnavailable, match="certifi"):
        UpstreamClient(tls_up.simple_url, 2, 5, retries=0, trust=last).fetch_page("netpkg")


def test_verify_false_for_a_lab_refused_from_the_environment_in_production(
        fallback_app, tls_up, environ, caplog):
    with caplog.at_level(logging.WARNING, logger="pypirepo"):
        app = fallback_app(tls_up.simple_url, pypi__upstream_verify="false")
    assert any("NOT verified" in r.getMessage() for r in caplog.records)
    check_install(app, tls_up)
    # production.ini's marker: an environment variable cannot switch verification off...
    ini = configparser.ConfigParser(defaults={"here": "."})
    ini.read(REPO / "production.ini")
    marker = ini.get("app:main", "pypirepo.environment")
    environ.setenv("PYPIREPO_PYPI_UPSTREAM_VERIFY", "false")
    with pytest.raises(SystemExit) as stop:
        fallback_app(tls_up.simple_url, pypirepo__environment=marker,
                     auth__session_secret="s" * 32)
    assert "pypi.upstream_verify" in str(stop.value) and "production" in str(stop.value)
    # ...the ini file itself can, with the warning.
    app = fallback_app(tls_up.simple_url, pypirepo__environment=marker,
                       pypi__upstream_verify="false", auth__session_secret="s" * 32)
    check_install(app, tls_up)


def test_bad_ca_settings_stop_the_start_naming_the_key(fallback_app, tls_up, environ,
                                                       tmp_path):
    with pytest.raises(SystemExit) as stop:
        fallback_app(tls_up.simple_url, pypi__upstream_ca_bundle=str(tmp_path / "none.pem"))
    assert "pypi.upstream_ca_bundle" in str(stop.value)
    environ.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "gone.pem"))
    with pytest.raises(SystemExit) as stop:
        fallback_app(tls_up.simple_url)
    assert "REQUESTS_CA_BUNDLE" in str(stop.value)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(SystemExit) as stop:
        fallback_app(tls_up.simple_url, pypi__upstream_ca_bundle=str(garbage))
    assert "pypi.upstream_ca_bundle" in str(stop.value)


def test_client_certificate_for_an_upstream_that_demands_mtls(ca, ca_files, tmp_path):
    pem, _ = ca_files
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ca.configure_trust(ctx)
    server = UpstreamServer(_index(tmp_path / "mtls"), tls=ctx).start()
    try:
        from pypirepo.settings import Settings
        from pypirepo.fallback.config import UpstreamConfig

        def client(**settings):
            settings = {"pypi.fallback": "cache", "pypi.fallback_url": server.simple_url,
                        "pypi.upstream_ca_bundle": str(pem), "pypi.upstream_retries": "0",
                        **settings}
            config = UpstreamConfig.from_settings(Settings(settings, environ={}))
            return UpstreamClient.from_config(config)

        with pytest.raises(UpstreamUnavailable, match="TLS|reached"):
            client().fetch_page("netpkg")
        identity = ca.issue_cert("pypirepo@example.test")
        cert, key = tmp_path / "client.pem", tmp_path / "client.key"
        identity.cert_chain_pems[0].write_to_path(str(cert))
        identity.private_key_pem.write_to_path(str(key))
        page = client(**{"pypi.upstream_client_cert": str(cert),
                         "pypi.upstream_client_key": str(key)}).fetch_page("netpkg")
        assert page.files
    finally:
        server.stop()


# --- proxies -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def proxy(tmp_path_factory):
    p = ForwardProxy(tmp_path_factory.mktemp("proxy")).start()
    yield p
    p.stop()


@pytest.fixture(scope="module")
def auth_proxy(tmp_path_factory):
    p = ForwardProxy(tmp_path_factory.mktemp("auth-proxy"), basic_auth="proxyuser:proxy-pw").start()
    yield p
    p.stop()


def _seen(proxy, text: str, app=None, more_than: int = -1) -> int:
    """How often `text` is in the proxy's access log. proxy.py writes a connection's lines
    when it closes: with `app`, its pooled connections are closed and a line awaited."""
    if app is not None:
        proxy_repo(app).close()
    deadline = time.monotonic() + 10
    while True:
        count = proxy.log().count(text)
        if count > more_than or time.monotonic() > deadline:
            return count
        time.sleep(0.05)


def _tunnels(proxy, port: int, app=None, more_than: int = -1) -> int:
    return _seen(proxy, f"CONNECT 127.0.0.1:{port}", app, more_than)


def test_https_through_a_connect_proxy(fallback_app, tls_up, ca_files, proxy, environ):
    environ.setenv("HTTPS_PROXY", proxy.url())
    before = _tunnels(proxy, tls_up.port)
    app = fallback_app(tls_up.simple_url, pypi__upstream_ca_bundle=str(ca_files[0]))
    check_install(app, tls_up)
    assert _tunnels(proxy, tls_up.port, app, before) > before


def test_http_through_a_proxy_lower_case_wins(fallback_app, up, proxy, environ):
    environ.setenv("http_proxy", proxy.url())
    environ.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")
    page = f"GET 127.0.0.1:{up.port}/simple/netpkg/"
    before = _seen(proxy, page)
    app = fallback_app(up.simple_url)
    check_install(app, up)
    assert _seen(proxy, page, app, before) == before + 1


def test_proxy_credentials(fallback_app, tls_up, up, ca_files, auth_proxy, environ, caplog):
    bundle = {"pypi__upstream_ca_bundle": str(ca_files[0])}
    environ.setenv("HTTPS_PROXY", auth_proxy.url("proxyuser:proxy-pw"))
    before = _tunnels(auth_proxy, tls_up.port)
    app = fallback_app(tls_up.simple_url, **bundle)
    check_install(app, tls_up)
    assert _tunnels(auth_proxy, tls_up.port, app, before) > before
    # Wrong ones: the error names the proxy and where it came from, the password masked.
    environ.setenv("HTTPS_PROXY", auth_proxy.url("proxyuser:wrong-secret"))
    with caplog.at_level(logging.INFO, logger="pypirepo"):
        app = fallback_app(tls_up.simple_url, **bundle)
        res = app.get("/simple/netpkg/", status=502)
    assert f"the proxy http://proxyuser:***@127.0.0.1:{auth_proxy.port}" in res.text
    assert "407" in res.text and "it refused the credentials in HTTPS_PROXY" in res.text
    assert "wrong-secret" not in res.text and "wrong-secret" not in caplog.text
    assert "wrong-secret" not in json.dumps(app.get("/_health").json)
    environ.setenv("HTTPS_PROXY", auth_proxy.url())
    res = fallback_app(tls_up.simple_url, **bundle).get("/simple/netpkg/", status=502)
    assert "it wants a login: put user:password@ before the host in HTTPS_PROXY" in res.text
    # Plain http through it: the 407 is an answer of the proxy, named as such.
    environ.setenv("HTTP_PROXY", auth_proxy.url())
    res = fallback_app(up.simple_url).get("/simple/netpkg/", status=502)
    assert f"the proxy {auth_proxy.url()} (from HTTP_PROXY) answered 407" in res.text


def test_no_proxy_bypasses_and_the_setting_overrides(fallback_app, up, proxy, environ):
    dead = f"http://127.0.0.1:{closed_port()}"
    environ.setenv("HTTP_PROXY", dead)
    res = fallback_app(up.simple_url).get("/simple/netpkg/", status=502)
    assert f"the proxy {dead} (from HTTP_PROXY) failed" in res.text
    environ.setenv("NO_PROXY", "example.invalid, 127.0.0.0/8")
    check_install(fallback_app(up.simple_url), up)
    environ.setenv("NO_PROXY", "127.0.0.1")
    check_install(fallback_app(up.simple_url), up)
    environ.delenv("NO_PROXY")
    # pypi.upstream_proxy wins over the environment: another proxy, or none at all.
    page = f"GET 127.0.0.1:{up.port}/simple/netpkg/"
    before = _seen(proxy, page)
    app = fallback_app(up.simple_url, pypi__upstream_proxy=proxy.url())
    check_install(app, up)
    assert _seen(proxy, page, app, before) == before + 1
    check_install(fallback_app(up.simple_url, pypi__upstream_proxy="direct"), up)


# --- upstream credentials -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def private_upstream(tmp_path_factory):
    """Another pypirepo that lets nobody read without a login."""
    directory = tmp_path_factory.mktemp("private-upstream")
    srv = Server(directory, app={"pypi.default_read": "authenticated"}).start()
    wheel = make_wheel(directory / "dists", "netpkg", "1.0")
    srv.upload(wheel, "netpkg", "1.0")
    srv.wheel = wheel
    yield srv
    srv.stop()


@pytest.mark.parametrize("source", ["url", "settings", "netrc"])
def test_upstream_credentials_from_each_source(fallback_app, private_upstream, environ,
                                               tmp_path, source):
    srv = private_upstream
    user, password = srv.auth
    url = srv.url + "/simple/"
    settings = {}
    if source == "url":
        url = url.replace("http://", f"http://{user}:{password}@")
    elif source == "settings":
        settings["pypi__upstream_username"] = user
        environ.setenv("PYPIREPO_PYPI_UPSTREAM_PASSWORD", password)  # a secret stays in env
    else:
        netrc = tmp_path / "netrc"
        netrc.write_text(f"machine 127.0.0.1 login {user} password {password}\n")
        environ.setenv("NETRC", str(netrc))
    app = fallback_app(url, **settings)
    assert proxy_repo(app).config.url == srv.url + "/simple/"
    page = app.get("/simple/netpkg/", headers=JSON)
    wheel = srv.wheel
    assert [f["filename"] for f in page.json["files"]] == [wheel.name]
    assert app.get(f"/packages/netpkg/{wheel.name}").body == wheel.read_bytes()


def test_missing_or_wrong_upstream_credentials_are_named_never_shown(
        fallback_app, private_upstream, environ, caplog):
    srv = private_upstream
    res = fallback_app(srv.url + "/simple/").get("/simple/netpkg/", status=502)
    assert "HTTP 401" in res.text and "wants a login" in res.text
    with caplog.at_level(logging.INFO, logger="pypirepo"):
        app = fallback_app(srv.url.replace("http://", "http://admin:not-the-password@")
                           + "/simple/")
        res = app.get("/simple/netpkg/", status=502)
    assert "refused the credentials from the userinfo of pypi.fallback_url" in res.text
    assert "not-the-password" not in res.text + caplog.text
    assert "not-the-password" not in json.dumps(app.get("/_health").json)


@pytest.fixture(scope="module")
def cdn(tmp_path_factory, upstream):
    """The same files on another host (localhost, where the upstream is 127.0.0.1)."""
    server = UpstreamServer(upstream.index, host="localhost").start()
    yield server
    server.stop()


@pytest.mark.parametrize("source", ["url", "settings", "netrc"])
def test_credentials_never_follow_a_redirect_to_another_host(fallback_app, up, cdn, environ,
                                                             tmp_path, source):
    with healthy(cdn):
        up.control(auth="upuser:up-pw", files_at=cdn.url)
        url, settings = up.simple_url, {}
        if source == "url":
            url = url.replace("http://", "http://upuser:up-pw@")
        elif source == "settings":
            settings = {"pypi__upstream_username": "upuser", "pypi__upstream_password": "up-pw"}
        else:
            netrc = tmp_path / "home" / ".netrc"  # ~/.netrc, with a default entry too
            netrc.write_text("machine 127.0.0.1 login upuser password up-pw\n"
                             "default login anyone password default-pw\n")
        app = fallback_app(url, **settings)
        app.authorization = ALICE  # the client's own credentials travel nowhere
        check_install(app, up)
        assert cdn.file_requests(wheel_name("netpkg", "1.0")) == 1
        assert cdn.authorizations == [None]
        assert set(up.authorizations) == {"Basic dXB1c2VyOnVwLXB3"}  # upuser:up-pw


def test_credentials_in_file_urls_go_to_their_host_and_are_never_shown(
        fallback_app, up, cdn, caplog):
    with healthy(cdn):
        cdn.control(auth="fileuser:file-secret")
        up.control(file_base=cdn.url.replace("http://", "http://fileuser:file-secret@"))
        app = fallback_app(up.simple_url)
        check_install(app, up)
        assert cdn.authorizations == ["Basic ZmlsZXVzZXI6ZmlsZS1zZWNyZXQ="]
        assert up.authorizations == [None]
        # In redirect mode the client is sent there without them.
        redirect = fallback_app(up.simple_url, pypi__fallback="redirect")
        location = redirect.get(f"/packages/netpkg/{wheel_name('netpkg', '1.0')}",
                                status=302).location
        assert "file-secret" not in location and location.startswith(cdn.url)
        gone = f"127.0.0.1:{closed_port()}"
        up.control(file_base=f"http://fileuser:file-secret@{gone}")
        with caplog.at_level(logging.INFO, logger="pypirepo"):
            app = fallback_app(up.simple_url)
            app.get("/simple/netpkg/", headers=JSON)
            res = app.get(f"/packages/netpkg/{wheel_name('netpkg', '1.0')}", status=502)
        assert f"could not be reached for http://{gone}/files/netpkg/" in res.text
        assert "file-secret" not in res.text + caplog.text


def test_fallback_url_password_never_shown(fallback_app, environ, caplog):
    url = f"http://user:top-secret@127.0.0.1:{closed_port()}/simple/"
    with caplog.at_level(logging.DEBUG, logger="pypirepo"):
        app = fallback_app(url)
        res = app.get("/simple/netpkg/", status=502)
        health = json.dumps(app.get("/_health").json)
    assert "could not be reached" in res.text
    assert "top-secret" not in res.text + caplog.text + health


# --- the circuit breaker ------------------------------------------------------------------------

class Accepts:
    """A port that accepts connections and closes them at once, counting them."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.count = 0
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.count += 1
            conn.close()

    def close(self):
        self.sock.close()


def test_breaker_counts_connection_attempts_while_down():
    accepts = Accepts()
    try:
        client = UpstreamClient(f"http://127.0.0.1:{accepts.port}/simple/", 1, 1, retries=2,
                                backoff=0.01, down_for=0.5)
        started = time.monotonic()
        for _ in range(50):
            with pytest.raises(UpstreamUnavailable):
                client.fetch_page("netpkg")
        assert accepts.count == 3  # the first call and its two retries; then nothing
        assert time.monotonic() - started < 1.0
        with pytest.raises(UpstreamUnavailable, match="is down since .* not asked again"):
            client.fetch_page("netpkg")
        state = client.state()
        assert state["state"] == "down" and "could not be reached" in state["last_error"]
        time.sleep(0.6)
        # One probe once the time is up (with its retries), everyone else still at once.
        for _ in range(20):
            with pytest.raises(UpstreamUnavailable):
                client.fetch_page("netpkg")
        assert accepts.count == 6
    finally:
        accepts.close()


def test_stale_pages_and_cached_files_at_once_while_down(fallback_app, up, caplog):
    app = fallback_app(up.simple_url, pypi__upstream_ttl="0", pypi__upstream_down_for="1")
    check_install(app, up)
    proxy_repo(app).fetcher.flush()
    wheel = wheel_name("netpkg", "1.0")
    up.down()
    with caplog.at_level(logging.INFO, logger="pypirepo"):
        started = time.monotonic()
        for _ in range(20):
            assert app.get("/simple/netpkg/", headers=JSON).json["files"]
            assert app.get(f"/packages/netpkg/{wheel}").body
            app.get("/simple/never-seen/", status=502)
        assert time.monotonic() - started < 2.0
    state = upstream_state(app)
    assert state["state"] == "down" and state["down_since"] and state["next_try"]
    # One line per project and outage, not one per request.
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len([m for m in lines if m.startswith("netpkg:")]) == 1
    assert len([m for m in lines if m.startswith("never-seen:")]) == 1
    assert len([m for m in lines if m.startswith("the upstream")]) == 1
    up.up()
    time.sleep(1.1)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pypirepo"):
        app.get("/simple/netpkg/", headers=JSON)
    assert upstream_state(app)["state"] == "up"
    assert any("answers again" in r.getMessage() for r in caplog.records)


def test_retry_after_is_honoured(fallback_app, up):
    app = fallback_app(up.simple_url, pypi__upstream_ttl="0", pypi__upstream_retries="2")
    app.get("/simple/netpkg/", headers=JSON)
    up.reset_counters()
    up.control(fail_status=429, retry_after="30")
    for _ in range(10):
        app.get("/simple/netpkg/", headers=JSON)  # stale, at once
    assert up.page_requests("netpkg") == 1  # asked once, not again within the 30 s
    state = upstream_state(app)
    assert state["state"] == "down" and "Retry-After" in state["last_error"]
    # Not before the time it asked for.
    wait = time.mktime(time.strptime(state["next_try"], "%Y-%m-%dT%H:%M:%SZ")) - \
        time.mktime(time.strptime(state["down_since"], "%Y-%m-%dT%H:%M:%SZ"))
    assert 28 <= wait <= 32


def test_upload_guard_503_logged_once(fallback_app, up, dists, caplog):
    app = fallback_app(up.simple_url, pypi__default_write="authenticated")
    up.down()
    wheel = dists.wheel("netpkg", "9.0")
    with caplog.at_level(logging.WARNING, logger="pypirepo"):
        for _ in range(5):  # twine's retries
            res = upload(app, wheel, "netpkg", "9.0", status=503, auth=ALICE)
            assert "Cannot check whether 'netpkg' exists" in res.text
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("netpkg:")]
    assert len(lines) == 1 and "could not be reached" in lines[0] and "503" in lines[0]


def test_health_reports_off_and_up(make_app, fallback_app, up):
    assert make_app().get("/_health").json == {"status": "ok", "upstream": {"state": "off"}}
    state = upstream_state(fallback_app(up.simple_url))
    assert state == {"mode": "cache", "url": up.url, "state": "up"}


def test_a_page_that_leads_back_here_is_not_a_loop(tmp_path, up):
    srv = Server(tmp_path / "srv", app={"pypi.fallback": "cache",
                                        "pypi.fallback_url": up.simple_url,
                                        "pypi.cache_update": "everyone",
                                        "pypi.upstream_retries": "0"})
    srv.directory.mkdir()
    srv.start()
    try:
        import requests

        up.control(pages_at=srv.url)
        started = time.monotonic()
        res = requests.get(srv.url + "/simple/netpkg/", timeout=30)
        assert time.monotonic() - started < 5
        assert res.status_code == 502 and "leads back" in res.text
        assert up.page_requests("netpkg") == 1
        assert srv.log.count("netpkg: answered 502") == 1  # one hop, logged once
    finally:
        srv.stop()
