"""Decisions: may this identity do that to this project of that repository?

The grants are compiled once (and again when they change: the SQL backend says so), and
what applies to a project is worked out once per project and kept: a decision on the
hot path is a dict lookup and a scan of a few grants. A listing is filtered one decision
per class of projects (the projects the same grants apply to), not one per name, and the
filtered page is kept per identity's principals and the page's version, so a listing of
thousands of projects costs its filter once per change, not per request.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable

from .model import ADMIN, ANONYMOUS_PRINCIPALS, ANYWHERE, READ, Grant, Identity, implies

_MAX_CACHED = 200_000


class Policy:
    def __init__(self, grants: Iterable[Grant],
                 owners: Callable[[str, str], frozenset[str]] | None = None,
                 owned: Callable[[str, str], frozenset[str]] | None = None):
        """grants: every grant; owners(repository, project): the project's owners;
        owned(repository, user): the projects a user owns there (both from the database,
        asked only where the grants say no)."""
        self.grants = tuple(grants)
        self._owners = owners
        self._owned = owned
        self._by_repository: dict[str, tuple[Grant, ...]] = {}
        for grant in self.grants:
            self._by_repository.setdefault(grant.repository, ())
            self._by_repository[grant.repository] += (grant,)
        self._applicable: dict[tuple[str, str | None], tuple[Grant, ...]] = {}
        self._patterned: dict[str, bool] = {}
        self._pages: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    # --- what applies --------------------------------------------------------------------

    def grants_of(self, repository: str) -> tuple[Grant, ...]:
        return self._by_repository.get(repository, ()) + self._by_repository.get(ANYWHERE, ())

    def patterned(self, repository: str) -> bool:
        """Whether some projects of the repository have grants of their own."""
        found = self._patterned.get(repository)
        if found is None:
            found = self._patterned[repository] = any(
                g.pattern != ANYWHERE for g in self.grants_of(repository))
        return found

    def applicable(self, repository: str, project: str | None) -> tuple[Grant, ...]:
        """The grants that decide for the project: its pattern grants when some match it
        (and the repository-wide admin grants), else the repository-wide ones."""
        key = (repository, project)
        found = self._applicable.get(key)
        if found is None:
            grants = self.grants_of(repository)
            wide = tuple(g for g in grants if g.pattern == ANYWHERE)
            specific = () if project is None else tuple(
                g for g in grants if g.pattern != ANYWHERE and g.matches(project))
            found = specific + tuple(g for g in wide if g.permission == ADMIN) if specific \
                else wide
            if len(self._applicable) >= _MAX_CACHED:  # names asked for are the client's
                self._applicable.clear()
            self._applicable[key] = found
        return found

    # --- decisions -----------------------------------------------------------------------

    def reads_all(self, identity: Identity | None, repository: str) -> bool:
        """Whether identity may read every project of the repository, whatever its name
        (then a listing needs no per-name filter)."""
        if identity is not None and identity.token is not None \
                and ANYWHERE not in identity.token.projects:
            return False
        if identity is not None and identity.admin:
            return self.may(identity, repository, None, READ)
        return not self.patterned(repository) and self.may(identity, repository, None, READ)

    def may(self, identity: Identity | None, repository: str, project: str | None,
            permission: str) -> bool:
        """Whether identity (None: anonymous) may do this to the project (None: to the
        repository as a whole: its repository-wide grants)."""
        if identity is not None:
            if identity.token is not None and \
                    not identity.token.allows(repository, project, permission):
                return False
            if identity.admin:
                return True
            principals = identity.principals
        else:
            principals = ANONYMOUS_PRINCIPALS
        for grant in self.applicable(repository, project):
            if grant.principal in principals and implies(grant.permission, permission):
                return True
        return (identity is not None and project is not None and self._owners is not None
                and identity.user in self._owners(repository, project))

    def may_somewhere(self, identity: Identity | None, repository: str,
                      permission: str) -> bool:
        """Whether identity may do this to some project of the repository: what a route is
        checked for before the project is known (an upload's form is not read yet), and
        whether a listing shows anything at all."""
        if self.may(identity, repository, None, permission):
            return True
        if identity is not None:
            if identity.token is not None and not identity.token.allows(repository, None,
                                                                        permission):
                return False
            principals = identity.principals
        else:
            principals = ANONYMOUS_PRINCIPALS
        if any(g.principal in principals and implies(g.permission, permission)
               for g in self.grants_of(repository)):
            return True
        return (identity is not None and self._owned is not None
                and bool(self._owned(repository, identity.user)))

    def visible(self, identity: Identity | None, repository: str,
                names: list[str]) -> list[str]:
        """The names (projects of the repository) identity may read, in the order given:
        one decision per class of projects (the ones the same grants apply to)."""
        shown = self._visible(identity, repository, names)
        if _projects_narrowed(identity):  # a token for some projects: those only
            allows = identity.token.allows
            shown = [n for n in shown if allows(repository, n, READ)]
        return shown

    def _visible(self, identity: Identity | None, repository: str,
                 names: list[str]) -> list[str]:
        if not self.patterned(repository):
            if self.may(identity, repository, None, READ):
                return names
            owned = self._owned_by(identity, repository)
            return [n for n in names if n in owned] if owned else []
        decided: dict[int, bool] = {}
        owned = None
        shown = []
        for name in names:
            grants = self.applicable(repository, name)
            key = id(grants)
            allowed = decided.get(key)
            if allowed is None:
                allowed = decided[key] = self._may_by_grants(identity, repository, name,
                                                             grants)
            if not allowed:
                if owned is None:
                    owned = self._owned_by(identity, repository)
                allowed = name in owned
            if allowed:
                shown.append(name)
        return shown

    def _may_by_grants(self, identity, repository, project, grants) -> bool:
        if identity is not None:
            if identity.token is not None and not identity.token.allows(repository, project,
                                                                        READ):
                return False
            if identity.admin:
                return True
        principals = identity.principals if identity is not None else ANONYMOUS_PRINCIPALS
        return any(g.principal in principals and implies(g.permission, READ) for g in grants)

    def _owned_by(self, identity, repository) -> frozenset[str]:
        if identity is None or self._owned is None:
            return frozenset()
        return self._owned(repository, identity.user)

    def visible_page(self, identity: Identity | None, repository: str, page, make_page):
        """A root page (the repository's every project) as identity may see it: the page
        itself when they may read it all, else a page of what they may, kept per version
        of the page and of who is asking."""
        if not self.patterned(repository) and not _projects_narrowed(identity) and \
                self.may(identity, repository, None, READ):
            return page
        who = (identity.principals, identity.token, identity.admin) if identity else None
        key = (repository, page.etag, who)
        with self._lock:
            found = self._pages.get(key)
        if found is not None:
            return found
        projects = page.data["projects"]
        keep = set(self.visible(identity, repository, [p["_normalized"] for p in projects]))
        found = make_page(page.serial, {**page.data, "projects": [
            p for p in projects if p["_normalized"] in keep]}, "index")
        with self._lock:
            self._pages[key] = found
            while len(self._pages) > 1024:
                self._pages.popitem(last=False)
        return found


def _projects_narrowed(identity: Identity | None) -> bool:
    """Whether the identity is a token for some projects only."""
    return identity is not None and identity.token is not None and \
        ANYWHERE not in identity.token.projects
