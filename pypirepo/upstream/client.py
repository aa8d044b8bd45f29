"""The upstream index client: urllib3 pool managers, built once at start-up.

Two calls: a project page (PEP 691 JSON asked for first, PEP 503 HTML understood too,
revalidated with If-None-Match) and a file stream. Errors come out as two kinds that the
policy treats differently: UpstreamNotFound (the upstream says the thing does not exist,
which may be remembered) and UpstreamUnavailable (it could not be asked: down, slow past
the timeout, a 5xx, garbage), which must never be remembered as an answer.

Every request to the upstream is made by `_exchange`, one hop at a time: it picks the
proxy (network.Proxies) and the credentials for the hop's host, asks the host's circuit
breaker (health.Breaker), follows redirects itself, and turns each failure into a message
that names what to change (the CA source, the proxy). Credentials go only to the host
they are for: the upstream's own, or the one whose URL carried them. A client's own
credentials are never here to send. URLs in messages have their passwords masked.

No request holds a thread without end: a page must be in within `page_timeout` (retries
and redirects included), a file must keep coming at `min_rate` over every `rate_window`,
and neither may grow past its size limit; the body is read with read1(), so a body that
trickles in a byte at a time is seen doing it (a read of a fixed size would wait for all
of it, and a per-read timeout never fires while bytes keep coming). A page's gzip is
inflated here, never past the page limit, so a small body cannot inflate into gigabytes.

urllib3 rather than requests: a cold install makes three upstream calls per package on
the request path, and requests' session machinery (settings merge, hooks, cookies,
adapters) cost about as much CPU again as the HTTP exchange itself, under the GIL that
every other request is waiting for. What requests takes from the environment (CA
bundles, proxies, netrc) is read once at start-up instead (network.py).
"""

from __future__ import annotations

import email.utils
import logging
import secrets
import ssl
import time
import warnings
import zlib
from dataclasses import dataclass
from urllib.parse import quote, urljoin

import urllib3
from urllib3.exceptions import (
    HTTPError,
    InsecureRequestWarning,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
    TimeoutError as Urllib3Timeout,
)

from .health import Breaker, Down, Health
from .network import (
    Credentials,
    Proxies,
    Proxy,
    Trust,
    basic_auth,
    mask_url,
    origin,
    origin_text,
    resolve_trust,
    scrub,
    split_userinfo,
)
from .parse import ACCEPT, DEFAULT_MAX_FILES, PageFormatError, parse_page

log = logging.getLogger(__name__)

RETRY_STATUSES = {429, 500, 502, 503, 504}
REDIRECT_STATUSES = {301, 302, 303, 307, 308}
USER_AGENT = "pypirepo-upstream/1"
MAX_REDIRECTS = 10
# Sent with every upstream request (RFC 9110's Via, which exists to detect loops): a
# request that arrives here carrying it was made by this very process, because the
# upstream (or a redirect of its) leads back to us. It is refused, not fetched again.
VIA = f"1.1 pypirepo-{secrets.token_hex(6)}"
CHUNK = 256 * 1024
# A slow file's bytes reach the clients waiting on it at least this often (seconds).
FLUSH_EVERY = 0.25


class UpstreamError(Exception):
    """Base of the upstream's failures; str() is a message fit for a client (passwords
    in URLs are masked whatever the message was built from)."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(scrub(message))
        # The state this failure belongs to (an outage of a host, a kind of error): a
        # project's failure is logged once per state (health.Health.report).
        self.key = key


class UpstreamNotFound(UpstreamError):
    pass


class UpstreamUnavailable(UpstreamError):
    pass


class UpstreamBusy(UpstreamUnavailable):
    """Every request thread that may wait on the upstream is waiting on it: nothing is
    held to answer with, so the client is asked to come back (503 with Retry-After)."""

    RETRY_AFTER = 1

    def __init__(self, slots: int):
        super().__init__(f"all {slots} request threads that may wait on the upstream index "
                         "are waiting on it (pypi.upstream_max_waiting); try again in a "
                         "moment", "busy")


@dataclass
class FetchedPage:
    files: list[dict] | None  # None when not modified
    etag: str | None
    not_modified: bool = False


class UpstreamFile:
    """A streaming upstream response: headers, the final URL, close()."""

    def __init__(self, response, url: str):
        self.response = response
        self.url = url  # masked: for messages
        self.headers = response.headers
        self._done = False

    def close(self) -> None:
        # A body read to its end has gone back to the pool already; one broken off must
        # not leave its rest in a pooled connection.
        if not self._done:
            self.response.close()
        self.response.release_conn()


@dataclass
class _Route:
    """How one host is reached: through which pool manager (direct or a proxy), with
    which credentials, under which breaker."""

    manager: urllib3.PoolManager
    proxy: Proxy | None
    auth: str | None
    breaker: Breaker


class _Failed(Exception):
    """One exchange failed: the error, whether asking again may help, and the breaker to
    open when it is the last try (None: the failure says nothing about the host)."""

    def __init__(self, error: UpstreamError, retry: bool, breaker: Breaker | None = None,
                 wait: float | None = None):
        super().__init__(str(error))
        self.error, self.retry, self.breaker, self.wait = error, retry, breaker, wait


class UpstreamClient:
    def __init__(self, base_url: str, connect_timeout: float = 3.0, read_timeout: float = 15.0,
                 retries: int = 2, pool_size: int = 32, backoff: float = 0.1, *,
                 trust: Trust | None = None, proxies: Proxies | None = None,
                 credentials: Credentials | None = None, down_for: float = 0.0,
                 page_timeout: float = 30.0, max_page_size: int = 64 * 1000**2,
                 max_page_files: int = DEFAULT_MAX_FILES, min_rate: int = 0,
                 rate_window: float = 30.0):
        self.base_url = base_url.rstrip("/") + "/"
        self.index_origin = origin(self.base_url)
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self.timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        self.page_timeout = page_timeout
        self.max_page_size = max_page_size
        self.max_page_files = max_page_files
        self.min_rate, self.rate_window = min_rate, rate_window
        # When the upstream last sent anything (monotonic): tells a stalled upstream from
        # a busy one (fallback.background.WaitSlots).
        self.last_answer = float("-inf")
        self.retries = retries
        self.backoff = backoff
        self.trust = trust or resolve_trust(None, {}.get)  # the system store
        self.proxies = proxies or Proxies()
        self.credentials = credentials
        self.health = Health(down_for)
        self._pool_size = pool_size
        self._ssl = self.trust.context()
        if not self.trust.verify:
            # Said once at start-up (config); not once per request.
            warnings.filterwarnings("ignore", category=InsecureRequestWarning)
        self._managers: dict[Proxy | None, urllib3.PoolManager] = {}
        self._routes: dict[tuple[str, str, int], _Route] = {}
        self._headers = {"User-Agent": USER_AGENT, "Via": VIA}

    @classmethod
    def from_config(cls, config) -> UpstreamClient:
        return cls(config.url, config.connect_timeout, config.read_timeout, config.retries,
                   trust=config.trust, proxies=config.proxies, credentials=config.credentials,
                   down_for=config.down_for, page_timeout=config.page_timeout,
                   max_page_size=config.max_page_size, max_page_files=config.max_page_files,
                   min_rate=config.min_rate, rate_window=config.rate_window)

    def project_url(self, project: str) -> str:
        return f"{self.base_url}{quote(project)}/"

    def close(self) -> None:
        for manager in self._managers.values():
            manager.clear()

    def state(self) -> dict:
        """The upstream's health for /_health."""
        return self.health.state(self.index_origin)

    # --- the two calls ---------------------------------------------------------------------

    def fetch_page(self, project: str, etag: str | None = None) -> FetchedPage:
        url = self.project_url(project)
        # Compressed as requests asked for it: a big project's page shrinks several-fold.
        # gzip alone: it is what indexes send, and what _Inflater knows.
        headers = {"Accept": ACCEPT, "Accept-Encoding": "gzip"}
        if etag:
            headers["If-None-Match"] = etag
        deadline = time.monotonic() + self.page_timeout
        response, final_url, body = self._get(url, headers, deadline)
        if response.status == 304:
            return FetchedPage(None, response.headers.get("ETag") or etag, not_modified=True)
        try:
            files = parse_page(body, response.headers.get("Content-Type", ""), final_url,
                               project, self.max_page_files)
        except PageFormatError as exc:
            raise UpstreamUnavailable(f"the upstream index answered {url} with {exc}",
                                      "bad page") from None
        return FetchedPage(files, response.headers.get("ETag"))

    def open_file(self, url: str) -> UpstreamFile:
        """A streaming response; read it with read_file(), close it when done."""
        # identity: the bytes we hash and store are the bytes the upstream hashed.
        response, final_url, _ = self._get(url, {"Accept-Encoding": "identity"})
        return UpstreamFile(response, mask_url(final_url))

    def read_file(self, file: UpstreamFile, limit: int, why: str, chunk: int = CHUNK):
        """The body in pieces of about `chunk` bytes (sooner when it comes slowly).

        Raises UpstreamUnavailable when it breaks off, at the first byte past `limit`
        (`why` says whose limit that is), or when fewer than min_rate bytes a second came
        over the last rate_window seconds.
        """
        read1, now = file.response.read1, time.monotonic
        window = self.rate_window
        floor = self.min_rate * window
        received = held = 0
        pending: list[bytes] = []
        # The window: when it began, when it ends, how much had come in by its start.
        began = flushed = now()
        ends, before = began + window, 0
        while True:
            try:
                piece = read1(chunk, decode_content=False)
            except (HTTPError, OSError) as exc:
                raise UpstreamUnavailable(
                    f"the upstream index broke off sending {file.url}: {_describe(exc)}",
                    "broke off") from None
            if not piece:
                break
            received += len(piece)
            self.last_answer = t = now()
            if received > limit:
                raise UpstreamUnavailable(
                    f"the upstream index sent more than the {limit} bytes {why} for "
                    f"{file.url}; it was broken off there", "too large")
            pending.append(piece)
            held += len(piece)
            if t >= ends:
                if received - before < floor:
                    rate = (received - before) / (t - began)
                    raise UpstreamUnavailable(
                        f"the upstream index sent {file.url} at {rate:.0f} bytes/s over "
                        f"{t - began:.0f}s, below pypi.upstream_min_rate ({self.min_rate} "
                        f"bytes/s); it was broken off after {received} bytes", "too slow")
                began, ends, before = t, t + window, received
            if held >= chunk or t - flushed >= FLUSH_EVERY:
                yield pending[0] if len(pending) == 1 else b"".join(pending)
                pending, held, flushed = [], 0, t
        file._done = True
        if pending:
            yield b"".join(pending)

    def _read_page(self, response, url: str, deadline: float) -> bytearray:
        """The page's body, inflated; never more than max_page_size bytes of it, before
        or after inflating, and in by the deadline."""
        limit = self.max_page_size
        shown = mask_url(url)

        def too_large(what: str) -> _Failed:
            return _Failed(UpstreamUnavailable(
                f"the upstream index answered {shown} with a page {what} larger than "
                f"pypi.upstream_max_page_size ({limit} bytes)", "page too large"), False)

        length = response.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > limit:
            raise too_large(f"({length} bytes)")
        encoding = response.headers.get("Content-Encoding", "").strip().lower()
        if encoding in ("", "identity"):
            inflater = None
        elif encoding in ("gzip", "x-gzip"):
            inflater = _Inflater()
        else:
            raise _Failed(UpstreamUnavailable(
                f"the upstream index answered {shown} with Content-Encoding {encoding!r}, "
                "which was not asked for", "bad page"), False)
        conn = getattr(response, "connection", None)
        sock = getattr(conn, "sock", None)
        read1, now = response.read1, time.monotonic
        # One buffer grown in place (a big one is remapped, not copied): a page's bytes are
        # held once, not once in pieces and once joined.
        body = bytearray()
        received = size = 0
        while True:
            left = deadline - now()
            if left <= 0:
                raise self._late(shown)
            if sock is not None and left < self.read_timeout:
                sock.settimeout(left)  # a stall cannot outlast the deadline either
            data = read1(CHUNK, decode_content=False)
            self.last_answer = now()
            if not data:
                break
            received += len(data)
            if received > limit:
                raise too_large("body")
            if inflater is not None:
                try:
                    data = inflater.feed(data, limit - size + 1)
                except zlib.error as exc:
                    raise _Failed(UpstreamUnavailable(
                        f"the upstream index answered {shown} with a gzip body that does "
                        f"not inflate: {exc}", "bad page"), False) from None
            size += len(data)
            if size > limit:
                raise too_large("inflated")
            body += data
        return body

    def _late(self, shown: str) -> _Failed:
        return _Failed(UpstreamUnavailable(
            f"the upstream index did not send {shown} within {self.page_timeout:.0f}s "
            "(pypi.upstream_page_timeout)", "page timeout"), False)

    # --- every request goes through here -----------------------------------------------------

    def _get(self, url: str, headers: dict, deadline: float | None = None):
        """(urllib3 response with status 200 or 304, the URL it came from after redirects,
        the body when there is a deadline: a page's, read to its end under the page's
        limits), retried as the failure allows; the breaker of a host that failed is
        opened."""
        probes: set[Breaker] = set()
        attempt = 0
        try:
            while True:
                try:
                    return self._exchange(url, headers, probes, deadline)
                except _Failed as failed:
                    pause = self.backoff * 2 ** attempt
                    if failed.retry and attempt < self.retries and (
                            deadline is None or time.monotonic() + pause < deadline):
                        attempt += 1
                        time.sleep(pause)
                        log.info("retrying upstream %s (attempt %d): %s", mask_url(url),
                                 attempt + 1, failed.error)
                        continue
                    breaker = failed.breaker
                    if breaker is not None:
                        outage = breaker.failed(str(failed.error), breaker in probes,
                                                failed.wait)
                        probes.discard(breaker)
                        if breaker.down:
                            failed.error.key = f"{breaker.name} down #{outage}"
                    raise failed.error from None
        finally:
            for breaker in probes:  # a probe that got any answer: the host is back
                breaker.succeeded(True)

    def _exchange(self, url: str, headers: dict, probes: set, deadline: float | None):
        """One try: the request and the redirects it meets, one hop at a time."""
        url, creds = split_userinfo(url) if "@" in url else (url, None)
        own = (origin(url), creds) if creds else None  # credentials from a page's URL
        for _ in range(MAX_REDIRECTS + 1):
            route = self._route(url)
            breaker = route.breaker
            if breaker not in probes:
                try:
                    if breaker.admit():
                        probes.add(breaker)
                except Down:
                    raise _Failed(self._down_error(breaker, url), retry=False) from None
            sent = dict(self._headers)
            sent.update(headers)
            if own is not None and own[0] == breaker.origin:
                sent["Authorization"] = basic_auth(*own[1])
                login = "the credentials in the file's URL on the upstream's page"
            elif route.auth is not None:
                sent["Authorization"] = route.auth
                login = self.credentials.source
            else:
                login = None
            timeout = self.timeout if deadline is None else self._until(deadline, url)
            try:
                response = route.manager.urlopen(
                    "GET", url, headers=sent, redirect=False, retries=False,
                    timeout=timeout, preload_content=False, decode_content=False)
                self.last_answer = time.monotonic()
                status = response.status
                if status == 200 and deadline is not None:
                    try:
                        body = self._read_page(response, url, deadline)
                    except BaseException:
                        response.close()  # its rest must not stay in a pooled connection
                        raise
                    response.release_conn()
                    return response, url, body
            except (HTTPError, OSError) as exc:
                if deadline is not None and time.monotonic() >= deadline:
                    raise self._late(mask_url(url)) from None
                raise self._failure(exc, url, route) from None
            if status in (200, 304):
                if status == 304:
                    response.release_conn()
                return response, url, None
            location = response.headers.get("Location") if status in REDIRECT_STATUSES \
                else None
            retry_after = response.headers.get("Retry-After")
            _let_go(response)
            if location:
                url = self._redirect(url, location)
                continue
            if status in (404, 410):
                raise UpstreamNotFound(f"the upstream index has no {mask_url(url)} ({status})")
            raise self._status_failure(status, url, route, retry_after, login)
        raise _Failed(UpstreamUnavailable(
            f"the upstream index redirected {mask_url(url)} more than {MAX_REDIRECTS} times",
            "redirects"), retry=False)

    def _until(self, deadline: float, url: str) -> urllib3.Timeout:
        left = deadline - time.monotonic()
        if left <= 0:
            raise self._late(mask_url(url))
        return urllib3.Timeout(connect=min(self.connect_timeout, left),
                               read=min(self.read_timeout, left))

    @staticmethod
    def _redirect(url: str, location: str) -> str:
        try:
            target = urljoin(url, location)
            ok = origin(target)[0] in ("http", "https")
        except ValueError:
            ok = False
        if not ok:
            raise _Failed(UpstreamUnavailable(
                f"the upstream index redirected {mask_url(url)} to something that is not an "
                f"http(s) URL: {mask_url(location)[:200]!r}", "bad redirect"), retry=False)
        return target

    def _route(self, url: str) -> _Route:
        o = origin(url)
        route = self._routes.get(o)
        if route is None:
            scheme, host, port = o
            proxy = self.proxies.for_url(scheme, host, port)
            manager = self._managers.get(proxy)
            if manager is None:
                manager = self._managers.setdefault(proxy, self._manager(proxy))
            route = _Route(manager, proxy, self._credentials_for(o), self.health.breaker(o))
            self._routes[o] = route
        return route

    def _manager(self, proxy: Proxy | None) -> urllib3.PoolManager:
        kw = dict(num_pools=8, maxsize=self._pool_size, block=False, ssl_context=self._ssl,
                  cert_reqs="CERT_REQUIRED" if self.trust.verify else "CERT_NONE")
        if not self.trust.verify:
            kw["assert_hostname"] = False
        if proxy is None:
            return urllib3.PoolManager(**kw)
        if proxy.url.startswith("socks"):
            from urllib3.contrib.socks import SOCKSProxyManager

            return SOCKSProxyManager(proxy.url, **kw)
        headers = {"Proxy-Authorization": proxy.auth} if proxy.auth else None
        return urllib3.ProxyManager(proxy.url, proxy_headers=headers,
                                    proxy_ssl_context=self._ssl, **kw)

    def _credentials_for(self, o: tuple[str, str, int]) -> str | None:
        """The upstream's credentials go to its own host only (and to its https twin on
        the default ports, as requests allows for an http -> https redirect)."""
        if self.credentials is None:
            return None
        index = self.index_origin
        if o == index or (index[0] == "http" and index[2] == 80 and o == ("https", index[1],
                                                                         443)):
            return self.credentials.header
        return None

    # --- what went wrong, said so that it can be acted on ----------------------------------------

    def _down_error(self, breaker: Breaker, url: str) -> UpstreamUnavailable:
        state = breaker.state()
        return UpstreamUnavailable(
            f"the upstream {breaker.name} is down since {state.get('down_since')} and is "
            f"not asked again before {state.get('next_try')} (asked for {mask_url(url)}; "
            f"last error: {breaker.last_error})", f"{breaker.name} down #{breaker.outage}")

    def _failure(self, exc: BaseException, url: str, route: _Route) -> _Failed:
        shown = mask_url(url)
        reason = _describe(exc)
        if isinstance(exc, ReadTimeoutError):
            # A slow upstream; asking again only doubles the wait, and it is up.
            return _Failed(UpstreamUnavailable(
                f"the upstream index timed out for {shown}: {reason}", "read timeout"), False)
        proxy = route.proxy
        if isinstance(exc, ProxyError) and proxy is not None:
            inner = _describe(exc.original_error if getattr(exc, "original_error", None)
                              else exc)
            advice = _proxy_login_advice(proxy) if " 407 " in inner else (
                "set pypi.upstream_proxy to another proxy (or `direct`), or list the host in "
                "NO_PROXY")
            return _Failed(UpstreamUnavailable(
                f"the proxy {proxy.shown} (from {proxy.source}) failed for {shown}: {inner}; "
                f"{advice}", "proxy"), retry=False, breaker=route.breaker)
        if isinstance(exc, SSLError):
            trust = self.trust
            if "CERTIFICATE_VERIFY_FAILED" in reason or isinstance(
                    exc.__context__, ssl.SSLCertVerificationError):
                message = (f"the TLS certificate of {origin_text(route.breaker.origin)} could "
                           f"not be verified for {shown}: {reason}. It was checked against "
                           f"the CA certificates of {trust.source}; to trust the CA that "
                           f"signed it, {trust.advice}")
            else:
                message = (f"TLS with {origin_text(route.breaker.origin)} failed for {shown}: "
                           f"{reason} (CA certificates from {trust.source}"
                           + (f", client certificate {trust.client_cert}"
                              if trust.client_cert else "") + ")")
            return _Failed(UpstreamUnavailable(message, "tls"), retry=False,
                           breaker=route.breaker)
        refused = isinstance(exc, NewConnectionError) and isinstance(
            exc.__cause__, ConnectionRefusedError)
        if isinstance(exc, (NewConnectionError, NameResolutionError, ProtocolError,
                            Urllib3Timeout, OSError)):
            # No connection, or it broke before an answer: the host is in trouble. A
            # refused connection is an answer already (nothing listens there): asking
            # again a moment later only delays the stale page the client could have.
            via = f" through the proxy {proxy.shown} (from {proxy.source})" if proxy else ""
            return _Failed(UpstreamUnavailable(
                f"the upstream index could not be reached for {shown}{via}: {reason}",
                "unreachable"), retry=not refused, breaker=route.breaker)
        return _Failed(UpstreamUnavailable(f"the upstream request for {shown} failed: {reason}",
                                           "failed"), retry=False)

    def _status_failure(self, status: int, url: str, route: _Route,
                        retry_after: str | None, login: str | None) -> _Failed:
        shown = mask_url(url)
        message = f"the upstream index answered {shown} with HTTP {status}"
        proxy = route.proxy
        if status == 407 and proxy is not None:
            return _Failed(UpstreamUnavailable(
                f"the proxy {proxy.shown} (from {proxy.source}) answered 407 for {shown}: "
                + _proxy_login_advice(proxy), "HTTP 407"), retry=False)
        if status in (401, 403):
            if login is not None:
                message += f": it refused the credentials from {login}"
            elif status == 401:
                message += (": it wants a login; give it as user:password@ before the host "
                            "in pypi.fallback_url, as pypi.upstream_username / "
                            "pypi.upstream_password, or in the netrc file")
            return _Failed(UpstreamUnavailable(message, f"HTTP {status}"), retry=False)
        if status == 508 or status >= 500 or status == 429:
            wait = _retry_after(retry_after) if status in (429, 503) else None
            if wait:
                message += f" and asked us to wait {wait:.0f}s (Retry-After)"
            if status == 508:
                message += ": the upstream leads back to this server (a loop)"
            retry = status in RETRY_STATUSES and not wait
            return _Failed(UpstreamUnavailable(message, f"HTTP {status}"), retry,
                           route.breaker, wait)
        return _Failed(UpstreamUnavailable(message, f"HTTP {status}"), retry=False)


# An error page or a redirect's body is read to its end so that its connection can be
# used again, when it is this small; a bigger one (or one of unknown length) costs a new
# connection instead of a read of whatever the upstream chose to send.
DRAIN_AT_MOST = 64 * 1024


def _let_go(response) -> None:
    length = response.headers.get("Content-Length", "")
    if length.isdigit() and int(length) <= DRAIN_AT_MOST:
        response.drain_conn()
    else:
        response.close()
    response.release_conn()


class _Inflater:
    """gzip, inflated no further than the caller has room for; a body of several gzip
    members (which gzip allows) is inflated member after member."""

    def __init__(self):
        self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def feed(self, data: bytes, room: int) -> bytes:
        out = []
        while data and room > 0:
            piece = self._z.decompress(data, room)
            out.append(piece)
            room -= len(piece)
            if self._z.eof:
                data = self._z.unused_data
                if data:
                    self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
            else:
                data = self._z.unconsumed_tail
        return out[0] if len(out) == 1 else b"".join(out)


def _proxy_login_advice(proxy: Proxy) -> str:
    if proxy.auth is None:
        return f"it wants a login: put user:password@ before the host in {proxy.source}"
    return f"it refused the credentials in {proxy.source}"


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number, or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def _describe(exc: BaseException) -> str:
    text = scrub(str(exc) or type(exc).__name__)
    return text if len(text) < 300 else text[:300] + "..."
