"""An upstream index that misbehaves on purpose, for the hardening tests (issue 9).

A raw-socket HTTP/1.1 server whose answer to each path is scripted by the test: it can
say one Content-Length and send another amount, send a page one byte a second, stop in
the middle of a file and hold the connection open, or inflate a few megabytes of gzip
into gigabytes. http.server cannot do those, and a real upstream does them by accident.

    up = HostileUpstream().start()
    up.script("/simple/demo/", page(entry("demo-1.0.tar.gz", data)))
    up.script("/files/demo-1.0.tar.gz", Answer(body=data, rate=1, piece=1))
    ...
    up.stop()

Every answer closes its connection. What was sent is counted per path (`sent`), so a
test can tell how far a client read before it hung up; `asked` counts the requests.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
REASONS = {200: "OK", 304: "Not Modified", 404: "Not Found", 500: "Internal Server Error"}


@dataclass
class Answer:
    """One scripted answer.

    body        bytes, or a callable giving an iterable of bytes (a stream made on demand:
                a 2 GB file need not exist)
    length      the Content-Length sent: "auto" (the body's length, when it is bytes),
                None (none: the body ends when the connection closes), or any number
    rate        bytes per second (None: as fast as the socket takes them), sent in
                pieces of `piece` bytes
    stall_after after that many body bytes, send nothing more and keep the connection
                open until the client hangs up (or the script is taken away)
    """

    status: int = 200
    headers: dict = field(default_factory=dict)
    body: bytes | Callable[[], Iterable[bytes]] = b""
    length: int | str | None = "auto"
    rate: float | None = None
    piece: int = 64 * 1024
    stall_after: int | None = None

    def head(self) -> bytes:
        lines = [f"HTTP/1.1 {self.status} {REASONS.get(self.status, 'Whatever')}"]
        headers = dict(self.headers)
        length = len(self.body) if self.length == "auto" and isinstance(self.body, bytes) \
            else None if self.length == "auto" else self.length
        if length is not None:
            headers["Content-Length"] = str(length)
        headers["Connection"] = "close"
        lines += [f"{k}: {v}" for k, v in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def chunks(self) -> Iterable[bytes]:
        if isinstance(self.body, bytes):
            return (self.body[i:i + self.piece] for i in range(0, len(self.body), self.piece))
        return self.body()


class HostileUpstream:
    def __init__(self, host: str = "127.0.0.1"):
        self.host = host
        self.port = 0
        self.scripts: dict[str, Answer | Callable[[dict], Answer]] = {}
        self.asked: Counter = Counter()
        self.sent: Counter = Counter()
        self.active = 0  # answers being sent right now
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def simple_url(self) -> str:
        return self.url + "/simple/"

    def script(self, path: str, answer: Answer | Callable[[dict], Answer]) -> None:
        """What `path` answers from now on: an Answer, or a function of the request's
        headers (lower-case names) that returns one."""
        self.scripts[path] = answer

    def file(self, filename: str, data: bytes, **kw) -> None:
        self.script(f"/files/{filename}", Answer(body=data,
                                                 headers={"Content-Type":
                                                          "application/octet-stream"}, **kw))

    # --- life cycle ----------------------------------------------------------------------------

    def start(self) -> HostileUpstream:
        self._sock = socket.create_server((self.host, self.port), backlog=256)
        self.port = self._sock.getsockname()[1]
        self._stopping.clear()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def idle(self, timeout: float = 10.0) -> None:
        """Wait until no answer is being sent (a stalled one ends when its client goes)."""
        deadline = time.monotonic() + timeout
        while self.active and time.monotonic() < deadline:
            time.sleep(0.01)

    def _accept(self) -> None:
        sock = self._sock
        while not self._stopping.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    # --- one connection ------------------------------------------------------------------------

    def _serve(self, conn: socket.socket) -> None:
        with self._lock:
            self.active += 1
        try:
            conn.settimeout(10)
            request = _read_head(conn)
            if request is None:
                return
            path = request["path"].split("?", 1)[0]
            with self._lock:
                self.asked[path] += 1
            script = self.scripts.get(path)
            if script is None:
                answer = Answer(404, {"Content-Type": "text/plain"}, b"not found\n")
            else:
                answer = script(request["headers"]) if callable(script) else script
            self._send(conn, path, answer)
        except OSError:
            pass  # the client hung up: that is what many of these tests want
        finally:
            with self._lock:
                self.active -= 1
            try:
                conn.close()
            except OSError:
                pass

    def _send(self, conn: socket.socket, path: str, answer: Answer) -> None:
        conn.sendall(answer.head())
        pause = answer.piece / answer.rate if answer.rate else 0.0
        count = 0
        for chunk in answer.chunks():
            if answer.stall_after is not None and count + len(chunk) > answer.stall_after:
                chunk = chunk[: answer.stall_after - count]
            if chunk:
                for i in range(0, len(chunk), answer.piece):
                    part = chunk[i:i + answer.piece]
                    conn.sendall(part)
                    count += len(part)
                    with self._lock:
                        self.sent[path] += len(part)
                    if pause and self._stopping.wait(pause):
                        return
            if answer.stall_after is not None and count >= answer.stall_after:
                self._hold(conn, path)
                return

    def _hold(self, conn: socket.socket, path: str) -> None:
        """Send nothing, and keep the connection until the client closes it, the path's
        script is taken away or the server stops."""
        conn.setblocking(False)
        script = self.scripts.get(path)
        while not self._stopping.is_set() and self.scripts.get(path) is script:
            ready, _, _ = select.select([conn], [], [], 0.1)
            if ready:
                try:
                    if not conn.recv(65536):
                        return
                except BlockingIOError:
                    continue
                except OSError:
                    return


def _read_head(conn: socket.socket) -> dict | None:
    data = b""
    while b"\r\n\r\n" not in data:
        more = conn.recv(65536)
        if not more:
            return None
        data += more
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    method, path, _ = head[0].split(" ", 2)
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return {"method": method, "path": path, "headers": headers}


# --- what the scripts serve --------------------------------------------------------------------

def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def entry(filename: str, data: bytes | None = None, **fields) -> dict:
    """A PEP 691 file entry for /files/<filename>; `data` gives its hash and size, `fields`
    override anything (with - in the names, as on the wire: pass them as a dict)."""
    out = {"filename": filename, "url": f"/files/{filename}"}
    if data is not None:
        out["hashes"] = {"sha256": sha256(data)}
        out["size"] = len(data)
    out.update(fields)
    return out


def page(*entries: dict, name: str = "x", raw: bytes | None = None, **headers) -> Answer:
    """A PEP 691 page answer listing `entries` (or the bytes of `raw` as they are)."""
    body = raw if raw is not None else json.dumps(
        {"meta": {"api-version": "1.1"}, "name": name, "files": list(entries)}).encode()
    return Answer(200, {"Content-Type": JSON_TYPE, **headers}, body)


def zeros(total: int, piece: int = 1 << 20) -> Callable[[], Iterable[bytes]]:
    """A stream of `total` zero bytes, made as it is sent."""
    block = bytes(piece)

    def stream():
        left = total
        while left > 0:
            yield block[: min(piece, left)]
            left -= piece

    return stream


def gzip_bomb(inflated: int) -> bytes:
    """A gzip body that inflates to `inflated` bytes of spaces (valid JSON whitespace),
    made of one small member repeated: gzip readers must take concatenated members."""
    member_size = 64 << 20
    member = gzip.compress(b" " * member_size, compresslevel=9)
    return member * max(1, inflated // member_size)
