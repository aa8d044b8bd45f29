"""SQL for access: project owners (both backends), and what the sql backend keeps."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, insert, select, update

from ..db.beacon import CHANGED
from ..models.access import (
    AccessState,
    ApiToken,
    GrantRow,
    Group,
    GroupMember,
    ProjectOwner,
    User,
)
from ..records import utcnow
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

    # Changes through the owners API bump access_state.version (changing()): every process
    # then recompiles its policy, whose filtered listings depend on who owns what.

    def add(self, repository: str, project: str, user: str) -> bool:
        """False when they are one already."""
        with changing(self.session_factory) as session:
            if session.get(ProjectOwner, (repository, project, user)) is not None:
                return False
            add_owner(session, repository, project, user)
            return True

    def remove(self, repository: str, project: str, user: str, keep_last: bool) -> str:
        """"removed", "absent" (not an owner), or "last" (keep_last, and they are the last
        owner: nothing changed). The project's rows are locked first (PostgreSQL; SQLite
        has one writer at a time), so that two owners removing each other at once cannot
        leave the project with none."""
        try:
            with changing(self.session_factory) as session:
                held = set(session.execute(select(ProjectOwner.user).where(
                    ProjectOwner.repository == repository,
                    ProjectOwner.project == project).with_for_update()).scalars())
                if user not in held:
                    raise _Unchanged("absent")
                if keep_last and held == {user}:
                    raise _Unchanged("last")
                session.execute(delete(ProjectOwner).where(
                    ProjectOwner.repository == repository, ProjectOwner.project == project,
                    ProjectOwner.user == user))
        except _Unchanged as exc:  # rolled back: no version bumped for nothing
            return exc.args[0]
        return "removed"


class _Unchanged(Exception):
    pass


@contextmanager
def changing(session_factory):
    """A session whose changes are committed with access_state.version bumped, or rolled
    back: every process sharing the database sees the change within its recheck."""
    with session_factory() as session, session.begin():
        yield session
        bumped = session.execute(update(AccessState).where(AccessState.id == 1)
                                 .values(version=AccessState.version + 1)).rowcount
        if not bumped:  # a database whose row was lost: made again
            session.add(AccessState(id=1, version=1))
        session.info[CHANGED] = True  # SQLite: other processes look again at once


def add_owner(session, repository: str, project: str, user: str) -> None:
    """In the caller's transaction; nothing when they are one already."""
    table = ProjectOwner.__table__
    stmt = dialect_insert(session.get_bind().dialect.name, table)
    values = {"repository": repository, "project": project, "user": user}
    if stmt is not None:
        session.execute(stmt.values(**values).on_conflict_do_nothing())
    elif session.get(ProjectOwner, (repository, project, user)) is None:
        session.add(ProjectOwner(**values))


# --- the sql backend: users, groups, grants, and the version every change bumps -----------


@dataclass(frozen=True)
class AccessSnapshot:
    """What the sql backend holds, read at one version."""

    version: int
    users: dict  # name -> (password hash or None, admin)
    memberships: dict  # user -> frozenset of group names
    groups: dict  # group -> tuple of member names, sorted
    # (id, (repository, pattern, permission, principal)), in id order: the access layer
    # makes its Grants of them (this layer knows rows, not the access model's words)
    grants: tuple


class AccessSQL:
    """Every statement of the sql access backend. Reads open their own short session;
    writes run in the caller's session (AccessSQL.changing), which bumps the version in
    the same transaction so that every process sharing the database sees the change."""

    def __init__(self, session_factory):
        self.session_factory = session_factory

    # --- reads ------------------------------------------------------------------------

    def version(self) -> int:
        with self.session_factory() as session:
            found = session.execute(select(AccessState.version).where(
                AccessState.id == 1)).scalar()
        return found or 0

    def snapshot(self) -> AccessSnapshot:
        """Everything at once. The version is read first: the rows are at least that new
        (a change committed in between is read again at the next version)."""
        with self.session_factory() as session:
            version = session.execute(select(AccessState.version).where(
                AccessState.id == 1)).scalar() or 0
            users = {r.name: (r.password_hash, bool(r.admin)) for r in session.execute(
                select(User.name, User.password_hash, User.admin))}
            groups: dict[str, list[str]] = {
                name: [] for name in session.execute(select(Group.name)).scalars()}
            memberships: dict[str, set[str]] = {}
            for group, user in session.execute(
                    select(Group.name, User.name)
                    .join(GroupMember, GroupMember.group_id == Group.id)
                    .join(User, GroupMember.user_id == User.id)):
                groups[group].append(user)
                memberships.setdefault(user, set()).add(group)
            grants = tuple((r.id, (r.repository, r.pattern, r.permission, r.principal))
                           for r in session.execute(select(GrantRow).order_by(GrantRow.id))
                           .scalars())
        return AccessSnapshot(version, users,
                              {u: frozenset(g) for u, g in memberships.items()},
                              {g: tuple(sorted(m)) for g, m in groups.items()}, grants)

    # --- writes, in the caller's transaction -------------------------------------------

    def changing(self):
        """A session whose changes are committed with a bumped version, or rolled back."""
        return changing(self.session_factory)

    @staticmethod
    def user_id(session, name: str) -> int | None:
        return session.execute(select(User.id).where(User.name == name)).scalar()

    @staticmethod
    def group_id(session, name: str) -> int | None:
        return session.execute(select(Group.id).where(Group.name == name)).scalar()

    @staticmethod
    def add_user(session, name: str, password_hash: str | None, admin: bool) -> None:
        session.add(User(name=name, password_hash=password_hash, admin=admin,
                         created=utcnow()))

    @staticmethod
    def update_user(session, name: str, **values) -> bool:
        """password_hash= and/or admin=; False when there is no such user."""
        return session.execute(update(User).where(User.name == name).values(**values)
                               ).rowcount > 0

    @staticmethod
    def remove_user(session, name: str) -> bool:
        """The user, their memberships, the grants naming them and the projects they own;
        their API tokens are revoked (a user made again later under the name inherits
        none of these)."""
        user_id = AccessSQL.user_id(session, name)
        if user_id is None:
            return False
        session.execute(delete(GroupMember).where(GroupMember.user_id == user_id))
        session.execute(delete(GrantRow).where(GrantRow.principal == name))
        session.execute(delete(ProjectOwner).where(ProjectOwner.user == name))
        session.execute(delete(User).where(User.id == user_id))
        session.execute(update(ApiToken).where(ApiToken.user == name,
                                               ApiToken.revoked.is_(None))
                        .values(revoked=utcnow()))
        return True

    @staticmethod
    def add_group(session, name: str) -> int:
        group = Group(name=name)
        session.add(group)
        session.flush()
        return group.id

    @staticmethod
    def remove_group(session, name: str) -> bool:
        group_id = AccessSQL.group_id(session, name)
        if group_id is None:
            return False
        session.execute(delete(GroupMember).where(GroupMember.group_id == group_id))
        session.execute(delete(GrantRow).where(GrantRow.principal == f"group:{name}"))
        session.execute(delete(Group).where(Group.id == group_id))
        return True

    @staticmethod
    def set_members(session, group_id: int, user_ids: list[int]) -> None:
        session.execute(delete(GroupMember).where(GroupMember.group_id == group_id))
        if user_ids:
            session.execute(insert(GroupMember), [{"group_id": group_id, "user_id": u}
                                                  for u in sorted(set(user_ids))])

    @staticmethod
    def add_grant(session, grant) -> int | None:
        """The new grant's id (grant: its repository, pattern, permission and principal);
        None when the same grant is there already."""
        found = session.execute(select(GrantRow.id).where(
            GrantRow.repository == grant.repository, GrantRow.pattern == grant.pattern,
            GrantRow.permission == grant.permission, GrantRow.principal == grant.principal)
        ).scalar()
        if found is not None:
            return None
        row = GrantRow(repository=grant.repository, pattern=grant.pattern,
                       permission=grant.permission, principal=grant.principal)
        session.add(row)
        session.flush()
        return row.id

    @staticmethod
    def remove_grant(session, grant_id: int) -> tuple | None:
        """(repository, pattern, permission, principal) of the grant removed; None when
        there was none of that id."""
        row = session.get(GrantRow, grant_id)
        if row is None:
            return None
        grant = (row.repository, row.pattern, row.permission, row.principal)
        session.delete(row)
        return grant


# --- API tokens (both backends) -------------------------------------------------------------


TOKEN_COLUMNS = (ApiToken.id, ApiToken.user, ApiToken.digest, ApiToken.prefix,
                 ApiToken.permissions, ApiToken.repositories, ApiToken.projects,
                 ApiToken.note, ApiToken.created, ApiToken.expires, ApiToken.last_used,
                 ApiToken.revoked)


class TokensSQL:
    """The api_tokens table. Each call is its own short transaction."""

    def __init__(self, session_factory):
        self.session_factory = session_factory

    def by_digest(self, digest: str):
        """The row of a digest (one lookup in the unique index), or None."""
        with self.session_factory() as session:
            return session.execute(select(*TOKEN_COLUMNS).where(
                ApiToken.digest == digest)).first()

    def by_id(self, token_id: int):
        with self.session_factory() as session:
            return session.execute(select(*TOKEN_COLUMNS).where(
                ApiToken.id == token_id)).first()

    def listed(self, user: str | None = None, revoked: bool = False) -> list:
        stmt = select(*TOKEN_COLUMNS).order_by(ApiToken.id)
        if user is not None:
            stmt = stmt.where(ApiToken.user == user)
        if not revoked:
            stmt = stmt.where(ApiToken.revoked.is_(None))
        with self.session_factory() as session:
            return list(session.execute(stmt))

    def add(self, **values) -> int:
        with self.session_factory() as session, session.begin():
            row = ApiToken(**values)
            session.add(row)
            session.flush()
            return row.id

    def update(self, token_id: int, **values) -> bool:
        with self.session_factory() as session, session.begin():
            return session.execute(update(ApiToken).where(ApiToken.id == token_id)
                                   .values(**values)).rowcount > 0

    def revoke(self, token_id: int, when) -> bool:
        """False when there is no such token, or it was revoked already."""
        with self.session_factory() as session, session.begin():
            return session.execute(update(ApiToken).where(
                ApiToken.id == token_id, ApiToken.revoked.is_(None)).values(revoked=when)
            ).rowcount > 0

    def record_use(self, used: dict) -> None:
        """token id -> when it was last used: one transaction for all of them."""
        if not used:
            return
        table = ApiToken.__table__
        with self.session_factory() as session, session.begin():
            session.execute(update(table).where(table.c.id == bindparam("token_id"))
                            .values(last_used=bindparam("used")),
                            [{"token_id": k, "used": v} for k, v in used.items()])
