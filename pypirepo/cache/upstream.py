"""SQL for the fallback: upstream pages as last seen, and what we hold of a project.

Like the rest of pypirepo.cache it never commits; the fallback service owns its short
transactions (it writes outside the request's transaction, under a per-project lock).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..models import File, Project
from ..models.upstream import UpstreamPage

FOUND, NOT_FOUND = "found", "not_found"


class UpstreamCache:
    def __init__(self, session: Session):
        self.session = session

    def page(self, project: str) -> UpstreamPage | None:
        return self.session.execute(
            select(UpstreamPage).where(UpstreamPage.project == project)
        ).scalar()

    def save_page(self, project: str, upstream: str, status: str, etag: str | None,
                  fetched: dt.datetime, files: list[dict] | None) -> UpstreamPage:
        row = self.page(project)
        if row is None:
            row = UpstreamPage(project=project, upstream=upstream, status=status, etag=etag,
                               fetched=fetched, files=files)
            self.session.add(row)
            try:
                with self.session.begin_nested():
                    self.session.flush()
            except IntegrityError:
                # Another process saved it first; overwrite theirs with ours, both are fresh.
                row = self.page(project)
        row.upstream, row.status, row.etag, row.fetched = upstream, status, etag, fetched
        row.files = files
        self.session.flush()
        return row

    def touch_page(self, row: UpstreamPage, fetched: dt.datetime, etag: str | None) -> None:
        row.fetched = fetched
        if etag:
            row.etag = etag
        self.session.flush()

    def local_files(self, project: str) -> list[File]:
        """Every file we hold for the project, private uploads and cached upstream files."""
        stmt = (
            select(File)
            .join(Project, File.project_id == Project.id)
            .where(Project.name == project)
            .order_by(File.filename)
        )
        return list(self.session.execute(stmt).scalars())

    def has_private_files(self, project: str) -> bool:
        stmt = (
            select(func.count(File.id))
            .join(Project, File.project_id == Project.id)
            .where(Project.name == project, File.origin == "private")
        )
        return bool(self.session.execute(stmt).scalar())

    def file(self, project: str, filename: str) -> File | None:
        stmt = (
            select(File)
            .join(Project, File.project_id == Project.id)
            .where(Project.name == project, File.filename == filename)
        )
        return self.session.execute(stmt).scalar()
