"""The repositories' overview of the administration pages: per repository its kind, what it
holds (projects, files, bytes) and, for a proxy (the fallback of a server without
declared repositories is one), how its upstream answered.

A group holds nothing of its own: it lists its members, whose rows say what they hold.
The holdings are two statements per stored repository (pypirepo.metadata.stats: about
0.1 s for 90,000 projects and 180,000 files on SQLite), kept per process under the
repository's serial, which every change to its files bumps: shown again, they cost a
freshness read. The upstream figures are what every process wrote to the database plus
what this process counted since its last write (pypirepo.fallback.stats).
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

from ..metadata.stats import Holdings, RepositoryStats, UpstreamFigures
from .ui import KIND_TEXT


@dataclass(frozen=True)
class RepositoryRow:
    name: str
    kind: str
    description: str
    holdings: Holdings | None  # None: a group (it holds nothing itself)
    members: tuple[str, ...] = ()
    upstream_url: str | None = None
    mode: str | None = None
    upstream: UpstreamFigures | None = None  # a proxy's


# repository -> (its serial, its holdings); each app has repository objects of its own.
_HELD: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_HELD_LOCK = threading.Lock()


def holdings(work, stats: RepositoryStats, repo) -> Holdings:
    serial = work.db.serials.repository(repo.id)
    with _HELD_LOCK:
        found = _HELD.get(repo)
    if found is not None and found[0] == serial:
        return found[1]
    held = stats.holdings(repo.id)
    with _HELD_LOCK:
        _HELD[repo] = (serial, held)
    return held


def repository_overview(work, shown: list) -> list[RepositoryRow]:
    stats = RepositoryStats(work.session)
    proxies = [r for r in shown if r.kind == "proxy" and r.id is not None]
    written = stats.upstream([r.id for r in proxies])
    rows = []
    for repo in shown:
        about = repo.describe()
        upstream = None
        if repo in proxies:
            counter = getattr(repo, "stats", None)
            upstream = written.get(repo.id, UpstreamFigures())
            if counter is not None:
                upstream = upstream.plus(counter.pending())
        rows.append(RepositoryRow(
            repo.name, repo.kind, KIND_TEXT.get(repo.kind, repo.kind),
            None if repo.kind == "group" or repo.id is None else holdings(work, stats, repo),
            tuple(about.get("members") or ()), about.get("upstream"), about.get("mode"),
            upstream))
    return rows
