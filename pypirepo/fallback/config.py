"""The fallback settings, parsed once at start-up.

pypicloud's names are accepted beside ours so that its users can switch without
rewriting their ini: `pypi.fallback_base_url` (the index's base, `/simple` is appended),
the older `pypi.fallback_url`, `pypi.use_fallback = false`, `pypi.always_show_upstream`,
`pypi.disallow_fallback` and `pypi.cache_update`.
"""

from __future__ import annotations

import logging
import re
import tempfile
from dataclasses import dataclass, field

from ..names import normalize
from ..upstream.network import Credentials, Proxies, Trust, mask_url, split_userinfo
from ..upstream.parse import DEFAULT_MAX_FILES
from ..settings import (
    FALLBACK_MODES,
    ConfigError,
    Settings,
    as_bool,
    as_duration,
    as_int,
    as_list,
    as_size,
    as_str,
    one_of,
)

log = logging.getLogger(__name__)


def default_index_url() -> str | None:
    """The public index pip itself uses by default, or None when pip is not installed.

    Taken from pip at run time so that no registry host is written into the project.
    """
    try:
        from pip._internal.models.index import PyPI
    except Exception:  # noqa: BLE001 - pip absent or its internals moved
        return None
    return PyPI.simple_url


# production.ini says `pypirepo.environment = production`; what it refuses is documented
# with the settings it concerns (pypi.upstream_verify).
ENVIRONMENTS = ("development", "production")


def _names(words: list[str]) -> frozenset[str]:
    return frozenset("*" if w == "*" else normalize(w) for w in words)


@dataclass
class UpstreamConfig:
    mode: str = "none"
    url: str = ""  # the upstream simple index, ending in '/'
    cache_update: list[str] = field(default_factory=lambda: ["authenticated"])
    disallow: frozenset[str] = frozenset()
    allow: frozenset[str] = frozenset()  # names that may merge with or shadow upstream
    ttl: float = 600.0
    not_found_ttl: float = 600.0
    connect_timeout: float = 3.0
    read_timeout: float = 15.0
    retries: int = 2
    min_age: float = 0.0
    min_age_exempt: frozenset[str] = frozenset()
    spool_dir: str = ""
    check_uploads: bool = True
    prefetch: bool = True
    prefetch_max_size: int = 50 * 1000**2
    # How the upstream is reached (network.py); resolved from the settings and the
    # environment at start-up.
    trust: Trust | None = None
    proxies: Proxies | None = None
    credentials: Credentials | None = None
    down_for: float = 5.0
    # What an upstream may cost us (a broken or hostile one would take without end).
    page_timeout: float = 30.0
    max_page_size: int = 64 * 1000**2
    max_page_files: int = DEFAULT_MAX_FILES
    max_file_size: int = 1024**3
    min_rate: int = 10 * 1000  # bytes a second, over each rate_window
    rate_window: float = 30.0
    # Request threads that may wait on the upstream at once; None: sized from the server's
    # threads when it says how many it has (pypirepo.server), else DEFAULT_MAX_WAITING.
    max_waiting: int | None = None

    @property
    def enabled(self) -> bool:
        return self.mode != "none"

    def fetch_allowed(self, name: str) -> bool:
        return self.enabled and name not in self.disallow

    def may_merge(self, name: str) -> bool:
        """Whether a project with private files may also list upstream's."""
        return "*" in self.allow or name in self.allow

    def cooldown(self, name: str) -> float:
        return 0.0 if name in self.min_age_exempt else self.min_age

    @classmethod
    def from_settings(cls, s: Settings) -> UpstreamConfig:
        mode = s.get_value("pypi.fallback", one_of(*FALLBACK_MODES), "none")
        if not s.get_value("pypi.use_fallback", as_bool, True):
            mode = "none"  # pypicloud's older switch; true has no effect there either
        url = s.get_value("pypi.fallback_url", as_str, None)
        if url is None:
            base = s.get_value("pypi.fallback_base_url", as_str, None)
            if base is not None:
                url = base.rstrip("/") + "/simple/"
        if url is None:
            url = default_index_url()
            if url is None and mode != "none":
                raise ConfigError("pypi.fallback_url", "pip is not installed, so there is no "
                                  "default upstream; set the upstream simple index URL")
        url = (url or "").rstrip("/") + "/" if url else ""
        if url and not url.startswith(("http://", "https://")):
            raise ConfigError("pypi.fallback_url",
                              f"expected an http(s) URL, got {mask_url(url)!r}")
        # Credentials in the URL are kept apart from it: the URL is logged, stored with
        # each page and shown in errors; the credentials are sent, never shown.
        url, url_creds = split_userinfo(url) if url else (url, None)
        always = s.get_value("pypi.always_show_upstream", as_bool, False)
        allow = _names(s.get_value("pypi.upstream_allow", as_list, []))
        if always:
            # pypicloud's switch merges every private project with upstream; we keep its
            # meaning, but it lets a public project stand in for a private one, so say so.
            log.warning("pypi.always_show_upstream = true: every private project is merged "
                        "with upstream releases of the same name (dependency confusion risk)")
            allow = allow | {"*"}
        cache_update = s.get_value("pypi.cache_update", as_list, ["authenticated"])
        for word in cache_update:
            if not re.fullmatch(r"(group:)?[A-Za-z0-9_.@+-]+", word):
                raise ConfigError("pypi.cache_update", f"{word!r} is neither everyone, "
                                  "authenticated, a user name nor group:<name>")
        ttl = s.get_value("pypi.upstream_ttl", as_duration, 600.0)
        retries = s.get_value("pypi.upstream_retries", as_int, 2)
        if retries < 0 or retries > 10:
            raise ConfigError("pypi.upstream_retries", "expected 0 to 10")
        production = s.get_value("pypirepo.environment", one_of(*ENVIRONMENTS),
                                 "development") == "production"
        limits = _limits(s)
        trust = Trust.from_settings(s, production) if mode != "none" else None
        if trust is not None and not trust.verify:
            log.warning("pypi.upstream_verify = false: the upstream's TLS certificate is NOT "
                        "verified; anyone on the network path can pose as it (use this in a "
                        "lab only)")
        return cls(
            mode=mode,
            url=url,
            cache_update=cache_update,
            disallow=_names(s.get_value("pypi.disallow_fallback", as_list, [])),
            allow=allow,
            ttl=ttl,
            not_found_ttl=s.get_value("pypi.upstream_not_found_ttl", as_duration, ttl),
            connect_timeout=s.get_value("pypi.upstream_connect_timeout", as_duration, 3.0),
            read_timeout=s.get_value("pypi.upstream_read_timeout", as_duration, 15.0),
            retries=retries,
            min_age=s.get_value("pypi.upstream_min_age", as_duration, 0.0),
            min_age_exempt=_names(s.get_value("pypi.upstream_min_age_exempt", as_list, [])),
            spool_dir=s.get_value("pypi.upstream_spool_dir", as_str, tempfile.gettempdir()),
            check_uploads=s.get_value("pypi.upstream_check_uploads", as_bool, True),
            prefetch=s.get_value("pypi.upstream_prefetch", as_bool, True),
            prefetch_max_size=s.get_value("pypi.upstream_prefetch_max_size", as_size,
                                          50 * 1000**2),
            trust=trust,
            proxies=Proxies.from_settings(s) if mode != "none" else None,
            credentials=Credentials.from_settings(s, url_creds, _host(url))
            if mode != "none" else None,
            down_for=s.get_value("pypi.upstream_down_for", as_duration, 5.0),
            **limits,
        )


def _limits(s: Settings) -> dict:
    """What a broken or hostile upstream may cost: each must be a positive amount."""
    def positive(key, parse, default):
        value = s.get_value(key, parse, default)
        if value is not None and value <= 0:
            raise ConfigError(key, "expected more than 0")
        return value

    return {
        "page_timeout": positive("pypi.upstream_page_timeout", as_duration, 30.0),
        "max_page_size": positive("pypi.upstream_max_page_size", as_size, 64 * 1000**2),
        "max_page_files": positive("pypi.upstream_max_page_files", as_int, DEFAULT_MAX_FILES),
        # Like an upload: a file we would refuse from a user is not taken from upstream.
        "max_file_size": positive("pypi.upstream_max_file_size", as_size,
                                  s.get_value("pypi.max_upload_size", as_size, 1024**3)),
        "min_rate": s.get_value("pypi.upstream_min_rate", as_size, 10 * 1000),
        "rate_window": positive("pypi.upstream_rate_window", as_duration, 30.0),
        "max_waiting": positive("pypi.upstream_max_waiting", as_int, None),
    }


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).hostname or ""
