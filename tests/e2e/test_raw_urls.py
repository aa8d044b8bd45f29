"""URLs no client library would send, on a raw socket to a real server: bytes that are
not UTF-8 once percent-decoded, in every URL pattern. Each is a 4xx that says why, and
the log holds no traceback."""

from __future__ import annotations

import base64
import socket

import pytest

pytestmark = pytest.mark.e2e

# One URL per route (pypirepo/routes.py), each with a part that cannot be decoded.
PATHS = [
    b"/simple/%ff/", b"/simple/%ff", b"/simple/demo/%C3%28/", b"/packages/demo/%ff",
    b"/packages/%ff/demo-1.0.tar.gz", b"/packages/demo/demo-1.0.tar.gz.metadata%80",
    b"/pypi/%e9/json", b"/pypi/%e9/json/", b"/pypi/demo/%ff/json", b"/pypi/demo/%ff/json/",
    b"/api/projects/%ff/files/x", b"/api/projects/demo/versions/%ff",
    b"/api/projects/demo/versions/%ff/yank", b"/api/projects/%ff/events",
    b"/legacy/+simple/%ff/", b"/_health%ff", b"/%ff", b"/simple/\xff/", b"/simple/%zz/",
    b"/packages/demo/%zz", b"/simple/?format=%ff", b"/simple/demo/?x=%ff%fe",
    b"/pypi/demo/json?%ff=1",
]


def raw_request(port: int, method: bytes, target: bytes, headers: bytes = b"") -> bytes:
    """The status line of the answer to one request written byte for byte."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s\r\n"
                  % (method, target, headers))
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    return answer.split(b"\r\n", 1)[0]


@pytest.mark.parametrize("method", [b"GET", b"HEAD", b"POST", b"DELETE"])
def test_undecodable_urls_are_4xx_without_a_traceback(server, method):
    server.start()
    auth = b"Authorization: Basic %s\r\n" % base64.b64encode(
        b"admin:" + server.password.encode())
    extra = auth + (b"Content-Length: 0\r\n" if method in (b"POST", b"DELETE") else b"")
    for path in PATHS:
        status = raw_request(server.port, method, path, extra)
        code = int(status.split(b" ")[1])
        assert 400 <= code < 500, (path, status)
        if code == 400 and b"%ff" in path.lower():
            assert b"not UTF-8" in status, (path, status)
    assert "Traceback" not in server.log and " ERROR " not in server.log


def route_patterns() -> list[str]:
    """Every URL pattern, as pypirepo.routes declares them."""
    from pypirepo import routes

    class Recorder:
        patterns: list[str] = []

        def add_route(self, name, pattern, **kw):
            self.patterns.append(pattern)

    recorder = Recorder()
    routes.includeme(recorder)
    return recorder.patterns


def test_fuzzed_raw_urls_on_every_pattern(server):
    """The fuzz of tests/functional/test_fuzz.py, with what only a socket can send: any
    byte in the request target, unescaped."""
    from fuzzing import QUERIES, paths
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    server.start()
    auth = b"Authorization: Basic %s\r\n" % base64.b64encode(
        b"admin:" + server.password.encode())

    @settings(max_examples=200, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.sampled_from([b"GET", b"HEAD", b"POST", b"DELETE"]),
           paths(route_patterns()), QUERIES, st.booleans())
    def one(method, path, query, authorized):
        target = path + (b"?" + query if query else b"")
        status = raw_request(server.port, method, target,
                             (auth if authorized else b"") + b"Content-Length: 0\r\n")
        # HTTP/1.0 when waitress itself refuses a request line it cannot parse.
        assert status.startswith(b"HTTP/1.") and int(status.split(b" ")[1]) < 500, \
            (method, target, status)

    one()
    assert "Traceback" not in server.log and " ERROR " not in server.log
