"""Which repositories this server holds, read once from the settings.

    repositories = dev release pypi all
    repository.dev.kind = hosted
    repository.pypi.kind = proxy
    repository.pypi.url = https://upstream.example/simple/
    repository.all.kind = group
    repository.all.members = release pypi
    pypirepo.default_repository = all

Each repository's own keys are `repository.<name>.<key>`; a key it does not set falls back
to the server-wide one of the same meaning (`pypi.<key>`), so settings shared by every
proxy (TLS, timeouts, who may fill the cache) are written once.

With no `repositories` key the server is what it always was: a hosted repository `local`
(objects under `packages/`), a proxy `pypi` configured by the `pypi.*` fallback keys
(when `pypi.fallback` is not none) and a group `default` of the two at the classic URLs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..names import normalize
from ..settings import MISSING, ConfigError, Settings, as_list, as_str, env_name

# URL-safe, and never a path segment the server itself uses under /r/<name>/.
NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$")
DEFAULT_HOSTED, DEFAULT_PROXY, DEFAULT_GROUP = "local", "pypi", "default"
LEGACY_PREFIX = "packages/"
# Where a declared repository keeps its objects unless `repository.<name>.prefix` says.
PREFIX_ROOT = "repositories/"


class ScopedSettings:
    """A repository's view of the settings: the keys its kind's parser asks for
    (`pypi.upstream_ttl`, `pypi.allow_overwrite`, ...) are looked up as the repository's
    own key first, then as the server-wide key; a ConfigError names the key that was
    actually read, or the repository's own key when none was set."""

    def __init__(self, settings: Settings, candidates: Callable[[str], list[str]],
                 defaults: dict[str, Any] | None = None):
        self._settings = settings
        self._candidates = candidates
        self._defaults = defaults or {}  # a kind's own defaults, where they differ

    def _key(self, key: str) -> str:
        keys = self._candidates(key)
        return next((k for k in keys if self._settings.raw(k) is not None), keys[0])

    def raw(self, key: str) -> str | None:
        return self._settings.raw(self._key(key))

    def ini_raw(self, key: str) -> str | None:
        return self._settings.ini_raw(self._key(key))

    def get_value(self, key: str, parse: Callable[[str], Any] = as_str,
                  default: Any = MISSING):
        return self._settings.get_value(self._key(key), parse,
                                        self._defaults.get(key, default))

    def prefixed(self, prefix: str) -> dict[str, str]:
        return self._settings.prefixed(prefix)

    def environ(self, name: str) -> str | None:
        return self._settings.environ(name)


@dataclass
class RepositorySpec:
    """One declared repository: its name, kind, and the settings its kind reads."""

    name: str
    kind: str
    settings: ScopedSettings
    prefix: str | None = None  # storage prefix, for kinds that store objects
    members: list[str] = field(default_factory=list)  # groups


@dataclass
class Layout:
    specs: dict[str, RepositorySpec]  # in declaration order
    default: str  # the repository served at the classic URLs
    implicit: bool  # no `repositories` key: today's single index

    def __iter__(self):
        return iter(self.specs.values())


STORING_KINDS = {"hosted", "proxy"}
KINDS = ("hosted", "proxy", "group")


def _own_key(name: str, key: str) -> str:
    """`pypi.upstream_ttl` -> `repository.<name>.upstream_ttl`; the proxy's mode and URL
    have shorter names of their own."""
    short = key.removeprefix("pypi.")
    short = {"fallback": "mode", "fallback_url": "url", "upstream_allow": "merge",
             "always_show_upstream": "merge_all"}.get(short, short)
    return f"repository.{name}.{short}"


# Keys a declared repository never takes from the server-wide setting: its proxy mode (a
# declared proxy is one whatever `pypi.fallback` says), and a group's merge list.
OWN_ONLY = frozenset(("pypi.fallback", "pypi.use_fallback", "pypi.upstream_allow",
                      "pypi.always_show_upstream", "pypi.upload_to"))


def _declared(settings: Settings, name: str, kind: str) -> ScopedSettings:
    def candidates(key: str) -> list[str]:
        if not key.startswith("pypi."):
            return [key]  # server-wide (pypirepo.environment ...)
        own = _own_key(name, key)
        return [own] if key in OWN_ONLY else [own, key]

    defaults = {"pypi.fallback": "cache"} if kind == "proxy" else {}
    return ScopedSettings(settings, candidates, defaults)


def read_layout(settings: Settings, kinds=KINDS) -> Layout:
    names = settings.get_value("repositories", as_list, [])
    if not names:
        return _implicit(settings)
    specs: dict[str, RepositorySpec] = {}
    for name in names:
        if not NAME_RE.match(name):
            raise ConfigError("repositories", f"{name!r} is not a repository name (lower-case "
                              "letters, digits, '.', '_' and '-', at most 64 characters)")
        if name in specs:
            raise ConfigError("repositories", f"{name!r} is declared twice")
        kind = settings.get_value(f"repository.{name}.kind", as_str, None)
        if kind is None:
            raise ConfigError(f"repository.{name}.kind", f"is required (one of "
                              f"{', '.join(kinds)}; or {env_name(f'repository.{name}.kind')})")
        if kind not in kinds:
            raise ConfigError(f"repository.{name}.kind",
                              f"expected one of {', '.join(kinds)}, got {kind!r}")
        spec = RepositorySpec(name, kind, _declared(settings, name, kind))
        if kind in STORING_KINDS:
            spec.prefix = _prefix(settings, name)
        if kind == "group":
            spec.members = settings.get_value(f"repository.{name}.members", as_list, None) or []
        specs[name] = spec
    _check_prefixes(specs)
    _check_groups(specs)
    groups = [s.name for s in specs.values() if s.kind == "group"]
    default = settings.get_value("pypirepo.default_repository", as_str,
                                 groups[0] if groups else names[0])
    if default not in specs:
        raise ConfigError("pypirepo.default_repository",
                          f"{default!r} is not one of the declared repositories")
    return Layout(specs, default, implicit=False)


def _implicit(settings: Settings) -> Layout:
    """Today's index as three repositories, every key read where it always was."""
    def legacy(key: str) -> list[str]:
        return [key]

    view = ScopedSettings(settings, legacy)
    # Cached upstream files have always lived beside the uploads: the two share packages/,
    # and each record's origin says whose it is. The proxy is there with the fallback off
    # too (`pypi.fallback = none`: it never asks its upstream), serving what was cached
    # while it was on, as the single index did.
    specs = {
        DEFAULT_HOSTED: RepositorySpec(DEFAULT_HOSTED, "hosted", view, LEGACY_PREFIX),
        DEFAULT_PROXY: RepositorySpec(DEFAULT_PROXY, "proxy", view, LEGACY_PREFIX),
        DEFAULT_GROUP: RepositorySpec(DEFAULT_GROUP, "group", view,
                                      members=[DEFAULT_HOSTED, DEFAULT_PROXY]),
    }
    return Layout(specs, DEFAULT_GROUP, implicit=True)


def _prefix(settings: Settings, name: str) -> str:
    key = f"repository.{name}.prefix"
    prefix = settings.get_value(key, as_str, f"{PREFIX_ROOT}{name}/")
    if not prefix.endswith("/"):
        prefix += "/"
    parts = prefix[:-1].split("/")
    if prefix.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in prefix:
        raise ConfigError(key, f"{prefix!r} is not a storage folder (relative, '/'-separated, "
                          "no empty, '.' or '..' parts)")
    if prefix.startswith("snapshots/"):
        raise ConfigError(key, "snapshots/ is where pypirepo keeps its own snapshots")
    return prefix


def _check_prefixes(specs: dict[str, RepositorySpec]) -> None:
    """Declared repositories never share a folder: a filename is one object per folder."""
    seen: dict[str, str] = {}
    for spec in specs.values():
        if spec.prefix is None:
            continue
        for other_prefix, other in seen.items():
            if spec.prefix.startswith(other_prefix) or other_prefix.startswith(spec.prefix):
                raise ConfigError(f"repository.{spec.name}.prefix",
                                  f"{spec.prefix!r} overlaps {other_prefix!r} of repository "
                                  f"{other!r}; each repository needs a folder of its own")
        seen[spec.prefix] = spec.name


def _check_groups(specs: dict[str, RepositorySpec]) -> None:
    for spec in specs.values():
        if spec.kind != "group":
            continue
        key = f"repository.{spec.name}.members"
        if not spec.members:
            raise ConfigError(key, "a group needs at least one member")
        for member in spec.members:
            if member not in specs:
                raise ConfigError(key, f"{member!r} is not a declared repository")
        if len(set(spec.members)) != len(spec.members):
            raise ConfigError(key, "a member is listed twice")
    # Groups may contain groups, but never themselves.
    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            cycle = " -> ".join(path[path.index(name):] + (name,))
            raise ConfigError(f"repository.{path[0]}.members", f"groups form a cycle: {cycle}")
        for member in specs[name].members:
            visit(member, path + (name,))

    for spec in specs.values():
        if spec.kind == "group":
            visit(spec.name, ())


def names_list(words: list[str]) -> frozenset[str]:
    """Project names (normalized) or '*' from a settings list."""
    return frozenset("*" if w == "*" else normalize(w) for w in words)
