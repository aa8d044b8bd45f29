"""The server keeps answering (issue 9): idle and half-sent connections, a burst of
keep-alive clients, slow headers, bodies nobody may send, and the log under load.

Each test runs a real pserve with the shipped [server:main] (tests/servers.py takes it
from development.ini, or from the ini a test names) and talks to it over sockets, wrk
or curl, as the clients and the attackers would.
"""

from __future__ import annotations

import base64
import re
import shutil
import socket
import subprocess
import time

import pytest
import requests
from distfactory import make_wheel, upload_fields
from servers import Server

pytestmark = pytest.mark.e2e


def wrk(url: str, connections: int, seconds: int) -> subprocess.Popen:
    """A burst of keep-alive clients (as a CI fleet's installs are), in the background:
    one wrk thread, which keeps them all busy and leaves the server most of the CPU."""
    exe = shutil.which("wrk")
    assert exe, "wrk is missing (make system-deps installs it)"
    return subprocess.Popen([exe, "-t1", f"-c{connections}", f"-d{seconds}s", url],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def connect(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def exchange(server: Server, request: bytes, wait: float = 5.0) -> bytes:
    """Send `request` (headers, maybe not the body they announce) and read what the
    server answers until it closes or stays quiet for `wait` seconds."""
    with connect(server) as sock:
        sock.sendall(request)
        sock.settimeout(wait)
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        return data


def basic(server: Server) -> str:
    return "Basic " + base64.b64encode(":".join(server.auth).encode()).decode()


@pytest.fixture
def server(tmp_path, request):
    srv = Server(tmp_path / "server", **getattr(request, "param", {}))
    srv.directory.mkdir()
    srv.start()
    srv.upload(make_wheel(tmp_path / "dists", "demo", "1.0"), "demo", "1.0")
    yield srv
    srv.stop()


def test_half_open_connections_and_a_burst_leave_the_server_answering(server):
    # 300 connections that send half a request line and stop, while 200 keep-alive
    # clients fetch a page as fast as they can: health and a page, each asked on a new
    # connection, are answered within a second all along.
    idle = []
    try:
        for _ in range(300):
            sock = connect(server)
            sock.sendall(b"GET /simple/ HT")
            idle.append(sock)
        burst = wrk(f"{server.url}/simple/demo/", connections=200, seconds=6)
        time.sleep(1)  # the burst is under way
        worst, asked = 0.0, 0
        until = time.monotonic() + 4
        while time.monotonic() < until:
            for path in ("/_health", "/simple/demo/"):
                started = time.monotonic()
                res = requests.get(server.url + path, timeout=5)
                worst = max(worst, time.monotonic() - started)
                assert res.status_code == 200
                asked += 1
            time.sleep(0.05)
        out = burst.communicate(timeout=30)[0]
        assert burst.returncode == 0, out
        assert worst < 1.0, f"slowest of {asked} answers: {worst:.2f}s\n{out}"
        # Every client of the burst got connected and answered.
        assert "Socket errors" not in out or re.search(r"connect 0\b", out), out
        assert int(re.search(r"(\d+) requests in", out).group(1)) > 1000, out
    finally:
        for sock in idle:
            sock.close()


@pytest.mark.parametrize("server", [{"server": {"header_timeout": "2"}}], indirect=True)
def test_headers_sent_a_byte_at_a_time_are_cut_off(server):
    # Each byte keeps the connection "active" for waitress' channel_timeout (30 s); the
    # header deadline closes it once its request line and headers take over 2 s.
    request = b"GET /simple/ HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
    with connect(server) as sock:
        started = time.monotonic()
        closed_after = None
        for byte in request:
            try:
                sock.sendall(bytes([byte]))
                sock.settimeout(0.3)
                if sock.recv(1024) == b"":
                    closed_after = time.monotonic() - started
                    break
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed_after = time.monotonic() - started
                break
    assert closed_after is not None and closed_after < 5, closed_after
    # A keep-alive connection that waits longer than that between requests is not cut.
    with requests.Session() as session:
        assert session.get(server.url + "/_health").ok
        time.sleep(2.5)
        assert session.get(server.url + "/simple/demo/").ok


LEGACY = (b"POST /legacy/ HTTP/1.1\r\nHost: x\r\n"
          b"Content-Type: multipart/form-data; boundary=b\r\n")


def test_anonymous_upload_is_refused_before_its_body(server):
    # Without credentials, where anonymous users may not write, the answer is a 401
    # whatever the body holds: it comes from the headers, nothing of the body is sent.
    started = time.monotonic()
    answer = exchange(server, LEGACY + b"Content-Length: 100000000\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 401 Authentication required."), answer
    assert b'WWW-Authenticate: Basic realm="pypirepo"' in answer.replace(b"Www-", b"WWW-")
    assert time.monotonic() - started < 2
    # A chunked body (size unknown) the same.
    answer = exchange(server, LEGACY + b"Transfer-Encoding: chunked\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 401 "), answer


def test_expect_100_continue_gets_the_answer_first(server, tmp_path):
    # An anonymous client that waits for "100 Continue" gets its 401 instead.
    answer = exchange(server, LEGACY + b"Content-Length: 500\r\nExpect: 100-continue\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 401 "), answer
    assert b"100 Continue" not in answer
    # With credentials the client is told to go on, and its upload is taken.
    wheel = make_wheel(tmp_path / "more", "demo", "2.0")
    body, ctype = requests.models.RequestEncodingMixin._encode_files(
        {"content": (wheel.name, wheel.read_bytes())}, upload_fields(wheel, "demo", "2.0"))
    head = (f"POST /legacy/ HTTP/1.1\r\nHost: x\r\nAuthorization: {basic(server)}\r\n"
            f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
            "Expect: 100-continue\r\n\r\n").encode()
    with connect(server) as sock:
        sock.sendall(head)
        assert sock.recv(1024) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")
    assert wheel.name in requests.get(server.url + "/simple/demo/").text


@pytest.mark.parametrize("server", [{"app": {"pypi.max_upload_size": "1MB"}}], indirect=True)
def test_oversize_upload_is_refused_before_its_body(server):
    # Over pypi.max_upload_size (plus the form's allowance): a 413 naming the limit, with
    # or without credentials, before a byte of the body; the spool stays empty.
    for auth in (f"Authorization: {basic(server)}\r\n".encode(), b""):
        answer = exchange(server, LEGACY + auth + b"Content-Length: 50000000\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 413 File too large. Limit is 1000000 bytes."), \
            answer
    # Under the limit the body is read and the upload view answers as before.
    body = b"--b--\r\n"
    answer = exchange(server, LEGACY + f"Authorization: {basic(server)}\r\n".encode()
                      + f"Connection: close\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                      + body)
    assert answer.startswith(b"HTTP/1.1 400 "), answer


@pytest.mark.parametrize("server", [{"app": {"pypi.default_write": "everyone"}}],
                         indirect=True)
def test_anonymous_writes_where_allowed_are_not_cut_short(server, tmp_path):
    wheel = make_wheel(tmp_path / "anon", "anon-pkg", "1.0")
    res = requests.post(server.url + "/legacy/", data=upload_fields(wheel, "anon-pkg", "1.0"),
                        files={"content": (wheel.name, wheel.read_bytes())},
                        headers={"Expect": "100-continue"}, timeout=30)
    assert res.status_code == 200, res.text


def test_curl_publishes_and_yanks(server, tmp_path):
    # curl sends neither Origin nor Sec-Fetch-Site, and Expect: 100-continue for a body
    # over 1 MiB: the guard and the header check let it through.
    wheel = make_wheel(tmp_path / "curl", "curl-pkg", "1.0", payload_size=2 * 1024 * 1024)
    user, password = server.auth
    form = [f"-F{k}={v}" for k, v in upload_fields(wheel, "curl-pkg", "1.0").items()]
    out = subprocess.run(["curl", "-sS", "-u", f"{user}:{password}", *form,
                          f"-Fcontent=@{wheel}", "-w", "%{http_code}", "-v",
                          f"{server.url}/legacy/"], capture_output=True, text=True, timeout=60)
    assert out.stdout.endswith("200"), out.stdout + out.stderr
    assert "Expect: 100-continue" in out.stderr
    assert wheel.name in requests.get(server.url + "/simple/curl-pkg/").text
    yank = ["curl", "-sS", "-u", f"{user}:{password}", "-w", "%{http_code}", "-o", "/dev/null",
            "-X", "POST", f"{server.url}/api/projects/curl-pkg/versions/1.0/yank"]
    assert subprocess.run(yank + ["-H", "Content-Type: application/json", "-d",
                                  '{"reason": "old"}'], capture_output=True, text=True,
                          timeout=30).stdout == "200"
    # A browser's form post of the same, sent from another site: refused, not yanked.
    forged = subprocess.run(yank[:-1] + [
        "-H", "Origin: https://evil.example", "-H", "Sec-Fetch-Site: cross-site",
        "-d", "reason=pwned", yank[-1].replace("/yank", "/unyank")],
        capture_output=True, text=True, timeout=30)
    assert forged.stdout == "403"
    assert 'data-yanked="old"' in requests.get(server.url + "/simple/curl-pkg/").text


@pytest.mark.parametrize("server", [
    {"shipped": "production.ini", "server": {"trusted_proxy": "127.0.0.1"}}], indirect=True)
def test_same_origin_behind_a_trusted_proxy(server):
    # production.ini trusts X-Forwarded-Host from its proxy: a page of the public host
    # writing to the public host is this site, another host is not.
    url = server.url + "/api/projects/demo/versions/1.0/yank"
    proxied = {"X-Forwarded-Host": "pypi.example.org", "X-Forwarded-Proto": "https",
               "Origin": "https://pypi.example.org"}
    assert requests.post(url, json={}, headers=proxied, auth=server.auth).status_code == 200
    proxied["Origin"] = "https://evil.example"
    assert requests.post(url, json={}, headers=proxied, auth=server.auth).status_code == 403


@pytest.mark.parametrize("server", [{"shipped": "development.ini"},
                                    {"shipped": "production.ini"}],
                         ids=["development.ini", "production.ini"], indirect=True)
def test_a_burst_does_not_flood_the_log(server):
    # waitress warns "Task queue depth is N" for each request that has to queue: about
    # 12,000 lines in ten seconds of a CI burst with the logging as shipped. Now one
    # line per ten seconds, the next one counting those held back.
    burst = wrk(f"{server.url}/simple/demo/", connections=200, seconds=4)
    out = burst.communicate(timeout=30)[0]
    assert int(re.search(r"(\d+) requests in", out).group(1)) > 1000, out
    lines = [line for line in server.log.splitlines() if "Task queue depth" in line]
    assert 1 <= len(lines) <= 2, f"{len(lines)} lines:\n" + "\n".join(lines[:5])
