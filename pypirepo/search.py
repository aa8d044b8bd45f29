"""Finding projects by name for the web UI.

For now it reads the default index's project list (the root page the simple API already
keeps in memory per serial), so a search costs no query; a search over summaries and
several repositories will replace the source, not the answer's shape.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import names


@dataclass(frozen=True)
class ProjectHit:
    name: str  # as uploaded
    normalized: str


@dataclass(frozen=True)
class SearchResult:
    query: str
    total: int
    hits: list[ProjectHit]


def _normalized_query(query: str) -> str:
    # The PEP 503 rules, so that "Foo_Bar" finds foo-bar; text that is no name at all
    # still matches inside names ("my." finds "my-pkg").
    return names.normalize(query.strip())


def search_projects(index, query: str, prefix: str, offset: int, limit: int) -> SearchResult:
    """Projects whose name contains the query: the exact name first, then names that
    start with it, then the rest, each alphabetically. An empty query lists them all."""
    projects = index.root_page(prefix).data["projects"]
    needle = _normalized_query(query)
    if needle:
        ranked = []
        for p in projects:
            normalized = p["_normalized"]
            at = normalized.find(needle)
            if at >= 0:
                rank = 0 if normalized == needle else 1 if at == 0 else 2
                ranked.append((rank, normalized, p))
        ranked.sort(key=lambda r: (r[0], r[1]))
        found = [r[2] for r in ranked]
    else:
        found = projects  # already in name order
    page = found[offset:offset + limit]
    return SearchResult(query.strip(), len(found),
                        [ProjectHit(p["name"], p["_normalized"]) for p in page])
