"""waitress 3 with what a server that faces clients needs: `create_server` is
waitress.create_server, taking the same [server:main] keys, with these added:

- A look at a request's headers before its body. waitress reads a body whole (spooling
  it to disk past `inbuf_overflow`) before the app is called, and answers
  `Expect: 100-continue` as soon as the headers are in. Here the app's `before_body`
  check (security.BodyGate) sees the headers first and may answer at once: an upload
  over the size limit gets its 413, an anonymous write where anonymous can't write its
  401, without the server taking the body, and a client that asked for
  `100 Continue` gets that answer instead, before it sends anything. The connection is
  closed after such an answer (a client still sending may see it reset).
- `header_timeout` (seconds, default 20): a request line and its headers must be in
  within this time of their first byte. waitress has only `channel_timeout`, an idle
  timeout that a client sending a byte now and then never meets.
- The open-files limit raised to its hard limit: each connection holds a descriptor, and
  one or two more while a body spools.
- The peer's own address in `environ["pypirepo.peer_addr"]`: behind a trusted proxy
  waitress replaces REMOTE_ADDR with the client's (X-Forwarded-For); a header only that
  proxy may set (`auth.remote_user_header`) is believed by who sent it.
- waitress' warnings that repeat under load (`Task queue depth is N`, once per queued
  request) let through once per `REPEAT_INTERVAL`, with a count of those held back.
"""

from __future__ import annotations

import logging
import threading
import time

from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import BaseWSGIServer
from waitress.server import create_server as waitress_create_server
from waitress.task import WSGITask
from waitress.utilities import Error

log = logging.getLogger(__name__)

DEFAULT_HEADER_TIMEOUT = 20.0
REPEAT_INTERVAL = 10.0
# waitress' own loggers: its server and channels, and its task queue.
WAITRESS_LOGGERS = ("waitress", "waitress.queue")


def create_server(app, **kw):
    """waitress.create_server(app, **kw) with the additions above."""
    header_timeout = kw.pop("header_timeout", DEFAULT_HEADER_TIMEOUT)
    try:
        header_timeout = float(header_timeout)
        if header_timeout <= 0:
            raise ValueError
    except ValueError:
        raise SystemExit("pypirepo: configuration error: header_timeout: expected a "
                         f"number of seconds above 0, got {header_timeout!r}") from None
    for name in WAITRESS_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RepeatFilter) for f in logger.filters):
            logger.addFilter(RepeatFilter(REPEAT_INTERVAL))
    before_body = getattr(app, "before_body", None)  # fastpath.FastPath: the app's gate
    channel = channel_class(before_body, header_timeout)

    dispatchers: dict = {}
    server = waitress_create_server(app, map=dispatchers, **kw)
    # Each listening socket's server makes its connections' channels from this attribute.
    for dispatcher in list(dispatchers.values()):
        if isinstance(dispatcher, BaseWSGIServer):
            dispatcher.channel_class = channel
    raise_open_files_limit(server.adj.connection_limit)
    return server


def channel_class(before_body, header_timeout: float) -> type:
    """An HTTPChannel whose requests are checked after their headers and timed until then."""
    parser = type("GatedParser", (GatedParser,), {"before_body": staticmethod(before_body)}) \
        if before_body is not None else HTTPRequestParser
    return type("PypirepoChannel", (TimedChannel,),
                {"parser_class": parser, "header_timeout": header_timeout,
                 "task_class": PeerTask})


# pypirepo.access.session.PEER_ADDR
PEER_ADDR = "pypirepo.peer_addr"


class PeerTask(WSGITask):
    """Keeps the peer's address before waitress' proxy middleware rewrites REMOTE_ADDR."""

    def get_environment(self):
        fresh = self.environ is None
        environ = super().get_environment()
        if fresh:
            environ[PEER_ADDR] = environ.get("REMOTE_ADDR", "")
        return environ


class Refusal(Error):
    """An answer given from the headers alone; waitress' ErrorTask sends it and closes."""

    def __init__(self, status: int, message: str, headers=()):
        super().__init__(message)
        self.code, self.reason, self.headers = status, message, list(headers)

    def to_response(self, ident=None):
        return (f"{self.code} {self.reason}",
                [("Content-Type", "text/plain; charset=utf-8"), *self.headers],
                (self.reason + "\n").encode())


class GatedParser(HTTPRequestParser):
    """A request parser that asks `before_body(method, headers, content_length)` once the
    headers of a request with a body are in. headers are as waitress keeps them (upper
    case, `-` as `_`: AUTHORIZATION, EXPECT); content_length is None for a chunked body.
    An answer (status, message, headers) completes the request as that error, so waitress
    neither reads the body nor sends `100 Continue`."""

    before_body = None

    def received(self, data):
        before = self.headers_finished
        consumed = super().received(data)
        if not before and self.headers_finished and not self.completed:
            answer = self.before_body(self.command, self.headers,
                                      None if self.chunked else self.content_length)
            if answer is not None:
                self.error = Refusal(*answer)
                self.completed = True
                self.expect_continue = False
        return consumed


class TimedChannel(HTTPChannel):
    """Closes a connection whose request line and headers take over header_timeout."""

    header_timeout = DEFAULT_HEADER_TIMEOUT
    _started = 0.0  # when the first byte of the request being read arrived

    def received(self, data):
        now = time.monotonic()
        pending = self.request
        if pending is not None and not pending.headers_finished \
                and now - self._started > self.header_timeout:
            self.will_close = True  # the main loop closes it on its next pass
            return False
        result = super().received(data)
        if self.request is not None and self.request is not pending:
            self._started = now  # a new request began in this data
        return result


class RepeatFilter(logging.Filter):
    """Lets each message (by its template) through once per `interval` seconds; the next
    one that passes says how many were held back. Under a burst waitress warns
    `Task queue depth is N` for every queued request, thousands a second."""

    MAX_TEMPLATES = 256

    def __init__(self, interval: float):
        super().__init__()
        self.interval = interval
        self._lock = threading.Lock()
        self._seen: dict[str, list] = {}  # template -> [next pass time, held back]

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        key = str(record.msg)
        with self._lock:
            entry = self._seen.get(key)
            if entry is not None and now < entry[0]:
                entry[1] += 1
                return False
            held = entry[1] if entry is not None else 0
            if entry is None and len(self._seen) >= self.MAX_TEMPLATES:
                self._seen.clear()  # waitress formats some messages itself (paths)
            self._seen[key] = [now + self.interval, 0]
        if held:
            record.msg = f"{record.msg} [and {held} more like it since the last one shown]"
        return True


def raise_open_files_limit(connections: int) -> None:
    """Lift the soft open-files limit to the hard one (systemd's soft default is 1024,
    which connection_limit and spooled bodies can pass); say so if that is not enough."""
    try:
        import resource
    except ImportError:  # not on this platform: its own limits apply
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    # A connection, a spooled body and the database and storage besides.
    needed = 2 * connections + 64
    if soft != resource.RLIM_INFINITY and soft < needed:
        log.warning("the open-files limit is %d, below the %d that connection_limit = %d "
                    "may need: raise it (ulimit -n, systemd LimitNOFILE=)", soft, needed,
                    connections)
