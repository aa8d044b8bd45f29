"""A real upstream index on loopback for the fallback tests and the benchmark.

It serves a generated index of real wheels and sdists (made by distfactory): PEP 691
JSON or PEP 503 HTML by content negotiation, PEP 658 sidecars, ETags with 304 answers,
and the files themselves, streamed from disk. Switches make it misbehave the ways a real
upstream does:

    latency       seconds added to every request (the benchmark uses 0.05)
    chunk_delay   seconds between 64 KiB chunks of a file (a slow, long download)
    fail_status   answer every request with this status (e.g. 503)
    reset         drop every connection without an answer
    html_only     ignore Accept and serve PEP 503 HTML only
    etag          send ETags and honour If-None-Match with 304
    corrupt       filenames served with bytes that disagree with the advertised sha256
    retry_after   a Retry-After header sent with fail_status
    auth          "user:password" that every request must bring (Basic), else 401
    files_at      a base URL that file downloads are redirected to (a file CDN)
    pages_at      a base URL that project pages are redirected to
    file_base     an absolute base for the file URLs on pages (e.g. with user:password@)
    down()/up()   close the listening socket (connection refused) and open it again

UpstreamServer(index, tls=ssl_context) serves https. Every Authorization header received
is kept in `.authorizations` (None for a request without one).

Used in-process (UpstreamServer(...).start()) or as a process:

    python tests/upstream_server.py --dir D --spec spec.json [--port P] [--latency 0.05]

In process mode, GET /_stats and POST /_control (a JSON object of switches) drive it.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import hashlib
import html
import json
import socket
import ssl
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from packaging.utils import canonicalize_name

sys.path.insert(0, str(Path(__file__).resolve().parent))

import distfactory  # noqa: E402

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
CHUNK = 64 * 1024


@dataclass
class UpstreamFile:
    project: str
    filename: str
    path: Path
    sha256: str
    size: int
    upload_time: str
    requires_python: str | None = None
    yanked: bool | str = False
    metadata: bytes | None = None  # wheels: the verbatim METADATA

    @property
    def metadata_sha256(self) -> str | None:
        return hashlib.sha256(self.metadata).hexdigest() if self.metadata else None


@dataclass
class Switches:
    latency: float = 0.0
    chunk_delay: float = 0.0
    fail_status: int = 0
    reset: bool = False
    html_only: bool = False
    etag: bool = True
    corrupt: set = field(default_factory=set)
    retry_after: str | None = None
    auth: str | None = None
    files_at: str | None = None
    pages_at: str | None = None
    file_base: str = ""


def _when(days_ago: float) -> str:
    t = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days_ago)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class UpstreamIndex:
    """The index's content: projects and their files on disk."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.projects: dict[str, list[UpstreamFile]] = {}

    def add(self, name: str, version: str, *, wheel=True, sdist=True, requires_dist=(),
            requires_python=None, age_days: float = 30.0, yanked=False,
            payload_size: int = 0) -> list[UpstreamFile]:
        project = canonicalize_name(name)
        added = []
        files_dir = self.dir / "files" / project
        if wheel:
            path = distfactory.make_wheel(files_dir, name, version, requires_dist=requires_dist,
                                          requires_python=requires_python,
                                          payload_size=payload_size)
            # The METADATA make_wheel wrote into the wheel.
            metadata = distfactory.metadata_text(name, version, requires_dist,
                                                 requires_python).encode()
            added.append(self._file(project, path, age_days, requires_python, yanked, metadata))
        if sdist:
            path = distfactory.make_sdist(files_dir, name, version, requires_dist=requires_dist,
                                          requires_python=requires_python)
            added.append(self._file(project, path, age_days, requires_python, yanked, None))
        self.projects.setdefault(project, []).extend(added)
        return added

    def _file(self, project, path: Path, age_days, requires_python, yanked, metadata):
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return UpstreamFile(project, path.name, path, h.hexdigest(), path.stat().st_size,
                            _when(age_days), requires_python, yanked, metadata)

    def file(self, project: str, filename: str) -> UpstreamFile | None:
        return next((f for f in self.projects.get(project, []) if f.filename == filename), None)

    def to_spec(self) -> list[dict]:
        return [{"project": f.project, "filename": f.filename, "path": str(f.path),
                 "sha256": f.sha256, "size": f.size, "upload_time": f.upload_time,
                 "requires_python": f.requires_python, "yanked": f.yanked,
                 "metadata": f.metadata.decode() if f.metadata else None}
                for files in self.projects.values() for f in files]

    @classmethod
    def from_spec(cls, directory, spec: list[dict]) -> UpstreamIndex:
        index = cls(directory)
        for d in spec:
            meta = d.pop("metadata")
            f = UpstreamFile(path=Path(d.pop("path")), metadata=meta.encode() if meta else None,
                             **d)
            index.projects.setdefault(f.project, []).append(f)
        return index

    # --- pages ---------------------------------------------------------------------------------

    def json_page(self, project: str, base: str = "") -> bytes:
        files = self.projects[project]
        data = {
            "meta": {"api-version": "1.1"},
            "name": project,
            "files": [{
                "filename": f.filename,
                "url": f"{base}/files/{project}/{f.filename}",
                "hashes": {"sha256": f.sha256},
                "requires-python": f.requires_python,
                "yanked": f.yanked,
                "core-metadata": {"sha256": f.metadata_sha256} if f.metadata else False,
                "size": f.size,
                "upload-time": f.upload_time,
            } for f in files],
            "versions": sorted({f.filename.split("-")[1].removesuffix(".tar.gz")
                                for f in files}),
        }
        return json.dumps(data).encode()

    def html_page(self, project: str, base: str = "") -> bytes:
        rows = []
        for f in self.projects[project]:
            attrs = ""
            if f.requires_python:
                attrs += f' data-requires-python="{html.escape(f.requires_python)}"'
            if f.yanked:
                reason = f.yanked if isinstance(f.yanked, str) else ""
                attrs += f' data-yanked="{html.escape(reason)}"'
            if f.metadata:
                attrs += f' data-dist-info-metadata="sha256={f.metadata_sha256}"'
                attrs += f' data-core-metadata="sha256={f.metadata_sha256}"'
            href = f"{base}/files" if base else "../../files"
            rows.append(f'<a href="{href}/{project}/{f.filename}#sha256={f.sha256}"'
                        f'{attrs}>{f.filename}</a><br/>')
        return ("<!DOCTYPE html><html><head>"
                '<meta name="pypi:repository-version" content="1.0">'
                f"<title>Links for {project}</title></head><body>"
                + "\n".join(rows) + "</body></html>").encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY the body waits for
    # the client's delayed ACK (40 ms on Linux), which no real index makes its clients pay.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, fmt, *args):  # quiet: the counters tell the story
        pass

    def do_GET(self):  # noqa: N802 - http.server's naming
        self._serve(head=False)

    def do_HEAD(self):  # noqa: N802
        self._serve(head=True)

    def do_POST(self):  # noqa: N802
        if self.path != "/_control":
            return self._send(404, b"not found\n", "text/plain")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.owner.control(**json.loads(body or b"{}"))
        self._send(200, b"{}", "application/json")

    def _send(self, status, body: bytes, ctype: str, headers=None, head=False):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _serve(self, head: bool):
        owner = self.server.owner
        with owner._lock:
            owner.active += 1
        try:
            self._answer(head)
        finally:
            with owner._lock:
                owner.active -= 1

    def _answer(self, head: bool):
        owner = self.server.owner
        path = self.path.split("?", 1)[0]
        if path == "/_stats":
            return self._send(200, json.dumps(owner.stats()).encode(), "application/json")
        sw = owner.switches
        owner.count(path)
        authorization = self.headers.get("Authorization")
        with owner._lock:
            owner.authorizations.append(authorization)
        if sw.latency:
            time.sleep(sw.latency)
        if sw.reset:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if sw.fail_status:
            headers = {"Retry-After": sw.retry_after} if sw.retry_after else None
            return self._send(sw.fail_status, b"upstream failure (test switch)\n", "text/plain",
                              headers, head=head)
        if sw.auth and authorization != "Basic " + base64.b64encode(sw.auth.encode()).decode():
            return self._send(401, b"log in\n", "text/plain",
                              {"WWW-Authenticate": 'Basic realm="upstream"'}, head=head)
        parts = path.strip("/").split("/")
        moved = sw.pages_at if parts[0] == "simple" else sw.files_at if parts[0] == "files" \
            else None
        if moved:
            return self._send(302, b"", "text/plain", {"Location": moved + path}, head=head)
        index = owner.index
        if len(parts) == 2 and parts[0] == "simple":
            project = parts[1]
            if project not in index.projects:
                return self._send(404, b"Not Found\n", "text/plain", head=head)
            accept = self.headers.get("Accept", "")
            if JSON_TYPE in accept and not sw.html_only:
                body, ctype = index.json_page(project, sw.file_base), JSON_TYPE
            else:
                body, ctype = index.html_page(project, sw.file_base), "text/html; charset=utf-8"
            etag = '"' + hashlib.sha256(body).hexdigest()[:24] + '"'
            if sw.etag and self.headers.get("If-None-Match") == etag:
                owner.count("304")
                self.send_response(304)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            headers = {"ETag": etag} if sw.etag else {}
            headers["Vary"] = "Accept"
            return self._send(200, body, ctype, headers, head)
        if len(parts) == 3 and parts[0] == "files":
            project, filename = parts[1], parts[2]
            if filename.endswith(".metadata"):
                f = index.file(project, filename[: -len(".metadata")])
                if f is None or f.metadata is None:
                    return self._send(404, b"Not Found\n", "text/plain", head=head)
                return self._send(200, f.metadata, "application/octet-stream", head=head)
            f = index.file(project, filename)
            if f is None:
                return self._send(404, b"Not Found\n", "text/plain", head=head)
            owner.count("file:" + filename)
            return self._stream(f, head, filename in sw.corrupt)
        return self._send(404, b"Not Found\n", "text/plain", head=head)

    def _stream(self, f: UpstreamFile, head: bool, corrupt: bool):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(f.size))
        self.send_header("ETag", f'"{f.sha256}"')
        self.end_headers()
        if head:
            return
        first = True
        with open(f.path, "rb") as src:
            while True:
                chunk = src.read(CHUNK)
                if not chunk:
                    break
                if corrupt and first:
                    # Same length, different bytes: only the hash can tell.
                    chunk = bytes([chunk[0] ^ 0xFF]) + chunk[1:]
                first = False
                try:
                    self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    return
                delay = self.server.owner.switches.chunk_delay  # may change mid-stream
                if delay:
                    time.sleep(delay)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    owner: UpstreamServer

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.connections: set = set()
        self._conn_lock = threading.Lock()

    def process_request_thread(self, request, client_address):
        with self._conn_lock:
            self.connections.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._conn_lock:
                self.connections.discard(request)

    def handle_error(self, request, client_address):
        # A client that left, or one that refused our certificate, is no news.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError,
                                               ssl.SSLError)):
            super().handle_error(request, client_address)  # a client that left is no news

    def drop_connections(self) -> None:
        """Going down means the kept-alive connections go too, as when a host dies."""
        with self._conn_lock:
            for conn in list(self.connections):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class UpstreamServer:
    def __init__(self, index: UpstreamIndex, port: int = 0, host: str = "127.0.0.1",
                 tls=None):
        self.index = index
        self.host = host
        self.port = port
        self.tls = tls  # an ssl.SSLContext to serve https with
        self.switches = Switches()
        self.requests: Counter = Counter()
        self.authorizations: list = []
        self.active = 0  # requests being answered right now
        self._lock = threading.Lock()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- life cycle ----------------------------------------------------------------------------

    def start(self) -> UpstreamServer:
        self._httpd = _Server((self.host, self.port), _Handler)
        self._httpd.owner = self
        if self.tls is not None:
            # The handshake happens in the request's thread, on its first read: a client
            # that does not trust us fails there, not in the accepting loop.
            self._httpd.socket = self.tls.wrap_socket(self._httpd.socket, server_side=True,
                                                      do_handshake_on_connect=False)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True,
                                        kwargs={"poll_interval": 0.05})
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd.drop_connections()
            self._httpd = None

    down = stop

    def up(self) -> None:
        self.start()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def simple_url(self) -> str:
        return self.url + "/simple/"

    # --- switches and counters -----------------------------------------------------------------

    def control(self, **switches) -> None:
        for key, value in switches.items():
            if key == "corrupt":
                value = set(value)
            if key == "reset_counters":
                self.reset_counters()
                continue
            if not hasattr(self.switches, key):
                raise ValueError(f"unknown switch {key!r}")
            setattr(self.switches, key, value)

    def normal(self) -> None:
        self.switches = Switches()

    def count(self, what: str) -> None:
        with self._lock:
            self.requests[what] += 1

    def idle(self, timeout: float = 10.0) -> None:
        """Wait until no request is being answered (a slow one may outlive its test)."""
        deadline = time.monotonic() + timeout
        while self.active and time.monotonic() < deadline:
            time.sleep(0.01)

    def reset_counters(self) -> None:
        with self._lock:
            self.requests.clear()
            self.authorizations.clear()

    def stats(self) -> dict:
        with self._lock:
            return dict(self.requests)

    def page_requests(self, project: str) -> int:
        return self.requests[f"/simple/{project}/"]

    def file_requests(self, filename: str) -> int:
        return self.requests["file:" + filename]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True)
    parser.add_argument("--spec", required=True, help="JSON written by UpstreamIndex.to_spec")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args(argv)
    index = UpstreamIndex.from_spec(args.dir, json.loads(Path(args.spec).read_text()))
    server = UpstreamServer(index, args.port).start()
    server.switches.latency = args.latency
    print(server.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()


@contextlib.contextmanager
def healthy(server):
    """The upstream, well-behaved and with fresh counters, for one test; put back up and
    well-behaved afterwards whatever the test switched."""
    if server._httpd is None:
        server.up()
    server.normal()
    server.idle()
    server.reset_counters()
    try:
        yield server
    finally:
        if server._httpd is None:
            server.up()
        server.normal()
