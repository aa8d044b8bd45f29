"""The repositories this server holds, built once at start-up from the settings.

Kinds are looked up in KINDS: a new kind (a raw file repository, say) registers its class
there and is declared with `repository.<name>.kind = <its kind>`; nothing else changes.
A kind's class is built by `from_spec(spec, deps)`, and answers the Repository interface
(pypirepo.repositories.base).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..metadata import MetadataCache
from ..metadata.rebuild import Shelf
from ..fallback.background import DEFAULT_MAX_WAITING, WaitSlots, max_waiting_for
from .base import Repository, Work
from .config import Layout, read_layout
from .group import GroupRepository
from .hosted import HostedRepository
from .proxy import ProxyRepository

log = logging.getLogger(__name__)

KINDS: dict[str, type] = {
    "hosted": HostedRepository,
    "proxy": ProxyRepository,
    "group": GroupRepository,
}


@dataclass
class Deps:
    """What a repository may need from the server: built once, shared by all."""

    storage: object
    db: object  # pypirepo.db.Database


class Repositories:
    """name -> repository, and which one the classic URLs (/simple/, /legacy/ ...) serve."""

    def __init__(self, repositories: dict[str, Repository], default: str, implicit: bool):
        self._by_name = repositories
        self.default = repositories[default]
        self.implicit = implicit

    @classmethod
    def build(cls, settings, deps: Deps, serve: bool = True) -> Repositories:
        """Every declared repository, with its row in the database; serve=False leaves
        the proxies' upstreams unstarted (a console script that only needs the layout)."""
        layout = read_layout(settings, tuple(KINDS))
        built = {spec.name: KINDS[spec.kind].from_spec(spec, deps) for spec in layout}
        registry = cls(built, layout.default, layout.implicit)
        registry._start(layout, deps, serve)
        return registry

    def _start(self, layout: Layout, deps: Deps, serve: bool) -> None:
        with deps.db.session_factory() as session:
            ids = MetadataCache(session).repository_ids({r.name: r.kind for r in self})
            session.commit()
        for repo in self:
            repo.id = ids[repo.name]
        for repo in self:
            repo.link(self)
        # A filename is one object for every repository on the same prefix.
        by_prefix: dict[str, list[Repository]] = {}
        for repo in self:
            if repo.stores:
                by_prefix.setdefault(repo.prefix, []).append(repo)
        for sharing in by_prefix.values():
            for repo in sharing:
                repo.claimed_in = tuple(r.id for r in sharing)
        self._guard_new_names()
        proxies = [r for r in self if isinstance(r, ProxyRepository)]
        # One set of wait slots for every proxy: however many upstreams there are, some
        # request threads stay free for what is held here.
        explicit = next((p.config.max_waiting for p in proxies
                         if p.config.max_waiting is not None), None)
        self._explicit_waiting = explicit is not None
        self.slots = WaitSlots(explicit or DEFAULT_MAX_WAITING)
        for repo in proxies if serve else ():
            repo.start(self.slots)

    def _guard_new_names(self) -> None:
        """A hosted repository followed by a proxy in some group: a new project there
        would shadow the upstream's of the same name for that group's users, so its first
        upload asks the proxy (unless the group merges the name)."""
        for group in self:
            if not isinstance(group, GroupRepository):
                continue
            flat = list(group._flat())
            for i, repo in enumerate(flat):
                if not isinstance(repo, HostedRepository):
                    continue
                for later in flat[i + 1:]:
                    if isinstance(later, ProxyRepository):
                        repo.new_name_checks.append(later.new_name_check(group.merges))

    # --- lookups -----------------------------------------------------------------------------

    def __iter__(self):
        return iter(self._by_name.values())

    def __getitem__(self, name: str) -> Repository:
        return self._by_name[name]

    def get(self, name: str) -> Repository | None:
        return self._by_name.get(name)

    def server_threads(self, threads: int) -> None:
        """The server says how many request threads it has (before the first request):
        the wait slots are sized from them unless pypi.upstream_max_waiting says."""
        if not self._explicit_waiting:
            self.slots.configure(max_waiting_for(threads))

    @property
    def max_upload_size(self) -> int:
        """The largest file any repository takes: what a request body may be at most."""
        return max((r.max_upload_size for r in self if isinstance(r, HostedRepository)),
                   default=0)

    def health(self) -> dict:
        """The upstreams' part of /_health: each proxy's, and the default group's first
        one as `upstream`."""
        proxies = {r.name: r.health() for r in self if isinstance(r, ProxyRepository)}
        first = next((r for r in getattr(self.default, "_flat", lambda: [self.default])()
                      if isinstance(r, ProxyRepository)), None)
        answer = {"upstream": first.health() if first is not None else {"state": "off"}}
        if not self.implicit:
            answer["proxies"] = proxies
        return answer

    def shelves(self) -> list[Shelf]:
        """Where each repository that stores files keeps them, for a rebuild."""
        shelves = []
        for repo in self:
            if not repo.stores:
                continue
            shared = sum(1 for r in self if r.stores and r.prefix == repo.prefix) > 1
            if not shared:
                shelves.append(Shelf(repo.id, repo.prefix))
            elif isinstance(repo, ProxyRepository):
                shelves.append(Shelf(repo.id, repo.prefix, _cached))
            else:
                shelves.append(Shelf(repo.id, repo.prefix, _not_cached))
        return shelves

    def close(self) -> None:
        for repo in self:
            if isinstance(repo, ProxyRepository):
                repo.close()


def _cached(record) -> bool:
    return record.origin == "upstream"


def _not_cached(record) -> bool:
    return record.origin != "upstream"


__all__ = ["Deps", "KINDS", "Repositories", "Repository", "Work"]


def includeme(config):
    """The repositories, and the metadata cache brought in line with storage."""
    from ..interfaces import IAppConfig, IDatabase, IRepositories, ISettings, IStorage

    registry = config.registry
    deps = Deps(registry.getUtility(IStorage), registry.getUtility(IDatabase))
    repositories = Repositories.build(registry.getUtility(ISettings), deps)
    registry.registerUtility(repositories, IRepositories)
    reconcile_on_start(registry.getUtility(IAppConfig).reindex_on_start, deps.storage,
                       deps.db, repositories.shelves())


def reconcile_on_start(mode: str, storage, db, shelves) -> None:
    """Bring the cache in line with storage.

    An empty database is filled before the first request, so the index is never served
    incomplete. A populated one was right when last written (and instances that share it
    keep it right), so it serves at once while the walk over storage, which only finds
    what changed behind our back, runs in the background. What writes interrupted by a
    crash left in storage is cleared in the background either way (and looked at once
    more later when some of it was too recent to be sure: a server restarted right after
    its crash finds its own debris seconds old).
    """
    import threading

    from ..metadata.rebuild import DEBRIS_AGE, clear_debris, reconcile

    prefixes = sorted({shelf.prefix for shelf in shelves})

    def run(refresh_snapshot=False, debris=False):
        result = reconcile(storage, db.session_factory, refresh_snapshot=refresh_snapshot,
                           debris=debris, shelves=shelves)
        log.info("cache reconciled with storage: +%d -%d =%d in %.2fs", result.added,
                 result.removed, result.unchanged, result.seconds)
        return result.debris

    def clear(found=None):
        found = found or clear_debris(storage, prefixes)
        if found.recent:
            timer = threading.Timer(DEBRIS_AGE,
                                    _logged(lambda: clear_debris(storage, prefixes)))
            timer.daemon = True
            timer.start()

    if mode == "off":
        return
    populated = any(db.serials.repository(shelf.repository_id) > 0 for shelf in shelves)
    if mode == "background" or (mode == "auto" and populated):
        # Off the request path there is time to keep the records snapshot fresh too.
        work = lambda: clear(run(refresh_snapshot=True, debris=True))  # noqa: E731
    else:
        run()
        work = clear
    threading.Thread(target=_logged(work), name="pypirepo-reconcile", daemon=True).start()


def _logged(fn):
    def wrapper():
        try:
            fn()
        except Exception:  # noqa: BLE001 - a background thread has nobody else to tell
            log.exception("reconciling the cache with storage failed")

    return wrapper
