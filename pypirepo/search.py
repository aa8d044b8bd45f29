"""Finding projects by name for the web UI.

For now it reads a repository's project list (what its root page, kept in memory per
serial, lists), so a search costs no query; a search over summaries will replace the
source, not the answer's shape.
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


def search_projects(projects: list[tuple[str, str]], query: str, offset: int, limit: int
                    ) -> SearchResult:
    """Projects ((normalized, display) pairs, in name order) whose name contains the
    query: the exact name first, then names that start with it, then the rest, each
    alphabetically. An empty query lists them all."""
    needle = _normalized_query(query)
    if needle:
        ranked = []
        for normalized, display in projects:
            at = normalized.find(needle)
            if at >= 0:
                rank = 0 if normalized == needle else 1 if at == 0 else 2
                ranked.append((rank, normalized, display))
        ranked.sort(key=lambda r: (r[0], r[1]))
        found = [(r[1], r[2]) for r in ranked]
    else:
        found = projects  # already in name order
    page = found[offset:offset + limit]
    return SearchResult(query.strip(), len(found),
                        [ProjectHit(display, normalized) for normalized, display in page])
