"""The upstream index client: one requests.Session, built once at start-up.

Two calls: a project page (PEP 691 JSON asked for first, PEP 503 HTML understood too,
revalidated with If-None-Match) and a file stream. Errors come out as two kinds that the
policy treats differently: UpstreamNotFound (the upstream says the thing does not exist,
which may be remembered) and UpstreamUnavailable (it could not be asked: down, slow past
the timeout, a 5xx, garbage), which must never be remembered as an answer.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter

from .parse import ACCEPT, PageFormatError, parse_page

log = logging.getLogger(__name__)

RETRY_STATUSES = {429, 500, 502, 503, 504}
USER_AGENT = "pypirepo-upstream/1"


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


class UpstreamClient:
    def __init__(self, base_url: str, connect_timeout: float = 3.0, read_timeout: float = 15.0,
                 retries: int = 2, pool_size: int = 32, backoff: float = 0.1):
        self.base_url = base_url.rstrip("/") + "/"
        self.timeout = (connect_timeout, read_timeout)
        self.retries = retries
        self.backoff = backoff
        self.session = requests.Session()
        # No proxy or netrc credentials from the environment: the upstream is asked exactly
        # as configured, and a client's credentials never travel upstream.
        self.session.trust_env = False
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = USER_AGENT

    @classmethod
    def from_config(cls, config) -> UpstreamClient:
        return cls(config.url, config.connect_timeout, config.read_timeout, config.retries)

    def project_url(self, project: str) -> str:
        return f"{self.base_url}{quote(project)}/"

    def close(self) -> None:
        self.session.close()

    # --- the two calls ---------------------------------------------------------------------

    def fetch_page(self, project: str, etag: str | None = None) -> FetchedPage:
        url = self.project_url(project)
        headers = {"Accept": ACCEPT}
        if etag:
            headers["If-None-Match"] = etag
        response = self._get(url, headers, stream=False)
        if response.status_code == 304:
            return FetchedPage(None, response.headers.get("ETag") or etag, not_modified=True)
        try:
            files = parse_page(response.content, response.headers.get("Content-Type", ""),
                               response.url or url, project)
        except PageFormatError as exc:
            raise UpstreamUnavailable(f"the upstream index answered {url} with {exc}") from None
        return FetchedPage(files, response.headers.get("ETag"))

    def open_file(self, url: str) -> requests.Response:
        """A streaming response; read it with iter_raw(), close it when done."""
        # identity: the bytes we hash and store are the bytes the upstream hashed.
        return self._get(url, {"Accept-Encoding": "identity"}, stream=True)

    @staticmethod
    def iter_raw(response: requests.Response, chunk: int = 256 * 1024):
        try:
            yield from response.raw.stream(chunk, decode_content=False)
        except (requests.RequestException, OSError, Exception) as exc:  # urllib3 errors too
            raise UpstreamUnavailable(
                f"the upstream index broke off sending {response.url}: {_describe(exc)}"
            ) from None

    # --- plumbing ----------------------------------------------------------------------------

    def _get(self, url: str, headers: dict, stream: bool) -> requests.Response:
        attempt = 0
        while True:
            try:
                response = self.session.get(url, headers=headers, timeout=self.timeout,
                                            stream=stream, allow_redirects=True)
            except requests.ConnectionError as exc:
                # A read timeout means a slow upstream; asking again only doubles the wait.
                retry = not isinstance(exc, requests.ReadTimeout)
                error = UpstreamUnavailable(
                    f"the upstream index could not be reached for {url}: {_describe(exc)}")
            except requests.Timeout as exc:
                retry = False
                error = UpstreamUnavailable(
                    f"the upstream index timed out for {url}: {_describe(exc)}")
            except requests.RequestException as exc:
                retry = False
                error = UpstreamUnavailable(f"the upstream request for {url} failed: "
                                            f"{_describe(exc)}")
            else:
                status = response.status_code
                if status in (200, 304):
                    return response
                response.close()
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


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 300 else text[:300] + "..."
