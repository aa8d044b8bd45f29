"""SQL for access: project owners (both backends), and what the sql backend keeps."""

from __future__ import annotations

from sqlalchemy import select

from ..models.access import ProjectOwner
from . import dialect_insert


class OwnersSQL:
    """Who owns which project, asked where the grants say no (owners may do everything
    to their own project)."""

    def __init__(self, session_factory):
        self.session_factory = session_factory

    def owners(self, repository: str, project: str) -> frozenset[str]:
        with self.session_factory() as session:
            return frozenset(session.execute(select(ProjectOwner.user).where(
                ProjectOwner.repository == repository,
                ProjectOwner.project == project)).scalars())

    def owned(self, repository: str, user: str) -> frozenset[str]:
        with self.session_factory() as session:
            return frozenset(session.execute(select(ProjectOwner.project).where(
                ProjectOwner.repository == repository,
                ProjectOwner.user == user)).scalars())


def add_owner(session, repository: str, project: str, user: str) -> None:
    """In the caller's transaction; nothing when they are one already."""
    table = ProjectOwner.__table__
    stmt = dialect_insert(session.get_bind().dialect.name, table)
    values = {"repository": repository, "project": project, "user": user}
    if stmt is not None:
        session.execute(stmt.values(**values).on_conflict_do_nothing())
    elif session.get(ProjectOwner, (repository, project, user)) is None:
        session.add(ProjectOwner(**values))
