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
from .parse import ACCEPT, PageFormatError, parse_page

log = logging.getLogger(__name__)

RETRY_STATUSES = {429, 500, 502, 503, 504}
REDIRECT_STATUSES = {301, 302, 303, 307, 308}
USER_AGENT = "pypirepo-upstream/1"
MAX_REDIRECTS = 10
# Sent with every upstream request (RFC 9110's Via, which exists to detect loops): a
# request that arrives here carrying it was made by this very process, because the
# upstream (or a redirect of its) leads back to us. It is refused, not fetched again.
VIA = f"1.1 pypirepo-{secrets.token_hex(6)}"


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


@dataclass
class FetchedPage:
    files: list[dict] | None  # None when not modified
    etag: str | None
    not_modified: bool = False


class UpstreamFile:
    """A streaming upstream response: headers, the final URL, chunks, close()."""

    def __init__(self, response, url: str):
        self.response = response
        self.url = url  # masked: for messages
        self.headers = response.headers
        self._done = False

    def stream(self, chunk: int):
        yield from self.response.stream(chunk, decode_content=False)
        self._done = True

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
                 credentials: Credentials | None = None, down_for: float = 0.0):
        self.base_url = base_url.rstrip("/") + "/"
        self.index_origin = origin(self.base_url)
        self.timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
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
                   down_for=config.down_for)

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
        headers = {"Accept": ACCEPT, "Accept-Encoding": "gzip, deflate"}
        if etag:
            headers["If-None-Match"] = etag
        response, final_url = self._get(url, headers, stream=False)
        if response.status == 304:
            return FetchedPage(None, response.headers.get("ETag") or etag, not_modified=True)
        try:
            files = parse_page(response.data, response.headers.get("Content-Type", ""),
                               final_url, project)
        except PageFormatError as exc:
            raise UpstreamUnavailable(f"the upstream index answered {url} with {exc}",
                                      "bad page") from None
        return FetchedPage(files, response.headers.get("ETag"))

    def open_file(self, url: str) -> UpstreamFile:
        """A streaming response; read it with iter_raw(), close it when done."""
        # identity: the bytes we hash and store are the bytes the upstream hashed.
        response, final_url = self._get(url, {"Accept-Encoding": "identity"}, stream=True)
        return UpstreamFile(response, mask_url(final_url))

    @staticmethod
    def iter_raw(response: UpstreamFile, chunk: int = 256 * 1024):
        try:
            yield from response.stream(chunk)
        except (HTTPError, OSError) as exc:
            raise UpstreamUnavailable(
                f"the upstream index broke off sending {response.url}: {_describe(exc)}",
                "broke off") from None

    # --- every request goes through here -----------------------------------------------------

    def _get(self, url: str, headers: dict, stream: bool):
        """(urllib3 response with status 200 or 304, the URL it came from after redirects),
        retried as the failure allows; the breaker of a host that failed is opened."""
        probes: set[Breaker] = set()
        attempt = 0
        try:
            while True:
                try:
                    return self._exchange(url, headers, stream, probes)
                except _Failed as failed:
                    if failed.retry and attempt < self.retries:
                        attempt += 1
                        time.sleep(self.backoff * 2 ** (attempt - 1))
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

    def _exchange(self, url: str, headers: dict, stream: bool, probes: set):
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
            try:
                response = route.manager.urlopen(
                    "GET", url, headers=sent, redirect=False, retries=False,
                    timeout=self.timeout, preload_content=not stream, decode_content=not stream)
            except (HTTPError, OSError) as exc:
                raise self._failure(exc, url, route) from None
            status = response.status
            if status in (200, 304):
                return response, url
            location = response.headers.get("Location") if status in REDIRECT_STATUSES \
                else None
            retry_after = response.headers.get("Retry-After")
            response.drain_conn()
            response.release_conn()
            if location:
                url = urljoin(url, location)
                continue
            if status in (404, 410):
                raise UpstreamNotFound(f"the upstream index has no {mask_url(url)} ({status})")
            raise self._status_failure(status, url, route, retry_after, login)
        raise _Failed(UpstreamUnavailable(
            f"the upstream index redirected {mask_url(url)} more than {MAX_REDIRECTS} times",
            "redirects"), retry=False)

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
