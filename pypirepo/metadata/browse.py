"""The web UI's reads: repositories' project lists a page at a time, counts, and what a
project page shows.

A list is asked of one or more repositories in answer order (a hosted or proxy
repository alone; a group's stored members, nested groups unfolded): a name held by
several is listed once, from the first one that holds it, as the group answers it.
Sorting and paging happen here, in SQL, on indexes (projects: repository_id + name and
repository_id + last_upload for one repository, name and last_upload for several): a page
of a 100,000-project repository walks an index to the page's end and reads the rows it
shows, never the list and no sort.

Search matches names (PEP 503-normalized, anywhere in the name) and summaries (any case),
exact names first, then names that start with the query, names that contain it, and
summaries that do.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import case, func, literal, literal_column, not_, or_, select
from sqlalchemy.orm import Session

from ..models import File, Project

_P = Project.__table__
_F = File.__table__
# Ids per IN list: SQLite takes at most 32,766 bound values in a statement.
_CHUNK = 10_000

SORTS = ("name", "updated")
SUMMARY_LIMIT = 512  # projects.summary's length


def json_text(dialect, column: str, key: str) -> str:
    """SQL for a JSON column's string member, on SQLite and PostgreSQL."""
    if dialect.name == "postgresql":
        return f"({column} ->> '{key}')"
    return f"json_extract({column}, '$.{key}')"


def refresh_sql(dialect) -> str:
    """The SET clause that derives a project row's list columns from its files: the time of
    its latest upload and that upload's summary. Part of every statement that bumps a
    project's serial (MetadataCache.bump_serial, bulk_add), so no change misses it."""
    summary = json_text(dialect, "f.info", "summary")
    return (
        "last_upload = (SELECT max(f.upload_time) FROM files f "
        "WHERE f.project_id = projects.id), "
        f"summary = (SELECT substr({summary}, 1, {SUMMARY_LIMIT}) FROM files f "
        "WHERE f.project_id = projects.id ORDER BY f.upload_time DESC, f.id DESC LIMIT 1)")


@dataclass(frozen=True)
class ProjectRow:
    """A project as a list shows it (before its release facts are added)."""

    id: int
    repository_id: int
    name: str  # normalized
    display_name: str
    summary: str | None
    last_upload: dt.datetime | None


@dataclass(frozen=True)
class ReleaseFact:
    """One file of a listed project, as much as its list entry needs."""

    project_id: int
    version: str
    origin: str
    yanked: bool
    promoted_from: str | None


# What a project page shows of each file (everything but the metadata JSON, which only
# the release shown needs: file_info()).
DETAIL_COLUMNS = ("id", "repository_id", "filename", "version", "packagetype",
                  "python_version", "requires_python", "size", "sha256", "upload_time",
                  "uploader", "yanked", "yanked_reason", "origin", "provenance",
                  "metadata_sha256")
_COLUMNS = [_P.c.id, _P.c.repository_id, _P.c.name, _P.c.display_name, _P.c.summary,
            _P.c.last_upload]


class Browse:
    """The web UI's reads, on a request's session (reads only: it never writes)."""

    def __init__(self, session: Session):
        self.session = session

    # --- lists -----------------------------------------------------------------------------

    def projects(self, ids: list[int], sort: str = "name", offset: int = 0,
                 limit: int | None = 50) -> list[ProjectRow]:
        """A page of the projects of these repositories (in answer order), sorted by name
        or by last upload (newest first); limit None: all of them from offset."""
        stmt = select(*_COLUMNS).where(*_listed(ids, scan=False)).order_by(
            *_order(_P.c, sort)).offset(offset)
        if limit is not None:
            stmt = stmt.limit(limit)
        return [ProjectRow(*r) for r in self.session.execute(stmt)]

    def count(self, ids: list[int]) -> int:
        """How many projects the repositories list together (each name once)."""
        return self.session.execute(select(func.count()).select_from(_P).where(
            *_listed(ids, scan=False))).scalar()

    def file_count(self, ids: list[int]) -> int:
        """How many files the listed projects have (a shadowed project's files excluded)."""
        total = self.session.execute(select(func.count()).select_from(_F).where(
            _F.c.repository_id == ids[0])).scalar()
        for i, rid in enumerate(ids[1:], 1):
            q = _P.alias("q")
            total += self.session.execute(
                select(func.count()).select_from(_F.join(_P, _F.c.project_id == _P.c.id))
                .where(_P.c.repository_id == rid, not_(
                    select(q.c.id).where(q.c.repository_id.in_(ids[:i]),
                                         q.c.name == _P.c.name).exists()))).scalar()
        return total

    def file_count_of(self, project_ids: list[int]) -> int:
        """How many files these projects have."""
        total = 0
        for start in range(0, len(project_ids), _CHUNK):
            total += self.session.execute(select(func.count()).select_from(_F).where(
                _F.c.project_id.in_(project_ids[start:start + _CHUNK]))).scalar()
        return total

    def search(self, ids: list[int], needle: str, words: str, sort: str = "name",
               offset: int = 0, limit: int | None = 50) -> tuple[list[ProjectRow], int]:
        """(a page of the projects whose normalized name contains needle or whose summary
        contains words, the number of them all). Sorted by relevance then name, or by
        last upload."""
        p = _P
        dialect = self.session.get_bind().dialect.name
        position = func.strpos if dialect == "postgresql" else func.instr
        at = position(p.c.name, needle) if needle else literal(0)
        in_name = at > 0
        if not words:
            in_summary = literal(False)
        elif dialect == "postgresql":
            in_summary = p.c.summary.ilike(f"%{_like_escape(words)}%", escape="\\")
        elif "%" in words or "_" in words:
            in_summary = p.c.summary.like(f"%{_like_escape(words)}%", escape="\\")
        else:
            # SQLite's LIKE ignores ASCII case, and without an ESCAPE clause it is the
            # quickest test of a row (lower() or ESCAPE cost a third more per row).
            in_summary = p.c.summary.like(f"%{words}%")
        # Every row is read (a substring has no index): one pass over the table is
        # cheaper than looking each one up through the repository's index. The pass
        # ranks and counts ids only; the page's rows are read after.
        where = [or_(in_name, in_summary), *_listed(ids, scan=True)]
        if sort == "updated":
            order = _order(p.c, sort)
        else:
            rank = case((p.c.name == needle, 0), (at == 1, 1), (in_name, 2), else_=3) \
                if needle else literal(3)
            order = [rank, p.c.name]
        if limit is None:  # every match (the caller filters them): the rows at once
            found = self.session.execute(select(*_COLUMNS).where(*where).order_by(*order)
                                         .offset(offset)).all()
            return [ProjectRow(*r) for r in found], offset + len(found)
        found = self.session.execute(select(p.c.id, func.count().over()).where(*where)
                                     .order_by(*order).offset(offset).limit(limit)).all()
        if not found:
            if offset == 0:
                return [], 0
            # Past the end: the count alone.
            return [], self.session.execute(
                select(func.count()).select_from(p).where(*where)).scalar()
        rows = {r[0]: ProjectRow(*r) for r in self.session.execute(
            select(*_COLUMNS).where(p.c.id.in_([f[0] for f in found])))}
        return [rows[f[0]] for f in found], found[0][1]

    def release_facts(self, project_ids: list[int]) -> list[ReleaseFact]:
        """Every file of these projects: version, origin, yanked, promoted from where."""
        if not project_ids:
            return []
        promoted = literal_column(json_text(self.session.get_bind().dialect,
                                            "files.provenance", "promoted_from"))
        stmt = select(_F.c.project_id, _F.c.version, _F.c.origin, _F.c.yanked,
                      promoted).where(_F.c.project_id.in_(project_ids))
        return [ReleaseFact(*r) for r in self.session.execute(stmt)]

    # --- a project page ----------------------------------------------------------------------

    def project_detail(self, project_id: int) -> tuple[str, list]:
        """(the project's display name, its files: DETAIL_COLUMNS rows by filename)."""
        display = self.session.execute(select(_P.c.display_name).where(
            _P.c.id == project_id)).scalar()
        stmt = select(*[_F.c[c] for c in DETAIL_COLUMNS]).where(
            _F.c.project_id == project_id).order_by(_F.c.filename)
        return display or "", list(self.session.execute(stmt).all())

    def file_info(self, file_id: int) -> dict:
        """The metadata a file's upload (or fetch) stored: the JSON API's info keys, and
        the long description."""
        return self.session.execute(select(_F.c.info).where(_F.c.id == file_id)).scalar() \
            or {}


def _like_escape(text_: str) -> str:
    return text_.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _order(c, sort: str) -> list:
    if sort == "updated":
        return [c.last_upload.desc(), c.id.desc()]
    return [c.name]


def _listed(ids: list[int], scan: bool) -> list:
    """The conditions of a project row listed by these repositories: held by one of them,
    and, for a group, by none before its own (the first member's rows need no look).

    Over several repositories, or for a scan, the repository is compared as an
    expression (repository_id + 0), which no index serves: SQLite then walks the index
    that gives the order asked for (ix_projects_name, ix_projects_last_upload, both
    holding repository_id) and stops at the page's end, instead of collecting every row
    of each repository and sorting them."""
    rid = _P.c.repository_id
    if len(ids) == 1:
        return [(rid + 0) == ids[0] if scan else rid == ids[0]]
    q = _P.alias("q")
    rank = {r: i for i, r in enumerate(ids)}
    shadowed = select(q.c.id).where(
        q.c.repository_id.in_(ids[:-1]), q.c.name == _P.c.name,
        case(rank, value=q.c.repository_id) < case(rank, value=rid)).exists()
    return [(rid + 0).in_(ids), or_(rid == ids[0], not_(shadowed))]
