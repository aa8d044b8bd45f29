"""SQL for the fallback: upstream pages as last seen, and what we hold of a project.

Like the rest of pypirepo.metadata it never commits; the fallback owns its short
transactions (it writes outside the request's transaction, under a per-project lock).
The page statements are Core statements, so they run on a bare pooled connection: the
ORM session would cost more than the query.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..models.upstream import UpstreamPage
from . import dialect_insert

FOUND, NOT_FOUND = "found", "not_found"


class UpstreamCache:
    def __init__(self, session: Session):
        self.session = session

    def page(self, repository_id: int, project: str):
        """The row (status, files, fetched, etag, upstream) or None; plain columns, so it
        works on a bare connection as well as a session."""
        return self.session.execute(
            select(UpstreamPage.status, UpstreamPage.files, UpstreamPage.fetched,
                   UpstreamPage.etag, UpstreamPage.upstream)
            .where(UpstreamPage.repository_id == repository_id,
                   UpstreamPage.project == project)
        ).first()

    def save_page(self, repository_id: int, project: str, upstream: str, status: str,
                  etag: str | None, fetched: dt.datetime, files: list[dict] | None) -> None:
        values = {"upstream": upstream, "status": status, "etag": etag, "fetched": fetched,
                  "files": files}
        upsert = _upsert(self.session)
        if upsert is not None:
            # One statement where the database has an upsert; a newer answer always wins.
            self.session.execute(upsert.values(repository_id=repository_id, project=project,
                                               **values)
                                 .on_conflict_do_update(
                                     index_elements=["repository_id", "project"], set_=values))
            return
        where = (UpstreamPage.repository_id == repository_id) & \
            (UpstreamPage.project == project)
        if self.session.execute(update(UpstreamPage).where(where).values(**values)).rowcount:
            return
        try:
            with self.session.begin_nested():
                self.session.execute(insert(UpstreamPage).values(
                    repository_id=repository_id, project=project, **values))
        except IntegrityError:
            # Another process saved it first; ours is as fresh, so it wins.
            self.session.execute(update(UpstreamPage).where(where).values(**values))

    def touch_page(self, repository_id: int, project: str, fetched: dt.datetime,
                   etag: str | None) -> None:
        """A 304: the page is as it was, only revalidated now."""
        self.session.execute(update(UpstreamPage).where(
            UpstreamPage.repository_id == repository_id, UpstreamPage.project == project)
            .values(fetched=fetched, etag=etag))


def _upsert(session):
    dialect = session.get_bind().dialect.name if isinstance(session, Session) \
        else session.dialect.name
    return dialect_insert(dialect, UpstreamPage.__table__)
