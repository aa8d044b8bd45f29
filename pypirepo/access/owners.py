"""A project's owners and its own grants, managed per project (the project API,
/api/[r/<repository>/]projects/<project>/owners and .../grants).

Who may: server admins, whoever holds `admin` on the repository (or on the project by a
pattern grant), and the project's owners unless `repository.<name>.owners_manage = false`
(for the repository that holds the project, or the group the URL names). Owners may add
and remove owners; the last owner is removed by an admin only.

A caller who may not read the project hears exactly what a caller asking for a missing
project hears (404, or 401 when nobody is logged in); one who may read it but not manage
it, 403. The grants are the policy's (access/policy.py), unchanged: a grant added here
has the project's name as its pattern, so the project is then governed by its own grants
alone (and the repository's admin grants). GET .../grants says so (`own_grants`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import LoginRequired, Refused
from ..settings import as_bool
from .admin import AccessAdmin, _audit, fields, grant_json, grant_words, listed_grants
from .model import ADMIN, ANYWHERE, READ, USER_RE, Grant, Identity


def owners_manage_from_settings(settings, repositories) -> frozenset[str]:
    """The repositories whose projects' owners may not manage them:
    `repository.<name>.owners_manage = false` (default true)."""
    return frozenset(r.name for r in repositories if not settings.get_value(
        f"repository.{r.name}.owners_manage", as_bool, True))


@dataclass(frozen=True)
class Project:
    """A project the caller may manage: named by `repository` (the URL's), held by
    `holder` (the hosted repository whose owners and grants are the project's)."""

    repository: object
    holder: object
    name: str
    admin: bool  # a server admin or an admin of the repository: may remove the last owner


class ProjectAdmin:
    def __init__(self, access, work):
        self.access = access  # pypirepo.access.Access
        self.work = work  # the request's Work: whether a repository holds the project
        self.admin = AccessAdmin(access)

    # --- which project, and who may ------------------------------------------------------

    def project(self, who: Identity | None, repository, name: str, valid: bool) -> Project:
        """The project, when who may manage it; else the refusal they may hear."""
        if who is None:
            raise LoginRequired()
        if repository.kind == "proxy":  # said of any name: nothing about one is revealed
            raise Refused(404, f"Repository {repository.name!r} is a proxy repository: its "
                               "projects have no owners; grants for them are made by the "
                               "server's admins (/api/admin/grants).")
        holder = self._holder(repository, name) if valid else None
        access = self.access
        if holder is None or not access.may(who, holder, name, READ) or (
                holder is not repository and not access.may(who, repository, name, READ)):
            # The same words for a name that is not here and one the caller may not read.
            raise Refused(404, f"No project named {name!r} in repository "
                               f"{repository.name!r}.")
        if who.token is not None:
            raise Refused(403, "An API token cannot manage a project's owners or grants; "
                               "log in with your password.")
        admin = who.admin or any(self._admin_by_grant(who, r, name)
                                 for r in {holder, repository})
        if not admin:
            if who.user not in access.owners.owners(holder.name, name):
                raise Refused(403, f"The user {who.user!r} may not manage project {name!r} "
                                   "(its owners, the repository's admins and server admins "
                                   "may).")
            locked = access.owners_locked & {holder.name, repository.name}
            if locked:
                raise Refused(403, f"The owners of a project may not manage it in repository "
                                   f"{sorted(locked)[0]!r} (repository."
                                   f"{sorted(locked)[0]}.owners_manage = false); its admins "
                                   "may.")
        return Project(repository, holder, name, admin)

    def _holder(self, repository, name: str):
        """The hosted repository that holds the project: the repository itself, or for a
        group the first hosted member (of its members, theirs, ...) that holds it."""
        todo, seen = [repository], set()
        while todo:
            repo = todo.pop(0)
            if repo.name in seen:
                continue
            seen.add(repo.name)
            if repo.kind == "hosted" and repo.holds(self.work, name):
                return repo
            todo[:0] = getattr(repo, "members", [])
        return None

    def _admin_by_grant(self, who: Identity, repository, name: str) -> bool:
        """An `admin` grant deciding for the project (its owners aside)."""
        return any(g.permission == ADMIN and g.principal in who.principals
                   for g in self.access.policy.applicable(repository.name, name))

    # --- owners ----------------------------------------------------------------------------

    def owners(self, who, repository, name: str, valid: bool) -> dict:
        found = self.project(who, repository, name, valid)
        return self._owners_json(found)

    def _owners_json(self, found: Project) -> dict:
        holder = found.holder.name
        return {"repository": holder, "project": found.name,
                "owners": sorted(self.access.owners.owners(holder, found.name)),
                "owners_manage": not self.access.owners_locked & {
                    holder, found.repository.name}}

    def add_owner(self, who, repository, name: str, valid: bool, payload) -> tuple[dict, bool]:
        """(the owners, whether the user was added: False when they were one)."""
        found = self.project(who, repository, name, valid)
        fields(payload, required={"user": str})
        user = payload["user"]
        if not USER_RE.match(user) or not self.access.backend.exists(user):
            raise Refused(400, f"No user named {user[:60]!r}: an owner must be a user.")
        added = self.access.owners.add(found.holder.name, found.name, user)
        if added:
            self.access.owners_changed()
            _audit(who, f"made {user!r} an owner of {found.holder.name}/{found.name}")
        return self._owners_json(found), added

    def remove_owner(self, who, repository, name: str, valid: bool, user: str) -> None:
        found = self.project(who, repository, name, valid)
        outcome = "absent" if not USER_RE.match(user) else self.access.owners.remove(
            found.holder.name, found.name, user, keep_last=not found.admin)
        if outcome == "absent":
            raise Refused(404, f"{user[:60]!r} is not an owner of {found.name!r}.")
        if outcome == "last":
            raise Refused(409, f"{user!r} is the last owner of {found.name!r}: add another "
                               "owner first (a project without owners is left to the "
                               "repository's admins, who may remove the last one).")
        self.access.owners_changed()
        _audit(who, f"removed {user!r} from the owners of {found.holder.name}/{found.name}")

    # --- the project's grants ----------------------------------------------------------------

    def grants(self, who, repository, name: str, valid: bool) -> dict:
        found = self.project(who, repository, name, valid)
        holder, policy = found.holder.name, self.access.policy
        applicable = set(policy.applicable(holder, name))
        listed = [{**g, "applies": _grant_of(g) in applicable}
                  for g in listed_grants(self.access.backend)
                  if g["repository"] in (holder, ANYWHERE) and _grant_of(g).matches(name)]
        return {"repository": holder, "project": name,
                "own_grants": any(g["pattern"] != ANYWHERE for g in listed),
                "grants": listed}

    def add_grant(self, who, repository, name: str, valid: bool, payload) -> dict:
        found = self.project(who, repository, name, valid)
        fields(payload, required={"principal": str, "permission": str})
        backend = self.admin.changeable()
        grant_id = backend.add_grant(Grant(found.holder.name, found.name,
                                           payload["permission"], payload["principal"]))
        made = self._own_grant(found, grant_id)
        _audit(who, f"granted {grant_words(made)} (grant {grant_id})")
        return made

    def remove_grant(self, who, repository, name: str, valid: bool, grant_id: int) -> None:
        found = self.project(who, repository, name, valid)
        backend = self.admin.changeable()
        made = self._own_grant(found, grant_id)
        backend.remove_grant(grant_id)
        _audit(who, f"revoked grant {grant_id}: {grant_words(made)}")

    def _own_grant(self, found: Project, grant_id: int) -> dict:
        """One of the project's own grants (its name as the pattern) in the database; any
        other grant is not the project's to show or revoke."""
        held = next((g for i, g in self.access.backend.stored_grants() if i == grant_id), None)
        if held is None or held.repository != found.holder.name or held.pattern != found.name:
            raise Refused(404, f"No grant {grant_id} of project {found.name!r} in the "
                               "database.")
        return grant_json(held, grant_id)


def _grant_of(listed: dict) -> Grant:
    return Grant(listed["repository"], listed["pattern"], listed["permission"],
                 listed["principal"])
