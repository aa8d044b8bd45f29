"""The upstream index client: one urllib3 pool manager, built once at start-up.

Two calls: a project page (PEP 691 JSON asked for first, PEP 503 HTML understood too,
revalidated with If-None-Match) and a file stream. Errors come out as two kinds that the
policy treats differently: UpstreamNotFound (the upstream says the thing does not exist,
which may be remembered) and UpstreamUnavailable (it could not be asked: down, slow past
the timeout, a 5xx, garbage), which must never be remembered as an answer.

urllib3 rather than requests: a cold install makes three upstream calls per package on
the request path, and requests' session machinery (settings merge, hooks, cookies,
adapters) cost about as much CPU again as the HTTP exchange itself, under the GIL that
every other request is waiting for.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from urllib.parse import quote, urljoin

import urllib3
from urllib3.exceptions import (
    HTTPError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    TimeoutError as Urllib3Timeout,
)

from .parse import ACCEPT, PageFormatError, parse_page

log = logging.getLogger(__name__)

RETRY_STATUSES = {429, 500, 502, 503, 504}
USER_AGENT = "pypirepo-upstream/1"
MAX_REDIRECTS = 10


class UpstreamError(Exception):
    """Base of the upstream's failures; str() is a message fit for a client."""


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
        self.url = url
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


class UpstreamClient:
    def __init__(self, base_url: str, connect_timeout: float = 3.0, read_timeout: float = 15.0,
                 retries: int = 2, pool_size: int = 32, backoff: float = 0.1):
        self.base_url = base_url.rstrip("/") + "/"
        self.timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        self.retries = retries
        self.backoff = backoff
        # Our own retries (below) decide what is worth asking again; urllib3 only follows
        # redirects. No proxy or netrc credentials from the environment: the upstream is
        # asked exactly as configured, and a client's credentials never travel upstream.
        self.pool = urllib3.PoolManager(
            num_pools=4, maxsize=pool_size, block=False, headers={"User-Agent": USER_AGENT},
            retries=urllib3.Retry(total=None, connect=0, read=0, status=0, other=0,
                                  redirect=MAX_REDIRECTS, raise_on_status=False),
            **_tls())

    @classmethod
    def from_config(cls, config) -> UpstreamClient:
        return cls(config.url, config.connect_timeout, config.read_timeout, config.retries)

    def project_url(self, project: str) -> str:
        return f"{self.base_url}{quote(project)}/"

    def close(self) -> None:
        self.pool.clear()

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
            raise UpstreamUnavailable(f"the upstream index answered {url} with {exc}") from None
        return FetchedPage(files, response.headers.get("ETag"))

    def open_file(self, url: str) -> UpstreamFile:
        """A streaming response; read it with iter_raw(), close it when done."""
        # identity: the bytes we hash and store are the bytes the upstream hashed.
        response, final_url = self._get(url, {"Accept-Encoding": "identity"}, stream=True)
        return UpstreamFile(response, final_url)

    @staticmethod
    def iter_raw(response: UpstreamFile, chunk: int = 256 * 1024):
        try:
            yield from response.stream(chunk)
        except (HTTPError, OSError) as exc:
            raise UpstreamUnavailable(
                f"the upstream index broke off sending {response.url}: {_describe(exc)}"
            ) from None

    # --- plumbing ----------------------------------------------------------------------------

    def _get(self, url: str, headers: dict, stream: bool):
        """(urllib3 response with status 200 or 304, the URL it came from after redirects)."""
        attempt = 0
        while True:
            try:
                response = self.pool.request("GET", url, headers=headers, timeout=self.timeout,
                                             preload_content=not stream, decode_content=not stream)
            except (HTTPError, OSError) as exc:
                reason = exc.reason if isinstance(exc, MaxRetryError) and exc.reason else exc
                if isinstance(reason, ReadTimeoutError):
                    # A slow upstream; asking again only doubles the wait.
                    retry = False
                    error = UpstreamUnavailable(
                        f"the upstream index timed out for {url}: {_describe(reason)}")
                elif isinstance(reason, (NewConnectionError, ProtocolError, Urllib3Timeout,
                                         OSError)):
                    retry = True  # refused, reset, or no connection in time
                    error = UpstreamUnavailable(
                        f"the upstream index could not be reached for {url}: "
                        f"{_describe(reason)}")
                else:
                    retry = False
                    error = UpstreamUnavailable(f"the upstream request for {url} failed: "
                                                f"{_describe(reason)}")
            else:
                status = response.status
                if status in (200, 304):
                    return response, _final_url(url, response)
                response.drain_conn()
                response.release_conn()
                if status in (404, 410):
                    raise UpstreamNotFound(f"the upstream index has no {url} ({status})")
                retry = status in RETRY_STATUSES
                error = UpstreamUnavailable(
                    f"the upstream index answered {url} with HTTP {status}")
            if not retry or attempt >= self.retries:
                raise error
            attempt += 1
            time.sleep(self.backoff * 2 ** (attempt - 1))
            log.info("retrying upstream %s (attempt %d): %s", url, attempt + 1, error)


def _final_url(url: str, response) -> str:
    """Where the answer came from: relative links on a page resolve against it."""
    history = response.retries.history if response.retries is not None else ()
    for step in history:
        if step.redirect_location:
            url = urljoin(url, step.redirect_location)
    return url


def _tls() -> dict:
    # The CA bundle requests would use, so an https upstream is trusted as before.
    try:
        import certifi
    except ImportError:  # pragma: no cover - certifi comes with requests
        return {"cert_reqs": "CERT_REQUIRED"}
    return {"cert_reqs": "CERT_REQUIRED", "ca_certs": certifi.where()}


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 300 else text[:300] + "..."
