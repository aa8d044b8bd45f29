"""The `sql` access backend (`auth.backend = sql`): users, groups, admins and grants in the
database, changed while the server runs (the admin API, `pypirepo-user`).

The ini still counts, as a floor the database adds to:

- users declared in the ini or the environment (`user.<name>`, `PYPIREPO_USER_<NAME>`,
  `auth.bootstrap_user`) log in with the ini's password, whatever the database holds; the
  database cannot add, remove or re-password them (their lines are the operator's);
- `auth.admins` are admins, and so is whoever the database marks as one;
- groups are the ini's `group.<name>` lines and the database's groups; a name in both is
  one group whose members are both lists;
- the grants are the ini's (`repository.<name>.<permission>`, `grants`, and the defaults
  `pypi.default_read` / `pypi.default_write`) plus the database's. The database cannot
  revoke an ini grant: whoever wants the database alone to decide leaves the ini's lines
  out and sets the defaults to a user who needs them (an admin).

Every change bumps access_state.version in its own transaction; each process reads the
version at most once a second (RECHECK) and reloads everything when it moved, so several
instances sharing one database follow each other's changes within that second, and the
process that made a change at once. What requests ask (exists, groups_of, is_admin,
verify) is answered from the loaded copy: no query per request.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time

from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ..errors import Refused
from ..passwords import PASSWORDS, waste_a_hash
from .model import (
    ANYWHERE,
    PERMISSIONS,
    USER_RE,
    Grant,
    check_pattern,
    principal_of,
)

log = logging.getLogger(__name__)

RECHECK = 1.0  # seconds between two reads of access_state.version by one process


class SqlBackend:
    name = "sql"

    def __init__(self, sql, base, repository_names=(), recheck: float = RECHECK):
        """sql: metadata.access.AccessSQL; base: the ini's ConfigBackend (the floor);
        repository_names: the declared repositories (what a grant may name)."""
        self.sql = sql
        self.base = base
        self.repository_names = frozenset(repository_names)
        self.recheck = recheck
        self._snapshot = None
        self._checked_at = float("-inf")
        self._lock = threading.Lock()
        self._failing = False
        self._load()

    # --- the loaded copy, and its version --------------------------------------------------

    @property
    def version(self) -> int:
        if time.monotonic() - self._checked_at >= self.recheck:
            self._refresh()
        return self._snapshot.version

    def _refresh(self) -> None:
        # One thread asks; the others go on with the copy they have meanwhile.
        if not self._lock.acquire(blocking=False):
            return
        try:
            if time.monotonic() - self._checked_at < self.recheck:
                return
            try:
                if self.sql.version() != self._snapshot.version:
                    self._load_locked()
                self._failing = False
            except SQLAlchemyError as exc:
                # The database is away: the last copy goes on deciding until it is back.
                if not self._failing:
                    log.warning("cannot read the users and grants from the database "
                                "(using those read before): %s", exc)
                self._failing = True
            self._checked_at = time.monotonic()
        finally:
            self._lock.release()

    def _load(self) -> None:
        with self._lock:
            self._load_locked()

    def _load_locked(self) -> None:
        snapshot = self.sql.snapshot()
        hashes = [h for h, _admin in snapshot.users.values() if h]
        self._decoy = hashes[0] if hashes else None
        self._snapshot = dataclasses.replace(snapshot, grants=tuple(
            (grant_id, Grant(*row)) for grant_id, row in snapshot.grants))
        self._checked_at = time.monotonic()

    def reload(self) -> None:
        """After a change made here: this process sees it at once."""
        self._load()

    # --- the backend protocol (access/config.py) --------------------------------------------

    def verify(self, user: str, password: str) -> bool:
        """Whether the password is the user's; as slow for an unknown user. The ini's
        users are checked by the ini's hash."""
        if self.base.exists(user):
            return self.base.verify(user, password)
        found = self._snapshot.users.get(user)
        hashed = found[0] if found else None
        if hashed is None:
            self._waste_a_hash(password)
            return False
        try:
            return PASSWORDS.verify(password, hashed)
        except (ValueError, TypeError):
            log.error("the password hash of user %r in the database cannot be read; set a "
                      "new password (pypirepo-user <ini> passwd %s)", user, user)
            return False

    def _waste_a_hash(self, password: str) -> None:
        # A hash of the database's users, else the ini's decoy, else passlib's dummy.
        waste_a_hash(password, self._decoy or self.base._decoy)

    def exists(self, user: str) -> bool:
        return user in self._snapshot.users or self.base.exists(user)

    def groups_of(self, user: str) -> frozenset[str]:
        return self.base.groups_of(user) | self._snapshot.memberships.get(user, frozenset())

    def is_admin(self, user: str) -> bool:
        if self.base.is_admin(user):
            return True
        found = self._snapshot.users.get(user)
        return bool(found and found[1])

    def user_names(self) -> list[str]:
        return sorted(set(self._snapshot.users) | set(self.base.user_names()))

    def grants(self) -> list[Grant]:
        return self.base.grants() + [g for _id, g in self._snapshot.grants]

    # --- what the admin API and the command line show ---------------------------------------

    def from_ini(self, user: str) -> bool:
        return self.base.exists(user)

    def users(self) -> list[dict]:
        snapshot = self.snapshot()
        listed = []
        for name in self.user_names():
            stored = snapshot.users.get(name)
            listed.append({
                "name": name, "admin": self.is_admin(name),
                "groups": sorted(self.groups_of(name)),
                "source": "ini" if self.base.exists(name) else "database",
                "password": self.base.exists(name) or bool(stored and stored[0]),
            })
        return listed

    def groups(self) -> dict[str, list[str]]:
        """group -> members, the ini's and the database's."""
        snapshot = self.snapshot()
        found = {g: set(m) for g, m in snapshot.groups.items()}
        for group, members in self.base.groups.items():
            found.setdefault(group, set()).update(members)
        return {g: sorted(m) for g, m in sorted(found.items())}

    def ini_groups(self) -> frozenset[str]:
        return frozenset(self.base.groups)

    def stored_grants(self) -> list[tuple[int, Grant]]:
        return list(self.snapshot().grants)

    def snapshot(self):
        self.version  # noqa: B018 - as fresh as a request would see it
        return self._snapshot

    # --- changes -----------------------------------------------------------------------

    def _change(self, work):
        """Run work(session) in one transaction that bumps the version; reload after."""
        try:
            with self.sql.changing() as session:
                result = work(session)
        except IntegrityError:
            # Another process made the same name (or grant) in between.
            raise Refused(409, "That was changed at the same time by someone else; "
                               "look again and retry.") from None
        self.reload()
        return result

    def not_from_ini(self, user: str) -> None:
        if self.base.exists(user):
            raise Refused(409, f"The user {user!r} is declared in the ini (user.{user}, its "
                               "environment variable or auth.bootstrap_user): change it there.")

    def add_user(self, name: str, password: str | None, admin: bool = False) -> None:
        check_user_name(name)
        self.not_from_ini(name)
        hashed = PASSWORDS.hash(password) if password else None

        def work(session):
            if self.sql.user_id(session, name) is not None:
                raise Refused(409, f"There is a user {name!r} already.")
            self.sql.add_user(session, name, hashed, admin)

        self._change(work)

    def set_password(self, name: str, password: str | None) -> None:
        """password None: the user can no longer log in with one (tokens still work)."""
        self.not_from_ini(name)
        hashed = PASSWORDS.hash(password) if password else None
        self._update_user(name, password_hash=hashed)

    def set_hash(self, name: str, hashed: str) -> None:
        """A hash made elsewhere (a rehash at login when the hashing policy changed)."""
        self._update_user(name, password_hash=hashed)

    def password_hash(self, user: str) -> str | None:
        """The stored hash (the ini's for its users): rehash at login, session stamps."""
        if self.base.exists(user):
            return self.base.password_hash(user)
        found = self.snapshot().users.get(user)
        return found[0] if found else None

    def rehash(self, user: str, hashed: str) -> bool:
        """Store a stronger hash of the same password; False for a user of the ini, which
        can't be rewritten (the log then says what to do)."""
        if self.base.exists(user):
            return False
        self.set_hash(user, hashed)
        return True

    def set_admin(self, name: str, admin: bool) -> None:
        if not admin and self.base.is_admin(name):
            raise Refused(409, f"The user {name!r} is an admin by the ini (auth.admins or "
                               "auth.bootstrap_user): change it there.")

        def work(session):
            if self.sql.update_user(session, name, admin=admin):
                return
            if not self.base.exists(name):
                raise Refused(404, f"No user named {name!r}.")
            self.sql.add_user(session, name, None, admin)  # a user of the ini: a row for it

        self._change(work)

    def _update_user(self, name: str, **values) -> None:
        def work(session):
            if not self.sql.update_user(session, name, **values):
                raise Refused(404, f"No user named {name!r}.")

        self._change(work)

    def remove_user(self, name: str) -> None:
        self.not_from_ini(name)
        # What the ini gives the name would pass to whoever is made under it later: the
        # operator takes those lines out first (the database's go with the user).
        held = [f"group.{g}" for g in sorted(self.base.groups_of(name))]
        if self.base.is_admin(name):
            held.append("auth.admins")
        if any(g.principal == name for g in self.base.grants()):
            held.append("grants naming them")
        if held:
            raise Refused(409, f"The ini gives the user {name!r} more than the database "
                               f"holds ({', '.join(held)}): a user made later under the "
                               "name would inherit it. Take them out of the ini first.")

        def work(session):
            if not self.sql.remove_user(session, name):
                raise Refused(404, f"No user named {name!r}.")

        self._change(work)

    def set_group(self, name: str, members: list[str], create: bool = True) -> None:
        """The group's members in the database are these (the ini's stay members)."""
        check_group_name(name)
        members = list(dict.fromkeys(members))
        unknown = [m for m in members if not self.exists(m)]
        if unknown:
            raise Refused(400, f"No user named {', '.join(map(repr, unknown))}.")

        def work(session):
            group_id = self.sql.group_id(session, name)
            if group_id is None:
                if not create:
                    raise Refused(404, f"No group named {name!r}.")
                group_id = self.sql.add_group(session, name)
            ids = []
            for member in members:
                user_id = self.sql.user_id(session, member)
                if user_id is None:  # a user of the ini: a row to hold its memberships
                    self.sql.add_user(session, member, None, False)
                    session.flush()
                    user_id = self.sql.user_id(session, member)
                ids.append(user_id)
            self.sql.set_members(session, group_id, ids)

        self._change(work)

    def remove_group(self, name: str) -> None:
        if name in self.base.groups:
            raise Refused(409, f"The group {name!r} is declared in the ini (group.{name}): "
                               "change it there.")

        def work(session):
            if not self.sql.remove_group(session, name):
                raise Refused(404, f"No group named {name!r}.")

        self._change(work)

    def add_grant(self, grant: Grant) -> int:
        """The grant's id (the existing one's, when it is there already)."""
        grant = self.checked_grant(grant)
        for grant_id, held in self.stored_grants():
            if held == grant:
                return grant_id
        if grant in self.base.grants():
            raise Refused(409, "The ini grants that already.")
        found = self._change(lambda session: self.sql.add_grant(session, grant))
        if found is None:  # made meanwhile by another process
            return next(i for i, g in self.stored_grants() if g == grant)
        return found

    def remove_grant(self, grant_id: int) -> Grant:
        def work(session):
            gone = self.sql.remove_grant(session, grant_id)
            if gone is None:
                raise Refused(404, f"No grant {grant_id} in the database (the ini's "
                                   "grants are changed in the ini).")
            return Grant(*gone)

        return self._change(work)

    def checked_grant(self, grant: Grant) -> Grant:
        """The grant with its pattern normalized; Refused (400) naming what is wrong."""
        if grant.repository != ANYWHERE and grant.repository not in self.repository_names:
            raise Refused(400, f"No repository named {grant.repository!r} (one of "
                               f"{', '.join(sorted(self.repository_names))}, or *).")
        if grant.permission not in PERMISSIONS:
            raise Refused(400, f"permission must be one of {', '.join(PERMISSIONS)}, not "
                               f"{grant.permission!r}.")
        try:
            pattern = check_pattern(grant.pattern)
            principal = principal_of(grant.principal)
        except ValueError as exc:
            raise Refused(400, f"{exc}.") from None
        if principal.startswith("group:") and principal[6:] not in self.groups():
            raise Refused(400, f"No group named {principal[6:]!r}.")
        if ":" not in principal and principal not in ("everyone", "authenticated") \
                and not self.exists(principal):
            raise Refused(400, f"No user named {principal!r}.")
        return Grant(grant.repository, pattern, grant.permission, principal)


def check_user_name(name) -> str:
    if not isinstance(name, str) or not USER_RE.match(name) or name == "__token__":
        raise Refused(400, f"{name!r} is not a user name (letters, digits and . _ @ + -, "
                           "at most 255).")
    if name in ("everyone", "authenticated") or name.startswith("group:"):
        raise Refused(400, f"{name!r} is a principal's word, not a user name.")
    return name


def check_group_name(name) -> str:
    try:
        principal_of(f"group:{name}")
    except ValueError as exc:
        raise Refused(400, f"{exc}.") from None
    return name
