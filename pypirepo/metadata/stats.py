"""SQL for the repositories' overview: what a repository holds (projects, files, bytes)
and how its upstream answered (upstream_stats, added to by pypirepo.fallback.stats).

Two statements per repository for the holdings, on the indexes every repository has
(projects and files by repository_id); the upstream figures of every repository in one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import case, func, select, update
from sqlalchemy.exc import IntegrityError

from ..models import File, Project
from ..models.upstream import UpstreamStats
from . import dialect_insert

_P, _F, _S = Project.__table__, File.__table__, UpstreamStats.__table__


@dataclass(frozen=True)
class Holdings:
    projects: int
    files: int
    bytes: int


@dataclass(frozen=True)
class UpstreamFigures:
    hits: int = 0
    misses: int = 0
    errors: int = 0
    last_error: str | None = None
    last_error_at: dt.datetime | None = None  # naive UTC

    def plus(self, other: UpstreamFigures) -> UpstreamFigures:
        newer = other if other.last_error_at is not None and (
            self.last_error_at is None or other.last_error_at > self.last_error_at) else self
        return UpstreamFigures(self.hits + other.hits, self.misses + other.misses,
                               self.errors + other.errors, newer.last_error,
                               newer.last_error_at)


class RepositoryStats:
    """On a session or a bare connection."""

    def __init__(self, session):
        self.session = session

    def holdings(self, repository_id: int) -> Holdings:
        projects = self.session.execute(select(func.count()).select_from(_P).where(
            _P.c.repository_id == repository_id)).scalar()
        files, size = self.session.execute(
            select(func.count(), func.coalesce(func.sum(_F.c.size), 0))
            .where(_F.c.repository_id == repository_id)).one()
        return Holdings(projects, files, int(size))

    def upstream(self, repository_ids: list[int]) -> dict[int, UpstreamFigures]:
        if not repository_ids:
            return {}
        rows = self.session.execute(
            select(_S.c.repository_id, _S.c.hits, _S.c.misses, _S.c.errors, _S.c.last_error,
                   _S.c.last_error_at).where(_S.c.repository_id.in_(repository_ids)))
        return {r[0]: UpstreamFigures(*r[1:]) for r in rows}

    def add_upstream(self, repository_id: int, counts: UpstreamFigures) -> None:
        """Add a process's counts to the repository's row (made when missing); the newer
        last error wins."""
        newer = _S.c.last_error_at.is_(None) | (_S.c.last_error_at < counts.last_error_at) \
            if counts.last_error_at is not None else None
        values = {
            "hits": _S.c.hits + counts.hits, "misses": _S.c.misses + counts.misses,
            "errors": _S.c.errors + counts.errors,
        }
        if newer is not None:
            values["last_error"] = case((newer, counts.last_error), else_=_S.c.last_error)
            values["last_error_at"] = case((newer, counts.last_error_at),
                                           else_=_S.c.last_error_at)
        change = update(_S).where(_S.c.repository_id == repository_id).values(**values)
        if self.session.execute(change).rowcount:
            return
        row = {"repository_id": repository_id, "hits": counts.hits, "misses": counts.misses,
               "errors": counts.errors, "last_error": counts.last_error,
               "last_error_at": counts.last_error_at}
        dialect = self.session.get_bind().dialect.name if hasattr(self.session, "get_bind") \
            else self.session.dialect.name
        upsert = dialect_insert(dialect, _S)
        if upsert is not None:
            # Another process may have made the row since the UPDATE: then add to it.
            if not self.session.execute(upsert.values(**row).on_conflict_do_nothing()
                                        ).rowcount:
                self.session.execute(change)
            return
        try:
            with self.session.begin_nested():
                self.session.execute(_S.insert().values(**row))
        except IntegrityError:
            self.session.execute(change)
