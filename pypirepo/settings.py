"""Settings: the ini file overlaid by PYPIREPO_* environment variables.

This is the one module that reads os.environ. Every key is looked up as
`PYPIREPO_<KEY>` first (dots and dashes become underscores, upper case), so secrets and
URLs can stay out of the ini. Values are parsed and validated once at start-up; a bad
value stops the start with one line that names the key.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

ENV_PREFIX = "PYPIREPO_"
MISSING = object()  # "no default": a get_value() without one makes the key required


class ConfigError(Exception):
    """A setting is missing or invalid. str() is the one-line message for the operator."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key = key


class StartError(Exception):
    """Something the settings point at (the database, a bucket) cannot be used, so the
    start stops. str() is the one line for the operator, naming the setting to check."""


@contextlib.contextmanager
def one_line_exit():
    """Every entry point (pserve's app factory, the console scripts) stops on a bad setting
    or an unusable database with one line and exit status 1, never a traceback."""
    try:
        yield
    except ConfigError as exc:
        raise SystemExit(f"pypirepo: configuration error: {exc}") from None
    except StartError as exc:
        raise SystemExit(f"pypirepo: {exc}") from None


def env_name(key: str) -> str:
    return ENV_PREFIX + re.sub(r"[.\-]", "_", key).upper()


# --- parsers: each takes the raw string and returns the value or raises ValueError ---------

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def as_bool(text: str) -> bool:
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def as_int(text: str) -> int:
    return int(text.strip())


_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "kib": 1024,
    "m": 1000**2, "mb": 1000**2, "mib": 1024**2,
    "g": 1000**3, "gb": 1000**3, "gib": 1024**3,
    "t": 1000**4, "tb": 1000**4, "tib": 1024**4,
}


def as_size(text: str) -> int:
    """'100MB', '1GiB', '512k' or plain bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _SIZE_UNITS:
        raise ValueError(f"expected a size such as 100MB or 1GiB, got {text!r}")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])


_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def as_duration(text: str) -> float:
    """'30s', '10m', '2h', '3d', '1w' or plain seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text.lower())
    if not m:
        raise ValueError(f"expected a duration such as 30s, 10m, 2h or 3d, got {text!r}")
    return float(m.group(1)) * _DURATION_UNITS[m.group(2)]


def as_list(text: str) -> list[str]:
    """Whitespace, comma or newline separated words."""
    return [w for w in re.split(r"[\s,]+", text.strip()) if w]


def one_of(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {text!r}")
        return value

    return parse


def as_str(text: str) -> str:
    return text.strip()


class Settings(Mapping):
    """Raw settings (ini + environment) with typed, validated access.

    It is a Mapping of the merged raw strings so that Pyramid's own keys pass through.
    """

    def __init__(self, ini: Mapping[str, Any], environ: Mapping[str, str] | None = None):
        self._ini = {k: v for k, v in ini.items() if isinstance(v, str)}
        self._env = dict(os.environ if environ is None else environ)

    def raw(self, key: str) -> str | None:
        env = self._env.get(env_name(key))
        if env is not None:
            return env
        return self._ini.get(key)

    def ini_raw(self, key: str) -> str | None:
        """The ini file's own value, whatever the environment says."""
        return self._ini.get(key)

    def get_value(self, key: str, parse: Callable[[str], Any] = as_str, default: Any = MISSING):
        text = self.raw(key)
        # A key left blank (`sqlalchemy.url =`, as production.ini ships it) is missing:
        # with a default it takes the default, without one it is required. No setting has
        # a meaningful empty value, and an empty string handed on would fail far from the
        # ini (inside SQLAlchemy or an SDK) with a message that names neither the key nor
        # the fix.
        if text is None or text.strip() == "":
            if default is MISSING:
                raise ConfigError(key, f"is required (set it in the ini or as {env_name(key)})")
            return default
        try:
            return parse(text)
        except ValueError as exc:
            raise ConfigError(key, str(exc)) from None

    def prefixed(self, prefix: str) -> dict[str, str]:
        """Every key starting with prefix (e.g. 'user.'): the ini's, with env overrides
        applied, and those declared by the environment alone (PYPIREPO_USER_ALICE declares
        user.alice: a name from the environment is lower case, with underscores)."""
        found = {k[len(prefix):]: self.raw(k) for k in self._ini if k.startswith(prefix)}
        env_prefix = env_name(prefix)
        overrides = {env_name(prefix + name) for name in found}
        for var, value in self._env.items():
            if var.startswith(env_prefix) and var != env_prefix and var not in overrides:
                found[var[len(env_prefix):].lower()] = value
        return found

    def environ(self, name: str) -> str | None:
        """A non-setting environment variable (e.g. the usual cloud credential chain)."""
        return self._env.get(name)

    # Mapping protocol over the merged view of ini keys.
    def __getitem__(self, key):
        value = self.raw(key)
        if value is None:
            raise KeyError(key)
        return value

    def __iter__(self):
        return iter(self._ini)

    def __len__(self):
        return len(self._ini)


FALLBACK_MODES = ("none", "redirect", "cache")
PRINCIPAL_WORDS = ("everyone", "authenticated")


@dataclass
class AppConfig:
    """The core settings, parsed once at start-up. Backends parse their own keys."""

    database_url: str
    storage: str
    auto_migrate: bool
    reindex_on_start: str  # auto | sync | background | off
    default_read: list[str]
    default_write: list[str]
    admins: list[str]
    allow_overwrite: bool
    max_upload_size: int
    fallback: str
    auth_cache_ttl: float
    realm: str
    bootstrap_user: str | None
    bootstrap_password_file: str | None
    users: dict[str, str] = field(default_factory=dict)
    # The server's address as clients reach it, for the absolute URLs of the JSON API;
    # None: URLs relative to the server's root (never built from the Host header).
    public_url: str | None = None
    # Anonymous index pages answered in front of the router (pypirepo.fastpath).
    fast_path: bool = True

    @classmethod
    def from_settings(cls, s: Settings) -> AppConfig:
        # Accept pypicloud's spelling of the same settings so its users can switch.
        fallback = s.get_value("pypi.fallback", one_of(*FALLBACK_MODES), "none")
        users = {name: (h or "").strip() for name, h in s.prefixed("user.").items()}
        from .passwords import PASSWORDS

        for name, hashed in users.items():
            if not hashed:
                raise ConfigError(f"user.{name}", "needs a password hash "
                                  "(make one with pypirepo-hash-password)")
            if PASSWORDS.identify(hashed) is None:
                raise ConfigError(f"user.{name}", "is not a password hash pypirepo knows "
                                  "(make one with pypirepo-hash-password)")
        return cls(
            database_url=s.get_value("sqlalchemy.url"),
            storage=s.get_value("pypirepo.storage", as_str, "local"),
            auto_migrate=s.get_value("pypirepo.auto_migrate", as_bool, False),
            reindex_on_start=s.get_value("pypirepo.reindex_on_start", _reindex_mode, "auto"),
            default_read=_principals(s, "pypi.default_read", "authenticated"),
            default_write=_principals(s, "pypi.default_write", "authenticated"),
            admins=s.get_value("auth.admins", as_list, []),
            allow_overwrite=s.get_value("pypi.allow_overwrite", as_bool, False),
            max_upload_size=s.get_value("pypi.max_upload_size", as_size, 1024**3),
            fallback=fallback,
            auth_cache_ttl=s.get_value("auth.cache_ttl", as_duration, 300.0),
            realm=s.get_value("auth.realm", as_str, "pypirepo"),
            bootstrap_user=s.get_value("auth.bootstrap_user", as_str, None),
            bootstrap_password_file=s.get_value("auth.bootstrap_password_file", as_str, None),
            users=users,
            public_url=s.get_value("pypirepo.public_url", as_public_url, None),
            fast_path=s.get_value("pypirepo.fast_path", as_bool, True),
        )


def as_public_url(text: str) -> str:
    """http(s)://host[:port][/path], without a trailing slash."""
    from urllib.parse import urlsplit

    value = text.strip().rstrip("/")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or \
            parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"expected http(s)://host[:port][/path], got {text!r}")
    return value


def _reindex_mode(text: str) -> str:
    low = text.strip().lower()
    if low in ("auto", "sync", "background"):
        return low
    try:
        return "sync" if as_bool(low) else "off"
    except ValueError:
        raise ValueError(f"expected auto, sync, background or false, got {text!r}") from None


def _principals(s: Settings, key: str, default: str) -> list[str]:
    words = s.get_value(key, as_list, as_list(default))
    for w in words:
        if not re.fullmatch(r"[A-Za-z0-9_.@+-]+", w):
            raise ConfigError(key, f"{w!r} is neither everyone, authenticated nor a user name")
    return words

