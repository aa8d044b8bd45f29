"""The words of access: permissions, principals, grants, token scopes, and who is asking.

- Permissions: `read`, `upload`, `delete` (delete, yank, promote out) and `admin` (all of
  them, and managing the grants). Whoever may upload or delete may read what they write.
- Principals: `everyone`, `authenticated`, a user's name, `group:<name>`.
- A grant gives one principal one permission in one repository (`*`: every repository),
  for the projects whose normalized names match its pattern (`*`: the whole repository,
  `team-*`: a family of projects). A project matched by a pattern grant is governed by
  its pattern grants alone: that is how a project is kept private in a repository that
  everyone may read (the repository-wide `admin` grants still apply to it).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

READ, UPLOAD, DELETE, ADMIN = "read", "upload", "delete", "admin"
PERMISSIONS = (READ, UPLOAD, DELETE, ADMIN)
WRITE_PERMISSIONS = (UPLOAD, DELETE)
EVERYONE, AUTHENTICATED = "everyone", "authenticated"
NOBODY = "nobody"  # the settings' word for "no principal": blank means the default
ANYWHERE = "*"

# Longer credentials are refused before any hash is computed (access.identity.parse_basic):
# a hash costs the same for any length, but passlib refuses secrets over 4 KiB with an
# error, and nobody's user name or password is this long.
MAX_USER = 255
MAX_PASSWORD = 1024
# A user name: what every client can send in Basic auth, and what a URL can hold.
USER_RE = re.compile(r"^[A-Za-z0-9_.@+-]{1,255}$")
GROUP_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# A project pattern: a normalized name with `*` and `?` wildcards.
PATTERN_RE = re.compile(r"^[a-z0-9*?][a-z0-9*?._-]{0,254}$")


def implies(granted: str, wanted: str) -> bool:
    """Whether a granted permission covers the one wanted."""
    return granted == wanted or granted == ADMIN or (
        wanted == READ and granted in WRITE_PERMISSIONS)


def principal_of(word: str) -> str:
    """A principal as the settings write it: everyone, authenticated, group:<name>, or a
    user's name; ValueError for anything else."""
    if word in (EVERYONE, AUTHENTICATED):
        return word
    if word.startswith("group:"):
        if not GROUP_RE.match(word[6:]):
            raise ValueError(f"{word!r} is not a group (group:<letters, digits, . _ ->)")
        return word
    if not USER_RE.match(word):
        raise ValueError(f"{word!r} is neither everyone, authenticated, a user name nor "
                         "group:<name>")
    return word


def check_pattern(pattern: str) -> str:
    """A project pattern, normalized as a name is (Team_Tools.* and team-tools-* are one
    family): lower case, runs of - _ . as one -, the wildcards kept."""
    if pattern == ANYWHERE:
        return pattern
    normalized = re.sub(r"[-_.]+", "-", pattern.strip().lower())
    if not PATTERN_RE.match(normalized):
        raise ValueError(f"{pattern!r} is not a project name pattern (a name with * and ?)")
    return normalized


@dataclass(frozen=True)
class Grant:
    repository: str  # a repository's name, or * for every repository
    pattern: str  # a project name pattern, * for the whole repository
    permission: str
    principal: str

    def matches(self, project: str) -> bool:
        return self.pattern == ANYWHERE or fnmatch.fnmatchcase(project, self.pattern)


@dataclass(frozen=True)
class TokenScope:
    """What an API token may do at most, whatever its owner may."""

    permissions: frozenset[str] = frozenset({READ})  # {read} or {read, upload}
    repositories: frozenset[str] = frozenset({ANYWHERE})
    projects: tuple[str, ...] = (ANYWHERE,)
    # Worked out once: allows() is asked on every request made with the token.
    _covers: frozenset[str] = field(init=False, repr=False, compare=False)
    _everywhere: bool = field(init=False, repr=False, compare=False)
    _every_project: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_covers", frozenset(
            w for w in PERMISSIONS if any(implies(p, w) for p in self.permissions)))
        object.__setattr__(self, "_everywhere", ANYWHERE in self.repositories)
        object.__setattr__(self, "_every_project", ANYWHERE in self.projects)

    def allows(self, repository: str | None, project: str | None, permission: str) -> bool:
        if permission not in self._covers:
            return False
        if not self._everywhere and repository not in self.repositories:
            return False
        if project is None or self._every_project:
            return True
        return any(fnmatch.fnmatchcase(project, p) for p in self.projects)


@dataclass(frozen=True)
class Identity:
    """Who is asking, once their credentials are checked."""

    user: str
    admin: bool = False  # a server admin: everything, everywhere
    groups: frozenset[str] = frozenset()
    token: TokenScope | None = None  # logged in with an API token: at most its scope
    via: str = "password"  # password | token | session | remote
    principals: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "principals", frozenset(
            {EVERYONE, AUTHENTICATED, self.user, *(f"group:{g}" for g in self.groups)}))


ANONYMOUS_PRINCIPALS = frozenset({EVERYONE})
